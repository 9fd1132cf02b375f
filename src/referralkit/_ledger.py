"""The reward state machine, pure: entries in, states and balances out.

A reward's state and outstanding quantity are derived from its append-only entries; nothing
about a balance is stored on its own. The engine asks these functions for the entries to
append and the store only keeps them. Every function here is pure: the same view and
arguments give the same entry, id included, so a retried operation finds its entry there
already (or gets the same id, which the store refuses as a duplicate).

States:

```text
               hold                              release (back to the state before)
   ┌─────────────────────────▶ held ◀───────────────────────────────┐
   │                           │  │                                 │
pending ──settle at payable_at─┼─▶ approved ──payout──▶ paid        │
   │                           │      │                  │          │
   │ reject / veto / fraud     │      │                  └─ reversal: clawback (owed)
   ▼                           ▼      ▼
rejected / fraud (final)     reversed (final, on a full refund or chargeback;
                                       partial reversals keep the state)
```

- ``rejected`` and ``fraud`` are final; their outstanding quantity leaves every balance.
- A held reward is never approved by ``settle``; ``release`` (or an operator's
  ``approve``) decides.
- A reversal of a paid reward is a clawback: the participant owes it until it is netted
  against a payout (``recovered``) or written off (``written_off``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

import attrs

from referralkit._errors import IllegalTransitionError
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
    "decide_approve",
    "grant_entry",
    "hold_entry",
    "pay_entry",
    "recover_entry",
    "reject_entry",
    "release_entry",
    "reversal_entry",
    "review_due_entry",
    "target_reversed",
    "write_off_entry",
]

_ZERO = Decimal(0)
_UNTIL = " until "
FINAL_STATES = frozenset({RewardState.REJECTED, RewardState.FRAUD, RewardState.REVERSED})
_REMOVED = frozenset({EntryKind.REVERSED, EntryKind.CLAWED_BACK, EntryKind.REJECTED})
_USED = frozenset({EntryKind.REDEEMED, EntryKind.EXPIRED})


@attrs.frozen
class RewardView:
    """A reward with its entries and what they add up to."""

    reward: Reward
    entries: tuple[Entry, ...]

    def _sum(self, *kinds: EntryKind) -> Decimal:
        return sum((e.quantity for e in self.entries if e.kind in kinds), _ZERO)

    @property
    def state(self) -> RewardState:
        """The state after the last entry."""
        return self.entries[-1].state_after

    @property
    def granted(self) -> Decimal:
        """Quantity granted."""
        return self._sum(EntryKind.GRANTED)

    @property
    def reversed(self) -> Decimal:
        """Quantity reversed so far, clawbacks included (never more than granted)."""
        return self._sum(EntryKind.REVERSED, EntryKind.CLAWED_BACK)

    @property
    def rejected(self) -> Decimal:
        """Quantity removed by a rejection (the outstanding quantity when rejected)."""
        return self._sum(EntryKind.REJECTED)

    @property
    def used(self) -> Decimal:
        """Points redeemed or expired (0 for other units)."""
        return sum((e.quantity for e in self.entries if e.kind in _USED), _ZERO)

    @property
    def outstanding(self) -> Decimal:
        """Granted minus reversed minus rejected (minus points redeemed or expired)."""
        return sum(
            (
                e.quantity if e.kind is EntryKind.GRANTED else -e.quantity
                for e in self.entries
                if e.kind is EntryKind.GRANTED or e.kind in _REMOVED or e.kind in _USED
            ),
            _ZERO,
        )

    @property
    def paid(self) -> Decimal:
        """Quantity paid out (0 before payment)."""
        return self._sum(EntryKind.PAID)

    @property
    def clawed_back(self) -> Decimal:
        """Quantity reversed after payment."""
        return self._sum(EntryKind.CLAWED_BACK)

    @property
    def owed(self) -> Decimal:
        """Clawed back and neither recovered from a payout nor written off yet."""
        return self.clawed_back - self._sum(EntryKind.RECOVERED, EntryKind.WRITTEN_OFF)

    @property
    def hold(self) -> Entry | None:
        """The entry that put the reward on hold, while it is held."""
        if self.state is not RewardState.HELD:
            return None
        for entry in reversed(self.entries):
            if entry.kind is EntryKind.HELD:
                return entry
        return None  # pragma: no cover - a held state always has its entry

    @property
    def hold_reason(self) -> str | None:
        """Why the reward is held, while it is."""
        hold = self.hold
        return None if hold is None else _split_until(hold.cause)[0]

    @property
    def held_until(self) -> datetime | None:
        """When the current hold ends by itself (``settle`` releases it), or None when only
        a decision ends it."""
        hold = self.hold
        return None if hold is None else _split_until(hold.cause)[1]

    @property
    def state_before_hold(self) -> RewardState:
        """The state a release returns to: the one before the current hold."""
        for i in range(len(self.entries) - 1, 0, -1):
            if self.entries[i].kind is EntryKind.HELD:
                return self.entries[i - 1].state_after
        return RewardState.PENDING

    @property
    def review_reminded(self) -> bool:
        """Whether the operator was reminded of the current hold."""
        hold = self.hold
        return hold is not None and any(
            e.kind is EntryKind.REVIEW_DUE and e.at >= hold.at for e in self.entries
        )

    def count(self, kind: EntryKind) -> int:
        """How many entries of ``kind`` the reward has."""
        return sum(1 for e in self.entries if e.kind is kind)


def _split_until(cause: str) -> tuple[str, datetime | None]:
    reason, sep, tail = cause.rpartition(_UNTIL)
    if sep:
        try:
            return reason, datetime.fromisoformat(tail)
        except ValueError:
            pass
    return cause, None


def _entry(
    view: RewardView,
    name: str,
    kind: EntryKind,
    quantity: Decimal,
    at: datetime,
    cause: str,
    state: RewardState,
    actor: str,
) -> Entry:
    reward = view.reward
    return Entry(  # entry_id, reward_id, program_id, participant_id, kind, quantity, at,
        sub_id("ent", reward.reward_id, name),  # cause, state_after, actor
        reward.reward_id,
        reward.program_id,
        reward.participant_id,
        kind,
        quantity,
        at,
        cause,
        state,
        actor,
    )


def grant_entry(reward: Reward) -> Entry:
    """The first entry of a new reward: granted, pending until ``payable_at``."""
    reward_id = reward.reward_id
    return Entry(  # entry_id, reward_id, program_id, participant_id, kind, quantity, at,
        sub_id("ent", reward_id, "granted"),  # cause, state_after
        reward_id,
        reward.program_id,
        reward.participant_id,
        EntryKind.GRANTED,
        reward.value.quantity,
        reward.created_at,
        reward.source_event_id,
        RewardState.PENDING,
    )


def approve_entry(view: RewardView, at: datetime, cause: str = "settle") -> Entry | None:
    """The approval of a pending reward, or None when it is not pending."""
    if view.state is not RewardState.PENDING:
        return None
    return _entry(
        view,
        "approved",
        EntryKind.APPROVED,
        view.outstanding,
        at,
        cause,
        RewardState.APPROVED,
        "engine",
    )


def decide_approve(view: RewardView, at: datetime, actor: str) -> Entry | None:
    """An operator's approval of a pending or held reward (ending a hold early).

    Returns None when it is approved already.

    Raises:
        IllegalTransitionError: the reward is paid, reversed, rejected or fraud.
    """
    state = view.state
    if state is RewardState.APPROVED:
        return None
    if state not in (RewardState.PENDING, RewardState.HELD):
        raise IllegalTransitionError(view.reward.reward_id, state.value, "approve")
    n = view.count(EntryKind.APPROVED)
    name = "approved" if n == 0 else derive_id("approved", str(n))
    return _entry(
        view,
        name,
        EntryKind.APPROVED,
        view.outstanding,
        at,
        "decision",
        RewardState.APPROVED,
        actor,
    )


def hold_entry(
    view: RewardView, at: datetime, reason: str, actor: str, until: datetime | None = None
) -> Entry | None:
    """Put a pending or approved reward on hold; None when it is held already.

    The cause is the reason, followed by ``" until <ISO datetime>"`` for a hold that ends
    by itself.

    Raises:
        IllegalTransitionError: the reward is paid, reversed, rejected or fraud.
    """
    state = view.state
    if state is RewardState.HELD:
        return None
    if state not in (RewardState.PENDING, RewardState.APPROVED):
        raise IllegalTransitionError(view.reward.reward_id, state.value, "hold")
    cause = reason if until is None else f"{reason}{_UNTIL}{until.isoformat()}"
    name = derive_id("held", str(view.count(EntryKind.HELD)))
    return _entry(view, name, EntryKind.HELD, view.outstanding, at, cause, RewardState.HELD, actor)


def release_entry(view: RewardView, at: datetime, actor: str, cause: str = "release") -> Entry:
    """Release a held reward back to the state it had before the hold (pending or approved;
    a pending one is approved by the next ``settle`` once due).

    Raises:
        IllegalTransitionError: the reward is not held.
    """
    if view.state is not RewardState.HELD:
        raise IllegalTransitionError(view.reward.reward_id, view.state.value, "release")
    name = derive_id("released", str(view.count(EntryKind.RELEASED)))
    return _entry(
        view,
        name,
        EntryKind.RELEASED,
        view.outstanding,
        at,
        cause,
        view.state_before_hold,
        actor,
    )


def reject_entry(
    view: RewardView, at: datetime, actor: str, cause: str, *, fraud: bool = False
) -> Entry | None:
    """Refuse a pending, held or approved reward for good; None when it is refused already.

    The entry's quantity is the outstanding quantity, which leaves every balance.

    Raises:
        IllegalTransitionError: the reward is paid (reverse it instead) or reversed.
    """
    state = view.state
    if state in (RewardState.REJECTED, RewardState.FRAUD):
        return None
    if state not in (RewardState.PENDING, RewardState.HELD, RewardState.APPROVED):
        raise IllegalTransitionError(view.reward.reward_id, state.value, "reject")
    final = RewardState.FRAUD if fraud else RewardState.REJECTED
    return _entry(view, "rejected", EntryKind.REJECTED, view.outstanding, at, cause, final, actor)


def review_due_entry(view: RewardView, at: datetime, deadline: datetime) -> Entry | None:
    """A reminder that a held reward awaits a decision, once per hold, when ``at`` reached
    ``deadline``; None otherwise."""
    hold = view.hold
    if hold is None or at < deadline or view.review_reminded:
        return None
    return _entry(
        view,
        derive_id("review", hold.entry_id),
        EntryKind.REVIEW_DUE,
        _ZERO,
        at,
        "review",
        RewardState.HELD,
        "engine",
    )


def pay_entry(view: RewardView, at: datetime, payout_id: str) -> Entry:
    """Mark a reward paid by a payout. Its id depends on the reward alone, so a reward can
    be paid at most once: a second payment is a duplicate entry id.

    A reward put on hold while its payout was with the fulfiller is marked paid too: the
    money has left, and leaving it held would let a later payout pay it again.

    Raises:
        IllegalTransitionError: the reward is neither approved nor held.
    """
    if view.state not in (RewardState.APPROVED, RewardState.HELD):
        raise IllegalTransitionError(view.reward.reward_id, view.state.value, "pay")
    return _entry(
        view,
        "paid",
        EntryKind.PAID,
        view.outstanding,
        at,
        payout_id,
        RewardState.PAID,
        "engine",
    )


def recover_entry(view: RewardView, quantity: Decimal, at: datetime, payout_id: str) -> Entry:
    """Net ``quantity`` of what the participant owes on this reward against a payout."""
    return _entry(
        view,
        derive_id("recovered", payout_id),
        EntryKind.RECOVERED,
        quantity,
        at,
        payout_id,
        view.state,
        "engine",
    )


def write_off_entry(view: RewardView, at: datetime, actor: str, reason: str) -> Entry | None:
    """Write off what the participant owes on this reward; None when nothing is owed."""
    owed = view.owed
    if owed <= 0:
        return None
    name = derive_id("written_off", str(view.count(EntryKind.WRITTEN_OFF)))
    return _entry(view, name, EntryKind.WRITTEN_OFF, owed, at, reason, view.state, actor)


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
    """The entry that brings the reversed quantity up to ``target``, or None if it is there.

    A rejected or wholly reversed reward has nothing left to reverse. A paid reward is
    clawed back instead (``clawed_back``, the state stays paid): the participant owes it.
    """
    state = view.state
    if state in FINAL_STATES:
        return None
    # The sums of RewardView's properties, in one pass (each added up in entry order).
    granted = reversed_ = used = outstanding = _ZERO
    for e in view.entries:
        kind = e.kind
        if kind is EntryKind.GRANTED:
            granted += e.quantity
            outstanding += e.quantity
        elif kind in _REMOVED:
            if kind is not EntryKind.REJECTED:
                reversed_ += e.quantity
            outstanding += -e.quantity
        elif kind in _USED:
            used += e.quantity
            outstanding += -e.quantity
    # Points already redeemed or expired are gone: a reversal takes at most what is left.
    quantity = min(min(target, granted) - reversed_, outstanding)
    if quantity <= 0:
        return None
    name = derive_id("rev", cause)
    if state is RewardState.PAID:
        return _entry(view, name, EntryKind.CLAWED_BACK, quantity, at, cause, state, "engine")
    full = reversed_ + used + quantity >= granted
    after = RewardState.REVERSED if full else state
    return _entry(view, name, EntryKind.REVERSED, quantity, at, cause, after, "engine")


@attrs.frozen
class BalanceLine:
    """A participant's balance in one unit, derived from the entries.

    ``pending + held + available + paid == lifetime`` always holds.

    Attributes:
        unit: What the quantities count (a currency's major units for money kinds).
        pending: Granted and not yet payable (in the hold period), net of reversals.
        available: Approved and payable, net of reversals. Where the program allows a
            negative balance (``Program.negative_balance``), what is owed is subtracted
            here, so it may be negative.
        lifetime: Everything granted minus everything reversed or rejected (and points
            redeemed or expired).
        held: On hold for review or by a fraud check, net of reversals.
        paid: Paid out, net of later clawbacks.
        owed: Clawed back after payment and not yet netted against a payout or written
            off (the participant owes it).
    """

    unit: Unit
    pending: Decimal
    available: Decimal
    lifetime: Decimal
    held: Decimal = _ZERO
    paid: Decimal = _ZERO
    owed: Decimal = _ZERO

    def as_money(self, which: str = "available") -> Money:
        """``pending``, ``available``, ``lifetime``, ``held``, ``paid`` or ``owed`` as
        Money (money units only)."""
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
        return all(
            not (x.pending or x.available or x.lifetime or x.held or x.paid or x.owed)
            for x in self.lines
        )


def balance_of(
    participant_id: str, views: Sequence[RewardView], *, negative_balance: bool = False
) -> Balance:
    """Sum reward views into balance lines per unit (derived, never stored).

    Args:
        participant_id: Whose balance.
        views: The participant's rewards.
        negative_balance: Subtract what is owed from ``available`` (which may then be
            negative) instead of only reporting it as ``owed``.
    """
    sums: dict[Unit, list[Decimal]] = {}
    for view in views:
        line = sums.setdefault(view.reward.unit, [_ZERO] * 6)
        outstanding = view.outstanding
        state = view.state
        if state is RewardState.PENDING:
            line[0] += outstanding
        elif state is RewardState.APPROVED:
            line[1] += outstanding
        elif state is RewardState.HELD:
            line[3] += outstanding
        elif state is RewardState.PAID:
            line[4] += outstanding
        line[2] += outstanding
        line[5] += view.owed
    lines = []
    for unit in sorted(sums):
        quantum = Decimal(1).scaleb(-unit.exponent)
        pending, available, lifetime, held, paid, owed = (q.quantize(quantum) for q in sums[unit])
        if negative_balance:
            available -= owed
        lines.append(BalanceLine(unit, pending, available, lifetime, held, paid, owed))
    return Balance(participant_id, tuple(lines))
