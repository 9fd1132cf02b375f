"""Stack and FirstMatch: several policies as one."""

from __future__ import annotations

import pytest

import referralkit as rk
from referralkit.policies import Attr, FirstMatch, SingleSided, Stack, when

USD = "USD"


def cash(amount: int, name: str) -> SingleSided:
    return SingleSided(referrer=rk.Cash(rk.Money(amount, USD)), name=name)


def test_stack_concatenates_every_grant(make_ctx):
    policy = Stack([cash(10, "a"), cash(5, "b")])
    result = policy.evaluate(make_ctx())
    assert [(g.policy, str(g.value)) for g in result.grants] == [
        ("a", "10.00 USD cash"),
        ("b", "5.00 USD cash"),
    ]
    assert policy.trigger is rk.Trigger.FIRST_PURCHASE


def test_first_match_takes_the_first_policy_that_grants(make_ctx):
    policy = FirstMatch(
        [
            when(Attr("sale.amount") >= rk.Money(100, USD), cash(30, "big")),
            when(Attr("sale.amount") >= rk.Money(50, USD), cash(15, "medium")),
            cash(5, "small"),
        ]
    )
    assert [str(g.value) for g in policy.evaluate(make_ctx("120.00")).grants] == ["30.00 USD cash"]
    result = policy.evaluate(make_ctx("60.00"))
    assert [str(g.value) for g in result.grants] == ["15.00 USD cash"]
    assert [d.code for d in result.decisions] == ["condition.false", "policy.granted"]


def test_first_match_without_a_match_says_so(make_ctx):
    policy = FirstMatch([when(Attr("sale.amount") >= rk.Money(100, USD), cash(30, "big"))])
    result = policy.evaluate(make_ctx("10.00"))
    assert [d.code for d in result.decisions] == ["condition.false", "first_match.none"]


def test_needs_are_the_union_of_the_policies():
    policy = Stack(
        [
            when(Attr("referrer.referrals") > 1, cash(1, "a")),
            when(Attr("program.spend") > rk.Money(1, USD), cash(1, "b")),
        ]
    )
    assert policy.needs() == {rk.Counter.REFERRER_REFERRALS, rk.Counter.PROGRAM_SPEND}


@pytest.mark.parametrize(
    ("policies", "field"),
    [
        ([], "stack.policies"),
        ([cash(1, "a"), "x"], "stack.policies[1]"),
        ([cash(1, "a"), cash(1, "a")], "stack.policies[1].name"),
        (
            [cash(1, "a"), SingleSided(referrer=rk.Points(1), trigger="signup", name="b")],
            "stack.policies[1].trigger",
        ),
    ],
)
def test_bad_stacks_are_refused_with_the_field(policies, field):
    with pytest.raises(rk.InvalidProgramError) as info:
        Stack(policies)
    assert info.value.field == field
