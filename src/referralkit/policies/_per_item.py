"""Per-item rewards: each qualifying unit the referee buys earns a reward, up to a cap."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import attrs

from referralkit._errors import InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.events import Purchase
from referralkit._values.records import RewardGrant, Role
from referralkit._values.rewards import RewardValue, reward_from_quantity
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger
from referralkit.policies._util import as_int, as_trigger, check_value, grant, require_value

__all__ = ["PerItem"]

_TRIGGERS = (Trigger.FIRST_PURCHASE, Trigger.EVERY_PURCHASE)
_SUMMABLE = frozenset({"cash", "credit", "discount", "points", "free_period"})


def _value(field: str) -> Callable[[object], RewardValue | None]:
    def convert(value: object) -> RewardValue | None:
        return None if value is None else require_value(field, value)

    return convert


def _names(field: str) -> Callable[[object], frozenset[str] | None]:
    def convert(value: object) -> frozenset[str] | None:
        if value is None:
            return None
        if not isinstance(value, Iterable) or isinstance(value, str | bytes):
            raise InvalidProgramError(field, value, "must be a collection of strings")
        names = tuple(value)
        for i, name in enumerate(names):
            if not isinstance(name, str) or not name:
                raise InvalidProgramError(f"{field}[{i}]", name, "must be a non-empty string")
        if not names:
            raise InvalidProgramError(field, value, "must not be empty (omit it to match all)")
        return frozenset(names)

    return convert


def _referrer(value: object) -> RewardValue | None:
    return _value("per_item.referrer")(value)


def _referee(value: object) -> RewardValue | None:
    return _value("per_item.referee")(value)


def _skus(value: object) -> frozenset[str] | None:
    return _names("per_item.skus")(value)


def _categories(value: object) -> frozenset[str] | None:
    return _names("per_item.categories")(value)


def _cap(value: object) -> int | None:
    return None if value is None else as_int("per_item.cap_per_referral", value, 1)


def _trigger(value: object) -> Trigger:
    return as_trigger("per_item.trigger", value, _TRIGGERS)


@attrs.frozen(kw_only=True)
class PerItem:
    """A reward per qualifying unit of the referee's purchase, for either or both sides.

    A line item qualifies when its sku is in ``skus`` or its category in ``categories``
    (every item when both are None); each unit of its quantity earns one reward. Rewards of
    money, points or free periods for one line are summed into one grant; vouchers and
    badges are granted once per unit. Each grant names its line's sku (``item``), so a
    refund naming that item reverses it. At most ``cap_per_referral`` units earn a reward on
    each side per purchase.

    Args:
        referrer: The referrer's reward per unit, or None.
        referee: The referee's reward per unit, or None (give at least one side).
        skus: Qualifying skus.
        categories: Qualifying categories.
        cap_per_referral: The most units rewarded per side (None: no cap).
        trigger: ``FIRST_PURCHASE`` (default) or ``EVERY_PURCHASE``.
        name: The policy's name in grants and decisions.
    """

    referrer: RewardValue | None = attrs.field(default=None, converter=_referrer)
    referee: RewardValue | None = attrs.field(default=None, converter=_referee)
    skus: frozenset[str] | None = attrs.field(default=None, converter=_skus)
    categories: frozenset[str] | None = attrs.field(default=None, converter=_categories)
    cap_per_referral: int | None = attrs.field(default=None, converter=_cap)
    trigger: Trigger = attrs.field(default=Trigger.FIRST_PURCHASE, converter=_trigger)
    name: str = "per_item"

    def __attrs_post_init__(self) -> None:
        if self.referrer is None and self.referee is None:
            raise InvalidProgramError("per_item.referrer", None, "give referrer, referee or both")

    def needs(self) -> frozenset[Counter]:
        """Nothing: the rewards depend on the purchase alone."""
        return frozenset()

    def check(self, currency: str) -> None:
        """Money values must be in the program's currency."""
        check_value(f"{self.name}.referrer", self.referrer, currency)
        check_value(f"{self.name}.referee", self.referee, currency)

    def qualifies(self, sku: str, category: str | None) -> bool:
        """Whether a line item of ``sku`` and ``category`` earns rewards."""
        if self.skus is None and self.categories is None:
            return True
        return (self.skus is not None and sku in self.skus) or (
            self.categories is not None and category in self.categories
        )

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """Grants per qualifying line item, referrer's first, up to the cap on each side."""
        ev = ctx.event
        lines = (
            [(i.sku, i.quantity) for i in ev.items if self.qualifies(i.sku, i.category)]
            if isinstance(ev, Purchase)
            else []
        )
        units = sum(q for _, q in lines)
        if not units:
            d = Decision.of(self.name, Verdict.SKIPPED, "per_item.no_items")
            return PolicyResult(decisions=(d,))
        grants: list[RewardGrant] = []
        decisions: list[Decision] = []
        for role, value in ((Role.REFERRER, self.referrer), (Role.REFEREE, self.referee)):
            if value is None:
                continue
            left = units if self.cap_per_referral is None else min(units, self.cap_per_referral)
            summable = value.unit.kind in _SUMMABLE
            for sku, quantity in lines:
                n = min(quantity, left)
                if n <= 0:
                    break
                left -= n
                if summable:
                    total = reward_from_quantity(value, value.quantity * n)
                    g, d = grant(ctx, self.name, role, total, sku=sku, units=n)
                    grants.append(attrs.evolve(g, item=sku))
                    decisions.append(d)
                else:
                    for _ in range(n):
                        g, d = grant(ctx, self.name, role, value, sku=sku, units=1)
                        grants.append(attrs.evolve(g, item=sku))
                        decisions.append(d)
            if self.cap_per_referral is not None and units > self.cap_per_referral:
                decisions.append(
                    Decision.of(
                        self.name,
                        Verdict.CLAMPED,
                        "per_item.capped",
                        role=role,
                        cap=self.cap_per_referral,
                        units=units,
                    )
                )
        return PolicyResult(tuple(grants), tuple(decisions))
