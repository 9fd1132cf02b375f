"""Tiered rewards: the n-th successful referral earns the reward of the tier n falls in."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import attrs

from referralkit._errors import InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.records import MilestoneReached, RewardGrant, Role
from referralkit._values.rewards import RewardValue, reward_from_quantity
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger
from referralkit.policies._util import (
    as_int,
    as_role,
    as_trigger,
    check_value,
    grant,
    require_value,
)

__all__ = ["Tier", "Tiered"]

_TRIGGERS = (Trigger.FIRST_PURCHASE, Trigger.SIGNUP)
_NEEDS = frozenset({Counter.REFERRER_SUCCESSFUL_REFERRALS})


def _min_referrals(value: object) -> int:
    return as_int("tier.min_referrals", value, 1)


def _reward(value: object) -> RewardValue:
    return require_value("tier.reward", value)


@attrs.frozen
class Tier:
    """One tier: from the ``min_referrals``-th successful referral on, each earns ``reward``.

    Args:
        min_referrals: The first referral number (1-based) this tier applies to, >= 1.
        reward: What each referral in the tier earns.
    """

    min_referrals: int = attrs.field(converter=_min_referrals)
    reward: RewardValue = attrs.field(converter=_reward)


def _tiers(value: object) -> tuple[Tier, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise InvalidProgramError("tiered.tiers", value, "must be a sequence of Tier")
    tiers = tuple(value)
    if not tiers:
        raise InvalidProgramError("tiered.tiers", tiers, "needs at least one tier")
    for i, tier in enumerate(tiers):
        if not isinstance(tier, Tier):
            raise InvalidProgramError(f"tiered.tiers[{i}]", tier, "must be a Tier")
        if i:
            before = tiers[i - 1].min_referrals
            if tier.min_referrals == before:
                raise InvalidProgramError(
                    f"tiered.tiers[{i}].min_referrals",
                    tier.min_referrals,
                    f"overlaps tiers[{i - 1}], which starts at the same referral",
                )
            if tier.min_referrals < before:
                raise InvalidProgramError(
                    f"tiered.tiers[{i}].min_referrals",
                    tier.min_referrals,
                    f"tiers must be sorted: must be > tiers[{i - 1}].min_referrals ({before})",
                )
    return tiers


def _side(value: object) -> Role:
    return as_role("tiered.side", value)


_MODES = ("per_tier", "retroactive")


def _mode(value: object) -> str:
    if value not in _MODES:
        raise InvalidProgramError("tiered.mode", value, f"must be one of {list(_MODES)}")
    return str(value)


def _trigger(value: object) -> Trigger:
    return as_trigger("tiered.trigger", value, _TRIGGERS)


@attrs.frozen
class Tiered:
    """The reward for the referrer's n-th successful referral depends on n.

    With ``tiers=[Tier(1, Cash(10 USD)), Tier(3, Cash(30 USD))]`` referrals 1 and 2 earn
    10 USD each and the 3rd and every later one 30 USD. n is the referrer's count of
    successful referrals before this event, plus one. Below the first tier a referral earns
    nothing.

    Two modes. ``per_tier`` (the default): each referral is paid at its own tier.
    ``retroactive``: the referral that reaches a tier also earns a *top-up* for the referrals
    counted before it: ``(n - 1) * (this tier's reward - the previous tier's reward)`` (the
    previous reward is 0 below the first tier), as one grant with reason ``tiered.top_up``.
    A top-up is paid once ever per referrer and tier, like a milestone: refunds never reverse
    it (refunding an order reverses that referral's own reward only), and a count that drops
    below the tier and climbs back pays no second top-up. Retroactive tiers pay the referrer,
    in one divisible unit (cash, credit, fixed discount or points), growing from tier to tier.

    Args:
        tiers: Sorted by ``min_referrals``, no two tiers starting at the same referral.
        side: Who receives the tier's reward: the referrer (default) or the referee.
        trigger: ``FIRST_PURCHASE`` (default) or ``SIGNUP``; the n-th referral is counted
            once, so ``EVERY_PURCHASE`` is refused.
        name: The policy's name in grants and decisions.

    Raises:
        InvalidProgramError: unsorted or overlapping tiers, a threshold below 1, a value
            that is not a reward; the field names the tier.
    """

    tiers: tuple[Tier, ...] = attrs.field(converter=_tiers)
    side: Role = attrs.field(default=Role.REFERRER, converter=_side)
    trigger: Trigger = attrs.field(default=Trigger.FIRST_PURCHASE, converter=_trigger)
    name: str = "tiered"
    mode: str = attrs.field(default="per_tier", converter=_mode)

    def __attrs_post_init__(self) -> None:
        if self.mode != "retroactive":
            return
        if self.side is not Role.REFERRER:
            raise InvalidProgramError(
                "tiered.side", self.side.value, "retroactive tiers pay the referrer"
            )
        first = self.tiers[0].reward
        for i, tier in enumerate(self.tiers):
            value = tier.reward
            if not value.unit.divisible or value.unit != first.unit:
                raise InvalidProgramError(
                    f"tiered.tiers[{i}].reward",
                    value,
                    f"retroactive tiers need one divisible unit ({first.unit})",
                )
            if i and value.quantity < self.tiers[i - 1].reward.quantity:
                raise InvalidProgramError(
                    f"tiered.tiers[{i}].reward",
                    value,
                    "retroactive tiers must not pay less than the tier before",
                )

    def needs(self) -> frozenset[Counter]:
        """The referrer's successful referrals."""
        return _NEEDS

    def check(self, currency: str) -> None:
        """Every tier's reward must be in the program's currency."""
        for i, tier in enumerate(self.tiers):
            check_value(f"{self.name}.tiers[{i}].reward", tier.reward, currency)

    def tier_for(self, n: int) -> Tier | None:
        """The tier of the n-th successful referral, or None below the first tier."""
        chosen = None
        for tier in self.tiers:
            if tier.min_referrals > n:
                break
            chosen = tier
        return chosen

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """One grant: the reward of the tier the referral's number falls in."""
        n = int(ctx.count(Counter.REFERRER_SUCCESSFUL_REFERRALS)) + 1
        tier = self.tier_for(n)
        if tier is None:
            d = Decision.of(
                self.name,
                Verdict.SKIPPED,
                "tiered.below_first_tier",
                n=n,
                first=self.tiers[0].min_referrals,
            )
            return PolicyResult(decisions=(d,))
        g, d = grant(ctx, self.name, self.side, tier.reward, n=n, tier=tier.min_referrals)
        if self.mode == "retroactive" and n == tier.min_referrals and n > 1:
            top_up = self._top_up(ctx, tier, n)
            if top_up is not None:
                return PolicyResult((g, top_up[0]), (d, top_up[1]))
        return PolicyResult((g,), (d,))

    def _top_up(
        self, ctx: PolicyContext, tier: Tier, n: int
    ) -> tuple[RewardGrant, Decision] | None:
        index = self.tiers.index(tier)
        before = self.tiers[index - 1].reward.quantity if index else Decimal(0)
        difference = tier.reward.quantity - before
        if difference <= 0:
            return None
        value = reward_from_quantity(tier.reward, difference * (n - 1))
        who = ctx.referral.referrer_id
        g = RewardGrant(
            role=Role.REFERRER,
            participant_id=who,
            value=value,
            policy=self.name,
            reason="tiered.top_up",
            milestone=MilestoneReached(f"tier-{tier.min_referrals}-top-up", n, n),
        )
        d = Decision.of(
            self.name,
            Verdict.GRANTED,
            "tiered.top_up",
            participant=who,
            value=value,
            earlier=n - 1,
            tier=tier.min_referrals,
        )
        return g, d
