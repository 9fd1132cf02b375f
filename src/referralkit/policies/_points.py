"""Points: earned per referral and per currency unit the referee spends, redeemed later.

``PointsPolicy`` grants ``Points`` to a named account. The points are ledger rewards like any
other (held, approved by ``settle``, reversed pro rata by refunds, rounded down). What it
adds is the account's terms: when points expire (a ``relativedelta`` after they were earned)
and what one point is worth when redeemed. [`Engine.redeem`][referralkit.Engine.redeem]
spends approved, unexpired points, oldest first (FIFO), and
[`Engine.points`][referralkit.Engine.points] reports the account.

The functions here are pure: they plan expiries and redemptions from the lots (one per
points reward) and leave the writing to the engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import attrs
from dateutil.relativedelta import relativedelta

from referralkit._errors import InsufficientPointsError, InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.money import Money
from referralkit._values.records import Role
from referralkit._values.rewards import Cash, Credit, Discount, Points, RewardValue
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger
from referralkit.policies._util import as_decimal, as_int, as_role, as_trigger, grant

__all__ = [
    "PointLot",
    "PointsAccount",
    "PointsPolicy",
    "Redemption",
    "RedemptionPlan",
    "plan_redemption",
]

_ZERO = Decimal(0)
_REDEEM_AS = ("credit", "cash", "discount")


def _per_referral(value: object) -> int:
    return as_int("points.per_referral", value, 0)


def _per_unit(value: object) -> Decimal:
    result = as_decimal("points.per_unit", value)
    if result < 0:
        raise InvalidProgramError("points.per_unit", value, "must be >= 0")
    return result


def _account(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidProgramError("points.account", value, "must be a non-empty string")
    return value


def _expires(value: object) -> relativedelta | None:
    if value is None:
        return None
    if not isinstance(value, relativedelta):
        raise InvalidProgramError(
            "points.expires_after",
            value,
            "must be a relativedelta such as relativedelta(months=12)",
        )
    if not value or any(getattr(value, p) < 0 for p in ("years", "months", "days", "hours")):
        raise InvalidProgramError("points.expires_after", value, "must be a positive duration")
    return value


def _rate(value: object) -> Money | None:
    if value is None:
        return None
    if not isinstance(value, Money) or value.amount <= 0:
        raise InvalidProgramError("points.redeem_rate", value, "must be a positive Money")
    return value


def _side(value: object) -> Role:
    return as_role("points.side", value)


def _trigger(value: object) -> Trigger:
    return as_trigger("points.trigger", value)


def _redeem_as(value: object) -> str:
    if value not in _REDEEM_AS:
        raise InvalidProgramError("points.redeem_as", value, f"must be one of {list(_REDEEM_AS)}")
    return str(value)


@attrs.frozen
class PointsPolicy:
    """Points per referral and/or per currency unit the referee spends, into an account.

    A purchase earns ``per_referral + floor(amount * per_unit)`` points (a sign-up only
    ``per_referral``). With ``per_unit=Decimal("1")`` a 49.99 USD order earns 49 points.

    Args:
        per_referral: Points for each evaluation (a referral or a purchase), >= 0.
        per_unit: Points per major currency unit of the purchase amount, >= 0.
        side: Who earns them: the referrer (default) or the referee.
        account: The points account.
        trigger: When it pays (``FIRST_PURCHASE`` by default).
        expires_after: Points expire this long after they were earned; None never.
        redeem_rate: What one point is worth when redeemed (in the program currency);
            None if the account cannot be redeemed.
        redeem_as: The value a redemption gives: ``credit`` (default), ``cash`` or
            ``discount`` (a fixed amount off).
        name: The policy's name.

    Raises:
        InvalidProgramError: negative rates, both rates zero, a bad duration or rate.
    """

    per_referral: int = attrs.field(default=0, converter=_per_referral)
    per_unit: Decimal = attrs.field(default=_ZERO, converter=_per_unit)
    side: Role = attrs.field(default=Role.REFERRER, converter=_side)
    account: str = attrs.field(default="points", converter=_account)
    trigger: Trigger = attrs.field(default=Trigger.FIRST_PURCHASE, converter=_trigger)
    expires_after: relativedelta | None = attrs.field(default=None, converter=_expires)
    redeem_rate: Money | None = attrs.field(default=None, converter=_rate)
    redeem_as: str = attrs.field(default="credit", converter=_redeem_as)
    name: str = "points"

    def __attrs_post_init__(self) -> None:
        if not self.per_referral and not self.per_unit:
            raise InvalidProgramError(
                "points.per_referral", self.per_referral, "give per_referral or per_unit (> 0)"
            )

    def needs(self) -> frozenset[Counter]:
        """Nothing."""
        return frozenset()

    def check(self, currency: str) -> None:
        """The redemption rate must be in the program's currency."""
        if self.redeem_rate is not None and self.redeem_rate.currency != currency:
            raise InvalidProgramError(
                f"{self.name}.redeem_rate.currency",
                self.redeem_rate.currency,
                f"must be the program's currency {currency}",
            )

    def points_for(self, ctx: PolicyContext) -> int:
        """The points this evaluation earns."""
        points = self.per_referral
        amount = ctx.commissionable
        if amount is not None and self.per_unit:
            points += int((amount.amount * self.per_unit).to_integral_value(rounding=ROUND_DOWN))
        return points

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """A ``Points`` grant, or nothing when the purchase earns no whole point."""
        points = self.points_for(ctx)
        if points < 1:
            d = Decision.of(self.name, Verdict.SKIPPED, "points.none", amount=ctx.commissionable)
            return PolicyResult(decisions=(d,))
        g, d = grant(ctx, self.name, self.side, Points(points, self.account))
        return PolicyResult((g,), (d,))

    def expires_at(self, earned_at: datetime) -> datetime | None:
        """When points earned at ``earned_at`` expire (None: never). The duration is
        added in ``earned_at``'s zone: the engine gives it in the program's time zone."""
        if self.expires_after is None:
            return None
        result: datetime = earned_at + self.expires_after
        return result

    def value_of(self, points: int) -> RewardValue:
        """What redeeming ``points`` gives.

        Raises:
            InvalidProgramError: the account has no ``redeem_rate``.
        """
        if self.redeem_rate is None:
            raise InvalidProgramError(
                f"{self.name}.redeem_rate", None, f"account {self.account!r} cannot be redeemed"
            )
        amount = Money._trusted(self.redeem_rate.amount * points, self.redeem_rate.currency)
        if self.redeem_as == "cash":
            return Cash(amount)
        if self.redeem_as == "discount":
            return Discount(amount=amount)
        return Credit(amount)


