"""Exchange rates: a rate as a value, a static table of rates, and converting a purchase.

A program pays in its own currency. A purchase in another currency is converted through the
host's [`ExchangeRates`][referralkit.ExchangeRates] port (``Engine(exchange_rates=...)``):
each amount is multiplied by the rate and rounded to the program currency's minor unit with
the program's rounding mode (``ROUND_HALF_UP`` by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal

import attrs

from referralkit._errors import ExchangeRateError, InvalidInputError
from referralkit._values.events import LineItem, Purchase
from referralkit._values.money import Money, currency_exponent, parse_amount

__all__ = ["FixedRates", "Rate", "convert", "convert_purchase"]


_PLACES = 12
_TOO_LARGE = Decimal(10) ** 12


def _rate_value(value: object) -> Decimal:
    try:
        amount = parse_amount(value, "rate.value")
    except InvalidInputError as exc:
        raise ExchangeRateError("rate.value", value, exc.problem) from None
    if amount <= 0:
        raise ExchangeRateError("rate.value", value, "must be greater than zero")
    exponent = amount.as_tuple().exponent
    if not isinstance(exponent, int) or exponent < -_PLACES or amount >= _TOO_LARGE:
        raise ExchangeRateError(
            "rate.value", value, f"must be below 10**12 with at most {_PLACES} decimal places"
        )
    return amount


def _rate_on(value: object) -> date:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ExchangeRateError("rate.on", value, "a datetime must be timezone-aware")
        return value.date()
    if not isinstance(value, date):
        raise ExchangeRateError("rate.on", value, "must be a date")
    return value


@attrs.frozen
class Rate:
    """An exchange rate: one unit of the base currency is worth ``value`` units of the quote
    currency (``Rate(Decimal("1.0850"), date(2026, 3, 2))`` for EUR→USD: 1 EUR = 1.085 USD).

    Args:
        value: A positive ``Decimal`` (or ``str`` / ``int``), never a float; below 10**12,
            with at most 12 decimal places.
        on: The date the rate was published or fixed for; a timezone-aware datetime is
            taken as its date.

    Raises:
        ExchangeRateError: a value that is not a positive number, or ``on`` not a date.
    """

    value: Decimal = attrs.field(converter=_rate_value)
    on: date = attrs.field(converter=_rate_on)

    def __str__(self) -> str:
        return f"{self.value} on {self.on.isoformat()}"


def _pair(key: object) -> tuple[str, str]:
    if not isinstance(key, tuple) or len(key) != 2:
        raise InvalidInputError("rates", key, "keys must be (base, quote) currency pairs")
    base, quote = key
    currency_exponent(base, "rates.base")
    currency_exponent(quote, "rates.quote")
    if base == quote:
        raise InvalidInputError("rates", key, "base and quote must differ")
    return base, quote


def _table(value: Mapping[tuple[str, str], object]) -> Mapping[tuple[str, str], Decimal]:
    if not isinstance(value, Mapping):
        raise InvalidInputError("rates", value, "must map (base, quote) pairs to rates")
    return {_pair(k): _rate_value(v) for k, v in value.items()}


@attrs.frozen
class FixedRates:
    """An [`ExchangeRates`][referralkit.ExchangeRates] from a static table, for tests,
    notebooks and hosts whose rates are fixed by contract.

    ``FixedRates({("EUR", "USD"): "1.0850"})``. A pair is used only in the direction given
    (the inverse is not derived: add it if you need it). Unknown pairs have no rate.

    Args:
        rates: ``(base, quote) -> rate``: one ``base`` unit is worth ``rate`` ``quote`` units.
        on: The date recorded as the rate's date; by default the purchase's own date (in
            the program's time zone: the engine gives the port the purchase time there).

    Raises:
        InvalidInputError: an unknown currency code or a pair of one currency.
        ExchangeRateError: a rate that is not a positive number.
    """

    rates: Mapping[tuple[str, str], Decimal] = attrs.field(converter=_table)
    on: date | None = None

    def rate(self, base: str, quote: str, on: datetime) -> Rate | None:
        """The table's rate for ``base`` → ``quote``, or None."""
        value = self.rates.get((base, quote))
        if value is None:
            return None
        return Rate(value, self.on if self.on is not None else on.date())


def convert(amount: Money, rate: Rate, currency: str, rounding: str) -> Money:
    """``amount`` times ``rate.value``, in ``currency``, rounded to its minor unit with
    ``rounding``."""
    return Money.rounded(amount.amount * rate.value, currency, rounding)


def convert_purchase(purchase: Purchase, rate: Rate, currency: str, rounding: str) -> Purchase:
    """The purchase with every amount (total, subtotal, discount, tax, shipping and each line
    item's unit price) converted by ``convert``; each is rounded on its own, so the converted
    parts may differ from the converted total by a minor unit."""

    def one(value: Money | None) -> Money | None:
        return None if value is None else convert(value, rate, currency, rounding)

    items = tuple(
        LineItem(
            sku=i.sku,
            quantity=i.quantity,
            unit_price=convert(i.unit_price, rate, currency, rounding),
            category=i.category,
        )
        for i in purchase.items
    )
    return attrs.evolve(
        purchase,
        amount=convert(purchase.amount, rate, currency, rounding),
        subtotal=one(purchase.subtotal),
        discount=one(purchase.discount),
        tax=one(purchase.tax),
        shipping=one(purchase.shipping),
        items=items,
    )
