"""Invariant 3: an event has all of its effects or none, notifications included."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing import Settle, check_all, copy_codes
from referralkit.testing.strategies import Deliver, Scenario, event_streams

# The write methods of each repository, and the unit of work's commit.
WRITES = (
    "events.add",
    "participants.put",
    "participants.set_email",
    "referrals.add",
    "orders.add",
    "orders.add_refund",
    "orders.add_chargeback",
    "ledger.add_reward",
    "ledger.append",
    "counters.add",
    "outbox.add",
    "commit",
)
REPOSITORIES = (
    "events",
    "programs",
    "participants",
    "referrals",
    "orders",
    "ledger",
    "counters",
    "outbox",
    "touches",
)


class InjectedError(Exception):
    """The failure a Trap raises."""


@attrs.define
class Trap:
    """Raises ``error`` at the ``nth`` call of ``target`` (before or after the call)."""

    target: str | None = None
    nth: int = 1
    after: bool = False
    error: Exception = attrs.field(factory=lambda: InjectedError("injected"))
    sprung: bool = False

    def arm(self, target: str, nth: int, *, after: bool, error: Exception) -> None:
        self.target, self.nth, self.after, self.error, self.sprung = (
            target,
            nth,
            after,
            error,
            False,
        )

    def disarm(self) -> None:
        self.target = None

    def call(self, name: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if name != self.target:
            return method(*args, **kwargs)
        self.nth -= 1
        if self.nth:
            return method(*args, **kwargs)
        self.target, self.sprung = None, True
        if not self.after:
            raise self.error
        method(*args, **kwargs)
        raise self.error


class _Repository:
    def __init__(self, inner: Any, name: str, trap: Trap) -> None:
        self._inner, self._name, self._trap = inner, name, trap

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._inner, attr)
        name = f"{self._name}.{attr}"
        if name not in WRITES and name not in DELIVERY_WRITES:
            return value
        return lambda *args, **kwargs: self._trap.call(name, value, *args, **kwargs)


class _Unit:
    def __init__(self, inner: Any, trap: Trap) -> None:
        self._inner, self._trap = inner, trap
        for name in REPOSITORIES:
            setattr(self, name, _Repository(getattr(inner, name), name, trap))

    def __enter__(self) -> _Unit:
        self._inner.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._inner.__exit__(*exc)

    def commit(self) -> None:
        self._trap.call("commit", self._inner.commit)

    def rollback(self) -> None:
        self._inner.rollback()


class FaultyStore:
    """A store that fails where its Trap says, otherwise an InMemoryStore."""

    def __init__(self, trap: Trap) -> None:
        self.inner = rk.InMemoryStore()
        self.trap = trap

    def unit_of_work(self) -> _Unit:
        return _Unit(self.inner.unit_of_work(), self.trap)

    def dump(self) -> Any:
        return self.inner.dump()


def _other_currency(currency: str) -> str:
    return "EUR" if currency != "EUR" else "USD"


def _bad_events(scenario: Scenario, dump: Any, at: datetime, n: int) -> dict[str, Any]:
    """Events the engine must reject in the store's current state, with the error each
    raises."""
    currency = scenario.program.currency
    cent = rk.Money.from_minor(1, currency)
    bad: dict[str, Any] = {
        "refund of an unknown order": (
            rk.Refund(event_id=f"x{n}", refund_id=f"xr{n}", order_id="nope", amount=cent, at=at),
            rk.UnknownOrderError,
        ),
        "chargeback of an unknown order": (
            rk.Chargeback(event_id=f"x{n}", chargeback_id=f"xc{n}", order_id="nope", at=at),
            rk.UnknownOrderError,
        ),
        "purchase in another currency": (
            rk.Purchase(
                event_id=f"x{n}",
                participant_id="someone",
                order_id=f"xo{n}",
                amount=rk.Money(1, _other_currency(currency)),
                at=at,
            ),
            rk.CurrencyMismatchError,
        ),
    }
    if dump["orders"]:
        order = dump["orders"][n % len(dump["orders"])]
        bad["refund above the order"] = (
            rk.Refund(
                event_id=f"x{n}",
                refund_id=f"xr{n}",
                order_id=order.order_id,
                amount=rk.Money.from_minor(order.amount.to_minor() + 1, currency),
                at=at,
            ),
            rk.InvalidEventError,
        )
        bad["refund in another currency"] = (
            rk.Refund(
                event_id=f"x{n}",
                refund_id=f"xr{n}",
                order_id=order.order_id,
                amount=rk.Money(1, _other_currency(currency)),
                at=at,
            ),
            rk.CurrencyMismatchError,
        )
        bad["order id reused with another amount"] = (
            rk.Purchase(
                event_id=f"x{n}",
                participant_id=order.participant_id,
                order_id=order.order_id,
                amount=order.amount + cent,
                at=at,
            ),
            rk.EventConflictError,
        )
    if dump["refunds"]:
        refund = dump["refunds"][n % len(dump["refunds"])]
        bad["refund id reused with another amount"] = (
            attrs.evolve(refund_event(refund), event_id=f"x{n}", amount=refund.amount + cent),
            rk.EventConflictError,
        )
    if dump["events"]:
        record = dump["events"][n % len(dump["events"])]
        bad["event id reused with another payload"] = (
            attrs.evolve(record.event, at=record.event.at + timedelta(seconds=1)),
            rk.EventConflictError,
        )
    return bad


def refund_event(record: rk.RefundRecord) -> rk.Refund:
    return rk.Refund(
        event_id=record.event_id,
        refund_id=record.refund_id,
        order_id=record.order_id,
        amount=record.amount,
        at=record.at,
    )


@given(event_streams(), st.data())
def test_an_event_that_raises_leaves_the_store_unchanged(scenario, data):
    """A refund of an unknown order, a refund above the order, a currency mismatch or a
    reused id raises its specific error and writes nothing, at any point of a stream."""
    engine = scenario.new_engine()
    store = engine.store
    codes = scenario.issue_codes(engine)
    for n, step in enumerate(scenario.steps):
        if data.draw(st.booleans(), label="inject a bad event first"):
            dump = store.dump()
            at = step.at if isinstance(step, Settle) else step.event.at
            bad = _bad_events(scenario, dump, at, n)
            what = data.draw(st.sampled_from(sorted(bad)), label="bad event")
            event, error = bad[what]
            with pytest.raises(error):
                engine.handle(event)
            assert store.dump() == dump, what
        if isinstance(step, Settle):
            engine.settle(step.at)
            continue
        before = store.dump()
        try:
            engine.handle(step.resolve(codes))
        except rk.RetryLaterError:
            assert store.dump() == before
    check_all(store, engine)


def _run(engine: rk.Engine, step: Settle | Deliver, codes: dict[str, str]) -> None:
    if isinstance(step, Settle):
        engine.settle(step.at)
        return
    with contextlib.suppress(rk.RetryLaterError):
        engine.handle(step.resolve(codes))


@given(event_streams(), st.data())
def test_a_failure_inside_a_unit_of_work_leaves_nothing_and_a_retry_completes_it(scenario, data):
    """A store failing at any write of an event or settlement (outbox included) leaves no
    trace; a conflict is retried by the engine; the final store equals a clean run."""
    clean = scenario.new_engine()
    scenario.play(clean)
    trap = Trap()
    store = FaultyStore(trap)
    engine = scenario.new_engine(store)
    copy_codes(clean.store, store)
    codes = scenario.issue_codes(engine)
    for step in scenario.steps:
        target = data.draw(st.sampled_from(WRITES), label="failing write")
        conflict = data.draw(st.integers(0, 3), label="conflict (retried)") == 3
        trap.arm(
            target,
            data.draw(st.integers(1, 3), label="at call #"),
            after=target != "commit" and data.draw(st.booleans(), label="after the write"),
            error=rk.ConcurrencyError("injected") if conflict else InjectedError("injected"),
        )
        before = store.dump()
        try:
            _run(engine, step, codes)
        except InjectedError:
            assert trap.sprung
            assert store.dump() == before, f"{target} failed and left records behind"
            trap.disarm()
            _run(engine, step, codes)
        trap.disarm()
    assert store.dump() == clean.store.dump()
    check_all(store, engine)


def test_a_failing_outbox_write_leaves_no_reward_and_no_notification():
    """When the outbox write fails, the purchase's rewards, order and counters are rolled
    back with it; handled again, everything is written once."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    program = rk.Program(
        id="p",
        effective_at=start,
        currency="USD",
        policies=[rk.DoubleSided(rk.Cash(rk.Money(10, "USD")), rk.Credit(rk.Money(5, "USD")))],
    )
    trap = Trap()
    store = FaultyStore(trap)
    engine = rk.Engine(program, store, clock=rk.ManualClock(start))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s1", participant_id="bob", code=code, at=start))
    purchase = rk.Purchase(
        event_id="p1", participant_id="bob", order_id="o1", amount=rk.Money(50, "USD"), at=start
    )
    before = store.dump()
    trap.arm("outbox.add", 1, after=True, error=InjectedError("outbox down"))
    with pytest.raises(InjectedError):
        engine.handle(purchase)
    assert store.dump() == before
    assert engine.outcome_of("p1") is None
    outcome = engine.handle(purchase)
    assert len(outcome.grants) == 2
    kinds = [n.kind for n in store.dump()["outbox"]]
    assert sorted(kinds) == ["referral_created", "reward_earned", "reward_earned"]


