"""SQLiteStore's buffered writes leave unwritten what they would not change (a reward's
state it already has, a counter change that nets to 0) and remember the timestamps they
wrote by object: the stored rows are those the plain statements write, whatever the
units do."""

from __future__ import annotations

import gc
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import referralkit as rk
from referralkit._adapters import _sqlformat
from referralkit._adapters import sqlite as sqlite_adapter
from referralkit._adapters._sqlformat import ts
from referralkit._values import codec
from referralkit.testing.strategies import reward_values

P = "prog"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
#: What the statements were before they skipped unchanged rows.
PLAIN_UPDATE_STATE = "UPDATE rk_rewards SET state = ? WHERE reward_id = ?"
PLAIN_UPSERT_COUNTER = (
    "INSERT INTO rk_counters (program_id, name, subject, value_scaled) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (program_id, name, subject) DO UPDATE "
    "SET value_scaled = value_scaled + excluded.value_scaled"
)
STATES = list(rk.RewardState)
REWARDS = [f"rwd-{n}" for n in range(4)]
KEYS = [(P, name, subject) for name in ("uses", "spend") for subject in ("a", "b", "c")]
DELTAS = st.sampled_from([Decimal(1), Decimal(-1), Decimal("2.5"), Decimal("-2.5"), Decimal(0)])

#: One step of a unit: ("reward", reward index, state) adds the reward (if new) or an entry
#: moving it to ``state``; ("count", key index, delta) changes a counter; ("flush",) writes
#: the buffers mid-unit.
STEP = st.one_of(
    st.tuples(st.just("reward"), st.integers(0, len(REWARDS) - 1), st.sampled_from(STATES)),
    st.tuples(st.just("count"), st.integers(0, len(KEYS) - 1), DELTAS),
    st.tuples(st.just("flush")),
)
#: Units of steps; a unit that is not committed is rolled back.
UNITS = st.lists(st.tuples(st.lists(STEP, max_size=8), st.booleans()), max_size=6)


def reward(reward_id: str) -> rk.Reward:
    return rk.Reward(
        reward_id=reward_id,
        program_id=P,
        program_version=1,
        referral_id="ref-1",
        participant_id="bob",
        role=rk.Role.REFERRER,
        value=rk.Cash(rk.Money(20, "USD")),
        policy="double_sided",
        source_event_id="e-1",
        order_id="o-1",
        base_amount=rk.Money(50, "USD"),
        created_at=T0,
        payable_at=T0 + timedelta(days=30),
    )


def entry(reward_id: str, n: int, state: rk.RewardState) -> rk.Entry:
    return rk.Entry(
        entry_id=f"{reward_id}-{n}",
        reward_id=reward_id,
        program_id=P,
        participant_id="bob",
        kind=rk.EntryKind.GRANTED if n == 0 else rk.EntryKind.REVERSED,
        quantity=Decimal(n),
        at=T0 + timedelta(seconds=n),
        cause=f"e-{n}",
        state_after=state,
    )


def play(units: list[tuple[list[tuple[Any, ...]], bool]]) -> dict[str, list[Any]]:
    """Run ``units`` on a new store; every table's rows."""
    store = rk.SQLiteStore(":memory:")
    entries = 0
    added: set[str] = set()
    for steps, commit in units:
        with store.unit_of_work() as uow:
            new = set(added)
            for step in steps:
                if step[0] == "reward":
                    rid = REWARDS[step[1]]
                    entries += 1
                    if rid in new:
                        uow.ledger.append([entry(rid, entries, step[2])])
                    else:
                        uow.ledger.add_reward(reward(rid), entry(rid, entries, step[2]))
                        new.add(rid)
                elif step[0] == "count":
                    uow.counters.add(KEYS[step[1]], step[2])
                else:
                    uow.flush()
            if commit:
                uow.commit()
                added = new
    conn = store._conn
    tables = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    return {t: conn.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in tables}


@settings(max_examples=200)
@given(UNITS)
def test_the_stored_rows_are_those_the_plain_statements_write(
    units: list[tuple[list[tuple[Any, ...]], bool]],
) -> None:
    got = play(units)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlite_adapter, "_UPDATE_STATE", PLAIN_UPDATE_STATE)
        patch.setattr(sqlite_adapter, "_UPSERT_COUNTER", PLAIN_UPSERT_COUNTER)
        expected = play(units)
    assert got == expected


@given(UNITS)
def test_a_rewards_stored_state_is_that_of_its_latest_entry(
    units: list[tuple[list[tuple[Any, ...]], bool]],
) -> None:
    tables = play(units)
    latest = {row[2]: row[10] for row in tables["rk_entries"]}  # in seq order
    assert {row[1]: row[17] for row in tables["rk_rewards"]} == latest


def test_a_change_back_to_the_stored_state_writes_no_row() -> None:
    """A partial reversal that leaves a pending reward pending writes its entry only."""
    store = rk.SQLiteStore(":memory:")
    with store.unit_of_work() as uow:
        uow.ledger.add_reward(reward("r"), entry("r", 0, rk.RewardState.PENDING))
        uow.counters.add((P, "uses", "a"), Decimal(1))
        uow.commit()
    changes = store._conn.total_changes
    with store.unit_of_work() as uow:
        uow.ledger.append([entry("r", 1, rk.RewardState.PENDING)])
        uow.counters.add((P, "uses", "a"), Decimal(1))
        uow.counters.add((P, "uses", "a"), Decimal(-1))
        uow.commit()
    assert store._conn.total_changes == changes + 1  # the entry
    with store.unit_of_work() as uow:
        uow.ledger.append([entry("r", 2, rk.RewardState.REVERSED)])
        uow.commit()
    assert store._conn.execute("SELECT state FROM rk_rewards").fetchall() == [("reversed",)]
    with store.unit_of_work() as uow:
        assert uow.counters.get([(P, "uses", "a")]) == {(P, "uses", "a"): 1}


