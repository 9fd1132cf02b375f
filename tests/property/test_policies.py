"""Properties of the policy catalogue: never negative, monotone, exact shares, round trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hypothesis import event, given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.policies import RevenueShare
from referralkit.testing.strategies import (
    catalogue_programs,
    escalating_policies,
    event_streams,
    tiered_policies,
)

START = datetime(2026, 1, 5, tzinfo=UTC)


@given(event_streams(catalogue_programs(currency=st.sampled_from(["USD", "JPY", "BHD"]))))
def test_no_catalogue_policy_ever_grants_a_negative_or_zero_reward(scenario):
    """Every reward the catalogue grants, under any event stream, has a positive quantity."""
    engine = scenario.new_engine()
    scenario.play(engine)
    rewards = engine.store.dump()["rewards"]
    for reward in rewards:
        assert reward.value.quantity > 0
    event(f"rewards granted: {min(len(rewards), 3)}+")


@given(tiered_policies("USD"), st.integers(0, 40), st.integers(0, 40))
def test_more_referrals_never_lower_the_tier_or_the_reward(policy, a, b):
    """With more successful referrals, the tier and its reward never go down."""
    low, high = sorted((a, b))
    lo_tier, hi_tier = policy.tier_for(low + 1), policy.tier_for(high + 1)
    if lo_tier is None:
        return
    assert hi_tier is not None
    assert hi_tier.min_referrals >= lo_tier.min_referrals
    assert hi_tier.reward.quantity >= lo_tier.reward.quantity


@given(escalating_policies("EUR"), st.integers(1, 60), st.integers(1, 60))
def test_escalating_rewards_never_decrease(policy, a, b):
    """The n-th referral never earns less than an earlier one."""
    low, high = sorted((a, b))
    rounding = "ROUND_HALF_UP"
    assert policy.value_for(high, rounding).quantity >= policy.value_for(low, rounding).quantity


def _amounts(currency: str) -> st.SearchStrategy[rk.Money]:
    exponent = rk.Money(0, currency).exponent
    return st.integers(1, 100_000 * 10**exponent).map(lambda m: rk.Money.from_minor(m, currency))


@st.composite
def revenue_cases(draw):
    currency = draw(st.sampled_from(["USD", "JPY", "BHD"]))
    percent = Decimal(draw(st.integers(1, 10_000))).scaleb(-2)
    rounding = draw(st.sampled_from(["ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_DOWN"]))
    orders = draw(st.lists(_amounts(currency), min_size=1, max_size=4))
    refunds = []
    for i, amount in enumerate(orders):
        minor = amount.to_minor()
        cuts = draw(st.lists(st.integers(1, minor), max_size=3))
        left = minor
        for cut in cuts:
            if cut <= left:
                refunds.append((i, rk.Money.from_minor(cut, currency)))
                left -= cut
    return currency, percent, rounding, orders, draw(st.permutations(refunds))


@given(revenue_cases())
def test_revenue_share_equals_percent_of_net_paid_to_the_minor_unit(case):
    """Per order, the share left after refunds is percent x net paid, rounded up or down."""
    currency, percent, rounding, orders, refunds = case
    program = rk.Program(
        id="p",
        effective_at=START,
        currency=currency,
        rounding=rounding,
        policies=[RevenueShare(percent, duration=None)],
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=START))
    for i, amount in enumerate(orders):
        engine.handle(
            rk.Purchase(
                event_id=f"p{i}",
                participant_id="bob",
                order_id=f"o{i}",
                amount=amount,
                at=START + timedelta(days=i),
            )
        )
    net = [o.amount for o in orders]
    for n, (i, amount) in enumerate(refunds):
        engine.handle(
            rk.Refund(
                event_id=f"r{n}",
                refund_id=f"r{n}",
                order_id=f"o{i}",
                amount=amount,
                at=START + timedelta(days=30),
            )
        )
        net[i] -= amount.amount
    by_order = {r.reward.order_id: r.outstanding for r in engine.rewards_for("alice")}
    quantum = Decimal(1).scaleb(-rk.Money(0, currency).exponent)
    for i in range(len(orders)):
        exact = net[i] * percent / 100
        got = by_order.get(f"o{i}", Decimal(0))
        assert exact.quantize(quantum, ROUND_FLOOR) <= got <= exact.quantize(quantum, ROUND_CEILING)


@given(catalogue_programs())
def test_generated_programs_round_trip_through_to_dict(program):
    """from_dict(to_dict(p)) == p, through JSON, with the same digest."""
    data = json.loads(json.dumps(program.to_dict()))
    again = rk.Program.from_dict(data)
    assert again == program
    assert again.digest == program.digest
