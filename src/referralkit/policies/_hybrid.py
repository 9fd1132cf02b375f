"""Hybrid (CPA + revenue share): a fixed amount on the first purchase plus a share of each."""

from __future__ import annotations

from decimal import Decimal

import attrs
from dateutil.relativedelta import relativedelta

from referralkit._values.decisions import Decision
from referralkit._values.records import RewardGrant, Role
from referralkit._values.rewards import RewardValue
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger
from referralkit.policies._revenue_share import RevenueShare, duration, share_kind
from referralkit.policies._util import check_value, grant, percent, require_value

__all__ = ["Hybrid"]

_NEEDS = frozenset({Counter.REFEREE_PURCHASES})


def _fixed(value: object) -> RewardValue:
    return require_value("hybrid.fixed", value)


def _percent(value: object) -> Decimal:
    return percent("hybrid.percent", value)


def _duration(value: object) -> relativedelta | None:
    return duration("hybrid.duration", value)


def _as(value: object) -> str:
    return share_kind("hybrid.as", value)


@attrs.frozen(kw_only=True)
class Hybrid:
    """A fixed reward for the conversion plus a share of every purchase (CPA + revshare).

    The referrer earns ``fixed`` on the referee's first purchase (purchase number 1) and
    ``percent`` of every purchase within ``duration`` of the referral, as a
    ``RevenueShare`` would. Pays on ``EVERY_PURCHASE``.

    Args:
        fixed: The conversion reward (any reward value).
        percent: In (0, 100].
        duration: As for ``RevenueShare``; None for lifetime.
        as_: The share as ``Cash`` (default) or ``Credit``.
        name: The policy's name in grants and decisions.
    """

    fixed: RewardValue = attrs.field(converter=_fixed)
    percent: Decimal = attrs.field(converter=_percent)
    duration: relativedelta | None = attrs.field(
        default=attrs.Factory(lambda: relativedelta(months=12)), converter=_duration
    )
    as_: str = attrs.field(default="cash", converter=_as)
    name: str = "hybrid"
    _share: RevenueShare = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        share = RevenueShare(self.percent, self.duration, as_=self.as_, name=self.name)
        object.__setattr__(self, "_share", share)

    @property
    def trigger(self) -> Trigger:
        """Always ``EVERY_PURCHASE``."""
        return Trigger.EVERY_PURCHASE

    def needs(self) -> frozenset[Counter]:
        """The referee's purchases, to know the first one."""
        return _NEEDS

    def check(self, currency: str) -> None:
        """The fixed reward must be in the program's currency."""
        check_value(f"{self.name}.fixed", self.fixed, currency)

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """The fixed reward on purchase number 1, then the share of this purchase."""
        grants: list[RewardGrant] = []
        decisions: list[Decision] = []
        if ctx.count(Counter.REFEREE_PURCHASES) == 0:
            g, d = grant(ctx, self.name, Role.REFERRER, self.fixed, part="fixed")
            grants.append(g)
            decisions.append(d)
        share = self._share.evaluate(ctx)
        return PolicyResult((*grants, *share.grants), (*decisions, *share.decisions))
