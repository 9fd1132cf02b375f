"""Revenue share: the referrer earns a percentage of every purchase of the referee."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import attrs
from dateutil.relativedelta import relativedelta

from referralkit._errors import InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.events import Purchase
from referralkit._values.records import Role
from referralkit._values.rewards import Cash, Credit
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger
from referralkit.policies._util import grant, percent

__all__ = ["RevenueShare", "duration", "share_kind"]

_PARTS = ("years", "months", "days", "hours", "minutes", "seconds", "microseconds")


def duration(field: str, value: object) -> relativedelta | None:
    """A calendar duration (``relativedelta``; a ``timedelta`` is converted), or None."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = relativedelta(days=value.days, seconds=value.seconds)
    if not isinstance(value, relativedelta):
        raise InvalidProgramError(
            field, value, "must be a relativedelta such as relativedelta(months=12), or None"
        )
    parts = [getattr(value, p) for p in _PARTS]
    if any(p < 0 for p in parts) or not any(parts):
        raise InvalidProgramError(field, value, "must be > 0, or None for lifetime")
    return value


def share_kind(field: str, value: object) -> str:
    """``"cash"`` or ``"credit"``, from the name or the class."""
    if value is Cash:
        return "cash"
    if value is Credit:
        return "credit"
    if value in ("cash", "credit"):
        return str(value)
    raise InvalidProgramError(field, value, "must be Cash or Credit ('cash' or 'credit')")


def _percent(value: object) -> Decimal:
    return percent("revenue_share.percent", value)


def _duration(value: object) -> relativedelta | None:
    return duration("revenue_share.duration", value)


def _as(value: object) -> str:
    return share_kind("revenue_share.as", value)


@attrs.frozen
class RevenueShare:
    """The referrer earns ``percent`` of each of the referee's purchases, for a while or for life.

    Pays on every qualifying purchase whose time is before the referral's ``created_at``
    plus ``duration`` (months and years are calendar months and years in the program's time
    zone). The share is the purchase amount * percent / 100, rounded to the
    minor unit with the program's rounding mode; a share that rounds to zero is not
    granted. A refund reverses the share pro rata, since the reward's base is the order.

    Args:
        percent: In (0, 100]; ``Decimal("15")`` means 15 %.
        duration: How long after the referral purchases earn a share
            (``relativedelta(months=12)`` by default); None for the referee's lifetime.
        as_: ``Cash`` (default, affiliate style) or ``Credit``.
        name: The policy's name in grants and decisions.
    """

    percent: Decimal = attrs.field(converter=_percent)
    duration: relativedelta | None = attrs.field(
        default=attrs.Factory(lambda: relativedelta(months=12)), converter=_duration
    )
    as_: str = attrs.field(default="cash", converter=_as)
    name: str = "revenue_share"

    @property
    def trigger(self) -> Trigger:
        """Always ``EVERY_PURCHASE``."""
        return Trigger.EVERY_PURCHASE

    def needs(self) -> frozenset[Counter]:
        """Nothing: the share depends on the purchase alone."""
        return frozenset()

    def check(self, currency: str) -> None:
        """Nothing to check: the share is in the purchase's (the program's) currency."""

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """One grant to the referrer: the share of this purchase, if within the duration."""
        ev = ctx.event
        if not isinstance(ev, Purchase):
            d = Decision.of(
                self.name,
                Verdict.SKIPPED,
                "policy.not_trigger",
                trigger=self.trigger,
                event=ev.kind,
            )
            return PolicyResult(decisions=(d,))
        if self.duration is not None:
            # A calendar term, in the program's time zone.
            until = ctx.referral.created_at.astimezone(ctx.zone) + self.duration
            if ev.at >= until:
                d = Decision.of(
                    self.name,
                    Verdict.SKIPPED,
                    "revenue_share.ended",
                    until=until.isoformat(),
                )
                return PolicyResult(decisions=(d,))
        on = ctx.base if ctx.base is not None else ev.amount
        share = on.percent_of(self.percent, ctx.rounding)
        if share.amount <= 0:
            d = Decision.of(
                self.name,
                Verdict.SKIPPED,
                "revenue_share.too_small",
                percent=self.percent,
                amount=on,
            )
            return PolicyResult(decisions=(d,))
        value = Cash(share) if self.as_ == "cash" else Credit(share)
        g, d = grant(ctx, self.name, Role.REFERRER, value, percent=self.percent, of=on)
        return PolicyResult((g,), (d,))
