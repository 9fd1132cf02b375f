"""Dispatching the outbox: the retry schedule, due times, dead letters and their retry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import referralkit as rk

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def make_engine(notifier: rk.Notifier | None, **kwargs: Any) -> rk.Engine:
    program = rk.Program(
        id="friends",
        effective_at=T0 - timedelta(days=1),
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(rk.Money(20, "USD")))],
    )
    kwargs.setdefault("clock", rk.ManualClock(T0))
    return rk.Engine(program, kwargs.pop("store", rk.InMemoryStore()), notifier=notifier, **kwargs)


def signup(engine: rk.Engine, who: str) -> None:
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id=f"signup-{who}", participant_id=who, code=code, at=T0))


class Flaky:
    """A notifier that fails while ``down`` is true, and records what it delivered."""

    def __init__(self, down: bool = True) -> None:
        self.down = down
        self.calls: list[str] = []
        self.delivered: list[str] = []

    def send(self, note: rk.Notification) -> None:
        self.calls.append(note.notification_id)
        if self.down:
            raise ConnectionError(f"cannot reach the mail server for {note.recipient_id}")
        self.delivered.append(note.notification_id)


def status(engine: rk.Engine) -> rk.OutboxStatus:
    (only,) = [s for _, s in engine.store.dump()["outbox_status"]]
    return only


# -- the schedule --------------------------------------------------------------------------


def test_the_default_schedule_doubles_from_30_seconds_and_gives_up_after_8_attempts() -> None:
    schedule = rk.RetrySchedule()
    assert [schedule.delay(n) for n in range(1, 8)] == [
        s * S for s in (30, 60, 120, 240, 480, 960, 1920)
    ]
    assert schedule.next_attempt_at(T0, 7) == T0 + 1920 * S
    assert schedule.next_attempt_at(T0, 8) is None
    assert schedule.next_attempt_at(T0, 9) is None


def test_delays_are_capped_and_exact_for_fractional_factors() -> None:
    capped = rk.RetrySchedule(first_delay=10 * S, factor=3, max_delay=timedelta(minutes=1))
    assert [capped.delay(n) for n in range(1, 6)] == [10 * S, 30 * S, 60 * S, 60 * S, 60 * S]
    assert capped.delay(10**6) == timedelta(minutes=1)  # cheap: stops growing at the cap
    half = rk.RetrySchedule(factor=Decimal("1.5"), max_delay=timedelta(days=1))
    assert [half.delay(n) for n in (1, 2, 3)] == [30 * S, 45 * S, timedelta(seconds=67.5)]
    constant = rk.RetrySchedule(factor=1, max_attempts=3)
    assert {constant.delay(n) for n in (1, 2, 3)} == {30 * S}
    assert rk.RetrySchedule(factor="2.5").factor == Decimal("2.5")


def test_jitter_is_derived_from_the_id_so_every_process_agrees() -> None:
    schedule = rk.RetrySchedule(jitter_percent=10)
    delays = {schedule.delay(2, f"ntf-{i}") for i in range(50)}
    assert all(60 * S <= d <= 66 * S for d in delays)
    assert len(delays) > 40  # spread out, not all equal
    assert schedule.delay(2, "ntf-7") == rk.RetrySchedule(jitter_percent=10).delay(2, "ntf-7")
    assert rk.RetrySchedule().delay(2, "ntf-7") == 60 * S  # no jitter by default


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"max_attempts": -3}, "retry.max_attempts"),
        ({"max_attempts": True}, "retry.max_attempts"),
        ({"max_attempts": 2.0}, "retry.max_attempts"),
        ({"first_delay": timedelta(0)}, "retry.first_delay"),
        ({"first_delay": -S}, "retry.first_delay"),
        ({"first_delay": 30}, "retry.first_delay"),
        ({"max_delay": timedelta(seconds=-1)}, "retry.max_delay"),
        ({"max_delay": 10 * S}, "retry.max_delay"),  # below first_delay
        ({"factor": Decimal("0.5")}, "retry.factor"),
        ({"factor": 0}, "retry.factor"),
        ({"factor": 2.0}, "retry.factor"),
        ({"factor": "fast"}, "retry.factor"),
        ({"factor": Decimal("Infinity")}, "retry.factor"),
        ({"factor": Decimal("NaN")}, "retry.factor"),
        ({"jitter_percent": -1}, "retry.jitter_percent"),
        ({"jitter_percent": 101}, "retry.jitter_percent"),
        ({"jitter_percent": 0.1}, "retry.jitter_percent"),
    ],
)
def test_a_bad_schedule_value_names_its_field_and_value(changes: dict[str, Any], field: str):
    with pytest.raises(rk.InvalidInputError) as caught:
        rk.RetrySchedule(**changes)
    assert caught.value.field == field
    (value,) = changes.values()
    assert repr(value) in str(caught.value)


def test_a_delay_for_attempt_zero_or_a_non_schedule_retry_is_refused() -> None:
    with pytest.raises(rk.InvalidInputError, match=r"attempt=0"):
        rk.RetrySchedule().delay(0)
    with pytest.raises(rk.InvalidInputError, match=r"retry='often'"):
        make_engine(None, retry="often")


# -- dispatch at due times -----------------------------------------------------------------


def test_a_failed_notification_is_sent_again_exactly_when_due() -> None:
    notifier = Flaky()
    engine = make_engine(notifier, retry=rk.RetrySchedule(max_attempts=5))
    signup(engine, "bob")

    assert engine.dispatch() == rk.DispatchResult(delivered=0, failed=1)
    assert status(engine).next_attempt_at == T0 + 30 * S
    assert engine.dispatch(now=T0 + 29 * S) == rk.DispatchResult(0, 0)
    assert engine.dispatch(now=T0 + 30 * S) == rk.DispatchResult(0, 1)
    after_two = status(engine)
    assert (after_two.attempts, after_two.next_attempt_at) == (2, T0 + 90 * S)
    assert "cannot reach the mail server for alice" in (after_two.last_error or "")
    notifier.down = False
    assert engine.dispatch(now=T0 + 89 * S) == rk.DispatchResult(0, 0)
    assert engine.dispatch(now=T0 + 90 * S) == rk.DispatchResult(1, 0)
    done = status(engine)
    assert (done.delivered_at, done.attempts, done.next_attempt_at) == (T0 + 90 * S, 3, None)
    assert len(notifier.calls) == 3
    assert engine.dispatch(now=T0 + timedelta(days=9)) == rk.DispatchResult(0, 0)


def test_retries_due_come_before_fresh_notifications_within_the_limit() -> None:
    notifier = Flaky()
    engine = make_engine(notifier)
    signup(engine, "bob")
    engine.dispatch()
    signup(engine, "carol")
    notifier.down = False

    assert engine.dispatch(limit=1, now=T0 + 30 * S) == rk.DispatchResult(1, 0)
    assert notifier.delivered == [notifier.calls[0]]  # bob's retry first
    assert engine.dispatch(limit=1, now=T0 + 30 * S) == rk.DispatchResult(1, 0)
    assert len(set(notifier.delivered)) == 2


def test_after_the_last_attempt_a_notification_is_a_dead_letter() -> None:
    notifier = Flaky()
    schedule = rk.RetrySchedule(max_attempts=3, first_delay=10 * S)
    engine = make_engine(notifier, retry=schedule)
    signup(engine, "bob")

    results = [engine.dispatch(now=T0 + s * S) for s in (0, 10, 30)]
    assert results == [rk.DispatchResult(0, 1), rk.DispatchResult(0, 1), rk.DispatchResult(0, 1, 1)]
    (letter,) = engine.dead_letters()
    assert letter.notification.kind == "referral_created"
    assert (letter.attempts, letter.dead_at) == (3, T0 + 30 * S)
    assert "ConnectionError" in (letter.last_error or "")
    assert status(engine).dead_at == T0 + 30 * S
    assert engine.dispatch(now=T0 + timedelta(days=30)) == rk.DispatchResult(0, 0)
    assert len(notifier.calls) == 3
    with engine.store.unit_of_work() as uow:
        assert uow.outbox.pending(10) == []


def test_retry_dead_puts_dead_letters_back_with_fresh_attempts() -> None:
    notifier = Flaky()
    engine = make_engine(notifier, retry=rk.RetrySchedule(max_attempts=1))
    for who in ("bob", "carol", "dave"):
        signup(engine, who)
    assert engine.dispatch() == rk.DispatchResult(0, 3, 3)
    letters = engine.dead_letters()
    assert len(letters) == 3
    assert [d.notification.notification_id for d in engine.dead_letters(limit=2)] == [
        d.notification.notification_id for d in letters[:2]
    ]
    first = letters[0].notification.notification_id

    assert engine.retry_dead([first, first, "ntf_unknown"]) == 1
    assert engine.retry_dead([]) == 0
    assert len(engine.dead_letters()) == 2
    retried = [s for k, s in engine.store.dump()["outbox_status"] if k == first]
    assert retried == [rk.OutboxStatus(None, 0, letters[0].last_error)]
    notifier.down = False
    assert engine.dispatch() == rk.DispatchResult(1, 0)
    assert engine.retry_dead([first]) == 0  # delivered, not dead

    assert engine.retry_dead() == 2
    assert engine.dead_letters() == []
    assert engine.dispatch() == rk.DispatchResult(2, 0)
    assert sorted(notifier.delivered) == sorted(d.notification.notification_id for d in letters)


def test_retry_dead_without_ids_revives_more_than_one_batch() -> None:
    notifier = Flaky()
    engine = make_engine(notifier, retry=rk.RetrySchedule(max_attempts=1))
    with engine.store.unit_of_work() as uow:
        uow.outbox.add(
            [rk.Notification(f"ntf-{i:04}", "friends", "x", "alice", T0, {}) for i in range(1203)]
        )
        uow.commit()
    assert engine.dispatch(limit=2000).dead == 1203
    assert engine.retry_dead() == 1203
    assert engine.dead_letters(limit=5000) == []


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda e: e.dispatch(limit=-1), "limit"),
        (lambda e: e.dispatch(limit=True), "limit"),
        (lambda e: e.dispatch(limit="10"), "limit"),
        (lambda e: e.dispatch(now=datetime(2026, 2, 3)), "now"),
        (lambda e: e.dead_letters(limit=-5), "limit"),
        (lambda e: e.retry_dead("ntf_1"), "notification_ids"),
        (lambda e: e.retry_dead([7]), "notification_ids"),
    ],
)
def test_bad_delivery_arguments_raise_and_write_nothing(call: Any, field: str) -> None:
    engine = make_engine(Flaky(down=False))
    signup(engine, "bob")
    before = engine.store.dump()
    with pytest.raises(rk.InvalidInputError) as caught:
        call(engine)
    assert caught.value.field == field
    assert engine.store.dump() == before


def test_an_interrupted_dispatch_keeps_the_attempts_made_before_it() -> None:
    """A notifier that raises something other than an Exception (a KeyboardInterrupt) stops
    the dispatch; the deliveries already made are recorded, the rest stay due."""
    sent: list[str] = []

    def send(note: rk.Notification) -> None:
        if len(sent) == 2:
            raise KeyboardInterrupt
        sent.append(note.notification_id)

    engine = make_engine(rk.CallbackNotifier(send))
    for who in ("bob", "carol", "dave"):
        signup(engine, who)
    with pytest.raises(KeyboardInterrupt):
        engine.dispatch()
    statuses = dict(engine.store.dump()["outbox_status"])
    assert sorted(k for k, s in statuses.items() if s.delivered_at is not None) == sorted(sent)
    with engine.store.unit_of_work() as uow:
        assert len(uow.outbox.due(T0, 10)) == 1


class _ConflictingOutbox:
    def __init__(self, inner: Any, nid: str) -> None:
        self._inner, self._nid = inner, nid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def mark_delivered(self, notification_id: str, at: datetime) -> None:
        if notification_id == self._nid:
            raise rk.ConcurrencyError("another dispatcher updated this row")
        self._inner.mark_delivered(notification_id, at)


class _ConflictingUnit:
    def __init__(self, inner: Any, nid: str) -> None:
        self._inner, self._nid = inner, nid

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def outbox(self) -> _ConflictingOutbox:
        return _ConflictingOutbox(self._inner.outbox, self._nid)

    def __enter__(self) -> _ConflictingUnit:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)


class _ConflictingStore:
    """An InMemoryStore on which marking one notification delivered always conflicts."""

    def __init__(self, nid: str) -> None:
        self.inner, self.nid = rk.InMemoryStore(), nid

    def unit_of_work(self) -> _ConflictingUnit:
        return _ConflictingUnit(self.inner.unit_of_work(), self.nid)

    def dump(self) -> Any:
        return self.inner.dump()


def test_a_mark_that_keeps_conflicting_leaves_only_that_notification_due() -> None:
    """When recording a batch of attempts keeps conflicting with another dispatcher, the
    attempts are recorded one by one; the one still in conflict stays due (it is sent again
    later) and dispatch does not raise."""
    probe = make_engine(None)
    signup(probe, "carol")
    (victim,) = [n.notification_id for n in probe.store.dump()["outbox"]]
    store = _ConflictingStore(victim)
    notifier = Flaky(down=False)
    engine = make_engine(notifier, store=store)
    for who in ("bob", "carol", "dave"):
        signup(engine, who)

    assert engine.dispatch() == rk.DispatchResult(delivered=3, failed=0)
    statuses = dict(store.dump()["outbox_status"])
    assert statuses[victim].delivered_at is None
    assert sum(s.delivered_at is not None for s in statuses.values()) == 2
    with store.inner.unit_of_work() as uow:
        assert [n.notification_id for n, _ in uow.outbox.due(T0, 9)] == [victim]
