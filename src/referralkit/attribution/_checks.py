"""The shipped fraud and eligibility checks as [`FraudCheck`][referralkit.attribution.FraudCheck]
objects, for ``Engine(fraud_checks=[...])`` (pure).

Each wraps one of the check functions of ``_fraud`` and reads what it needs from the
[`FraudContext`][referralkit.attribution.FraudContext] the engine builds for a referral
about to be made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from referralkit._errors import InvalidInputError
from referralkit.attribution._fraud import (
    DEFAULT_IDENTITY_ACTIONS,
    FraudAction,
    FraudContext,
    FraudVerdict,
    check_circular,
    check_loop,
    check_same_identity,
    check_velocity,
)
from referralkit.attribution._identity import (
    DEFAULT_EMAIL_RULES,
    EmailRules,
    is_disposable_email,
)

__all__ = [
    "CircularCheck",
    "DisposableEmailCheck",
    "SameIdentityCheck",
    "VelocityCheck",
    "default_fraud_checks",
]


def _to_action(field: str, value: object) -> FraudAction:
    if isinstance(value, str) and value in {a.value for a in FraudAction}:
        return FraudAction(value)
    raise InvalidInputError(field, value, f"must be one of {[a.value for a in FraudAction]}")


def _action(value: object) -> FraudAction:
    return _to_action("action", value)


def _actions(value: Mapping[str, FraudAction | str]) -> Mapping[str, FraudAction]:
    if not isinstance(value, Mapping):
        raise InvalidInputError("actions", value, "must map identity facts to actions")
    return MappingProxyType({str(k): _to_action(f"actions[{k!r}]", v) for k, v in value.items()})


@attrs.frozen
class SameIdentityCheck:
    """The referee shares an identity fact with the referrer: the same inbox (after
    normalisation), device, payment fingerprint, payout account or IP (keyed hashes).

    Args:
        actions: Fact name -> action when shared; by default
            [`DEFAULT_IDENTITY_ACTIONS`][referralkit.attribution.DEFAULT_IDENTITY_ACTIONS]
            (email, payment and payout block; device holds; IP flags).
        email_rules: How variants of one inbox are recognised.
    """

    actions: Mapping[str, FraudAction] = attrs.field(
        default=DEFAULT_IDENTITY_ACTIONS, converter=_actions, eq=False, hash=False
    )
    email_rules: EmailRules = DEFAULT_EMAIL_RULES

    def check(self, context: FraudContext) -> FraudVerdict:
        """The verdict of ``check_same_identity`` for the two sides."""
        return check_same_identity(
            context.referrer, context.referee, actions=self.actions, email_rules=self.email_rules
        )


def _limit(_: object, attribute: attrs.Attribute[int | None], value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidInputError(attribute.name, value, "must be a whole number >= 1, or None")


@attrs.frozen
class VelocityCheck:
    """A referrer brings in referrals faster than a person plausibly can.

    Counts are kept per clock hour and per day (UTC) by the engine's counters. By default a
    limit applies to each clock hour and each day; with ``sliding=True`` it applies to the
    last 60 minutes and the last 24 hours at every referral (estimated from the current and
    the previous bucket, see [`sliding_count`][referralkit.attribution.sliding_count]), so
    a burst across a boundary (ten at 10:59, ten at 11:01) is one burst.

    Args:
        per_hour: Referrals allowed in one hour; ``None`` for no limit.
        per_day: Referrals allowed in one day; ``None`` for no limit.
        action: What to do above a limit (hold, by default).
        sliding: Sliding windows instead of clock hours and days.
    """

    per_hour: int | None = attrs.field(default=None, validator=_limit)
    per_day: int | None = attrs.field(default=None, validator=_limit)
    action: FraudAction = attrs.field(
        default=FraudAction.HOLD,
        converter=_action,
    )
    sliding: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def check(self, context: FraudContext) -> FraudVerdict:
        """Allow within both limits; ``action`` with ``"fraud.velocity"`` above either."""
        verdicts = []
        if self.sliding:
            hour, day = context.referrals_past_hour, context.referrals_past_day
        else:
            hour, day = context.referrals_this_hour, context.referrals_today
        if self.per_hour is not None:
            verdicts.append(check_velocity(hour, self.per_hour, action=self.action))
        if self.per_day is not None:
            verdicts.append(check_velocity(day, self.per_day, action=self.action))
        strictest = FraudVerdict.allow()
        for verdict in verdicts:
            if verdict.action.severity > strictest.action.severity:
                strictest = verdict
        return strictest


def _depth(_: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise InvalidInputError(attribute.name, value, "must be a whole number >= 2")


@attrs.frozen
class CircularCheck:
    """A referral that closes a loop is blocked: A referred B, now B would refer A (a loop
    of 2), or with ``depth=3`` also A referred B, B referred C, now C would refer A.

    Args:
        depth: The longest loop looked for, >= 2. The engine looks up ``depth - 1``
            referrers above the referrer (one indexed read each) for every referral.
    """

    depth: int = attrs.field(default=2, validator=_depth)

    @property
    def chain_depth(self) -> int:
        """How many referrers above the referrer the check reads from the context."""
        return self.depth - 1

    def check(self, context: FraudContext) -> FraudVerdict:
        """The verdict of ``check_circular``, and of ``check_loop`` over the chain."""
        verdict = check_circular(
            context.referrer_id, context.referee_id, context.referrer_of_referrer
        )
        if verdict.action is FraudAction.ALLOW and self.depth > 2:
            return check_loop(context.referee_id, context.referrer_chain, self.depth)
        return verdict


def _domains(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise InvalidInputError("extra_domains", value, "must be a collection of domains")
    return frozenset(value)


@attrs.frozen
class DisposableEmailCheck:
    """The referee signed up with a disposable (throwaway) email address.

    Args:
        action: What to do (flag, by default; hold or block for stricter programs).
        extra_domains: More domains to treat as disposable, added to the shipped list.
    """

    action: FraudAction = attrs.field(
        default=FraudAction.FLAG,
        converter=_action,
    )
    extra_domains: frozenset[str] = attrs.field(default=frozenset(), converter=_domains)

    def check(self, context: FraudContext) -> FraudVerdict:
        """``action`` with ``"fraud.disposable_email"`` for a disposable address."""
        email = context.referee.email
        if email is not None and is_disposable_email(email, self.extra_domains):
            return FraudVerdict(self.action, ("fraud.disposable_email",))
        return FraudVerdict.allow()


def default_fraud_checks(
    *, per_hour: int | None = 10, per_day: int | None = 50
) -> tuple[SameIdentityCheck, VelocityCheck, CircularCheck, DisposableEmailCheck]:
    """Every shipped check with its defaults, and the given velocity limits."""
    return (
        SameIdentityCheck(),
        VelocityCheck(per_hour=per_hour, per_day=per_day),
        CircularCheck(),
        DisposableEmailCheck(),
    )
