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


# -- precedence between conditional rewards -----------------------------------------------------
def _precedence_engine(precedence: str) -> rk.Engine:
    from datetime import UTC, datetime

    from referralkit.policies import Attr, when

    program = rk.Program(
        id="prec",
        effective_at=datetime(2026, 1, 1, tzinfo=UTC),
        currency="USD",
        precedence=precedence,
        policies=[
            rk.SingleSided(referrer=rk.Points(10), name="base"),
            when(
                Attr("sale.amount") >= rk.Money(50, "USD"),
                rk.SingleSided(referrer=rk.Cash(rk.Money(5, "USD")), name="big_order"),
            ),
            when(
                Attr("referral.channel") == "email",
                rk.SingleSided(referrer=rk.Cash(rk.Money(8, "USD")), name="email"),
            ),
        ],
    )
    return rk.Engine(program, rk.InMemoryStore())


def _purchase(engine: rk.Engine) -> rk.Outcome:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 5, tzinfo=UTC)
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=at, channel="email"))
    return engine.handle(
        rk.Purchase(
            event_id="p", participant_id="bob", order_id="o", amount=rk.Money(60, "USD"), at=at
        )
    )


@pytest.mark.parametrize(
    ("precedence", "paid"),
    [
        ("all", ["base", "big_order", "email"]),
        ("first_match", ["base", "big_order"]),
        ("highest", ["base", "email"]),
    ],
)
def test_the_program_precedence_decides_between_matching_conditional_rewards(
    precedence: str, paid: list[str]
):
    outcome = _purchase(_precedence_engine(precedence))
    assert [g.policy for g in outcome.grants] == paid
    dropped = [d for d in outcome.decisions if d.code == "precedence.not_chosen"]
    assert len(dropped) == (0 if precedence == "all" else 1)


def test_precedence_round_trips_and_is_checked():
    program = _precedence_engine("highest").program
    assert rk.Program.from_dict(program.to_dict()) == program
    with pytest.raises(rk.InvalidProgramError, match="precedence"):
        rk.Program.from_dict({**program.to_dict(), "precedence": "loudest"})
