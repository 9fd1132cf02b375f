"""A row SQLiteStore cannot read (written by hand, or by something else) raises
``CorruptRecordError`` naming the table and the row, never a bare driver or parsing error."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import referralkit as rk

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def usd(amount: int) -> rk.Money:
    return rk.Money(amount, "USD")


def populate(path: Path) -> str:
    """A referral with a purchase, its rewards, entries and notifications; returns the code."""
    program = rk.Program(
        id="p",
        effective_at=START,
        currency="USD",
        policies=[rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
    )
    store = rk.SQLiteStore(path)
    engine = rk.Engine(program, store, clock=rk.ManualClock(START))
    code = engine.issue_code("alice")
    engine.handle(rk.Click(event_id="c1", at=START, code=code, visitor_id="v1"))
    engine.handle(
        rk.Signup(event_id="s1", participant_id="bob", code=code, at=START, visitor_id="v1")
    )
    engine.handle(
        rk.Purchase(event_id="p1", participant_id="bob", order_id="o1", amount=usd(80), at=START)
    )
    store.close()
    return code


Read = Callable[[Any], object]

CASES: list[tuple[str, str, str, Read, str]] = [
    # table, column, value written by hand, a read that meets the row, what names the row
    ("rk_orders", "currency", "XYZ", lambda u: u.orders.get("p", "o1"), "o1"),
    ("rk_orders", "at", "yesterday", lambda u: u.orders.get("p", "o1"), "o1"),
    (
        "rk_participants",
        "first_seen_at",
        "2026-01-05T09:00:00",  # lost its offset: naive
        lambda u: u.participants.get("p", "bob"),
        "bob",
    ),
    ("rk_events", "outcome", "{not json", lambda u: u.events.get("p", "p1"), "p1"),
    ("rk_events", "event", '{"$t": "Nope", "f": {}}', lambda u: u.events.get("p", "s1"), "s1"),
    ("rk_referrals", "explanation", "[", lambda u: u.referrals.by_referee("p", "bob"), "ref_"),
    (
        "rk_rewards",
        "value",
        '{"$x": 1}',
        lambda u: u.ledger.rewards("p", participant_id="alice"),
        "rwd_",
    ),
    ("rk_entries", "kind", "teleported", lambda u: u.ledger.entries(_reward_ids(u)), "ent_"),
    ("rk_outbox", "data", "nope", lambda u: u.outbox.pending(10), "ntf_"),
    ("rk_touches", "data", "{", lambda u: u.touches.of_visitor("p", "v1"), "tch_"),
    ("rk_codes", "created_at", "", lambda u: u.participants.code_of("p", "alice"), "p"),
]


def _reward_ids(uow: Any) -> list[str]:
    return [r.reward_id for r in uow.ledger.rewards("p", participant_id="alice")]


@pytest.mark.parametrize(("table", "column", "value", "read", "names"), CASES)
def test_a_corrupt_row_raises_corrupt_record_error_naming_it(
    tmp_path: Path, table: str, column: str, value: str, read: Read, names: str
) -> None:
    path = tmp_path / "rk.db"
    populate(path)
    conn = sqlite3.connect(path)
    with conn:
        changed = conn.execute(f"UPDATE {table} SET {column} = ?", (value,)).rowcount
    conn.close()
    assert changed >= 1
    store = rk.SQLiteStore(path)
    with store.unit_of_work() as uow, pytest.raises(rk.CorruptRecordError) as info:
        read(uow)
    assert table in str(info.value)
    assert names in str(info.value)
    with pytest.raises(rk.CorruptRecordError, match=table):
        store.dump()
    store.close()
