"""The core issue's worked example, end to end, with its exact numbers.

A first-purchase-only, double-sided program: 20 USD cash to the referrer and 10 USD credit
to the referee, held for 30 days. Alice refers Bob with her code and Bob buys for 80 USD.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SIGNUP_AT = START + timedelta(minutes=5)
PURCHASE_AT = datetime(2026, 3, 2, 11, 45, 10, tzinfo=UTC)
PAYABLE_AT = datetime(2026, 4, 1, 11, 45, 10, tzinfo=UTC)
CASH = rk.Unit("cash", "USD")
CREDIT = rk.Unit("credit", "USD")


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def worked_program(**changes: object) -> rk.Program:
    terms: dict[str, object] = {
        "id": "friends",
        "version": 1,
        "effective_at": START - timedelta(days=1),
        "currency": "USD",
        "policies": [rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
        "hold": relativedelta(days=30),
        "first_purchase_only": True,
    }
    terms.update(changes)
    return rk.Program(**terms)  # type: ignore[arg-type]


@attrs.define
class World:
    """An engine over an in-memory store, a recording notifier and a manual clock."""

    engine: rk.Engine
    store: rk.InMemoryStore
    notifier: rk.RecordingNotifier
    clock: rk.ManualClock
    code: str

    def signup(self) -> rk.Outcome:
        return self.engine.handle(self.signup_event())

    def signup_event(self) -> rk.Signup:
        return rk.Signup(
            event_id="evt-signup-bob", participant_id="bob", code=self.code, at=SIGNUP_AT
        )

    def purchase_event(
        self, amount: str = "80.00", order_id: str = "order-1", at: datetime = PURCHASE_AT
    ) -> rk.Purchase:
        return rk.Purchase(
            event_id=f"evt-{order_id}",
            participant_id="bob",
            order_id=order_id,
            amount=usd(amount),
            at=at,
        )

    def refund_event(self, amount: str, refund_id: str = "refund-1", days: int = 5) -> rk.Refund:
        return rk.Refund(
            event_id=f"evt-{refund_id}",
            refund_id=refund_id,
            order_id="order-1",
            amount=usd(amount),
            at=PURCHASE_AT + timedelta(days=days),
        )

    def chargeback_event(self, days: int = 40) -> rk.Chargeback:
        return rk.Chargeback(
            event_id="evt-chargeback-1",
            chargeback_id="dispute-1",
            order_id="order-1",
            at=PURCHASE_AT + timedelta(days=days),
        )

    def line(self, participant: str, unit: rk.Unit) -> rk.BalanceLine:
        return self.engine.balance(participant)[unit]


def make_world(program: rk.Program | None = None) -> World:
    store = rk.InMemoryStore()
    notifier = rk.RecordingNotifier()
    clock = rk.ManualClock(START)
    engine = rk.Engine(program or worked_program(), store, notifier=notifier, clock=clock)
    return World(engine, store, notifier, clock, engine.issue_code("alice"))


@pytest.fixture
def world() -> World:
    return make_world()


@pytest.fixture
def bought(world: World) -> World:
    """Alice referred Bob and Bob bought for 80 USD."""
    world.signup()
    world.engine.handle(world.purchase_event())
    return world


def test_alice_refers_bob_with_her_code(world: World) -> None:
    outcome = world.signup()

    assert outcome.reasons()[0] == "referral.created"
    referral = world.engine.referral_of("bob")
    assert referral is not None
    assert (referral.referrer_id, referral.referee_id) == ("alice", "bob")
    assert referral.program_version == 1
    assert outcome.referral_id == referral.referral_id


def test_bobs_80_usd_purchase_earns_20_cash_for_alice_and_10_credit_for_bob(world: World) -> None:
    world.signup()

    outcome = world.engine.handle(world.purchase_event())

    assert [(g.role, g.participant_id, g.value) for g in outcome.grants] == [
        (rk.Role.REFERRER, "alice", rk.Cash(usd("20.00"))),
        (rk.Role.REFEREE, "bob", rk.Credit(usd("10.00"))),
    ]
    assert outcome.reasons() == ("policy.granted", "policy.granted")
    assert len(set(outcome.reward_ids)) == 2


def test_both_rewards_are_pending_and_payable_exactly_30_days_after_the_purchase(
    bought: World,
) -> None:
    views = bought.engine.rewards_for("alice") + bought.engine.rewards_for("bob")

    assert [v.state for v in views] == [rk.RewardState.PENDING, rk.RewardState.PENDING]
    assert [v.reward.payable_at for v in views] == [PAYABLE_AT, PAYABLE_AT]
    assert PURCHASE_AT + timedelta(days=30) == PAYABLE_AT
    assert bought.line("alice", CASH) == rk.BalanceLine(CASH, Decimal(20), Decimal(0), Decimal(20))
    assert bought.line("bob", CREDIT) == rk.BalanceLine(
        CREDIT, Decimal(10), Decimal(0), Decimal(10)
    )


def test_settle_one_second_before_payable_at_changes_nothing(bought: World) -> None:
    before = bought.store.dump()

    approved = bought.engine.settle(PAYABLE_AT - timedelta(seconds=1))

    assert approved == 0
    assert bought.store.dump() == before


def test_settle_at_payable_at_approves_both_rewards(bought: World) -> None:
    approved = bought.engine.settle(PAYABLE_AT)

    assert approved == 2
    alice, bob = bought.line("alice", CASH), bought.line("bob", CREDIT)
    assert (alice.pending, alice.available, alice.lifetime) == (0, Decimal("20.00"), 20)
    assert (bob.pending, bob.available, bob.lifetime) == (0, Decimal("10.00"), 10)
    assert alice.as_money() == usd(20)
    assert bob.as_money() == usd(10)
    assert bought.engine.settle(PAYABLE_AT + timedelta(days=1)) == 0


def test_settle_defaults_to_the_engine_clock(bought: World) -> None:
    bought.clock.set(PAYABLE_AT - timedelta(seconds=1))
    assert bought.engine.settle() == 0

    bought.clock.set(PAYABLE_AT)
    assert bought.engine.settle() == 2


def test_a_full_refund_inside_the_hold_reverses_both_and_balances_return_to_zero(
    bought: World,
) -> None:
    outcome = bought.engine.handle(bought.refund_event("80.00"))

    assert sorted((r.participant_id, r.unit, r.quantity) for r in outcome.reversals) == [
        ("alice", CASH, Decimal("20.00")),
        ("bob", CREDIT, Decimal("10.00")),
    ]
    states = [
        v.state for v in bought.engine.rewards_for("alice") + bought.engine.rewards_for("bob")
    ]
    assert states == [rk.RewardState.REVERSED, rk.RewardState.REVERSED]
    assert bought.engine.balance("alice").is_zero()
    assert bought.engine.balance("bob").is_zero()
    assert bought.engine.settle(PAYABLE_AT) == 0
    assert bought.engine.balance("alice").is_zero()


def test_a_partial_refund_of_20_of_80_reverses_5_cash_and_2_50_credit(bought: World) -> None:
    outcome = bought.engine.handle(bought.refund_event("20.00"))

    assert sorted((r.participant_id, r.quantity) for r in outcome.reversals) == [
        ("alice", Decimal("5.00")),
        ("bob", Decimal("2.50")),
    ]
    assert bought.line("alice", CASH).pending == Decimal("15.00")
    assert bought.line("bob", CREDIT).pending == Decimal("7.50")
    assert bought.engine.settle(PAYABLE_AT) == 2
    assert bought.line("alice", CASH).available == Decimal("15.00")
    assert bought.line("bob", CREDIT).available == Decimal("7.50")


def test_a_second_purchase_by_bob_earns_nothing(bought: World) -> None:
    before = bought.engine.balance("alice"), bought.engine.balance("bob")

    outcome = bought.engine.handle(
        bought.purchase_event("120.00", order_id="order-2", at=PURCHASE_AT + timedelta(days=3))
    )

    assert outcome.grants == ()
    assert "qualify.not_first_purchase" in outcome.reasons()
    assert (bought.engine.balance("alice"), bought.engine.balance("bob")) == before


def test_a_first_order_below_min_order_forfeits_the_reward() -> None:
    world = make_world(worked_program(min_order=usd(50)))
    world.signup()

    small = world.engine.handle(world.purchase_event("49.99", order_id="order-small"))
    large = world.engine.handle(
        world.purchase_event("80.00", order_id="order-large", at=PURCHASE_AT + timedelta(days=1))
    )

    assert small.grants == ()
    assert "qualify.below_minimum" in small.reasons()
    assert large.grants == ()
    assert "qualify.not_first_purchase" in large.reasons()
    assert world.engine.rewards_for("alice") == []
    assert world.engine.rewards_for("bob") == []


def test_a_chargeback_reverses_what_is_left_after_a_partial_refund(bought: World) -> None:
    bought.engine.handle(bought.refund_event("20.00"))
    bought.engine.settle(PAYABLE_AT)

    outcome = bought.engine.handle(bought.chargeback_event())

    assert sorted((r.participant_id, r.quantity) for r in outcome.reversals) == [
        ("alice", Decimal("15.00")),
        ("bob", Decimal("7.50")),
    ]
    for view in bought.engine.rewards_for("alice") + bought.engine.rewards_for("bob"):
        assert view.state is rk.RewardState.REVERSED
        assert view.reversed == view.granted
    assert bought.engine.balance("alice").is_zero()
    assert bought.engine.balance("bob").is_zero()


def test_handling_every_event_twice_changes_nothing(world: World) -> None:
    events: list[rk.Event] = [
        world.signup_event(),
        world.purchase_event(),
        world.purchase_event("30.00", order_id="order-2", at=PURCHASE_AT + timedelta(days=1)),
        world.refund_event("20.00"),
        world.chargeback_event(days=10),
    ]
    first = [world.engine.handle(event) for event in events]
    world.engine.settle(PAYABLE_AT)
    before = world.store.dump()

    again = [world.engine.handle(event) for event in events]

    assert world.store.dump() == before
    assert all(outcome.duplicate for outcome in again)
    assert not any(outcome.duplicate for outcome in first)
    assert [attrs.evolve(o, duplicate=False) for o in again] == first
    assert world.engine.settle(PAYABLE_AT) == 0


def test_notifications_reach_the_outbox_once_each_and_dispatch_twice_delivers_nothing_new(
    bought: World,
) -> None:
    bought.engine.settle(PAYABLE_AT)
    bought.engine.handle(bought.refund_event("20.00", days=31))

    first = bought.engine.dispatch()
    second = bought.engine.dispatch()

    sent = bought.notifier.sent
    assert first == rk.DispatchResult(delivered=7, failed=0)
    assert second == rk.DispatchResult(delivered=0, failed=0)
    assert len({n.notification_id for n in sent}) == len(sent) == 7
    assert bought.notifier.unique == sent
    assert Counter((n.kind, n.recipient_id) for n in sent) == Counter(
        {
            ("referral_created", "alice"): 1,
            ("reward_earned", "alice"): 1,
            ("reward_earned", "bob"): 1,
            ("reward_approved", "alice"): 1,
            ("reward_approved", "bob"): 1,
            ("reward_reversed", "alice"): 1,
            ("reward_reversed", "bob"): 1,
        }
    )
    earned = {n.recipient_id: n for n in sent if n.kind == "reward_earned"}
    assert earned["alice"].data["payable_on"] == "2026-04-01"
    assert (
        earned["alice"].message() == "bob used your code — you earned $20.00, payable on 1 April."
    )
    assert {n.data["quantity"] for n in sent if n.kind == "reward_reversed"} == {"5.00", "2.50"}
    assert [n.notification_id for n in bought.store.dump()["outbox"]] == sorted(
        n.notification_id for n in sent
    )
