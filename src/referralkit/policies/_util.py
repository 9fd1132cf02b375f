"""Helpers shared by the built-in policies: validation with key paths, and grants."""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from referralkit._errors import InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.money import Money
from referralkit._values.records import RewardGrant, Role
from referralkit._values.rewards import (
    Badge,
    Cash,
    Credit,
    Discount,
    FreePeriod,
    Points,
    RewardValue,
    reward_from_quantity,
)
from referralkit.policies._base import PolicyContext, Trigger

__all__ = [
    "REWARD_TYPES",
    "as_decimal",
    "as_int",
    "as_role",
    "as_trigger",
    "check_value",
    "grant",
    "percent",
    "require_value",
    "scaled_value",
]

REWARD_TYPES = (Cash, Credit, Discount, FreePeriod, Points, Badge)

_ONE = Decimal(1)


def require_value(field: str, value: object) -> RewardValue:
    """``value`` if it is a reward value, else ``InvalidProgramError`` naming ``field``."""
    if not isinstance(value, REWARD_TYPES):
        raise InvalidProgramError(field, value, "must be a reward value such as Cash(...)")
    return value


def check_value(field: str, value: object, currency: str) -> None:
    """Money in a reward value must be in the program's currency."""
    amount = getattr(value, "amount", None)
    if isinstance(amount, Money) and amount.currency != currency:
        raise InvalidProgramError(
            f"{field}.currency", amount.currency, f"must be the program's currency {currency}"
        )


def as_int(field: str, value: object, minimum: int) -> int:
    """A whole number >= ``minimum`` (bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProgramError(field, value, f"must be a whole number >= {minimum}")
    if value < minimum:
        raise InvalidProgramError(field, value, f"must be >= {minimum}")
    return value


def as_decimal(field: str, value: object) -> Decimal:
    """A finite Decimal from ``Decimal``, ``int`` or ``str``; floats are refused."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise InvalidProgramError(field, value, "is not a decimal number") from None
    elif isinstance(value, float):
        raise InvalidProgramError(field, value, "floats are not accepted; write it as a string")
    else:
        raise InvalidProgramError(field, value, "must be a Decimal, int or str")
    if not result.is_finite():
        raise InvalidProgramError(field, value, "must be a finite number")
    return result


def percent(field: str, value: object) -> Decimal:
    """A percentage in (0, 100]."""
    result = as_decimal(field, value)
    if not 0 < result <= 100:
        raise InvalidProgramError(field, value, "must be > 0 and <= 100")
    return result


def as_role(field: str, value: object) -> Role:
    """A ``Role`` from itself or its name."""
    try:
        return Role(str(value))
    except ValueError:
        raise InvalidProgramError(
            field, value, f"must be one of {[r.value for r in Role]}"
        ) from None


def as_trigger(field: str, value: object, allowed: Sequence[Trigger] = tuple(Trigger)) -> Trigger:
    """A ``Trigger`` from itself or its name, among ``allowed``."""
    try:
        trigger = Trigger(str(value))
    except ValueError:
        trigger = None
    if trigger is None or trigger not in allowed:
        raise InvalidProgramError(field, value, f"must be one of {[t.value for t in allowed]}")
    return trigger


def scaled_value(value: RewardValue, quantity: Decimal, rounding: str) -> RewardValue | None:
    """``value``'s unit holding ``quantity``, rounded to the unit's precision (None if zero)."""
    exponent = value.unit.exponent
    q = quantity.quantize(_ONE.scaleb(-exponent), rounding=rounding)
    if q <= 0:
        return None
    return reward_from_quantity(value, q)


def grant(
    ctx: PolicyContext, policy: str, role: Role, value: RewardValue, **params: Any
) -> tuple[RewardGrant, Decision]:
    """A grant of ``value`` to ``role``'s participant and the decision that explains it."""
    participant = ctx.referral.referrer_id if role is Role.REFERRER else ctx.referral.referee_id
    g = RewardGrant(role=role, participant_id=participant, value=value, policy=policy)
    d = Decision.of(
        policy,
        Verdict.GRANTED,
        "policy.granted",
        role=role,
        participant=participant,
        value=value,
        **params,
    )
    return g, d
