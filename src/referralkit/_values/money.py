"""Money: a ``Decimal`` amount in one ISO 4217 currency, rounded to its minor unit."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Final

import attrs
from iso4217 import Currency

from referralkit._errors import CurrencyMismatchError, InvalidInputError
from referralkit._values.canonical import register_encoder

__all__ = ["ROUNDING_MODES", "Money", "currency_exponent", "parse_amount"]

#: The rounding modes a program may choose; ``ROUND_HALF_UP`` is the default.
ROUNDING_MODES: Final = frozenset(
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

# Looked up once: currency code -> number of minor-unit digits. Currencies without a
# minor unit in ISO 4217 (precious metals, XXX) cannot carry money amounts.
_EXPONENTS: Final[dict[str, int]] = {c.code: c.exponent for c in Currency if c.exponent is not None}
_QUANTA: Final[dict[int, Decimal]] = {e: Decimal(1).scaleb(-e) for e in range(0, 5)}


def currency_exponent(currency: object, field: str = "currency") -> int:
    """Minor-unit digits of an ISO 4217 currency code (2 for USD, 0 for JPY, 3 for BHD).

    Raises:
        InvalidInputError: not an ISO 4217 code with a minor unit.
    """
    if not isinstance(currency, str):
        raise InvalidInputError(field, currency, "must be an ISO 4217 code such as 'USD'")
    try:
        return _EXPONENTS[currency]
    except KeyError:
        raise InvalidInputError(
            field, currency, "is not an ISO 4217 currency code with a minor unit"
        ) from None


def parse_amount(value: object, field: str) -> Decimal:
    """A finite ``Decimal`` from ``str``, ``int`` (major units) or ``Decimal``; never float."""
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, bool):
        raise InvalidInputError(field, value, "must be a str, int or Decimal, not bool")
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        try:
            amount = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise InvalidInputError(field, value, "is not a decimal number") from None
    elif isinstance(value, float):
        raise InvalidInputError(
            field, value, "floats are not accepted for money; pass a str or Decimal"
        )
    else:
        raise InvalidInputError(field, value, "must be a str, int or Decimal")
    if not amount.is_finite():
        raise InvalidInputError(field, value, "must be a finite number")
    return amount


def _check_factor(field: str, value: object) -> None:
    """A finite ``Decimal`` or ``int`` to compute with (never float or bool)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidInputError(field, value, "must be a Decimal or an int")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidInputError(field, value, "must be a finite number")


# Every rounding mode of ``decimal``: a computation may use any, a program only ROUNDING_MODES.
_DECIMAL_ROUNDINGS: Final = ROUNDING_MODES | {decimal.ROUND_05UP}


def _check_rounding(rounding: object) -> None:
    if not isinstance(rounding, str) or rounding not in _DECIMAL_ROUNDINGS:
        raise InvalidInputError(
            "rounding", rounding, f"must be one of {sorted(_DECIMAL_ROUNDINGS)}"
        )


def _quantized(
    compute: Callable[[], Decimal], exponent: int, rounding: str, field: str, value: object
) -> Decimal:
    """``compute()`` rounded to ``exponent`` places; a result beyond ``decimal``'s range is
    bad input in ``field``."""
    try:
        return compute().quantize(_QUANTA[exponent], rounding=rounding)
    except decimal.DecimalException:
        raise InvalidInputError(field, value, "is too large") from None


