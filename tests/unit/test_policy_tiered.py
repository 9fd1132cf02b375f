"""Tiered: the n-th successful referral earns the reward of its tier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import referralkit as rk
from referralkit.policies import Tier, Tiered

USD = "USD"
TIERED = Tiered([Tier(1, rk.Cash(rk.Money(10, USD))), Tier(3, rk.Cash(rk.Money(30, USD)))])


def paid(policy: Tiered, make_ctx, before: int) -> list[str]:
    ctx = make_ctx(counters={rk.Counter.REFERRER_SUCCESSFUL_REFERRALS: before})
    return [str(g.value) for g in policy.evaluate(ctx).grants]


@pytest.mark.parametrize(
    ("before", "expected"),
    [(0, "10.00 USD cash"), (1, "10.00 USD cash"), (2, "30.00 USD cash"), (50, "30.00 USD cash")],
)
def test_each_referral_is_paid_at_the_tier_its_number_falls_in(make_ctx, before, expected):
    assert paid(TIERED, make_ctx, before) == [expected]


def test_referrals_below_the_first_tier_earn_nothing_and_say_why(make_ctx):
    policy = Tiered([Tier(3, rk.Cash(rk.Money(30, USD)))])
    result = policy.evaluate(make_ctx(counters={rk.Counter.REFERRER_SUCCESSFUL_REFERRALS: 1}))
    assert result.grants == ()
    assert [d.code for d in result.decisions] == ["tiered.below_first_tier"]
    assert result.decisions[0].param_map == {"n": "2", "first": "3"}


def test_the_referee_side_can_be_tiered(make_ctx):
    policy = Tiered([Tier(1, rk.Credit(rk.Money(5, USD)))], side="referee")
    (grant,) = policy.evaluate(make_ctx()).grants
    assert (grant.role, grant.participant_id) == (rk.Role.REFEREE, "bob")


def test_it_needs_the_successful_referrals_counter():
    assert TIERED.needs() == {rk.Counter.REFERRER_SUCCESSFUL_REFERRALS}


def test_unsorted_tiers_are_refused_with_the_tier_index():
    with pytest.raises(rk.InvalidProgramError) as info:
        Tiered([Tier(3, rk.Cash(rk.Money(30, USD))), Tier(1, rk.Cash(rk.Money(10, USD)))])
    assert info.value.field == "tiered.tiers[1].min_referrals"
    assert "sorted" in info.value.problem


def test_overlapping_tiers_are_refused():
    with pytest.raises(rk.InvalidProgramError, match="overlaps") as info:
        Tiered([Tier(2, rk.Cash(rk.Money(10, USD))), Tier(2, rk.Cash(rk.Money(30, USD)))])
    assert info.value.field == "tiered.tiers[1].min_referrals"


@pytest.mark.parametrize("bad", [0, -1, "3", True])
def test_a_threshold_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(rk.InvalidProgramError) as info:
        Tier(bad, rk.Cash(rk.Money(10, USD)))
    assert info.value.field == "tier.min_referrals"


def test_no_tiers_and_non_rewards_are_refused():
    with pytest.raises(rk.InvalidProgramError, match="at least one"):
        Tiered([])
    with pytest.raises(rk.InvalidProgramError) as info:
        Tier(1, rk.Money(10, USD))  # type: ignore[arg-type]
    assert info.value.field == "tier.reward"


def test_every_purchase_is_refused_as_a_trigger():
    with pytest.raises(rk.InvalidProgramError) as info:
        Tiered([Tier(1, rk.Cash(rk.Money(10, USD)))], trigger=rk.Trigger.EVERY_PURCHASE)
    assert info.value.field == "tiered.trigger"


def test_a_reward_in_another_currency_is_refused_by_the_program():

    policy = Tiered([Tier(1, rk.Cash(rk.Money(10, USD))), Tier(3, rk.Cash(rk.Money(30, "EUR")))])
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program(
            id="p", effective_at=datetime(2026, 1, 1, tzinfo=UTC), currency=USD, policies=[policy]
        )
    assert info.value.field == "tiered.tiers[1].reward.currency"
    assert info.value.value == "EUR"


def test_through_the_engine_the_third_referral_earns_the_higher_tier():

    start = datetime(2026, 1, 5, tzinfo=UTC)
    program = rk.Program(id="p", effective_at=start, currency=USD, policies=[TIERED])
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(start))
    code = engine.issue_code("alice")
    for n in range(1, 5):
        engine.handle(rk.Signup(event_id=f"s{n}", participant_id=f"f{n}", code=code, at=start))
        engine.handle(
            rk.Purchase(
                event_id=f"p{n}",
                participant_id=f"f{n}",
                order_id=f"o{n}",
                amount=rk.Money(40, USD),
                at=start,
            )
        )
    amounts = [str(r.reward.value) for r in engine.rewards_for("alice")]
    assert amounts == ["10.00 USD cash", "10.00 USD cash", "30.00 USD cash", "30.00 USD cash"]


# -- retroactive top-up -----------------------------------------------------------------------
def _retro_engine() -> rk.Engine:

    program = rk.Program(
        id="retro",
        effective_at=datetime(2026, 1, 1, tzinfo=UTC),
        currency="USD",
        policies=[
            Tiered(
                [Tier(1, rk.Cash(rk.Money(10, "USD"))), Tier(3, rk.Cash(rk.Money(30, "USD")))],
                mode="retroactive",
            )
        ],
    )
    return rk.Engine(program, rk.InMemoryStore())


def _refer(engine: rk.Engine, n: int) -> rk.Outcome:

    at = datetime(2026, 1, 5, tzinfo=UTC) + timedelta(minutes=n)
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id=f"s{n}", participant_id=f"f{n}", code=code, at=at))
    return engine.handle(
        rk.Purchase(
            event_id=f"p{n}",
            participant_id=f"f{n}",
            order_id=f"o{n}",
            amount=rk.Money(40, "USD"),
            at=at,
        )
    )


def _cash(engine: rk.Engine) -> Decimal:
    return engine.balance("alice")[rk.Unit("cash", "USD")].lifetime


def test_reaching_a_retroactive_tier_tops_up_the_earlier_referrals():
    engine = _retro_engine()
    got = [[str(g.value) for g in _refer(engine, n).grants] for n in range(4)]
    # 10, 10, then 30 and a top-up of 2 x (30 - 10) = 40, then 30.
    assert got == [
        ["10.00 USD cash"],
        ["10.00 USD cash"],
        ["30.00 USD cash", "40.00 USD cash"],
        ["30.00 USD cash"],
    ]
    assert _cash(engine) == Decimal("120.00")  # every referral at 30 USD


def test_a_refund_never_reverses_the_top_up_and_reaching_the_tier_again_pays_none():

    engine = _retro_engine()
    for n in range(3):
        _refer(engine, n)
    # Refund the referral that reached the tier: its own 30 is reversed, the top-up stays.
    outcome = engine.handle(
        rk.Refund(
            event_id="r2",
            refund_id="r2",
            order_id="o2",
            amount=rk.Money(40, "USD"),
            at=datetime(2026, 2, 1, tzinfo=UTC),
        )
    )
    assert [r.quantity for r in outcome.reversals] == [Decimal("30.00")]
    assert _cash(engine) == Decimal("60.00")  # 10 + 10 + 40
    again = _refer(engine, 3)  # the 3rd successful referral once more
    assert [str(g.value) for g in again.grants] == ["30.00 USD cash"]
    assert "milestone.already_granted" in again.reasons()
    assert _cash(engine) == Decimal("90.00")


def test_retroactive_tiers_need_one_growing_divisible_unit():
    with pytest.raises(rk.InvalidProgramError, match=r"tiered\.tiers\[1\]\.reward"):
        Tiered([Tier(1, rk.Cash(rk.Money(10, "USD"))), Tier(3, rk.Badge("x"))], mode="retroactive")
    with pytest.raises(rk.InvalidProgramError, match="must not pay less"):
        Tiered(
            [Tier(1, rk.Cash(rk.Money(10, "USD"))), Tier(3, rk.Cash(rk.Money(5, "USD")))],
            mode="retroactive",
        )
    with pytest.raises(rk.InvalidProgramError, match=r"tiered\.mode"):
        Tiered([Tier(1, rk.Cash(rk.Money(10, "USD")))], mode="sometimes")
