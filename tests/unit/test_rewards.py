"""Reward values: each has a unit and a quantity, and refuses values it cannot hold."""

from __future__ import annotations

from decimal import Decimal

import pytest

import referralkit as rk
from referralkit._values.rewards import reward_from_quantity


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


@pytest.mark.parametrize(
    ("value", "unit", "quantity", "text"),
    [
        (rk.Cash(usd(20)), rk.Unit("cash", "USD"), Decimal("20.00"), "20.00 USD cash"),
        (rk.Credit(usd(10)), rk.Unit("credit", "USD"), Decimal("10.00"), "10.00 USD credit"),
        (rk.Discount(amount=usd(5)), rk.Unit("discount", "USD"), Decimal(5), "5.00 USD off"),
        (
            rk.Discount(percent=Decimal("10")),
            rk.Unit("discount_percent", "10%"),
            Decimal(1),
            "10% off",
        ),
        (rk.FreePeriod(days=14), rk.Unit("free_period", "days"), Decimal(14), "14 free days"),
        (rk.FreePeriod(months=1), rk.Unit("free_period", "months"), Decimal(1), "1 free month"),
        (rk.Points(250), rk.Unit("points", "points"), Decimal(250), "250 points"),
        (rk.Points(5, account="miles"), rk.Unit("points", "miles"), Decimal(5), "5 miles"),
        (rk.Badge("gold"), rk.Unit("badge", "gold"), Decimal(1), "badge 'gold'"),
    ],
)
def test_each_value_has_a_unit_a_quantity_and_a_readable_form(
    value: rk.RewardValue, unit: rk.Unit, quantity: Decimal, text: str
) -> None:
    assert value.unit == unit
    assert value.quantity == quantity
    assert str(value) == text


def test_cash_and_credit_in_one_currency_are_different_units() -> None:
    assert rk.Cash(usd(1)).unit != rk.Credit(usd(1)).unit


@pytest.mark.parametrize(
    ("unit", "is_money", "divisible", "exponent"),
    [
        (rk.Unit("cash", "USD"), True, True, 2),
        (rk.Unit("credit", "JPY"), True, True, 0),
        (rk.Unit("discount", "BHD"), True, True, 3),
        (rk.Unit("points", "points"), False, True, 0),
        (rk.Unit("free_period", "days"), False, False, 0),
        (rk.Unit("discount_percent", "10%"), False, False, 0),
        (rk.Unit("badge", "gold"), False, False, 0),
    ],
)
def test_units_know_whether_they_are_money_and_whether_they_split(
    unit: rk.Unit, is_money: bool, divisible: bool, exponent: int
) -> None:
    assert (unit.is_money, unit.divisible, unit.exponent) == (is_money, divisible, exponent)


def test_units_sort_by_kind_then_code() -> None:
    units = [rk.Unit("points", "a"), rk.Unit("cash", "USD"), rk.Unit("cash", "EUR")]
    assert sorted(units) == [units[2], units[1], units[0]]
    assert str(units[1]) == "cash USD"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: rk.Cash(usd(0)), "cash.amount"),
        (lambda: rk.Cash(usd(-1)), "cash.amount"),
        (lambda: rk.Cash(Decimal(5)), "cash.amount"),
        (lambda: rk.Credit(usd(0)), "credit.amount"),
        (rk.Discount, "discount"),
        (lambda: rk.Discount(percent=Decimal(10), amount=usd(1)), "discount"),
        (lambda: rk.Discount(percent=Decimal(0)), "discount.percent"),
        (lambda: rk.Discount(percent=Decimal("100.01")), "discount.percent"),
        (lambda: rk.Discount(percent=10), "discount.percent"),
        (lambda: rk.Discount(percent=Decimal("NaN")), "discount.percent"),
        (lambda: rk.Discount(amount=usd(-1)), "discount.amount"),
        (rk.FreePeriod, "free_period"),
        (lambda: rk.FreePeriod(days=1, months=1), "free_period"),
        (lambda: rk.FreePeriod(days=-1), "free_period.days"),
        (lambda: rk.FreePeriod(months=True), "free_period.months"),
        (lambda: rk.Points(0), "points.points"),
        (lambda: rk.Points(1.5), "points.points"),
        (lambda: rk.Points(True), "points.points"),
        (lambda: rk.Points(1, account=""), "points.account"),
        (lambda: rk.Badge(" "), "badge.name"),
    ],
)
def test_values_that_cannot_be_rewards_are_refused(build: object, field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        build()  # type: ignore[operator]
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}=")


def test_a_full_percent_discount_is_allowed() -> None:
    assert rk.Discount(percent=Decimal(100)).quantity == 1


def test_values_are_immutable_and_compare_by_value() -> None:
    assert rk.Cash(usd(20)) == rk.Cash(usd("20.00"))
    assert rk.Cash(usd(20)) != rk.Credit(usd(20))
    with pytest.raises(AttributeError):
        rk.Points(1).points = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "quantity", "expected"),
    [
        (rk.Cash(usd(20)), Decimal("5.00"), rk.Cash(usd(5))),
        (rk.Credit(usd(20)), Decimal("7.50"), rk.Credit(usd("7.50"))),
        (rk.Discount(amount=usd(20)), Decimal("1.00"), rk.Discount(amount=usd(1))),
        (rk.Points(100, "miles"), Decimal(40), rk.Points(40, "miles")),
        (rk.FreePeriod(days=30), Decimal(7), rk.FreePeriod(days=7)),
        (rk.FreePeriod(months=3), Decimal(1), rk.FreePeriod(months=1)),
        (rk.Badge("gold"), Decimal(1), rk.Badge("gold")),
    ],
)
def test_reward_from_quantity_keeps_the_unit(
    value: rk.RewardValue, quantity: Decimal, expected: rk.RewardValue
) -> None:
    clamped = reward_from_quantity(value, quantity)
    assert clamped == expected
    assert clamped.unit == value.unit
