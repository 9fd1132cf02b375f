"""Conditions: structured comparisons, All / Any, and when(condition, policy)."""

from __future__ import annotations

from decimal import Decimal

import pytest

import referralkit as rk
from referralkit.policies import All, Any, Attr, Compare, SingleSided, when

USD = "USD"
ITEMS = (
    rk.LineItem(sku="tv", quantity=2, unit_price=rk.Money(40, USD), category="video"),
    rk.LineItem(sku="cable", quantity=1, unit_price=rk.Money(20, USD)),
)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, USD)


def holds(condition, ctx) -> bool:
    return condition.failure(ctx) is None


def test_attr_operators_build_comparisons():
    assert (Attr("sale.amount") >= usd(50)) == Compare("sale.amount", ">=", usd(50))
    assert (Attr("referral.channel") != "sms") == Compare("referral.channel", "!=", "sms")
    assert Attr("sale.skus").contains("tv") == Compare("sale.skus", "contains", "tv")
    assert Attr("referral.channel").in_(["a"]) == Compare("referral.channel", "in", ("a",))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Attr("sale.amount") >= usd("100.00"), True),
        (Attr("sale.amount") > usd("100.00"), False),
        (Attr("sale.amount") < usd("100.01"), True),
        (Attr("sale.amount") <= usd("99.99"), False),
        (Attr("sale.amount").in_([usd(100), usd(5)]), True),
        (Attr("sale.amount").not_in([usd(100)]), False),
        (Attr("sale.skus").contains("tv"), True),
        (Attr("sale.categories").contains("audio"), False),
        (Attr("sale.item_count") == 3, True),
        (Attr("sale.metadata.campaign") == "spring", True),
        (Attr("sale.metadata.missing") == "spring", False),
        (Attr("event.metadata.campaign").in_(["spring", "fall"]), True),
        (Attr("referral.channel") == "email", True),
        (Attr("referral.code").contains("CD12"), True),
        (Attr("referrer.successful_referrals") >= 4, True),
        (Attr("referrer.revenue_referred") > usd("999.99"), True),
        (Attr("referee.purchase_number") == 3, True),
        (Attr("referee.days_since_signup") < 10, True),
        (Attr("program.spend") == usd(0), True),
    ],
)
def test_comparisons_over_the_context(make_ctx, condition, expected):
    ctx = make_ctx(
        items=ITEMS,
        days=9,
        metadata={"campaign": "spring"},
        counters={
            rk.Counter.REFERRER_SUCCESSFUL_REFERRALS: 4,
            rk.Counter.REFERRER_REVENUE_REFERRED: Decimal("1000"),
            rk.Counter.REFEREE_PURCHASES: 2,
        },
    )
    assert holds(condition, ctx) is expected


def test_sale_attributes_are_missing_at_a_sign_up(make_ctx):
    ctx = make_ctx(signup=True)
    failed = (Attr("sale.amount") >= usd(1)).failure(ctx)
    assert failed == "sale.amount >= 1.00 USD (sale.amount is missing)"
    assert holds(Attr("referee.purchase_number") == 0, ctx)


def test_all_reports_the_first_false_clause_and_any_every_clause(make_ctx):
    ctx = make_ctx("30.00")
    both = All([Attr("referral.channel") == "email", Attr("sale.amount") >= usd(50)])
    assert both.failure(ctx) == "sale.amount >= 50.00 USD (was 30.00 USD)"
    either = Any([Attr("referral.channel") == "sms", Attr("sale.amount") >= usd(50)])
    assert either.failure(ctx) == (
        "none of: referral.channel == 'sms' (was 'email'); sale.amount >= 50.00 USD (was 30.00 USD)"
    )
    assert holds(Any([both, Attr("referral.channel") == "email"]), ctx)


def test_when_records_the_false_clause_in_a_skipped_decision(make_ctx):
    policy = when(
        Attr("sale.amount") >= usd(50), SingleSided(referrer=rk.Cash(usd(10)), name="big")
    )
    assert policy.name == "big"
    assert policy.trigger is rk.Trigger.FIRST_PURCHASE
    result = policy.evaluate(make_ctx("30.00"))
    assert result.grants == ()
    (decision,) = result.decisions
    assert (decision.source, decision.verdict, decision.code) == (
        "big",
        rk.Verdict.SKIPPED,
        "condition.false",
    )
    assert (
        decision.message() == "the condition was not met: sale.amount >= 50.00 USD (was 30.00 USD)"
    )
    assert len(policy.evaluate(make_ctx("50.00")).grants) == 1


def test_when_needs_the_counters_of_its_condition_and_policy():
    policy = when(
        Attr("referrer.successful_referrals") >= 2,
        SingleSided(referrer=rk.Cash(usd(10))),
    )
    assert policy.needs() == {rk.Counter.REFERRER_SUCCESSFUL_REFERRALS}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Attr("sale.colour"), "attr"),
        (lambda: Compare("referee.country", "==", "DE"), "compare.attribute"),
        (lambda: Compare("sale.amount", "~=", usd(1)), "compare.op"),
        (lambda: Compare("sale.skus", "==", "tv"), "compare.op"),
        (lambda: Compare("sale.amount", ">=", "50"), "compare.value"),
        (lambda: Compare("sale.item_count", ">=", True), "compare.value"),
        (lambda: Compare("referral.channel", "in", []), "compare.value"),
        (lambda: Compare("referral.channel", "in", ["a", 1]), "compare.value[1]"),
        (lambda: All([]), "conditions"),
        (lambda: All(["x"]), "conditions[0]"),
        (lambda: when("x", SingleSided(referrer=rk.Points(1))), "when.condition"),
        (lambda: when(Attr("sale.item_count") > 1, "x"), "when.policy"),
    ],
)
def test_bad_conditions_are_refused_with_the_field(build, field):
    with pytest.raises(rk.InvalidProgramError) as info:
        build()
    assert info.value.field == field


def test_a_money_value_in_another_currency_is_refused_by_the_program():
    from datetime import UTC, datetime

    policy = when(Attr("sale.amount") >= rk.Money(50, "EUR"), SingleSided(referrer=rk.Points(1)))
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program(
            id="p", effective_at=datetime(2026, 1, 1, tzinfo=UTC), currency=USD, policies=[policy]
        )
    assert info.value.field == "single_sided.condition"
