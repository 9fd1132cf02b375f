"""Tiered: the n-th successful referral earns the reward of its tier."""

from __future__ import annotations

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
    from datetime import UTC, datetime

    policy = Tiered([Tier(1, rk.Cash(rk.Money(10, USD))), Tier(3, rk.Cash(rk.Money(30, "EUR")))])
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program(
            id="p", effective_at=datetime(2026, 1, 1, tzinfo=UTC), currency=USD, policies=[policy]
        )
    assert info.value.field == "tiered.tiers[1].reward.currency"
    assert info.value.value == "EUR"


def test_through_the_engine_the_third_referral_earns_the_higher_tier():
    from datetime import UTC, datetime

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
