"""Reward values: what a grant gives (cash, credit, a discount, a free period, points, a badge).

Every value has a [`Unit`][referralkit.Unit] and a quantity, so balances can be kept per unit:
cash USD and credit USD are different units, points live in a named account, free periods
count whole days or months, and a badge is an entitlement held rather than a sum.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeAlias

import attrs

from referralkit._errors import InvalidInputError
from referralkit._values._fastinit import fast_init
from referralkit._values.money import Money, currency_exponent

__all__ = [
    "Badge",
    "Cash",
    "Credit",
    "Discount",
    "FreePeriod",
    "Points",
    "RewardValue",
    "Unit",
    "describe",
    "reward_from_quantity",
]


@fast_init  # made for every reward value's unit: a faster __init__ (see _fastinit)
@attrs.frozen(order=True)
class Unit:
    """What a balance is counted in: a kind and a code.

    ``Unit("cash", "USD")``, ``Unit("credit", "EUR")``, ``Unit("points", "points")``,
    ``Unit("free_period", "months")``, ``Unit("badge", "gold")``.

    Attributes:
        kind: ``cash``, ``credit``, ``discount``, ``discount_percent``, ``free_period``,
            ``points`` or ``badge``.
        code: The currency for money kinds; the account, period unit, percent or badge name
            otherwise.
    """

    kind: str
    code: str

    @property
    def is_money(self) -> bool:
        """Whether quantities of this unit are amounts of the currency in ``code``."""
        return self.kind in _MONEY_KINDS

    @property
    def divisible(self) -> bool:
        """Whether a partial refund reverses part of a quantity of this unit."""
        return self.kind in _MONEY_KINDS or self.kind == "points"

    @property
    def exponent(self) -> int:
        """Decimal places a quantity of this unit may have (the currency's minor unit)."""
        return currency_exponent(self.code) if self.is_money else 0

    def __str__(self) -> str:
        return f"{self.kind} {self.code}"


_MONEY_KINDS = frozenset({"cash", "credit", "discount"})


def _money(field: str) -> Callable[[Any, Any, Any], None]:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, Money):
            raise InvalidInputError(field, value, "must be a Money")
        if value.amount <= 0:
            raise InvalidInputError(field, value, "must be greater than zero")

    return check


@attrs.frozen
class Cash:
    """Money paid out (affiliate style).

    Args:
        amount: A positive amount.
    """

    amount: Money = attrs.field(validator=_money("cash.amount"))

    @property
    def unit(self) -> Unit:
        """``Unit("cash", currency)``."""
        return Unit("cash", self.amount.currency)

    @property
    def quantity(self) -> Decimal:
        """The amount in major units."""
        return self.amount.amount

    def __str__(self) -> str:
        return f"{self.amount} cash"


@attrs.frozen
class Credit:
    """Account or store credit (referral style).

    Args:
        amount: A positive amount.
    """

    amount: Money = attrs.field(validator=_money("credit.amount"))

    @property
    def unit(self) -> Unit:
        """``Unit("credit", currency)``."""
        return Unit("credit", self.amount.currency)

    @property
    def quantity(self) -> Decimal:
        """The amount in major units."""
        return self.amount.amount

    def __str__(self) -> str:
        return f"{self.amount} credit"


@attrs.frozen
class Discount:
    """A discount on a future order: a percent off, or a fixed amount off.

    Give exactly one of ``percent`` and ``amount``.

    Args:
        percent: In (0, 100]; ``Decimal("10")`` means 10 % off.
        amount: A fixed positive amount off.
    """

    percent: Decimal | None = None
    amount: Money | None = None

    def __attrs_post_init__(self) -> None:
        if (self.percent is None) == (self.amount is None):
            raise InvalidInputError(
                "discount", (self.percent, self.amount), "give exactly one of percent, amount"
            )
        if self.percent is not None:
            if (
                not isinstance(self.percent, Decimal)
                or not self.percent.is_finite()
                or not 0 < self.percent <= 100
            ):
                raise InvalidInputError(
                    "discount.percent", self.percent, "must be a Decimal in (0, 100]"
                )
        elif not isinstance(self.amount, Money) or self.amount.amount <= 0:
            raise InvalidInputError("discount.amount", self.amount, "must be a positive Money")

    @property
    def unit(self) -> Unit:
        """``Unit("discount", currency)``, or ``Unit("discount_percent", "10%")``."""
        if self.amount is not None:
            return Unit("discount", self.amount.currency)
        return Unit("discount_percent", f"{self.percent}%")

    @property
    def quantity(self) -> Decimal:
        """The fixed amount, or 1 voucher for a percent discount."""
        return self.amount.amount if self.amount is not None else Decimal(1)

    def __str__(self) -> str:
        if self.amount is not None:
            return f"{self.amount} off"
        return f"{self.percent}% off"


