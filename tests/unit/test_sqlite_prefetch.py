"""SQLiteStore's batch prefetch loads in a few queries what a unit then reads: a unit reads
the same after a prefetch as without one, whatever the ids, and rows changed between
batches are read anew."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit._adapters._sqlformat import ts
from referralkit._adapters.sqlite import _json_array

P = "prog"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLICK = rk.Click(event_id="c-1", at=T0, code="ALPHA234", visitor_id="v-1")

#: Any text, NULs, quotes, backslashes, control and non-BMP characters included.
IDS = st.lists(st.text(max_size=6), max_size=12, unique=True)


def participant(pid: str, *, signed_up: bool = True) -> rk.ParticipantRecord:
    return rk.ParticipantRecord(P, pid, T0, T0 + timedelta(hours=1) if signed_up else None)


def referral(referee: str, referrer: str) -> rk.Referral:
    return rk.Referral(
        referral_id=f"ref-{referee}",
        program_id=P,
        program_version=1,
        referrer_id=referrer,
        referee_id=referee,
        code=f"code-{referrer}",
        channel="email",
        created_at=T0,
        event_id=f"s-{referee}",
    )


def populate(store: rk.SQLiteStore, ids: Iterable[str]) -> None:
    """For each id: an event, a participant referred by ``by-{id}``, an order of theirs,
    a code owned by ``by-{id}``, and counters of the id and of ``by-{id}``."""
    with store.unit_of_work() as uow:
        for i in ids:
            uow.events.add(rk.EventRecord(P, i, "digest", CLICK, rk.Outcome("c-1", "click")))
            uow.participants.put(participant(i))
            uow.referrals.add(referral(i, f"by-{i}"))
            uow.orders.add(
                rk.OrderRecord(
                    P, i, i, rk.Money(10, "USD"), T0, f"p-{i}", f"ref-{i}", True, "digest"
                )
            )
            uow.participants.add_code(rk.CodeRecord(P, i, f"by-{i}", T0))
            uow.counters.add((P, "purchases", i), Decimal(1))
            uow.counters.add((P, "referrals", f"by-{i}"), Decimal("2.5"))
        uow.commit()


def reads(uow: Any, ids: Iterable[str]) -> list[object]:
    """Everything the unit answers about ``ids``."""
    got: list[object] = []
    for i in ids:
        owner = uow.participants.code_owner(P, i)
        got += [
            uow.events.get(P, i),
            uow.participants.get(P, i),
            uow.referrals.by_referee(P, i),
            uow.referrals.get(f"ref-{i}"),
            uow.orders.get(P, i),
            owner,
            uow.counters.get(
                [(P, "purchases", i), (P, "referrals", f"by-{i}"), (P, "spend", f"by-{i}")]
            ),
        ]
    return got


def prefetched_reads(store: rk.SQLiteStore, ids: list[str]) -> list[object]:
    with store.unit_of_work() as uow:
        uow.prefetch(
            P,
            event_ids=ids,
            participant_ids=ids,
            order_ids=ids,
            codes=ids,
            counter_subjects=ids,
        )
        return reads(uow, ids)


def plain_reads(store: rk.SQLiteStore, ids: list[str]) -> list[object]:
    with store.unit_of_work() as uow:
        return reads(uow, ids)


@pytest.mark.parametrize("json_each", [True, False], ids=["json_each", "bound ids"])
@given(stored=IDS, absent=IDS)
def test_a_unit_reads_the_same_after_a_prefetch_whatever_the_ids(
    json_each: bool, stored: list[str], absent: list[str]
) -> None:
    store = rk.SQLiteStore(":memory:")
    store._json_ids = json_each
    populate(store, stored)
    ids = list(dict.fromkeys([*stored, *absent]))
    assert prefetched_reads(store, ids) == plain_reads(store, ids)
    assert prefetched_reads(store, ids) == plain_reads(store, ids)  # decoded records kept


@pytest.mark.parametrize("json_each", [True, False], ids=["json_each", "bound ids"])
def test_a_prefetch_of_more_ids_than_one_statement_binds_finds_them_all(json_each: bool) -> None:
    store = rk.SQLiteStore(":memory:")
    store._json_ids = json_each
    stored = [f"id-{n}" for n in range(450)]
    populate(store, stored)
    ids = [*stored, *(f"new-{n}" for n in range(450))]
    assert prefetched_reads(store, ids) == plain_reads(store, ids)


def test_after_a_prefetch_the_batch_reads_need_no_query() -> None:
    """Every row a prefetch was asked for is answered from it (the referrers' counters
    with one more query, at the first read of one of them)."""
    store = rk.SQLiteStore(":memory:")
    ids = ["a", "b", "c"]
    populate(store, ids[:2])
    statements: list[str] = []
    with store.unit_of_work() as uow:
        uow.prefetch(
            P, event_ids=ids, participant_ids=ids, order_ids=ids, codes=ids, counter_subjects=ids
        )
        store._conn.set_trace_callback(statements.append)
        reads(uow, ids[:2])  # and of the id with no rows, what a batch looks up:
        uow.events.get(P, "c")
        uow.participants.get(P, "c")
        uow.referrals.by_referee(P, "c")
        uow.orders.get(P, "c")
        uow.participants.code_owner(P, "c")
        uow.counters.get([(P, "purchases", "c")])
        store._conn.set_trace_callback(None)
    assert len(statements) == 1
    assert counter_queries(statements) == statements


def counter_queries(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and "rk_counters" in s]


def test_the_referrers_counters_are_loaded_at_the_first_read_of_one_of_them() -> None:
    """A batch that only adds to a referrer's counters never reads them; one that reads
    one reads them all in one query, with this unit's additions, flushed or not."""
    store = rk.SQLiteStore(":memory:")
    populate(store, ["bob"])  # by-bob: referrals 2.5
    referrals, spend = (P, "referrals", "by-bob"), (P, "spend", "by-bob")
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    with store.unit_of_work() as uow:
        uow.prefetch(P, participant_ids=["bob"], codes=["bob"])
        loaded = len(counter_queries(statements))
        uow.counters.add(referrals, Decimal(1))
        uow.outbox.pending(1)  # flushes the buffered writes
        uow.counters.add(referrals, Decimal(1))
        uow.counters.add(spend, Decimal(3))
        assert len(counter_queries(statements)) == loaded  # adding reads nothing
        assert uow.counters.get([referrals, spend]) == {referrals: Decimal("4.5"), spend: 3}
        assert uow.counters.get([spend, referrals]) == {spend: 3, referrals: Decimal("4.5")}
        assert len(counter_queries(statements)) == loaded + 1
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.counters.get([referrals, spend]) == {referrals: Decimal("4.5"), spend: 3}


