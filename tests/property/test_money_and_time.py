"""Invariant 6: money is an exact Decimal in one currency, datetimes are timezone-aware."""

from __future__ import annotations

import decimal
import operator
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing.invariants import round_fraction
from referralkit.testing.strategies import aware_datetimes, currencies, money

ROUNDINGS = sorted(
    {
        decimal.ROUND_HALF_UP,
        decimal.ROUND_HALF_EVEN,
        decimal.ROUND_HALF_DOWN,
        decimal.ROUND_UP,
        decimal.ROUND_DOWN,
        decimal.ROUND_CEILING,
        decimal.ROUND_FLOOR,
    }
)
percents = st.decimals(min_value=0, max_value=100, places=2)
START = datetime(2026, 1, 5, tzinfo=UTC)


def _pair_of_currencies():
    return st.lists(currencies(), min_size=2, max_size=2, unique=True)


@given(st.floats(allow_nan=True, allow_infinity=True), currencies())
def test_money_never_accepts_a_float(value, currency):
    """A float amount is refused, however exact it looks; so is float arithmetic."""
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Money(value, currency)
    assert info.value.field == "amount"
    with pytest.raises(TypeError):
        rk.Money(1, currency) + value


@given(st.integers(-(10**12), 10**12), currencies())
def test_money_from_minor_units_is_exact(units, currency):
    """Money built from minor units gives them back, and equals the same amount as text."""
    amount = rk.Money.from_minor(units, currency)
    assert isinstance(amount.amount, Decimal)
    assert amount.to_minor() == units
    assert rk.Money(str(amount.amount), currency) == amount


@given(money(), st.integers(1, 3))
def test_more_decimal_places_than_the_currency_allows_are_refused(amount, extra):
    """An amount finer than the currency's minor unit is an error, not silently rounded."""
    finer = amount.amount + Decimal(1).scaleb(-(amount.exponent + extra))
    with pytest.raises(rk.InvalidInputError):
        rk.Money(finer, amount.currency)


def test_two_point_nine_percent_of_five_dollars_is_fifteen_cents():
    """2.9 % of 5.00 USD (0.145) rounds half-up to 0.15 USD."""
    assert rk.Money("5.00", "USD").percent_of(Decimal("2.9")) == rk.Money("0.15", "USD")


@given(money(min_value=0, max_value=100_000), percents)
def test_percent_of_rounds_half_up_to_the_minor_unit(amount, percent):
    """percent_of is the exact value rounded half-up to the currency's minor unit."""
    exact = Fraction(amount.to_minor()) * Fraction(percent) / 100
    expected = rk.Money.from_minor(round_fraction(exact, decimal.ROUND_HALF_UP), amount.currency)
    assert amount.percent_of(percent) == expected


@given(money(min_value=-100_000, max_value=100_000), percents, st.sampled_from(ROUNDINGS))
def test_percent_of_rounds_with_the_mode_given(amount, percent, rounding):
    """With an explicit rounding mode, percent_of rounds the exact value with that mode."""
    exact = Fraction(amount.to_minor()) * Fraction(percent) / 100
    expected = rk.Money.from_minor(round_fraction(exact, rounding), amount.currency)
    assert amount.percent_of(percent, rounding) == expected


@given(_pair_of_currencies(), st.data())
def test_mixing_currencies_is_an_error(codes, data):
    """Adding, subtracting, comparing or summing two currencies raises
    CurrencyMismatchError."""
    a = data.draw(money(codes[0]), label="a")
    b = data.draw(money(codes[1]), label="b")
    for op in (operator.add, operator.sub, operator.lt, operator.le, operator.gt, operator.ge):
        with pytest.raises(rk.CurrencyMismatchError):
            op(a, b)
    with pytest.raises(rk.CurrencyMismatchError):
        sum([a, b])


@given(_pair_of_currencies(), st.data())
def test_a_purchase_or_refund_in_another_currency_is_refused_and_writes_nothing(codes, data):
    """The engine refuses a purchase in a currency other than the program's, and a refund
    in a currency other than its order's, and writes nothing."""
    program_currency, other = codes
    program = rk.Program(
        id="p",
        effective_at=START,
        currency=program_currency,
        policies=[rk.SingleSided(rk.Points(10))],
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    paid = data.draw(money(program_currency, min_value=1), label="paid")
    engine.handle(
        rk.Purchase(event_id="p1", participant_id="bob", order_id="o1", amount=paid, at=START)
    )
    before = engine.store.dump()
    foreign = data.draw(money(other, min_value=1), label="foreign")
    with pytest.raises(rk.CurrencyMismatchError):
        engine.handle(
            rk.Purchase(
                event_id="p2", participant_id="bob", order_id="o2", amount=foreign, at=START
            )
        )
    with pytest.raises(rk.CurrencyMismatchError):
        engine.handle(
            rk.Refund(event_id="r1", refund_id="r1", order_id="o1", amount=foreign, at=START)
        )
    assert engine.store.dump() == before


def _event(kind: str, at: datetime) -> object:
    cent = rk.Money("0.01", "USD")
    if kind == "click":
        return rk.Click(event_id="e", at=at)
    if kind == "signup":
        return rk.Signup(event_id="e", participant_id="bob", at=at)
    if kind == "purchase":
        return rk.Purchase(event_id="e", participant_id="bob", order_id="o", amount=cent, at=at)
    if kind == "refund":
        return rk.Refund(event_id="e", refund_id="r", order_id="o", amount=cent, at=at)
    return rk.Chargeback(event_id="e", chargeback_id="c", order_id="o", at=at)


@given(st.sampled_from(["click", "signup", "purchase", "refund", "chargeback"]), st.datetimes())
def test_a_naive_datetime_is_refused_by_every_event_type(kind, naive):
    """Every event type raises NaiveDatetimeError naming '<type>.at' for a naive datetime."""
    with pytest.raises(rk.NaiveDatetimeError) as info:
        _event(kind, naive)
    assert info.value.field == f"{kind}.at"


@given(st.sampled_from(["click", "signup", "purchase", "refund", "chargeback"]), aware_datetimes())
def test_an_aware_datetime_in_any_zone_is_accepted_by_every_event_type(kind, at):
    """Every event type accepts an aware datetime in any time zone."""
    assert _event(kind, at).at == at


@given(st.datetimes())
def test_a_naive_datetime_is_refused_by_programs_clocks_and_settle(naive):
    """A program's effective_at (as a bad term), a ManualClock and Engine.settle refuse
    naive datetimes."""
    policies = [rk.SingleSided(rk.Points(1))]
    with pytest.raises(rk.InvalidInputError, match="timezone-aware") as info:
        rk.Program(id="p", effective_at=naive, currency="USD", policies=policies)
    assert info.value.field == "program.effective_at"
    with pytest.raises(rk.NaiveDatetimeError):
        rk.ManualClock(naive)
    program = rk.Program(id="p", effective_at=START, currency="USD", policies=policies)
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    before = engine.store.dump()
    with pytest.raises(rk.NaiveDatetimeError):
        engine.settle(naive)
    assert engine.store.dump() == before
