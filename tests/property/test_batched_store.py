"""Batches on the SQLite store (one transaction, rows prefetched for the whole batch) give
what one event at a time on the in-memory store gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing import Settle, copy_codes
from referralkit.testing.strategies import event_streams


@given(event_streams(), st.integers(min_value=2, max_value=12))
def test_batched_deliveries_on_sqlite_equal_single_deliveries_in_memory(scenario, batch_size):
    """Every delivery (duplicates, retries and refunds that arrive too early included) in
    batches of ``batch_size`` between settlements: the same result per event, and the same
    records, ids included."""
    single = scenario.new_engine()
    playback = scenario.play(single)
    store = rk.SQLiteStore(":memory:")
    batched = scenario.new_engine(store)
    copy_codes(single.store, store)

    results: list[object] = []
    pending: list[rk.Event] = []

    def run_pending() -> None:
        for result in batched.handle_many(pending, batch_size=batch_size):
            results.append(result if isinstance(result, rk.Outcome) else type(result))
        pending.clear()

    for step in playback.results:
        if isinstance(step.step, Settle):
            run_pending()
            batched.settle(step.step.at)
        else:
            assert step.event is not None
            pending.append(step.event)
    run_pending()

    expected = [
        r.outcome if r.outcome is not None else type(r.error)
        for r in playback.results
        if not isinstance(r.step, Settle)
    ]
    assert results == expected
    assert store.dump() == single.store.dump()
