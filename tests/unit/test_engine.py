"""The engine: program versions, quotes, batches, codes, triggers and the outbox."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit.attribution import CROCKFORD

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
CASH = rk.Unit("cash", "USD")


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def program(**changes: Any) -> rk.Program:
    terms: dict[str, Any] = {
        "id": "friends",
        "effective_at": T0 - timedelta(days=1),
        "currency": "USD",
        "policies": [rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
        "hold": relativedelta(days=30),
    }
    terms.update(changes)
    return rk.Program(**terms)


V2_AT = T0 + timedelta(days=10)


def version_2() -> rk.Program:
    return program(
        version=2,
        effective_at=V2_AT,
        policies=[rk.DoubleSided(referrer=rk.Cash(usd(30)), referee=rk.Credit(usd(15)))],
    )


def make_engine(prog: rk.Program | None = None, **kwargs: Any) -> rk.Engine:
    kwargs.setdefault("clock", rk.ManualClock(T0))
    return rk.Engine(prog or program(), kwargs.pop("store", rk.InMemoryStore()), **kwargs)


def signup(engine: rk.Engine, who: str, at: datetime = T0, referrer: str = "alice") -> rk.Outcome:
    return engine.handle(
        rk.Signup(
            event_id=f"signup-{who}", participant_id=who, code=engine.issue_code(referrer), at=at
        )
    )


def purchase_event(who: str, order: str, amount: str = "80.00", at: datetime = T0) -> rk.Purchase:
    return rk.Purchase(
        event_id=f"purchase-{order}", participant_id=who, order_id=order, amount=usd(amount), at=at
    )


def buy(engine: rk.Engine, who: str, order: str, amount: str = "80.00", at: datetime = T0) -> Any:
    return engine.handle(purchase_event(who, order, amount, at))


def referrer_cash(outcome: rk.Outcome) -> list[rk.RewardValue]:
    return [g.value for g in outcome.grants if g.role is rk.Role.REFERRER]


# -- program versions ---------------------------------------------------------------------


def test_a_referral_attributed_under_v1_earns_v1_rewards_after_v2_is_published() -> None:
    engine = make_engine()
    signup(engine, "bob", at=T0)
    engine.publish(version_2())
    signup(engine, "carol", at=V2_AT + timedelta(days=1))

    bobs = buy(engine, "bob", "order-bob", at=V2_AT + timedelta(days=2))
    carols = buy(engine, "carol", "order-carol", at=V2_AT + timedelta(days=2))

    assert referrer_cash(bobs) == [rk.Cash(usd(20))]
    assert referrer_cash(carols) == [rk.Cash(usd(30))]
    assert [v.reward.program_version for v in engine.rewards_for("bob")] == [1]
    assert [v.reward.program_version for v in engine.rewards_for("carol")] == [2]
    assert engine.program.version == 2


def test_the_version_in_force_is_chosen_by_effective_at_not_by_publication() -> None:
    engine = make_engine(version_2(), history=[program()])

    signup(engine, "bob", at=V2_AT - timedelta(microseconds=1))
    signup(engine, "carol", at=V2_AT)

    bob, carol = engine.referral_of("bob"), engine.referral_of("carol")
    assert bob is not None
    assert bob.program_version == 1
    assert carol is not None
    assert carol.program_version == 2


def test_an_engine_without_the_version_a_referral_needs_says_to_pass_it_as_history() -> None:
    store = rk.InMemoryStore()
    first = make_engine(store=store)
    signup(first, "bob")
    later = make_engine(version_2(), store=store)
    before = store.dump()

    with pytest.raises(rk.InvalidProgramError) as info:
        buy(later, "bob", "order-1", at=V2_AT)

    assert (info.value.field, info.value.value) == ("program.version", 1)
    assert "history" in str(info.value)
    assert store.dump() == before


def test_versions_are_recorded_in_the_store() -> None:
    engine = make_engine(version_2(), history=[program()])

    records = engine.store.dump()["programs"]

    assert [(r.version, r.digest) for r in records] == [
        (1, program().digest),
        (2, version_2().digest),
    ]


def test_a_month_hold_is_a_calendar_term_in_the_programs_time_zone() -> None:
    engine = make_engine(
        program(hold=relativedelta(months=1), timezone="America/New_York", first_purchase_only=True)
    )
    at = datetime(2026, 2, 1, 4, 30, tzinfo=UTC)  # 2026-01-31 23:30 in New York
    signup(engine, "bob", at=at - timedelta(hours=1))

    buy(engine, "bob", "order-1", at=at)

    (view,) = engine.rewards_for("bob")
    assert view.reward.payable_at == datetime(2026, 3, 1, 4, 30, tzinfo=UTC)  # Feb 28 23:30 EST


def test_a_day_hold_with_an_absolute_hour_is_honoured() -> None:
    prog = program(hold=relativedelta(days=1, hour=0))
    assert prog.payable_at(datetime(2026, 2, 2, 10, 0, tzinfo=UTC)) == datetime(
        2026, 2, 3, 0, 0, tzinfo=UTC
    )


# -- quotes, batches, stored outcomes ---------------------------------------------------


def test_quote_says_what_a_purchase_would_earn_and_writes_nothing() -> None:
    engine = make_engine()
    signup(engine, "bob")
    event = purchase_event("bob", "order-1")
    before = engine.store.dump()

    quoted = engine.quote(event)

    assert engine.store.dump() == before
    assert referrer_cash(quoted) == [rk.Cash(usd(20))]
    assert engine.outcome_of(event.event_id) is None
    assert engine.handle(event) == quoted


def test_quote_of_a_signup_writes_nothing() -> None:
    engine = make_engine()
    code = engine.issue_code("alice")
    before = engine.store.dump()

    quoted = engine.quote(rk.Signup(event_id="s", participant_id="bob", code=code, at=T0))

    assert quoted.reasons()[0] == "referral.created"
    assert engine.store.dump() == before
    assert engine.referral_of("bob") is None


def test_handle_many_returns_errors_in_place_and_goes_on() -> None:
    engine = make_engine()
    code = engine.issue_code("alice")
    events: list[rk.Event] = [
        rk.Signup(event_id="s-bob", participant_id="bob", code=code, at=T0),
        rk.Refund(event_id="r-1", refund_id="r-1", order_id="nope", amount=usd(1), at=T0),
        purchase_event("bob", "order-1"),
        rk.Purchase(
            event_id="purchase-order-1", participant_id="bob", order_id="x", amount=usd(1), at=T0
        ),
        purchase_event("bob", "order-2", at=T0 + timedelta(days=1)),
    ]

    results = engine.handle_many(events)

    assert [type(r) for r in results] == [
        rk.Outcome,
        rk.UnknownOrderError,
        rk.Outcome,
        rk.EventConflictError,
        rk.Outcome,
    ]
    assert engine.outcome_of("r-1") is None
    assert len(engine.rewards_for("alice")) == 1


def test_outcome_of_returns_the_stored_outcome_to_explain_it_later() -> None:
    engine = make_engine(program(first_purchase_only=True))
    signup(engine, "bob")
    buy(engine, "bob", "order-1")
    second = buy(engine, "bob", "order-2", at=T0 + timedelta(days=1))

    stored = engine.outcome_of("purchase-order-2")

    assert stored == second
    assert stored is not None
    assert not stored.duplicate
    assert "only the referee's first purchase qualifies; this was purchase #2" in stored.explain()
    assert engine.outcome_of("never-seen") is None


def test_a_duplicate_returns_the_stored_outcome_flagged() -> None:
    engine = make_engine()
    signup(engine, "bob")
    first = buy(engine, "bob", "order-1")

    again = buy(engine, "bob", "order-1")

    assert again.duplicate
    assert attrs.evolve(again, duplicate=False) == first
    assert "(duplicate)" in again.explain().splitlines()[0]


def test_an_unknown_event_type_is_refused() -> None:
    @attrs.frozen
    class Visit:
        event_id: str = "v-1"
        at: datetime = T0
        kind: str = "visit"

    engine = make_engine()
    before = engine.store.dump()

    for bogus in (Visit(), "purchase", None):
        with pytest.raises(rk.InvalidInputError) as info:
            engine.handle(bogus)  # type: ignore[arg-type]
        assert info.value.field == "event"
        with pytest.raises(rk.InvalidInputError):
            engine.quote(bogus)  # type: ignore[arg-type]

    assert engine.store.dump() == before


def test_a_click_is_logged_and_decides_nothing() -> None:
    engine = make_engine()

    outcome = engine.handle(rk.Click(event_id="c-1", at=T0, code="ABCD", visitor_id="v"))

    assert outcome == rk.Outcome("c-1", "click")
    assert [r.event_id for r in engine.store.dump()["events"]] == ["c-1"]


# -- codes ------------------------------------------------------------------------------


def test_issue_code_is_get_or_create() -> None:
    engine = make_engine()

    code = engine.issue_code("alice")
    before = engine.store.dump()
    again = engine.issue_code("alice")

    assert again == code == engine.code_of("alice")
    assert engine.store.dump() == before
    assert len(code) == 8
    assert set(code) <= set(CROCKFORD)
    assert engine.issue_code("bob") != code
    assert engine.code_of("nobody") is None


def test_issue_code_validates_the_participant_id() -> None:
    engine = make_engine()
    with pytest.raises(rk.InvalidInputError) as info:
        engine.issue_code(" alice")
    assert (info.value.field, info.value.value) == ("participant_id", " alice")


def test_a_code_is_found_however_it_is_typed() -> None:
    engine = make_engine()
    code = engine.issue_code("alice")
    typed = f"{code[:4].lower()} - {code[4:]}".replace("0", "o").replace("1", "l")

    outcome = engine.handle(rk.Signup(event_id="s", participant_id="bob", code=typed, at=T0))

    assert outcome.reasons()[0] == "referral.created"


# -- triggers ---------------------------------------------------------------------------


def test_a_signup_trigger_policy_pays_at_signup() -> None:
    policy = rk.SingleSided(referrer=rk.Points(100), trigger=rk.Trigger.SIGNUP, name="lead")
    engine = make_engine(program(policies=[policy], hold=relativedelta(days=7)))

    outcome = signup(engine, "bob", at=T0 + timedelta(hours=3))
    purchased = buy(engine, "bob", "order-1", at=T0 + timedelta(days=1))

    assert [(g.participant_id, g.value) for g in outcome.grants] == [("alice", rk.Points(100))]
    (view,) = engine.rewards_for("alice")
    assert view.reward.payable_at == T0 + timedelta(days=7, hours=3)
    assert view.reward.order_id is None
    assert purchased.grants == ()
    assert engine.balance("alice")[rk.Unit("points", "points")].pending == 100


def test_a_first_purchase_policy_notes_that_a_signup_is_not_its_trigger() -> None:
    engine = make_engine()

    outcome = signup(engine, "bob")

    assert outcome.reasons() == ("referral.created", "policy.not_trigger")
    assert outcome.grants == ()


def test_an_every_purchase_policy_pays_each_qualifying_purchase() -> None:
    policy = rk.SingleSided(referrer=rk.Cash(usd(5)), trigger=rk.Trigger.EVERY_PURCHASE)
    engine = make_engine(program(policies=[policy], min_order=usd(10)))
    signup(engine, "bob")

    outcomes = [
        buy(engine, "bob", f"order-{i}", amount, at=T0 + timedelta(days=i))
        for i, amount in enumerate(["10.00", "9.99", "50.00"])
    ]

    assert [len(o.grants) for o in outcomes] == [1, 0, 1]
    assert outcomes[1].reasons() == ("qualify.below_minimum",)
    assert "qualify.already_converted" not in outcomes[2].reasons()
    assert engine.balance("alice")[CASH].pending == Decimal("10.00")


def test_first_purchase_and_every_purchase_policies_combine() -> None:
    policies = [
        rk.SingleSided(referrer=rk.Cash(usd(20)), name="welcome"),
        rk.SingleSided(referrer=rk.Cash(usd(2)), trigger=rk.Trigger.EVERY_PURCHASE, name="revenue"),
    ]
    engine = make_engine(program(policies=policies))
    signup(engine, "bob")

    first = buy(engine, "bob", "order-1")
    second = buy(engine, "bob", "order-2", at=T0 + timedelta(days=1))

    assert [g.policy for g in first.grants] == ["welcome", "revenue"]
    assert [g.policy for g in second.grants] == ["revenue"]
    assert "qualify.already_converted" in second.reasons()


def test_a_full_refund_makes_the_referral_unsuccessful_so_a_later_purchase_converts_it() -> None:
    engine = make_engine()
    signup(engine, "bob")
    buy(engine, "bob", "order-1")
    engine.handle(rk.Refund(event_id="r", refund_id="r", order_id="order-1", amount=usd(80), at=T0))

    later = buy(engine, "bob", "order-2", at=T0 + timedelta(days=2))

    assert len(later.grants) == 2
    assert engine.balance("alice")[CASH].pending == Decimal("20.00")


# -- settle and the outbox ----------------------------------------------------------------


def test_settle_approves_in_batches() -> None:
    engine = make_engine()
    for i in range(5):
        signup(engine, f"bob{i}")
        buy(engine, f"bob{i}", f"order-{i}")

    assert engine.settle(T0 + timedelta(days=30), batch_size=3) == 10
    assert engine.balance("alice")[CASH].available == Decimal("100.00")


def test_settle_with_a_zero_batch_size_returns_or_raises() -> None:
    code = textwrap.dedent(
        """
        from datetime import UTC, datetime
        import referralkit as rk
        t = datetime(2026, 1, 1, tzinfo=UTC)
        p = rk.Program(id="p", effective_at=t, currency="USD",
                       policies=[rk.SingleSided(referrer=rk.Cash(rk.Money(1, "USD")))])
        try:
            rk.Engine(p, rk.InMemoryStore(), clock=rk.ManualClock(t)).settle(t, batch_size=0)
        except rk.ReferralKitError:
            pass
        """
    )
    subprocess.run([sys.executable, "-c", code], timeout=60, check=True)


def test_auto_dispatch_delivers_after_each_event() -> None:
    notifier = rk.RecordingNotifier()
    engine = make_engine(notifier=notifier, auto_dispatch=True)

    signup(engine, "bob")

    assert [n.kind for n in notifier.sent] == ["referral_created"]


@pytest.mark.parametrize("hold", [relativedelta(days=30), relativedelta(months=1)])
def test_payable_on_is_the_date_in_the_programs_time_zone(hold: relativedelta) -> None:
    """A purchase at 03:00 UTC is the evening before in Los Angeles: the reward's
    ``payable_on`` is the Los Angeles date of its payable time, whatever the hold's kind
    and whatever zone the event's time was given in."""
    utc_3am = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    engine = make_engine(program(timezone="America/Los_Angeles", hold=hold))
    signup(engine, "bob", at=utc_3am)
    outcome = buy(engine, "bob", "o-1", at=utc_3am)

    assert outcome.grants
    earned = [n for n in engine.store.dump()["outbox"] if n.kind == "reward_earned"]
    assert earned
    payable = {view.reward.payable_at for view in engine.rewards_for("alice")}
    assert len(payable) == 1
    local = payable.pop().astimezone(ZoneInfo("America/Los_Angeles")).date().isoformat()
    assert {n.data["payable_on"] for n in earned} == {local}
    assert local == ("2026-02-03" if hold.days else "2026-02-04")


