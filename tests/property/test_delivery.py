"""Delivery is at least once: a flaky notifier, retries with backoff, dead letters and two
dispatchers at once never lose a notification, and a receiver that deduplicates by id
applies each exactly once."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing.strategies import Scenario, event_streams, retry_schedules


@attrs.define
class Receiver:
    """The host's side: applies each notification once, whatever arrives twice."""

    applied: dict[str, rk.Notification] = attrs.Factory(dict)
    applications: dict[str, int] = attrs.Factory(lambda: defaultdict(int))
    sends: dict[str, list[datetime]] = attrs.Factory(lambda: defaultdict(list))

    def receive(self, note: rk.Notification, at: datetime) -> None:
        self.sends[note.notification_id].append(at)
        if note.notification_id in self.applied:
            return  # deduplicated by id
        self.applied[note.notification_id] = note
        self.applications[note.notification_id] += 1


@attrs.define
class FlakyNotifier:
    """Fails ``fail_percent`` % of sends, drawn from a seeded generator; a failed send may
    still have reached the receiver (a timeout after the receiver got the message)."""

    receiver: Receiver
    rng: random.Random
    clock: rk.ManualClock
    fail_percent: int
    attempts: dict[str, list[datetime]] = attrs.Factory(lambda: defaultdict(list))

    def send(self, note: rk.Notification) -> None:
        self.attempts[note.notification_id].append(self.clock.now())
        if self.rng.randrange(100) < self.fail_percent:
            if self.rng.randrange(4) == 0:
                self.receiver.receive(note, self.clock.now())  # lost answer
            raise ConnectionError("endpoint unavailable")
        self.receiver.receive(note, self.clock.now())


schedules = retry_schedules(max_attempts=5)


def _played(scenario: Scenario) -> rk.Engine:
    engine = scenario.new_engine()
    scenario.play(engine)
    return engine


def _statuses(store: rk.Store) -> dict[str, rk.OutboxStatus]:
    return dict(store.dump()["outbox_status"])


@settings(max_examples=25)
@given(
    event_streams(),
    schedules,
    st.integers(0, 2**32 - 1),
    st.integers(0, 90),
    st.integers(1, 40),
)
def test_a_flaky_notifier_loses_nothing_and_a_deduplicating_receiver_applies_each_once(
    scenario: Scenario,
    schedule: rk.RetrySchedule,
    seed: int,
    fail_percent: int,
    rounds: int,
) -> None:
    """Over many dispatch rounds with a moving clock, no notification is sent before its
    retry is due; after the notifier recovers and the dead letters are retried, every
    notification was delivered, each is applied exactly once, and nothing is left."""
    store = _played(scenario).store
    clock = rk.ManualClock(scenario.start)
    receiver = Receiver()
    rng = random.Random(seed)
    notifier = FlakyNotifier(receiver, rng, clock, fail_percent)
    engine = rk.Engine(scenario.program, store, notifier=notifier, clock=clock, retry=schedule)
    total = len(store.dump()["outbox"])

    for _ in range(rounds):
        clock.advance(timedelta(seconds=rng.randrange(0, 200)))
        result = engine.dispatch(limit=rng.randrange(1, 8))
        assert result.delivered + result.failed <= total
        assert result.dead <= result.failed

    # Sends of each notification kept to the schedule: never before the retry was due.
    for nid, times in receiver.sends.items():
        status = _statuses(store)[nid]
        assert len(times) <= status.attempts
    dead = engine.dead_letters(limit=total + 1)
    for letter in dead:
        assert letter.attempts == schedule.max_attempts
        assert letter.last_error is not None
        assert "endpoint unavailable" in letter.last_error

    # Recovery: the endpoint comes back, the operator retries the dead letters.
    notifier.fail_percent = 0
    assert engine.retry_dead() == len(dead)
    for _ in range(schedule.max_attempts + 1):
        clock.advance(schedule.max_delay)
        engine.dispatch()

    stored = {n.notification_id: n for n in store.dump()["outbox"]}
    assert set(receiver.applied) == set(stored), "a notification was lost"
    assert all(count == 1 for count in receiver.applications.values())
    for nid, note in receiver.applied.items():
        assert note == stored[nid]
        assert dict(note.data) == dict(stored[nid].data)
    statuses = _statuses(store)
    assert all(s.delivered_at is not None and s.dead_at is None for s in statuses.values())
    assert engine.dead_letters() == []
    with store.unit_of_work() as uow:
        assert uow.outbox.pending(10) == []


