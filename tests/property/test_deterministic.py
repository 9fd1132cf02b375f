"""Invariant 2: the same events give the same records, ids included."""

from __future__ import annotations

from hypothesis import given

from referralkit.testing import (
    Settle,
    check_all,
    copy_codes,
    ledger_snapshot,
    replay,
)
from referralkit.testing.strategies import event_streams


@given(event_streams())
def test_replaying_the_event_log_into_an_empty_store_gives_an_identical_ledger(scenario):
    """Replaying the accepted events (and settlements) into an empty store holding the same
    program and codes gives the same ledger, ids included, and the same outcomes."""
    engine = scenario.new_engine()
    playback = scenario.play(engine)
    twin = scenario.new_engine()
    copy_codes(engine.store, twin.store)
    outcomes = replay(twin, playback.log)
    original, replayed = ledger_snapshot(engine.store), ledger_snapshot(twin.store)
    assert replayed == original, "\n".join(replayed.differences(original))
    assert twin.store.dump() == engine.store.dump()
    accepted = [r.outcome for r in playback.results if r.accepted]
    assert [
        o for o, e in zip(outcomes, playback.log, strict=True) if not isinstance(e, Settle)
    ] == (accepted)
    check_all(twin.store, twin)


@given(event_streams())
def test_the_same_deliveries_give_the_same_store_in_every_engine(scenario):
    """Two engines over fresh stores that receive the same deliveries, duplicates, retries
    and early refunds included, end with identical stores."""
    first = scenario.new_engine()
    first_playback = scenario.play(first)
    second = scenario.new_engine()
    copy_codes(first.store, second.store)
    second_playback = scenario.play(second)
    assert second_playback.codes == first_playback.codes
    assert [r.outcome for r in second_playback.results] == [
        r.outcome for r in first_playback.results
    ]
    assert second.store.dump() == first.store.dump()
