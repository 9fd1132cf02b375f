"""Milestones and status levels: rewards and standing that follow a referrer's count.

``Milestones`` grants a badge or a bonus when the referrer's successful referrals reach a
threshold (1, 5, 10, 25, ...). Each milestone is granted once ever per referrer: its reward
id is derived from (program, referrer, policy, milestone) rather than from the event, so a
retried event, a replay, or a count that drops after a refund and climbs back never grants it
twice. A milestone reward belongs to the count, not to one order: refunds do not reverse it.

``StatusLevels`` names the referrer's standing (bronze, silver, gold) from their count of
successful referrals or their lifetime points. It grants nothing itself; the engine writes a
``status_changed`` notification when a level changes, and answers
[`Engine.status_of`][referralkit.Engine.status_of] and
[`Engine.progress`][referralkit.Engine.progress]. A level change never alters what earlier
referrals earned.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from decimal import Decimal

import attrs
from dateutil.relativedelta import relativedelta

from referralkit._errors import InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.records import MilestoneReached, RewardGrant, Role
from referralkit._values.rewards import RewardValue
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger
from referralkit.policies._util import as_int, check_value, require_value

__all__ = [
    "Level",
    "Milestone",
    "Milestones",
    "Progress",
    "RollingStatusLevels",
    "StatusBasis",
    "StatusLevels",
]

_NEEDS = frozenset({Counter.REFERRER_SUCCESSFUL_REFERRALS})


def _threshold(value: object) -> int:
    return as_int("milestone.threshold", value, 1)


def _reward(value: object) -> RewardValue:
    return require_value("milestone.reward", value)


def _label(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidProgramError("milestone.name", value, "must be a non-empty string")
    return value


@attrs.frozen
class Milestone:
    """One milestone: ``reward`` when the count reaches ``threshold``.

    Args:
        threshold: The successful-referral count that reaches it, >= 1.
        reward: What reaching it grants (a ``Badge``, a ``Cash`` bonus, ``Points``...).
        name: Unique within its policy; ``str(threshold)`` by default. The reward id is
            derived from it, so renaming a milestone makes it a new one.
    """

    threshold: int = attrs.field(converter=_threshold)
    reward: RewardValue = attrs.field(converter=_reward)
    name: str = attrs.field(converter=_label)

    @name.default
    def _default_name(self) -> str:
        return str(self.threshold)


def _sorted(field: str, kind: str, items: tuple[object, ...], key: str) -> None:
    for i in range(1, len(items)):
        before, this = getattr(items[i - 1], key), getattr(items[i], key)
        if this <= before:
            short = field.rsplit(".", maxsplit=1)[-1]
            raise InvalidProgramError(
                f"{field}[{i}].{key}",
                this,
                f"{kind} must be sorted without repeats: must be > {short}[{i - 1}].{key} "
                f"({before})",
            )


def _milestones(value: object) -> tuple[Milestone, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise InvalidProgramError("milestones.milestones", value, "must be a sequence")
    items = tuple(value)
    if not items:
        raise InvalidProgramError("milestones.milestones", items, "needs at least one milestone")
    for i, item in enumerate(items):
        if not isinstance(item, Milestone):
            raise InvalidProgramError(f"milestones.milestones[{i}]", item, "must be a Milestone")
    _sorted("milestones.milestones", "milestones", items, "threshold")
    names: set[str] = set()
    for i, item in enumerate(items):
        if item.name in names:
            raise InvalidProgramError(
                f"milestones.milestones[{i}].name", item.name, "is used by an earlier milestone"
            )
        names.add(item.name)
    return items


@attrs.frozen
class Milestones:
    """A reward when the referrer's successful referrals reach each threshold, once ever.

    Evaluated on the referral's first qualifying purchase: the referral's number is the
    referrer's count of successful referrals before it, plus one, and a milestone is reached
    when that number equals its threshold. The engine grants a milestone once ever per
    referrer (a repeat is skipped with ``milestone.already_granted``), writes a
    ``milestone_reached`` notification (data: milestone, threshold, count, value), and does not
    reverse it on refunds. Caps and the budget apply to milestone rewards like any other.

    A successful referral is one whose qualifying purchase earned a reward; stack
    ``Milestones`` with a policy that rewards every conversion so each one counts.

    Args:
        milestones: Sorted by threshold, no two with the same threshold or name.
        name: The policy's name in grants and decisions.

    Raises:
        InvalidProgramError: unsorted thresholds, a repeated name, a threshold below 1,
            a value that is not a reward.
    """

    milestones: tuple[Milestone, ...] = attrs.field(converter=_milestones)
    name: str = "milestones"

    @property
    def trigger(self) -> Trigger:
        """Always ``FIRST_PURCHASE``: a referral is counted once."""
        return Trigger.FIRST_PURCHASE

    def needs(self) -> frozenset[Counter]:
        """The referrer's successful referrals."""
        return _NEEDS

    def check(self, currency: str) -> None:
        """Money rewards must be in the program's currency."""
        for i, m in enumerate(self.milestones):
            check_value(f"{self.name}.milestones[{i}].reward", m.reward, currency)

    def next_after(self, count: int) -> Milestone | None:
        """The first milestone above ``count``, or None."""
        return next((m for m in self.milestones if m.threshold > count), None)

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """The milestone this referral's number reaches, if any."""
        n = int(ctx.count(Counter.REFERRER_SUCCESSFUL_REFERRALS)) + 1
        for m in self.milestones:
            if m.threshold == n:
                who = ctx.referral.referrer_id
                g = RewardGrant(
                    role=Role.REFERRER,
                    participant_id=who,
                    value=m.reward,
                    policy=self.name,
                    reason="milestone.reached",
                    milestone=MilestoneReached(m.name, m.threshold, n),
                )
                d = Decision.of(
                    self.name,
                    Verdict.GRANTED,
                    "milestone.reached",
                    participant=who,
                    milestone=m.name,
                    threshold=m.threshold,
                    value=m.reward,
                )
                return PolicyResult((g,), (d,))
        upcoming = self.next_after(n)
        d = Decision.of(
            self.name,
            Verdict.SKIPPED,
            "milestone.none",
            n=n,
            next=upcoming.threshold if upcoming else "none",
        )
        return PolicyResult(decisions=(d,))