@attrs.frozen(init=False, repr=False, order=False)
class Money:
    """An amount of one ISO 4217 currency, exact to the currency's minor unit.

    ``Money("19.99", "USD")``; amounts come from ``str``, ``int`` (major units) or
    ``Decimal``, never ``float``. An amount with more decimal places than the currency
    allows is an error: round it yourself first, or let a computation such as
    [`percent_of`][referralkit.Money.percent_of] round it with an explicit mode.

    Arithmetic is only defined within one currency; ``Money + 0`` is allowed so that
    ``sum()`` works. Money may be negative (balances can be); events reject negative
    amounts at their own boundary.

    Args:
        amount: The amount in major units.
        currency: An ISO 4217 code, upper case (``"USD"``).

    Raises:
        InvalidInputError: a float, a non-number, or too many decimal places.
        InvalidInputError: an unknown currency code.
    """

    amount: Decimal
    currency: str

    def __init__(self, amount: object, currency: object, *, field: str = "amount") -> None:
        exponent = currency_exponent(currency, "currency")
        value = parse_amount(amount, field)
        quantum = _QUANTA[exponent]
        try:
            quantized = value.quantize(quantum)
        except decimal.InvalidOperation:
            raise InvalidInputError(field, amount, "is too large") from None
        if quantized != value:
            raise InvalidInputError(
                field,
                amount,
                f"has more decimal places than {currency} allows ({exponent})",
            )
        object.__setattr__(self, "amount", quantized)
        object.__setattr__(self, "currency", currency)

    @classmethod
    def _trusted(cls, amount: Decimal, currency: str) -> Money:
        """Build without validation; ``amount`` must already be quantized."""
        self = object.__new__(cls)
        _set_amount(self, amount)  # the slots' own setters: see _fastinit
        _set_currency(self, currency)
        return self

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``."""
        return cls(0, currency)

    @classmethod
    def from_minor(cls, units: int, currency: str) -> Money:
        """Money from an integer count of minor units (cents for USD)."""
        exponent = currency_exponent(currency)
        if isinstance(units, bool) or not isinstance(units, int):
            raise InvalidInputError("units", units, "must be an int")
        try:
            amount = Decimal(units).scaleb(-exponent).quantize(_QUANTA[exponent])
        except decimal.InvalidOperation:
            raise InvalidInputError("units", units, "is too large") from None
        return cls._trusted(amount, currency)

    @classmethod
    def rounded(
        cls, amount: Decimal, currency: str, rounding: str = decimal.ROUND_HALF_UP
    ) -> Money:
        """Money from a computed amount, rounded to the minor unit with ``rounding``."""
        exponent = currency_exponent(currency)
        _check_factor("amount", amount)
        _check_rounding(rounding)
        quantized = _quantized(lambda: Decimal(amount), exponent, rounding, "amount", amount)
        return cls._trusted(quantized, currency)

    @property
    def exponent(self) -> int:
        """Minor-unit digits of this currency."""
        return _EXPONENTS[self.currency]

    def to_minor(self) -> int:
        """The amount as an integer count of minor units (exact)."""
        return int(self.amount.scaleb(self.exponent))

    def percent_of(self, percent: Decimal, rounding: str = decimal.ROUND_HALF_UP) -> Money:
        """``percent`` % of this amount, rounded to the minor unit.

        Args:
            percent: ``Decimal("15")`` means 15 %.
            rounding: A ``decimal`` rounding mode; half-up by default, as commerce expects
                (2.9 % of 5.00 USD is 0.15 USD).
        """
        _check_factor("percent", percent)
        _check_rounding(rounding)
        value = _quantized(
            lambda: self.amount * percent / 100, self.exponent, rounding, "percent", percent
        )
        return self._trusted(value, self.currency)

    def scaled(self, factor: Decimal, rounding: str = decimal.ROUND_HALF_UP) -> Money:
        """This amount times ``factor``, rounded to the minor unit with ``rounding``."""
        _check_factor("factor", factor)
        _check_rounding(rounding)
        value = _quantized(lambda: self.amount * factor, self.exponent, rounding, "factor", factor)
        return self._trusted(value, self.currency)

    def is_zero(self) -> bool:
        """Whether the amount is zero."""
        return not self.amount

    def _other(self, other: object, op: str) -> Money:
        if isinstance(other, Money):
            if other.currency != self.currency:
                raise CurrencyMismatchError(
                    "currency",
                    other.currency,
                    f"cannot {op} {other.currency} and {self.currency}",
                )
            return other
        raise TypeError(f"cannot {op} Money and {type(other).__name__}")

    def __add__(self, other: object) -> Money:
        if isinstance(other, int) and not isinstance(other, bool) and other == 0:
            return self
        return Money._trusted(self.amount + self._other(other, "add").amount, self.currency)

    __radd__ = __add__

    def __sub__(self, other: object) -> Money:
        return Money._trusted(self.amount - self._other(other, "subtract").amount, self.currency)

    def __neg__(self) -> Money:
        return Money._trusted(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._other(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._other(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._other(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._other(other, "compare").amount

    def __repr__(self) -> str:
        return f"Money('{self.amount}', '{self.currency}')"

    def __str__(self) -> str:
        amount = self.amount
        if -1000 < amount < 1000:
            return f"{amount} {self.currency}"
        return f"{amount:,} {self.currency}"


# Money is frozen: its slots are set through their descriptors, without the name lookup of
# ``object.__setattr__`` (``_trusted`` makes the amounts the engine computes).
_set_amount = Money.__dict__["amount"].__set__
_set_currency = Money.__dict__["currency"].__set__


def _encode_money(value: Money) -> str:
    return f"{value.amount} {value.currency}"


register_encoder(Money, _encode_money)
