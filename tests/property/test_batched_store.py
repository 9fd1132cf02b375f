"""Batches on the SQL stores (one transaction, rows prefetched and writes buffered for the
whole batch) give what one event at a time on the in-memory store gives."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing import Playback, copy_codes
from referralkit.testing.strategies import Scenario, event_streams


def assert_batched_equals_single(scenario: Scenario, store: rk.Store, batch_size: int) -> None:
    """Every delivery (duplicates, retries and refunds that arrive too early included) in
    batches of ``batch_size`` between settlements on ``store``: the same result per step,
    and the same records, ids included, as one delivery at a time in memory."""
    single = scenario.new_engine()
    expected = scenario.play(single)
    batched = scenario.new_engine(store)
    copy_codes(single.store, store)
    got = scenario.play(batched, batch_size=batch_size)
    assert _results(got) == _results(expected)
    assert store.dump() == single.store.dump()


def _results(playback: Playback) -> list[object]:
    return [r.approved if r.event is None else r.outcome or type(r.error) for r in playback.results]


@given(event_streams(), st.integers(min_value=2, max_value=12))
def test_batched_deliveries_on_sqlite_equal_single_deliveries_in_memory(scenario, batch_size):
    assert_batched_equals_single(scenario, rk.SQLiteStore(":memory:"), batch_size)


@given(event_streams(), st.integers(min_value=2, max_value=12))
def test_batched_deliveries_on_sqlite_without_json_each_equal_single_deliveries_in_memory(
    scenario, batch_size
):
    """The same on a SQLite without ``json_each``, where a prefetch binds its ids one by
    one."""
    store = rk.SQLiteStore(":memory:")
    store._json_ids = False
    assert_batched_equals_single(scenario, store, batch_size)
