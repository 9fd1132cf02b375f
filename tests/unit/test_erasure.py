"""Erasing a participant pseudonymises their personal fields in the event log too, keeping
totals, digests and duplicate detection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

import referralkit as rk
from referralkit.attribution import keyed_hash
from referralkit.testing import check_all

START = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = b"k" * 32
STORES: dict[str, Callable[[], rk.Store]] = {
    "memory": rk.InMemoryStore,
    "sqlite": lambda: rk.SQLiteStore(":memory:"),
}


def usd(amount: int) -> rk.Money:
    return rk.Money(amount, "USD")


def make(store: rk.Store) -> rk.Engine:
    program = rk.Program(
        id="friends",
        effective_at=START - timedelta(days=365),
        currency="USD",
        policies=[rk.DoubleSided(rk.Cash(usd(10)), rk.Credit(usd(5)))],
    )
    return rk.Engine(
        program, store, clock=rk.ManualClock(START + 10 * DAY), code_factory=lambda: "ALICE"
    )


def events() -> list[rk.Event]:
    return [
        rk.Click(event_id="c-1", at=START, code="ALICE", visitor_id="v-bob", metadata={"ua": "x"}),
        rk.Click(event_id="c-2", at=START, code="ALICE", visitor_id="v-carol"),
        rk.Signup(
            event_id="s-bob",
            participant_id="bob",
            at=START + DAY,
            email="Bob.Smith@example.com",
            visitor_id="v-bob",
            ip=keyed_hash("203.0.113.9", KEY),
            device=keyed_hash("device-1", KEY),
            metadata={"name": "Bob Smith"},
        ),
        rk.Signup(event_id="s-carol", participant_id="carol", at=START + DAY, visitor_id="v-carol"),
        rk.Purchase(
            event_id="p-1",
            participant_id="bob",
            order_id="o-1",
            amount=usd(80),
            at=START + 2 * DAY,
            metadata={"address": "1 Main St"},
        ),
        rk.Refund(
            event_id="r-1",
            refund_id="rf-1",
            order_id="o-1",
            amount=usd(20),
            at=START + 3 * DAY,
            metadata={"note": "call Bob Smith"},
        ),
    ]


@pytest.mark.parametrize("kind", sorted(STORES))
def test_erasure_pseudonymises_the_event_log_and_keeps_totals_and_duplicates(kind: str) -> None:
    store = STORES[kind]()
    e = make(store)
    e.issue_code("alice")
    for ev in events():
        e.handle(ev)
    before = store.dump()
    balances = {who: e.balance(who) for who in ("alice", "bob", "carol")}

    e.erase_participant("bob")

    after = store.dump()
    text = repr(after) + repr([(r.event.metadata) for r in after["events"]])
    for personal in ("Bob.Smith", "bob.smith", "v-bob", "Main St", "Bob Smith"):
        assert personal not in text, personal
    assert keyed_hash("203.0.113.9", KEY) not in text
    logged = {r.event_id: r for r in after["events"]}
    signup = logged["s-bob"].event
    assert isinstance(signup, rk.Signup)
    assert signup.email is not None
    assert signup.email.endswith("@erased.invalid")
    assert (signup.ip, signup.device, dict(signup.metadata)) == (None, None, {})
    click = logged["c-1"].event
    assert isinstance(click, rk.Click)
    assert click.visitor_id == signup.visitor_id  # still joined, under a pseudonym
    assert logged["c-2"] == {r.event_id: r for r in before["events"]}["c-2"]  # carol's
    assert dict(logged["c-2"].event.metadata) == {}
    assert logged["s-carol"].event == rk.Signup(
        event_id="s-carol", participant_id="carol", at=START + DAY, visitor_id="v-carol"
    )
    for event_id, record in logged.items():
        old = {r.event_id: r for r in before["events"]}[event_id]
        assert (record.digest, record.outcome) == (old.digest, old.outcome), event_id
    assert [r.event_id for _, r in e.event_log()] == [ev.event_id for ev in events()]
    for table in ("referrals", "rewards", "entries", "counters", "outbox", "orders", "refunds"):
        assert after[table] == before[table], table
    assert {who: e.balance(who) for who in balances} == balances
    check_all(store, e)

    # a retried original event, personal data and all, is still a duplicate: nothing written
    for ev in events():
        assert e.handle(ev).duplicate
    assert store.dump() == after
    # erasing again changes nothing
    e.erase_participant("bob")
    assert store.dump() == after

    # the erased log replays to the same ledger
    replay = make(rk.InMemoryStore())
    replay.issue_code("alice")
    for _, ev in e.event_log():
        replay.handle(ev)
    assert {who: replay.balance(who) for who in balances} == balances
