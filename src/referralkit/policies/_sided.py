"""Single- and double-sided rewards: a fixed value to the referrer, and maybe the referee."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from referralkit._errors import InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.money import Money
from referralkit._values.records import RewardGrant, Role
from referralkit._values.rewards import RewardValue
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger

__all__ = ["DoubleSided", "SingleSided"]


def _check_value(field: str, value: object, currency: str) -> None:
    amount = getattr(value, "amount", None)
    if isinstance(amount, Money) and amount.currency != currency:
        raise InvalidProgramError(field, amount, f"must be in the program's currency {currency}")


def _grant(
    ctx: PolicyContext, policy: str, role: Role, value: RewardValue
) -> tuple[RewardGrant, Decision]:
    participant = ctx.referral.referrer_id if role is Role.REFERRER else ctx.referral.referee_id
    grant = RewardGrant(role, participant, value, policy)
    # What Decision.of(..., role=role, participant=participant, value=value) makes.
    decision = Decision(
        policy,
        Verdict.GRANTED,
        "policy.granted",
        (
            ("role", _ROLE_TEXT[role]),
            ("participant", participant if type(participant) is str else str(participant)),
            ("value", str(value)),
        ),
    )
    return grant, decision


_ROLE_TEXT = {role: str(role) for role in Role}


def _is_value(name: str) -> Callable[[Any, Any, Any], None]:
    def check(_: object, __: object, value: object) -> None:
        if not hasattr(value, "unit") or not hasattr(value, "quantity"):
            raise InvalidProgramError(name, value, "must be a reward value such as Cash(...)")

    return check


def _trigger(value: object) -> Trigger:
    try:
        return Trigger(str(value))
    except ValueError:
        raise InvalidProgramError(
            "trigger", value, f"must be one of {[t.value for t in Trigger]}"
        ) from None


@attrs.frozen
class SingleSided:
    """Only the referrer is rewarded.

    Args:
        referrer: The referrer's reward for each triggering event.
        trigger: When it pays; the referee's first qualifying purchase by default.
        name: The policy's name in grants and decisions.
    """

    referrer: RewardValue = attrs.field(validator=_is_value("single_sided.referrer"))
    trigger: Trigger = attrs.field(default=Trigger.FIRST_PURCHASE, converter=_trigger)
    name: str = "single_sided"

    def needs(self) -> frozenset[Counter]:
        """Nothing: the reward is fixed."""
        return frozenset()

    def check(self, currency: str) -> None:
        """Money values must be in the program's currency."""
        _check_value(f"{self.name}.referrer", self.referrer, currency)

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """One grant to the referrer."""
        grant, decision = _grant(ctx, self.name, Role.REFERRER, self.referrer)
        return PolicyResult((grant,), (decision,))


@attrs.frozen
class DoubleSided:
    """Both sides are rewarded: the referrer and the referee (Dropbox-style).

    Args:
        referrer: The referrer's reward for each triggering event.
        referee: The referee's reward for the same event.
        trigger: When it pays; the referee's first qualifying purchase by default.
        name: The policy's name in grants and decisions.
    """

    referrer: RewardValue = attrs.field(validator=_is_value("double_sided.referrer"))
    referee: RewardValue = attrs.field(validator=_is_value("double_sided.referee"))
    trigger: Trigger = attrs.field(default=Trigger.FIRST_PURCHASE, converter=_trigger)
    name: str = "double_sided"

    def needs(self) -> frozenset[Counter]:
        """Nothing: the rewards are fixed."""
        return frozenset()

    def check(self, currency: str) -> None:
        """Money values must be in the program's currency."""
        _check_value(f"{self.name}.referrer", self.referrer, currency)
        _check_value(f"{self.name}.referee", self.referee, currency)

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """One grant to each side: referrer first, then referee."""
        g1, d1 = _grant(ctx, self.name, Role.REFERRER, self.referrer)
        g2, d2 = _grant(ctx, self.name, Role.REFEREE, self.referee)
        return PolicyResult((g1, g2), (d1, d2))
