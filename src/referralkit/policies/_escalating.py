"""Escalating rewards: each successful referral earns more than the last, up to a ceiling."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import attrs

from referralkit._errors import InvalidProgramError
from referralkit._values.money import Money
from referralkit._values.records import Role
from referralkit._values.rewards import RewardValue, reward_from_quantity
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger
from referralkit.policies._util import (
    as_decimal,
    as_role,
    as_trigger,
    check_value,
    grant,
    require_value,
    scaled_value,
)

__all__ = ["Escalating"]

_TRIGGERS = (Trigger.FIRST_PURCHASE, Trigger.SIGNUP)
_NEEDS = frozenset({Counter.REFERRER_SUCCESSFUL_REFERRALS})
_SCALABLE = frozenset({"cash", "credit", "discount", "points", "free_period"})


def _optional_value(field: str, *, money: bool = True) -> Callable[[object], Any]:
    def convert(value: object) -> Any:
        if value is None or (money and isinstance(value, Money)):
            return value  # Money becomes a value of first's unit after init
        return require_value(field, value)

    return convert


def _first(value: object) -> Any:
    return _optional_value("escalating.first", money=False)(value)


def _step(value: object) -> Any:
    return _optional_value("escalating.step")(value)


def _ceiling(value: object) -> Any:
    return _optional_value("escalating.ceiling")(value)


def _values(value: object) -> tuple[RewardValue, ...] | None:
    if value is None:
        return None
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise InvalidProgramError("escalating.values", value, "must be a sequence of rewards")
    return tuple(require_value(f"escalating.values[{i}]", v) for i, v in enumerate(value))


def _factor(value: object) -> Decimal | None:
    if value is None:
        return None
    factor = as_decimal("escalating.factor", value)
    if factor <= 1:
        raise InvalidProgramError("escalating.factor", value, "must be > 1")
    return factor


def _side(value: object) -> Role:
    return as_role("escalating.side", value)


def _trigger(value: object) -> Trigger:
    return as_trigger("escalating.trigger", value, _TRIGGERS)


@attrs.frozen(kw_only=True)
class Escalating:
    """The reward grows with each successful referral of the referrer, up to a ceiling.

    Give either ``values`` (the n-th referral earns ``values[n-1]``; the last one repeats),
    or ``first`` with one of ``step`` (arithmetic: first, first+step, ...) or ``factor``
    (geometric: first, first*factor, ...) and a ``ceiling``. n is the referrer's count of
    successful referrals before this event, plus one. Computed amounts are rounded to the
    unit's precision with the program's rounding mode.

    Args:
        first: The first referral's reward (money, points or a free period).
        step: Added per referral: a reward of the same unit, or Money for money rewards.
        factor: Multiplied per referral, > 1.
        ceiling: The most one referral earns: a reward of the same unit, or Money.
        values: An explicit, non-decreasing list of rewards of one unit.
        side: Who receives it: the referrer (default) or the referee.
        trigger: ``FIRST_PURCHASE`` (default) or ``SIGNUP``.
        name: The policy's name in grants and decisions.

    Raises:
        InvalidProgramError: a missing or contradictory parameter, a decreasing list, a
            ceiling below ``first``, units that differ.
    """

    first: RewardValue | None = attrs.field(default=None, converter=_first)
    step: RewardValue | None = attrs.field(default=None, converter=_step)
    factor: Decimal | None = attrs.field(default=None, converter=_factor)
    ceiling: RewardValue | None = attrs.field(default=None, converter=_ceiling)
    values: tuple[RewardValue, ...] | None = attrs.field(default=None, converter=_values)
    side: Role = attrs.field(default=Role.REFERRER, converter=_side)
    trigger: Trigger = attrs.field(default=Trigger.FIRST_PURCHASE, converter=_trigger)
    name: str = "escalating"
    _cap_at: int | None = attrs.field(init=False, eq=False, repr=False, default=None)

    def __attrs_post_init__(self) -> None:
        if self.values is not None:
            if any(x is not None for x in (self.first, self.step, self.factor, self.ceiling)):
                raise InvalidProgramError(
                    "escalating.values", self.values, "give values alone, or first with step/factor"
                )
            if not self.values:
                raise InvalidProgramError("escalating.values", self.values, "needs at least one")
            unit = self.values[0].unit
            for i, v in enumerate(self.values[1:], start=1):
                if v.unit != unit:
                    raise InvalidProgramError(
                        f"escalating.values[{i}]", v, f"must be in the unit of values[0] ({unit})"
                    )
                if v.quantity < self.values[i - 1].quantity:
                    raise InvalidProgramError(
                        f"escalating.values[{i}]", v, f"must be >= values[{i - 1}]"
                    )
            return
        first = self.first
        if first is None:
            raise InvalidProgramError(
                "escalating.first", first, "give a reward value such as Cash(...), or values"
            )
        if first.unit.kind not in _SCALABLE:
            raise InvalidProgramError(
                "escalating.first", first, "must be money, points or a free period to grow"
            )
        if (self.step is None) == (self.factor is None):
            raise InvalidProgramError(
                "escalating.step", self.step, "give exactly one of step, factor"
            )
        if self.ceiling is None:
            raise InvalidProgramError("escalating.ceiling", None, "is required with step/factor")
        for field in ("step", "ceiling"):
            value: Any = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, Money):
                if not first.unit.is_money:
                    raise InvalidProgramError(
                        f"escalating.{field}", value, f"must be in the unit of first ({first.unit})"
                    )
                if value.amount <= 0:
                    raise InvalidProgramError(f"escalating.{field}.amount", value, "must be > 0")
                value = reward_from_quantity(first, value.amount)
                object.__setattr__(self, field, value)
            if value.unit != first.unit:
                raise InvalidProgramError(
                    f"escalating.{field}", value, f"must be in the unit of first ({first.unit})"
                )
        assert self.ceiling is not None
        if self.ceiling.quantity < first.quantity:
            raise InvalidProgramError(
                "escalating.ceiling", self.ceiling, f"must be >= first ({first})"
            )
        if self.factor is not None:
            ratio = self.ceiling.quantity / first.quantity
            cap_at = 0 if ratio <= 1 else int((ratio.ln() / self.factor.ln()).to_integral_value())
            # From referral cap_at + 2 on, first * factor^(n-1) is surely above the ceiling.
            object.__setattr__(self, "_cap_at", cap_at + 1)

    def needs(self) -> frozenset[Counter]:
        """The referrer's successful referrals."""
        return _NEEDS

    def check(self, currency: str) -> None:
        """Money values must be in the program's currency."""
        for field in ("first", "step", "ceiling"):
            check_value(f"{self.name}.{field}", getattr(self, field), currency)
        for i, v in enumerate(self.values or ()):
            check_value(f"{self.name}.values[{i}]", v, currency)

    def value_for(self, n: int, rounding: str) -> RewardValue:
        """The n-th successful referral's reward (n >= 1)."""
        if self.values is not None:
            return self.values[min(n, len(self.values)) - 1]
        first, ceiling = self.first, self.ceiling
        assert first is not None
        assert ceiling is not None
        if self.step is not None:
            quantity = first.quantity + self.step.quantity * (n - 1)
        else:
            assert self.factor is not None
            assert self._cap_at is not None
            if n - 1 > self._cap_at:
                return ceiling
            quantity = first.quantity * self.factor ** (n - 1)
        if quantity >= ceiling.quantity:
            return ceiling
        return scaled_value(first, quantity, rounding) or first

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """One grant: the reward for the referral's number."""
        n = int(ctx.count(Counter.REFERRER_SUCCESSFUL_REFERRALS)) + 1
        g, d = grant(ctx, self.name, self.side, self.value_for(n, ctx.rounding), n=n)
        return PolicyResult((g,), (d,))