def test_a_row_changed_since_an_earlier_batch_is_read_anew(tmp_path: Path) -> None:
    store = rk.SQLiteStore(tmp_path / "rk.db")
    with store.unit_of_work() as uow:
        uow.participants.put(participant("bob", signed_up=False))
        uow.commit()
    with store.unit_of_work() as uow:
        uow.prefetch(P, participant_ids=["bob"])
        assert uow.participants.get(P, "bob") == participant("bob", signed_up=False)
    conn = sqlite3.connect(tmp_path / "rk.db")
    with conn:
        conn.execute("UPDATE rk_participants SET signed_up_at = ?", (ts(T0),))
    conn.close()
    with store.unit_of_work() as uow:
        uow.prefetch(P, participant_ids=["bob"])
        assert uow.participants.get(P, "bob") == rk.ParticipantRecord(P, "bob", T0, T0)
    store.close()


def test_a_row_corrupted_since_an_earlier_batch_raises_corrupt_record_error(
    tmp_path: Path,
) -> None:
    """A record kept from an earlier batch never stands in for a row that changed."""
    store = rk.SQLiteStore(tmp_path / "rk.db")
    populate(store, ["bob"])
    for _ in range(2):
        assert prefetched_reads(store, ["bob"]) == plain_reads(store, ["bob"])
    conn = sqlite3.connect(tmp_path / "rk.db")
    with conn:
        conn.execute("UPDATE rk_codes SET created_at = 'yesterday'")
    conn.close()
    with store.unit_of_work() as uow, pytest.raises(rk.CorruptRecordError) as info:
        uow.prefetch(P, codes=["bob"])
    assert "rk_codes" in str(info.value)
    assert "bob" in str(info.value)
    with store.unit_of_work() as uow:  # the failed read left nothing behind
        uow.participants.put(participant("cy"))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.participants.get(P, "cy") == participant("cy")
    store.close()


@given(st.lists(st.text(), min_size=1))
def test_json_array_carries_every_id_but_one_with_a_nul_to_sqlite(ids: list[str]) -> None:
    array = _json_array(ids)
    if any("\x00" in i for i in ids):
        assert array is None
        return
    assert array is not None
    conn = sqlite3.connect(":memory:")
    assert [v for (v,) in conn.execute("SELECT value FROM json_each(?)", (array,))] == ids
    conn.close()


ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=45)), timezone(-timedelta(hours=3, minutes=30))]
)


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=ZONES))
def test_ts_writes_isoformat_in_utc_with_microseconds(value: datetime) -> None:
    expected = value.astimezone(UTC).isoformat(timespec="microseconds")
    assert ts(value) == expected
    assert ts(value) == expected  # remembered
