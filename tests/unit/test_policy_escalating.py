"""Escalating: each successful referral earns more, up to a ceiling."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

import pytest

import referralkit as rk
from referralkit.policies import Escalating

USD = "USD"


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, USD)


def nth(policy: Escalating, make_ctx, n: int, **kw) -> str:
    ctx = make_ctx(counters={rk.Counter.REFERRER_SUCCESSFUL_REFERRALS: n - 1}, **kw)
    (grant,) = policy.evaluate(ctx).grants
    return str(grant.value)


def test_arithmetic_steps_stop_at_the_ceiling(make_ctx):
    policy = Escalating(first=rk.Cash(usd(10)), step=usd(5), ceiling=usd(22))
    got = [nth(policy, make_ctx, n) for n in range(1, 6)]
    assert got == [
        "10.00 USD cash",
        "15.00 USD cash",
        "20.00 USD cash",
        "22.00 USD cash",
        "22.00 USD cash",
    ]


def test_geometric_steps_are_rounded_with_the_program_mode(make_ctx):
    policy = Escalating(first=rk.Credit(usd("1.00")), factor="1.333", ceiling=usd(100))
    assert nth(policy, make_ctx, 2) == "1.33 USD credit"  # 1.333 -> half up
    assert nth(policy, make_ctx, 3) == "1.78 USD credit"  # 1.776889
    assert nth(policy, make_ctx, 3, rounding=ROUND_DOWN) == "1.77 USD credit"
    assert nth(policy, make_ctx, 10_000) == "100.00 USD credit"  # capped, no overflow


def test_points_grow_in_whole_points(make_ctx):
    policy = Escalating(first=rk.Points(100), factor=Decimal("1.5"), ceiling=rk.Points(300))
    assert [nth(policy, make_ctx, n) for n in (1, 2, 3, 4)] == [
        "100 points",
        "150 points",
        "225 points",
        "300 points",
    ]


def test_a_list_of_values_repeats_its_last(make_ctx):
    policy = Escalating(values=[rk.Cash(usd(5)), rk.Cash(usd(5)), rk.Cash(usd(25))])
    assert [nth(policy, make_ctx, n) for n in (1, 2, 3, 9)] == [
        "5.00 USD cash",
        "5.00 USD cash",
        "25.00 USD cash",
        "25.00 USD cash",
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"first": rk.Cash(usd(10)), "ceiling": usd(20)}, "escalating.step"),
        (
            {"first": rk.Cash(usd(10)), "step": usd(1), "factor": "2", "ceiling": usd(20)},
            "escalating.step",
        ),
        ({"first": rk.Cash(usd(10)), "step": usd(1)}, "escalating.ceiling"),
        ({"first": rk.Cash(usd(10)), "step": usd(1), "ceiling": usd(5)}, "escalating.ceiling"),
        (
            {"first": rk.Cash(usd(10)), "step": usd(-1), "ceiling": usd(50)},
            "escalating.step.amount",
        ),
        ({"first": rk.Cash(usd(10)), "factor": "1", "ceiling": usd(50)}, "escalating.factor"),
        ({"first": rk.Cash(usd(10)), "factor": 1.5, "ceiling": usd(50)}, "escalating.factor"),
        ({"first": rk.Points(1), "step": usd(1), "ceiling": rk.Points(5)}, "escalating.step"),
        ({"first": rk.Badge("vip"), "step": usd(1), "ceiling": usd(5)}, "escalating.first"),
        ({"values": [rk.Cash(usd(5)), rk.Cash(usd(4))]}, "escalating.values[1]"),
        ({"values": [rk.Cash(usd(5)), rk.Points(9)]}, "escalating.values[1]"),
        ({"values": []}, "escalating.values"),
        ({}, "escalating.first"),
    ],
)
def test_bad_parameters_are_refused_with_the_field(kwargs, field):
    with pytest.raises(rk.InvalidProgramError) as info:
        Escalating(**kwargs)
    assert info.value.field == field