class StatusBasis(enum.StrEnum):
    """What status levels are computed from."""

    SUCCESSFUL_REFERRALS = "successful_referrals"
    """The referrer's successful referrals (a full refund of the qualifying order lowers it)."""
    POINTS = "points"
    """Points earned in the account, net of reversals (redeeming or expiring does not lower
    the level)."""


def _level_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidProgramError("level.name", value, "must be a non-empty string")
    return value


def _minimum(value: object) -> int:
    return as_int("level.minimum", value, 1)


@attrs.frozen
class Level:
    """A status level, held from ``minimum`` (successful referrals or points) on.

    Args:
        name: Such as ``"gold"``.
        minimum: The count from which the level is held, >= 1.
    """

    name: str = attrs.field(converter=_level_name)
    minimum: int = attrs.field(converter=_minimum)


def _levels(value: object) -> tuple[Level, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise InvalidProgramError("status_levels.levels", value, "must be a sequence")
    items = tuple(value)
    if not items:
        raise InvalidProgramError("status_levels.levels", items, "needs at least one level")
    names: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, Level):
            raise InvalidProgramError(f"status_levels.levels[{i}]", item, "must be a Level")
        if item.name in names:
            raise InvalidProgramError(
                f"status_levels.levels[{i}].name", item.name, "is used by an earlier level"
            )
        names.add(item.name)
    _sorted("status_levels.levels", "levels", items, "minimum")
    return items


def _basis(value: object) -> StatusBasis:
    try:
        return StatusBasis(str(value))
    except ValueError:
        raise InvalidProgramError(
            "status_levels.basis", value, f"must be one of {[b.value for b in StatusBasis]}"
        ) from None