# -- delivery: the marks a dispatch writes are atomic too -----------------------------------
DELIVERY_WRITES = ("outbox.mark_delivered", "outbox.mark_failed", "outbox.mark_dead", "commit")


class _MarkRecorder:
    """Wraps a notifier: remembers the notification being delivered."""

    def __init__(self, fail: Callable[[], bool]) -> None:
        self.fail = fail
        self.current: str | None = None
        self.delivered: set[str] = set()

    def send(self, note: rk.Notification) -> None:
        self.current = note.notification_id
        if self.fail():
            raise ConnectionError("flaky")
        self.delivered.add(note.notification_id)


@settings(max_examples=40)
@given(event_streams(), st.data())
def test_a_failure_while_marking_a_delivery_loses_no_notification(scenario, data):
    """A store failing while a dispatch records an attempt (delivered, failed or dead, or
    its commit) leaves that notification's delivery state as it was, so a later dispatch
    sends it again; in the end every notification is delivered and every change still has
    its notification (check_all)."""
    trap = Trap()
    store = FaultyStore(trap)
    scenario.play(scenario.new_engine(store))
    notes = {n.notification_id for n in store.dump()["outbox"]}
    notifier = _MarkRecorder(lambda: data.draw(st.booleans(), label="send fails"))
    clock = rk.ManualClock(scenario.start)
    engine = rk.Engine(
        scenario.program,
        store,
        notifier=notifier,
        clock=clock,
        retry=rk.RetrySchedule(max_attempts=2, first_delay=timedelta(seconds=10)),
    )
    for _ in range(data.draw(st.integers(1, 4), label="rounds")):
        target = data.draw(st.sampled_from(DELIVERY_WRITES), label="failing write")
        trap.arm(
            target,
            data.draw(st.integers(1, 3), label="at call #"),
            after=target != "commit" and data.draw(st.booleans(), label="after the write"),
            error=InjectedError("injected"),
        )
        before = dict(store.dump()["outbox_status"])
        try:
            engine.dispatch()
        except InjectedError:
            assert trap.sprung
            nid = notifier.current
            assert nid is not None
            assert dict(store.dump()["outbox_status"])[nid] == before[nid], nid
        trap.disarm()
        clock.advance(timedelta(seconds=10))
    engine.retry_dead()
    notifier.fail = lambda: False
    engine.dispatch(now=clock.now() + timedelta(hours=1))
    statuses = dict(store.dump()["outbox_status"])
    assert notes <= notifier.delivered
    assert all(statuses[nid].delivered_at is not None for nid in notes)
    check_all(store, engine)
