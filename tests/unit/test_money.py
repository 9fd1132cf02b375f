"""Money: exact Decimal amounts in one ISO 4217 currency."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest

import referralkit as rk


def usd(amount: str | int | Decimal) -> rk.Money:
    return rk.Money(amount, "USD")


@pytest.mark.parametrize("amount", ["19.99", 19, Decimal("19.99"), " 19.99 ", "1999E-2"])
def test_money_is_built_from_str_int_or_decimal(amount: str | int | Decimal) -> None:
    money = usd(amount)
    assert isinstance(money.amount, Decimal)
    assert money.amount == Decimal(amount if not isinstance(amount, str) else amount.strip())


def test_amounts_are_quantized_to_the_minor_unit() -> None:
    assert str(usd(20).amount) == "20.00"
    assert str(rk.Money(500, "JPY").amount) == "500"
    assert str(rk.Money("1.5", "BHD").amount) == "1.500"
    assert usd("80") == usd("80.00")
    assert hash(usd("80")) == hash(usd("80.00"))


@pytest.mark.parametrize(
    ("amount", "problem"),
    [
        (1.5, "float"),
        (True, "bool"),
        ("twelve", "not a decimal number"),
        ("NaN", "finite"),
        (Decimal("Infinity"), "finite"),
        (None, "str, int or Decimal"),
        ("0.001", "more decimal places"),
    ],
)
def test_bad_amounts_are_refused_with_the_field_and_the_value(amount: object, problem: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Money(amount, "USD")
    err = info.value
    assert (err.field, err.value) == ("amount", amount)
    assert problem in err.problem
    assert str(err).startswith(f"amount={amount!r}: ")
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("currency", ["usd", "XYZ", "XAU", "", 840, None])
def test_unknown_currencies_are_refused(currency: object) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Money("1.00", currency)
    assert (info.value.field, info.value.value) == ("currency", currency)


def test_the_amount_field_name_can_be_given() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Money(1.0, "USD", field="order.total")
    assert info.value.field == "order.total"


def test_an_amount_too_large_to_quantize_is_an_input_error() -> None:
    with pytest.raises(rk.InvalidInputError):
        rk.Money("1" * 30, "USD")


def test_minor_units_round_trip() -> None:
    assert usd("19.99").to_minor() == 1999
    assert rk.Money.from_minor(1999, "USD") == usd("19.99")
    assert rk.Money.from_minor(-5, "USD") == usd("-0.05")
    assert rk.Money.from_minor(500, "JPY") == rk.Money(500, "JPY")
    assert rk.Money.from_minor(1500, "BHD") == rk.Money("1.5", "BHD")
    assert usd("19.99").exponent == 2


@pytest.mark.parametrize("units", [1.0, True, "100"])
def test_from_minor_takes_only_ints(units: object) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Money.from_minor(units, "USD")  # type: ignore[arg-type]
    assert info.value.field == "units"


def test_percent_of_rounds_half_up_by_default_as_commerce_expects() -> None:
    assert usd("5.00").percent_of(Decimal("2.9")) == usd("0.15")
    assert usd("80.00").percent_of(Decimal("15")) == usd("12.00")


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        (decimal.ROUND_HALF_UP, "0.03"),
        (decimal.ROUND_HALF_EVEN, "0.02"),
        (decimal.ROUND_HALF_DOWN, "0.02"),
        (decimal.ROUND_DOWN, "0.02"),
        (decimal.ROUND_UP, "0.03"),
    ],
)
def test_percent_of_uses_the_rounding_mode_given(rounding: str, expected: str) -> None:
    assert usd("0.50").percent_of(Decimal("5"), rounding) == usd(expected)


def test_rounding_ignores_the_active_decimal_context() -> None:
    with decimal.localcontext() as ctx:
        ctx.rounding = decimal.ROUND_DOWN
        assert usd("5.00").percent_of(Decimal("2.9")) == usd("0.15")


def test_scaled_and_rounded_round_to_the_minor_unit() -> None:
    assert usd("10.00").scaled(Decimal(1) / 3) == usd("3.33")
    assert rk.Money.rounded(Decimal("2.675"), "USD") == usd("2.68")
    assert rk.Money.rounded(Decimal("2.5"), "JPY", decimal.ROUND_HALF_EVEN) == rk.Money(2, "JPY")


def test_arithmetic_within_one_currency() -> None:
    assert usd("1.10") + usd("2.20") == usd("3.30")
    assert usd("1.10") - usd("2.20") == usd("-1.10")
    assert -usd("1.10") == usd("-1.10")
    assert usd(1) + 0 == usd(1)
    assert sum([usd("0.10"), usd("0.20")]) == usd("0.30")
    assert usd(0).is_zero()
    assert not usd("0.01").is_zero()
    assert rk.Money.zero("EUR") == rk.Money(0, "EUR")


def test_comparisons_within_one_currency() -> None:
    assert usd(1) < usd(2) <= usd(2) < usd(3)
    assert usd(3) > usd(2) >= usd(2)
    assert usd(1) != rk.Money(1, "EUR")


@pytest.mark.parametrize(
    "op",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
    ],
    ids=["add", "sub", "lt", "ge"],
)
def test_mixing_currencies_is_a_currency_mismatch(op: object) -> None:
    with pytest.raises(rk.CurrencyMismatchError) as info:
        op(usd(1), rk.Money(1, "EUR"))  # type: ignore[operator]
    assert (info.value.field, info.value.value) == ("currency", "EUR")
    assert "EUR" in str(info.value)
    assert "USD" in str(info.value)


def test_money_does_not_mix_with_bare_numbers() -> None:
    with pytest.raises(TypeError):
        usd(1) + Decimal(1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        usd(1) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        usd(1) + 0.0  # type: ignore[operator]


def test_money_is_immutable() -> None:
    money = usd(1)
    with pytest.raises(AttributeError):
        money.amount = Decimal(2)  # type: ignore[misc]


def test_repr_and_str() -> None:
    assert repr(usd("1234.5")) == "Money('1234.50', 'USD')"
    assert str(usd("1234.5")) == "1,234.50 USD"