@settings(max_examples=20)
@given(event_streams(), st.integers(0, 2**32 - 1), st.integers(0, 60), st.data())
def test_retries_are_sent_no_earlier_than_the_schedule_says(
    scenario: Scenario, seed: int, fail_percent: int, data: Any
) -> None:
    """Between two sends of a notification lies at least the schedule's delay for the
    attempts made so far."""
    schedule = data.draw(schedules, label="schedule")
    store = _played(scenario).store
    clock = rk.ManualClock(scenario.start)
    receiver = Receiver()
    rng = random.Random(seed)
    notifier = FlakyNotifier(receiver, rng, clock, fail_percent)
    engine = rk.Engine(scenario.program, store, notifier=notifier, clock=clock, retry=schedule)
    for _ in range(30):
        clock.advance(timedelta(seconds=rng.randrange(0, 150)))
        engine.dispatch(limit=rng.randrange(1, 6))
    for nid, times in notifier.attempts.items():
        for n, (earlier, later) in enumerate(itertools.pairwise(times), start=1):
            assert later - earlier >= schedule.delay(n, nid), (nid, n, times)
        assert len(times) <= schedule.max_attempts


class Racer:
    """Notifier of dispatcher A: before its ``at``-th send it lets dispatcher B run a whole
    dispatch, as a second worker would between A's read and A's marks."""

    def __init__(self, receiver: Receiver, clock: rk.ManualClock, at: int, fail: set[int]):
        self.receiver, self.clock, self.at, self.fail = receiver, clock, at, fail
        self.calls = 0
        self.other: rk.Engine | None = None

    def send(self, note: rk.Notification) -> None:
        self.calls += 1
        if self.calls == self.at and self.other is not None:
            self.other.dispatch()
        if self.calls in self.fail:
            raise TimeoutError("A's endpoint timed out")
        self.receiver.receive(note, self.clock.now())


class Healthy:
    def __init__(self, receiver: Receiver, clock: rk.ManualClock) -> None:
        self.receiver, self.clock = receiver, clock

    def send(self, note: rk.Notification) -> None:
        self.receiver.receive(note, self.clock.now())


@settings(max_examples=40)
@given(
    event_streams(min_participants=3),
    st.sampled_from(["memory", "sqlite"]),
    st.integers(1, 3),
    st.sets(st.integers(1, 8), max_size=6).map(lambda late: late | {0}),
    st.integers(1, 2),
)
def test_two_dispatchers_at_once_may_repeat_a_delivery_but_never_lose_one(
    scenario: Scenario, kind: str, race_at: int, late: set[int], max_attempts: int
) -> None:
    """Dispatcher B runs while dispatcher A is half-way through the same due list: some
    notifications are sent twice, a late failure of A never undoes B's delivery (nor makes
    it a dead letter), and every notification ends delivered and applied once."""
    store: rk.Store = rk.InMemoryStore() if kind == "memory" else rk.SQLiteStore(":memory:")
    scenario.play(scenario.new_engine(store))
    clock = rk.ManualClock(scenario.start)
    receiver = Receiver()
    schedule = rk.RetrySchedule(max_attempts=max_attempts)
    # A fails only sends that B has already delivered (those at or after the race).
    racer = Racer(receiver, clock, race_at, {race_at + i for i in late})
    a = rk.Engine(scenario.program, store, notifier=racer, clock=clock, retry=schedule)
    b = rk.Engine(
        scenario.program, store, notifier=Healthy(receiver, clock), clock=clock, retry=schedule
    )
    racer.other = b
    a.dispatch()
    racer.other = None

    statuses = _statuses(store)
    stored = {n.notification_id for n in store.dump()["outbox"]}
    assert set(receiver.applied) == stored
    assert all(s.delivered_at is not None for s in statuses.values()), statuses
    assert all(s.dead_at is None for s in statuses.values())
    assert a.dead_letters() == []
    assert all(count == 1 for count in receiver.applications.values())