@attrs.frozen
class PointLot:
    """The points of one reward: what is left of them and when they expire.

    Attributes:
        reward_id: The points reward.
        earned_at: When they were earned (FIFO order).
        left: Granted minus reversed, redeemed and expired.
        expires_at: None if they never expire.
        approved: Whether the reward is approved (only approved points are redeemable).
    """

    reward_id: str
    earned_at: datetime
    left: Decimal
    expires_at: datetime | None
    approved: bool


@attrs.frozen
class PointsAccount:
    """A participant's points in one account at one time.

    Attributes:
        account: The account.
        available: Approved, unexpired points that can be redeemed.
        pending: Points still in their hold period.
        expired: Points that expired unused (written or due).
        redeemed: Points redeemed so far.
        next_expiry: When the next available points expire, or None.
    """

    participant_id: str
    account: str
    available: int
    pending: int
    expired: int
    redeemed: int
    next_expiry: datetime | None = None


@attrs.frozen
class RedemptionPlan:
    """What one redemption takes from which lot (oldest first), and which lots expire.

    Attributes:
        expire: (reward id, points) of lots that expired by the redemption time.
        take: (reward id, points) consumed, in FIFO order.
    """

    expire: tuple[tuple[str, int], ...]
    take: tuple[tuple[str, int], ...]


def plan_redemption(
    lots: Sequence[PointLot], points: int, at: datetime, account: str
) -> RedemptionPlan:
    """Take ``points`` from the approved, unexpired lots, oldest first.

    Raises:
        InsufficientPointsError: ``points`` exceeds the available balance.
    """
    expire = []
    usable = []
    for lot in sorted(lots, key=lambda x: (x.earned_at, x.reward_id)):
        if lot.left <= 0:
            continue
        if lot.expires_at is not None and lot.expires_at <= at:
            expire.append((lot.reward_id, int(lot.left)))
        elif lot.approved:
            usable.append(lot)
    available = sum(int(lot.left) for lot in usable)
    if points > available:
        raise InsufficientPointsError(points, available, account)
    take = []
    need = points
    for lot in usable:
        if need <= 0:
            break
        n = min(need, int(lot.left))
        take.append((lot.reward_id, n))
        need -= n
    return RedemptionPlan(tuple(expire), tuple(take))


@attrs.frozen
class Redemption:
    """A redemption of points: what was spent and the value it gives.

    The value is not a ledger reward (it belongs to no referral): the host applies it (a
    credit on the customer's account, a voucher) when it receives the ``points_redeemed``
    notification or this return value.

    Attributes:
        redemption_id: Derived from (program, participant, account, time, points); asking
            for the same redemption again returns it without spending more.
        participant_id: Who redeemed.
        account: The points account.
        points: Points spent.
        value: What they buy, at the account's rate.
        at: When.
        expired: Points of the account that had expired by then (written as expiry entries).
    """

    redemption_id: str
    participant_id: str
    account: str
    points: int
    value: RewardValue
    at: datetime
    expired: int = 0
