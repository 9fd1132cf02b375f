"""PerItem: a reward per qualifying unit bought, up to a cap per side."""

from __future__ import annotations

from decimal import Decimal

import pytest

import referralkit as rk
from referralkit.policies import PerItem

USD = "USD"


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, USD)


ITEMS = (
    rk.LineItem(sku="tv", quantity=2, unit_price=usd(400), category="video"),
    rk.LineItem(sku="cable", quantity=3, unit_price=usd(5), category="accessories"),
    rk.LineItem(sku="soundbar", quantity=1, unit_price=usd(200), category="audio"),
)


def values(result: rk.PolicyResult, role: rk.Role) -> list[str]:
    return [str(g.value) for g in result.grants if g.role is role]


def test_each_unit_of_a_qualifying_line_earns_a_reward(make_ctx):
    policy = PerItem(referrer=rk.Credit(usd(25)), categories=["video", "audio"])
    result = policy.evaluate(make_ctx(items=ITEMS))
    assert values(result, rk.Role.REFERRER) == ["50.00 USD credit", "25.00 USD credit"]


def test_the_cap_applies_to_each_side(make_ctx):
    policy = PerItem(
        referrer=rk.Credit(usd(25)),
        referee=rk.Discount(percent=Decimal(10)),
        cap_per_referral=4,
    )
    result = policy.evaluate(make_ctx(items=ITEMS))
    assert values(result, rk.Role.REFERRER) == ["50.00 USD credit", "50.00 USD credit"]
    assert values(result, rk.Role.REFEREE) == ["10% off"] * 4
    clamped = [d for d in result.decisions if d.verdict is rk.Verdict.CLAMPED]
    assert [d.param_map["role"] for d in clamped] == ["referrer", "referee"]
    assert clamped[0].param_map == {"role": "referrer", "cap": "4", "units": "6"}


def test_skus_and_categories_both_qualify(make_ctx):
    policy = PerItem(referee=rk.Points(10), skus=["cable"], categories=["audio"])
    assert values(policy.evaluate(make_ctx(items=ITEMS)), rk.Role.REFEREE) == [
        "30 points",
        "10 points",
    ]


def test_no_qualifying_item_grants_nothing_and_says_why(make_ctx):
    policy = PerItem(referrer=rk.Points(10), skus=["phone"])
    result = policy.evaluate(make_ctx(items=ITEMS))
    assert result.grants == ()
    assert [d.code for d in result.decisions] == ["per_item.no_items"]
    assert PerItem(referrer=rk.Points(1)).evaluate(make_ctx()).grants == ()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "per_item.referrer"),
        ({"referrer": rk.Points(1), "cap_per_referral": 0}, "per_item.cap_per_referral"),
        ({"referrer": rk.Points(1), "skus": "tv"}, "per_item.skus"),
        ({"referrer": rk.Points(1), "skus": []}, "per_item.skus"),
        ({"referrer": rk.Points(1), "categories": ["a", ""]}, "per_item.categories[1]"),
        ({"referrer": usd(1)}, "per_item.referrer"),
        ({"referrer": rk.Points(1), "trigger": "signup"}, "per_item.trigger"),
    ],
)
def test_bad_parameters_are_refused_with_the_field(kwargs, field):
    with pytest.raises(rk.InvalidProgramError) as info:
        PerItem(**kwargs)
    assert info.value.field == field
