"""Invariant 1: handling an event again, or a business id again, changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import given

import referralkit as rk
from referralkit.testing import (
    Delivery,
    Settle,
    check_playback,
    ledger_snapshot,
)
from referralkit.testing.strategies import event_streams

_REPEATED = {
    "signup.repeated",
    "referral.already_referred",
    "order.repeated",
    "refund.repeated",
    "chargeback.repeated",
}


def _without_event_log(dump: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    return {table: rows for table, rows in dump.items() if table != "events"}


@given(event_streams())
def test_duplicates_return_the_stored_outcome_and_retries_earn_nothing(scenario):
    """A re-delivered event id returns the stored outcome flagged duplicate and writes
    nothing; a retry under a new event id only logs the event."""
    engine = scenario.new_engine()
    store = engine.store
    codes = scenario.issue_codes(engine)
    first: dict[str, rk.Outcome] = {}
    for step in scenario.steps:
        if isinstance(step, Settle):
            engine.settle(step.at)
            continue
        event = step.resolve(codes)
        before = store.dump()
        if step.delivery is Delivery.EARLY:
            with pytest.raises(rk.UnknownOrderError):
                engine.handle(event)
            assert store.dump() == before
            continue
        outcome = engine.handle(event)
        after = store.dump()
        if step.delivery is Delivery.DUPLICATE:
            assert outcome == attrs.evolve(first[event.event_id], duplicate=True)
            assert after == before
        elif step.delivery is Delivery.RETRY:
            assert not outcome.duplicate
            assert (outcome.grants, outcome.reward_ids, outcome.reversals) == ((), (), ())
            assert set(outcome.reasons()) & _REPEATED, outcome.explain()
            assert _without_event_log(after) == _without_event_log(before)
            assert len(after["events"]) == len(before["events"]) + 1
        else:
            assert not outcome.duplicate
            first[event.event_id] = outcome


@given(event_streams())
def test_every_business_id_redelivered_under_a_fresh_event_id_changes_no_ledger(scenario):
    """Every sign-up, order, refund and chargeback delivered again under a new event id
    (same fields) earns and reverses nothing and leaves every counter as it was."""
    engine = scenario.new_engine()
    playback = scenario.play(engine)
    check_playback(playback)
    store = engine.store
    before = _without_event_log(store.dump())
    snapshot = ledger_snapshot(store)
    for n, event in enumerate(playback.log):
        if isinstance(event, Settle | rk.Click):
            continue
        outcome = engine.handle(attrs.evolve(event, event_id=f"again-{n}"))
        assert (outcome.grants, outcome.reversals) == ((), ())
        assert set(outcome.reasons()) & _REPEATED, outcome.explain()
    assert ledger_snapshot(store) == snapshot
    assert _without_event_log(store.dump()) == before


def test_a_repeated_order_id_under_a_fresh_event_id_pays_once():
    """The same order delivered under two event ids earns its rewards once."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    program = rk.Program(
        id="p",
        effective_at=start,
        currency="USD",
        policies=[rk.DoubleSided(rk.Cash(rk.Money(10, "USD")), rk.Credit(rk.Money(5, "USD")))],
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(start))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s1", participant_id="bob", code=code, at=start))
    order = {"participant_id": "bob", "order_id": "o1", "amount": rk.Money(50, "USD"), "at": start}
    first = engine.handle(rk.Purchase(event_id="p1", **order))
    again = engine.handle(rk.Purchase(event_id="p1-retry", **order))
    assert len(first.grants) == 2
    assert again.grants == ()
    assert again.reasons() == ("order.repeated",)
    assert len(engine.rewards_for("alice")) == 1
    assert len(engine.rewards_for("bob")) == 1