@attrs.frozen
class FreePeriod:
    """A free period of service, in whole days or whole months (give one of them).

    Args:
        days: Whole days, >= 1.
        months: Whole months, >= 1.
    """

    days: int = 0
    months: int = 0

    def __attrs_post_init__(self) -> None:
        for name in ("days", "months"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(f"free_period.{name}", value, "must be a whole number >= 0")
        if (self.days > 0) == (self.months > 0):
            raise InvalidInputError(
                "free_period", (self.days, self.months), "give exactly one of days, months (> 0)"
            )

    @property
    def unit(self) -> Unit:
        """``Unit("free_period", "days")`` or ``Unit("free_period", "months")``."""
        return Unit("free_period", "days" if self.days else "months")

    @property
    def quantity(self) -> Decimal:
        """The number of days or months."""
        return Decimal(self.days or self.months)

    def __str__(self) -> str:
        n, word = (self.days, "day") if self.days else (self.months, "month")
        return f"{n} free {word}{'s' if n != 1 else ''}"


@attrs.frozen
class Points:
    """Loyalty points credited to a named account.

    Args:
        points: A whole number of points, >= 1.
        account: The points account (``"points"`` by default).
    """

    points: int
    account: str = "points"

    def __attrs_post_init__(self) -> None:
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 1:
            raise InvalidInputError("points.points", self.points, "must be a whole number >= 1")
        if not isinstance(self.account, str) or not self.account:
            raise InvalidInputError("points.account", self.account, "must be a non-empty string")

    @property
    def unit(self) -> Unit:
        """``Unit("points", account)``."""
        return Unit("points", self.account)

    @property
    def quantity(self) -> Decimal:
        """The number of points."""
        return Decimal(self.points)

    def __str__(self) -> str:
        return f"{self.points} {self.account}"


@attrs.frozen
class Badge:
    """A badge or status entitlement, held rather than summed.

    Args:
        name: The badge, such as ``"gold"``.
    """

    name: str

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInputError("badge.name", self.name, "must be a non-empty string")

    @property
    def unit(self) -> Unit:
        """``Unit("badge", name)``."""
        return Unit("badge", self.name)

    @property
    def quantity(self) -> Decimal:
        """Always 1: one badge."""
        return Decimal(1)

    def __str__(self) -> str:
        return f"badge {self.name!r}"


RewardValue: TypeAlias = Cash | Credit | Discount | FreePeriod | Points | Badge
"""Any reward value."""


def reward_from_quantity(value: RewardValue, quantity: Decimal) -> RewardValue:
    """A value of the same unit as ``value`` holding ``quantity`` (used for clamping)."""
    if isinstance(value, Cash):
        return Cash(Money._trusted(quantity, value.amount.currency))
    if isinstance(value, Credit):
        return Credit(Money._trusted(quantity, value.amount.currency))
    if isinstance(value, Discount) and value.amount is not None:
        return Discount(amount=Money._trusted(quantity, value.amount.currency))
    if isinstance(value, Points):
        return Points(int(quantity), value.account)
    if isinstance(value, FreePeriod):
        return FreePeriod(days=int(quantity)) if value.days else FreePeriod(months=int(quantity))
    return value


def describe(value: RewardValue, quantity: Decimal) -> str:
    """``quantity`` of ``value``'s unit in words, as grants print ("5.00 USD cash")."""
    return str(reward_from_quantity(value, quantity))