def test_ts_never_gives_the_text_of_a_datetime_that_had_the_same_id() -> None:
    """Timestamps are remembered by object; each one remembered is kept alive, so a new
    datetime never finds the text of an earlier one that had its id."""
    seen: set[int] = set()
    reused = 0
    for n in range(3 * _sqlformat._TEXTS_KEPT):
        value = T0 + timedelta(microseconds=n)
        reused += id(value) in seen
        seen.add(id(value))
        assert ts(value) == value.isoformat(timespec="microseconds")
        del value
        gc.collect(0)
    # ids were recycled after the remembered ones were let go (and equal values in new
    # objects are written the same)
    assert reused > 0
    assert ts(T0 + timedelta(0)) == ts(T0) == "2026-03-02T09:00:00.000000+00:00"


def test_the_plain_statements_are_what_the_fast_ones_replace() -> None:
    """The reference statements above run on the schema (a typo would make the first test
    pass for the wrong reason)."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(sqlite_adapter._SCHEMA)
    conn.execute(PLAIN_UPDATE_STATE, ("pending", "r"))
    conn.execute(PLAIN_UPSERT_COUNTER, (P, "uses", "a", 1))
    conn.execute(sqlite_adapter._UPDATE_STATE, ("pending", "r"))
    conn.execute(sqlite_adapter._UPSERT_COUNTER, (P, "uses", "a", 0))
    assert conn.execute("SELECT value_scaled FROM rk_counters").fetchall() == [(1,)]
    conn.close()


ORDER_IDS = ["o-1", "o-2", None]


@given(
    st.lists(st.tuples(st.sampled_from([P, "other"]), st.sampled_from(ORDER_IDS)), max_size=10),
    st.booleans(),
)
def test_a_units_new_rewards_of_an_order_are_those_the_table_gives_after_commit(
    rewards: list[tuple[str, str | None]], flush_between: bool
) -> None:
    """The rewards of an order a unit added are found by order (kept by order in the unit)
    as the stored ones are: in the order they were added, after the stored ones."""
    store = rk.SQLiteStore(":memory:")
    made = [
        attrs.evolve(reward(f"rwd-{n}"), program_id=program_id, order_id=order_id)
        for n, (program_id, order_id) in enumerate(rewards)
    ]
    half = len(made) // 2
    queries = [(program_id, order_id) for program_id in (P, "other") for order_id in ORDER_IDS]

    def read(uow: Any) -> list[object]:
        return [
            uow.ledger.rewards(program_id, order_id=order_id)
            if order_id is not None
            else uow.ledger.rewards(program_id, participant_id="bob")
            for program_id, order_id in queries
        ]

    with store.unit_of_work() as uow:
        for r in made[:half]:
            uow.ledger.add_reward(r, entry(r.reward_id, 0, rk.RewardState.PENDING))
        if flush_between:
            uow.flush()
        for r in made[half:]:
            uow.ledger.add_reward(r, entry(r.reward_id, 0, rk.RewardState.PENDING))
        unflushed = read(uow)
        uow.commit()
    with store.unit_of_work() as uow:
        assert unflushed == read(uow)


@given(st.lists(reward_values("USD") | reward_values("JPY"), min_size=1, max_size=5))
def test_a_reward_values_text_and_unit_are_what_the_value_gives_remembered_or_not(
    values: list[rk.RewardValue],
) -> None:
    for value in [*values, *values]:
        assert _sqlformat.reward_value_text(value) == codec.dumps(value)
        assert _sqlformat.reward_value_unit(value) == value.unit
        assert _sqlformat.reward_value_exponent(value) == value.unit.exponent


@pytest.mark.parametrize(
    ("remembered", "fresh"),
    [
        (_sqlformat.reward_value_text, codec.dumps),
        (_sqlformat.reward_value_unit, lambda value: value.unit),
        (_sqlformat.reward_value_exponent, lambda value: value.unit.exponent),
    ],
    ids=["text", "unit", "exponent"],
)
def test_a_reward_values_text_and_unit_are_never_those_of_a_value_that_had_its_id(
    remembered: Any, fresh: Any
) -> None:
    """Each is remembered by the value object (kept alive with it), so a new value never
    finds what an earlier one that had its id gave."""
    seen: set[int] = set()
    reused = 0
    for n in range(1, 3 * _sqlformat._VALUES_KEPT):
        value = rk.Badge(f"badge-{n}") if n % 2 else rk.Cash(rk.Money(n, "JPY"))
        reused += id(value) in seen
        seen.add(id(value))
        assert remembered(value) == fresh(value)
        del value
        gc.collect(0)
    assert reused > 0


@given(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3))
def test_a_touchs_data_is_written_as_the_codec_writes_it_empty_or_not(
    data: dict[str, str],
) -> None:
    touch = rk.TouchRecord(P, "t-1", "click", T0, "e-1", data=data)
    assert sqlite_adapter._touch_row(touch)[-1] == codec.dumps(dict(touch.data))
