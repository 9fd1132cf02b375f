"""An instant is an instant: events whose times are given in other zones give the same ledger."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import attrs
from hypothesis import given
from hypothesis import strategies as st

from referralkit import Decision, Event, Referral
from referralkit.testing import LedgerSnapshot, Settle, copy_codes, ledger_snapshot, replay
from referralkit.testing.strategies import _zones, catalogue_programs, event_streams, programs

ZONES = st.sampled_from(_zones())
# Scenarios starting a few weeks before a change of daylight saving time (Europe and the
# United States, spring and autumn), so that holds, expiries and durations cross one.
STARTS = st.sampled_from(
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 20, tzinfo=UTC),
        datetime(2026, 10, 10, tzinfo=UTC),
    ]
)
PROGRAMS = STARTS.flatmap(
    lambda start: st.one_of(programs(effective_at=start), catalogue_programs(effective_at=start))
)


def _utc(value: str) -> str:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    return value if when.tzinfo is None else when.astimezone(UTC).isoformat()


def _in_utc(snapshot: LedgerSnapshot) -> LedgerSnapshot:
    """The snapshot with the times that explanations quote (as the event gave them, with
    its offset) in UTC."""

    def decision(d: Decision) -> Decision:
        return attrs.evolve(d, params=tuple((k, _utc(v)) for k, v in d.params))

    def referral(r: Referral) -> Referral:
        return attrs.evolve(r, explanation=tuple(decision(d) for d in r.explanation))

    return attrs.evolve(snapshot, referrals=tuple(referral(r) for r in snapshot.referrals))


@given(
    event_streams(PROGRAMS),
    st.data(),
)
def test_the_same_instants_in_other_zones_give_the_same_ledger(scenario, data):
    """Replaying the accepted events and settlements with every time re-expressed in a
    random zone (UTC, fixed offsets, zones with daylight saving time), the same instants,
    gives the same referrals, rewards, entries and notifications (their data included:
    ``payable_on`` and the like) and the same grants as the times as they were given."""
    engine = scenario.new_engine()
    playback = scenario.play(engine)

    def moved(item: Event | Settle, zone: tzinfo) -> Event | Settle:
        return attrs.evolve(item, at=item.at.astimezone(zone))

    log = [moved(item, data.draw(ZONES)) for item in playback.log]
    as_given, rezoned = scenario.new_engine(), scenario.new_engine()
    for twin in (as_given, rezoned):
        copy_codes(engine.store, twin.store)
    first = replay(as_given, playback.log)
    second = replay(rezoned, log)
    original = _in_utc(ledger_snapshot(as_given.store))
    moved_snapshot = _in_utc(ledger_snapshot(rezoned.store))
    assert moved_snapshot == original, "\n".join(moved_snapshot.differences(original))
    assert [getattr(o, "grants", o) for o in second] == [getattr(o, "grants", o) for o in first]