def _account(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidProgramError("status_levels.account", value, "must be a non-empty string")
    return value


@attrs.frozen
class StatusLevels:
    """Named status levels (bronze, silver, gold) derived from a participant's count.

    It grants nothing: put it in a program's policies and the engine keeps each
    participant's level, writes a ``status_changed`` notification (data: old, new; ``""``
    for no level) whenever it changes, up or down, and answers ``Engine.status_of`` and
    ``Engine.progress``. Levels are read from the program version in force at the event.

    Args:
        levels: Sorted by ``minimum``, no repeats.
        basis: ``successful_referrals`` (default) or ``points``.
        account: The points account for the ``points`` basis.
        name: The policy's name.
    """

    levels: tuple[Level, ...] = attrs.field(converter=_levels)
    basis: StatusBasis = attrs.field(default=StatusBasis.SUCCESSFUL_REFERRALS, converter=_basis)
    account: str = attrs.field(default="points", converter=_account)
    name: str = "status"

    @property
    def trigger(self) -> Trigger:
        """``FIRST_PURCHASE`` (levels follow the counts; the policy itself grants nothing)."""
        return Trigger.FIRST_PURCHASE

    def needs(self) -> frozenset[Counter]:
        """Nothing: the engine reads the counts it needs."""
        return frozenset()

    def check(self, currency: str) -> None:
        """Nothing depends on the currency."""

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """Nothing: levels are kept by the engine."""
        return PolicyResult()

    def level_for(self, count: Decimal | int) -> Level | None:
        """The level held at ``count``, or None below the first."""
        held = None
        for level in self.levels:
            if level.minimum > count:
                break
            held = level
        return held

    def next_after(self, count: Decimal | int) -> Level | None:
        """The first level above ``count``, or None at the top."""
        return next((lv for lv in self.levels if lv.minimum > count), None)


def _window(value: object) -> relativedelta:
    problem = "must be a relativedelta of whole months or years, such as relativedelta(months=12)"
    if not isinstance(value, relativedelta):
        raise InvalidProgramError("status_levels.window", value, problem)
    rest = ("days", "hours", "minutes", "seconds", "microseconds", "leapdays")
    months = value.years * 12 + value.months
    if months < 1 or any(getattr(value, part) for part in rest) or value.weekday is not None:
        raise InvalidProgramError("status_levels.window", value, problem)
    if any(getattr(value, f) is not None for f in ("year", "month", "day")):
        raise InvalidProgramError("status_levels.window", value, problem)
    return relativedelta(months=months)


@attrs.frozen
class RollingStatusLevels(StatusLevels):
    """``StatusLevels`` over a rolling period: the count is what was earned in the last
    ``window`` of calendar months (in the program's time zone), so a level goes down as
    well as up as time passes.

    ``window=relativedelta(months=12)`` counts the successful referrals (or points) of the
    current month and the 11 months before it. A referral counts in the month it converted
    and leaves the count with that month (or with a full refund of its order); points count
    in the month they were earned, net of reversals. ``Engine.status_of`` and
    ``Engine.progress`` read the count at the engine's clock, so a level lost to time shows
    at once; its ``status_changed`` notification is written at the participant's next
    conversion, reversal or points change. Windowed counts start with the first version
    that declares one: conversions before it are not in any month.

    Args:
        levels: Sorted by ``minimum``, no repeats.
        window: Whole months or years, at least one month.
        basis: ``successful_referrals`` (default) or ``points``.
        account: The points account for the ``points`` basis.
        name: The policy's name.
    """

    window: relativedelta = attrs.field(kw_only=True, converter=_window)

    @property
    def months(self) -> int:
        """The window in calendar months."""
        return int(self.window.years * 12 + self.window.months)


@attrs.frozen
class Progress:
    """Where a participant stands, for UI copy such as "2 more friends to Gold".

    Attributes:
        participant_id: Who.
        successful_referrals: Their count of successful referrals.
        level: Their status level, or None (or without ``StatusLevels``).
        next_level: The next level, or None at the top.
        to_next_level: How many more referrals (or points, for the points basis) to it.
        next_milestone: The next milestone's name, or None.
        to_next_milestone: How many more successful referrals to it.
    """

    participant_id: str
    successful_referrals: int
    level: str | None = None
    next_level: str | None = None
    to_next_level: int | None = None
    next_milestone: str | None = None
    to_next_milestone: int | None = None