def test_a_failing_notifier_never_undoes_the_event_and_is_retried() -> None:
    calls: list[str] = []

    def flaky(note: rk.Notification) -> None:
        calls.append(note.notification_id)
        if len(calls) == 1:
            raise ConnectionError("smtp down")

    engine = make_engine(notifier=rk.CallbackNotifier(flaky))
    signup(engine, "bob")

    assert engine.dispatch() == rk.DispatchResult(delivered=0, failed=1)
    assert engine.referral_of("bob") is not None
    status = dict(engine.store.dump()["outbox_status"])[calls[0]]
    assert (status.attempts, status.delivered_at) == (1, None)
    assert status.next_attempt_at == T0 + timedelta(seconds=30)
    assert "smtp down" in (status.last_error or "")
    assert engine.dispatch() == rk.DispatchResult(delivered=0, failed=0)  # not due yet
    retry = T0 + timedelta(seconds=30)
    assert engine.dispatch(now=retry) == rk.DispatchResult(delivered=1, failed=0)
    assert engine.dispatch(now=retry) == rk.DispatchResult(delivered=0, failed=0)


def test_dispatch_without_a_notifier_keeps_the_outbox_queued() -> None:
    engine = make_engine()
    signup(engine, "bob")

    assert engine.dispatch() == rk.DispatchResult(0, 0)
    assert all(s.delivered_at is None for _, s in engine.store.dump()["outbox_status"])


def test_dispatch_with_limit_zero_delivers_nothing() -> None:
    engine = make_engine(notifier=rk.RecordingNotifier())
    signup(engine, "bob")

    assert engine.dispatch(limit=0).delivered == 0
