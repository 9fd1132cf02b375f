"""The reward state machine, pure: entries in, states and balances out.

A reward's state and outstanding quantity are derived from its append-only entries; nothing
about a balance is stored on its own. The engine asks these functions for the entries to
append and the store only keeps them.

States:

```text
pending ──settle at payable_at──▶ approved
   │                                  │
   └──── full reversal ──▶ reversed ◀─┘   (partial reversals keep the state)
```

"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import attrs

from referralkit._values.ids import derive_id, sub_id
from referralkit._values.money import Money
from referralkit._values.records import Entry, EntryKind, Reward, RewardState
from referralkit._values.rewards import Unit

__all__ = [
    "Balance",
    "BalanceLine",
    "RewardView",
    "approve_entry",
    "balance_of",
    "grant_entry",
    "reversal_entry",
    "target_reversed",
]

_ZERO = Decimal(0)
_USED = frozenset({EntryKind.REDEEMED, EntryKind.EXPIRED})


@attrs.frozen
class RewardView:
    """A reward with its entries and what they add up to."""

    reward: Reward
    entries: tuple[Entry, ...]

    @property
    def state(self) -> RewardState:
        """The state after the last entry."""
        return self.entries[-1].state_after

    @property
    def granted(self) -> Decimal:
        """Quantity granted."""
        return sum((e.quantity for e in self.entries if e.kind is EntryKind.GRANTED), _ZERO)

    @property
    def reversed(self) -> Decimal:
        """Quantity reversed so far (never more than granted)."""
        return sum((e.quantity for e in self.entries if e.kind is EntryKind.REVERSED), _ZERO)

    @property
    def used(self) -> Decimal:
        """Points redeemed or expired (0 for other units)."""
        return sum((e.quantity for e in self.entries if e.kind in _USED), _ZERO)

    @property
    def outstanding(self) -> Decimal:
        """Granted minus reversed, redeemed and expired."""
        return self.granted - self.reversed - self.used


def grant_entry(reward: Reward) -> Entry:
    """The first entry of a new reward: granted, pending until ``payable_at``."""
    return Entry(
        entry_id=sub_id("ent", reward.reward_id, "granted"),
        reward_id=reward.reward_id,
        program_id=reward.program_id,
        participant_id=reward.participant_id,
        kind=EntryKind.GRANTED,
        quantity=reward.value.quantity,
        at=reward.created_at,
        cause=reward.source_event_id,
        state_after=RewardState.PENDING,
    )


def approve_entry(view: RewardView, at: datetime, cause: str = "settle") -> Entry | None:
    """The approval of a pending reward, or None when it is not pending."""
    if view.state is not RewardState.PENDING:
        return None
    return Entry(
        entry_id=sub_id("ent", view.reward.reward_id, "approved"),
        reward_id=view.reward.reward_id,
        program_id=view.reward.program_id,
        participant_id=view.reward.participant_id,
        kind=EntryKind.APPROVED,
        quantity=view.outstanding,
        at=at,
        cause=cause,
        state_after=RewardState.APPROVED,
    )


def target_reversed(view: RewardView, refunded: Money, base: Money, rounding: str) -> Decimal:
    """How much of the reward should be reversed once ``refunded`` of ``base`` is refunded.

    The target is computed on the cumulative refund, so partial refunds never reverse more
    than was granted in total and a full refund reverses everything, whatever the rounding:
    ``granted * refunded / base`` rounded to the unit's precision with ``rounding`` (money
    to its minor unit, points to whole points). Units that cannot be split (badges, free
    periods, percent vouchers) are reversed only by a full refund.
    """
    granted = view.granted
    if refunded >= base or not base.amount:
        return granted
    unit: Unit = view.reward.unit
    if not unit.divisible:
        return _ZERO
    quantum = Decimal(1).scaleb(-unit.exponent)
    mode = rounding if unit.is_money else ROUND_DOWN
    target = (granted * refunded.amount / base.amount).quantize(quantum, rounding=mode)
    return min(max(target, _ZERO), granted)


def reversal_entry(view: RewardView, target: Decimal, at: datetime, cause: str) -> Entry | None:
    """The entry that brings the reversed quantity up to ``target``, or None if it is there."""
    # Points already redeemed or expired are gone: a reversal takes at most what is left.
    quantity = min(min(target, view.granted) - view.reversed, view.outstanding)
    if quantity <= 0 or view.state is RewardState.REVERSED:
        return None
    full = view.reversed + view.used + quantity >= view.granted
    return Entry(
        entry_id=sub_id("ent", view.reward.reward_id, derive_id("rev", cause)),
        reward_id=view.reward.reward_id,
        program_id=view.reward.program_id,
        participant_id=view.reward.participant_id,
        kind=EntryKind.REVERSED,
        quantity=quantity,
        at=at,
        cause=cause,
        state_after=RewardState.REVERSED if full else view.state,
    )


@attrs.frozen
class BalanceLine:
    """A participant's balance in one unit.

    Attributes:
        unit: What the quantities count (a currency's major units for money kinds).
        pending: Granted and not yet payable (in the hold period), net of reversals.
        available: Approved and payable, net of reversals.
        lifetime: Everything granted minus everything reversed (redeemed and expired points
            included).
    """

    unit: Unit
    pending: Decimal
    available: Decimal
    lifetime: Decimal

    def as_money(self, which: str = "available") -> Money:
        """``pending``, ``available`` or ``lifetime`` as Money (money units only)."""
        if not self.unit.is_money:
            raise TypeError(f"{self.unit} is not a money unit")
        quantity: Decimal = getattr(self, which)
        return Money._trusted(quantity, self.unit.code)


@attrs.frozen
class Balance:
    """A participant's balances, one line per unit, sorted by unit."""

    participant_id: str
    lines: tuple[BalanceLine, ...]

    def __getitem__(self, unit: Unit) -> BalanceLine:
        for line in self.lines:
            if line.unit == unit:
                return line
        return BalanceLine(unit, _ZERO, _ZERO, _ZERO)

    def __iter__(self) -> Iterator[BalanceLine]:
        return iter(self.lines)

    def is_zero(self) -> bool:
        """Whether every line is zero."""
        return all(not (x.pending or x.available or x.lifetime) for x in self.lines)


def balance_of(participant_id: str, views: Sequence[RewardView]) -> Balance:
    """Sum reward views into balance lines per unit (derived, never stored)."""
    sums: dict[Unit, list[Decimal]] = {}
    for view in views:
        line = sums.setdefault(view.reward.unit, [_ZERO, _ZERO, _ZERO])
        outstanding = view.outstanding
        if view.state is RewardState.PENDING:
            line[0] += outstanding
        elif view.state is RewardState.APPROVED:
            line[1] += outstanding
        line[2] += outstanding + view.used
    lines = []
    for unit in sorted(sums):
        quantum = Decimal(1).scaleb(-unit.exponent)
        pending, available, lifetime = (q.quantize(quantum) for q in sums[unit])
        lines.append(BalanceLine(unit, pending, available, lifetime))
    return Balance(participant_id, tuple(lines))
