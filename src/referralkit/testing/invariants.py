"""Checks of the design invariants over a store's records.

Each ``check_*`` function reads ``store.dump()`` (and, when given, asks the engine), and
raises ``AssertionError`` listing every violation it found, each naming the records
involved. They work on any [`Store`][referralkit.Store] whose ``dump()`` uses the table
names of [`InMemoryStore`][referralkit.InMemoryStore]:

```python
engine = scenario.new_engine()
playback = scenario.play(engine)
check_playback(playback)          # duplicates and retries were no-ops
check_all(engine.store, engine)   # ledger, reversals, outbox, one referrer
```

``ledger_snapshot`` projects a store onto what must be identical after a replay (rewards,
entries, referrals and notifications, ids included), for determinism tests.

The checks compare with independent computations (exact fractions for pro-rata
reversals, sums of entries for balances), not with the engine's own helpers.
"""

from __future__ import annotations

import decimal
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from referralkit._counter_names import ORDER_BACKFILLED
from referralkit._values.events import Refund
from referralkit._values.ids import derive_id
from referralkit._values.records import (
    ChargebackRecord,
    CodeRecord,
    Entry,
    EntryKind,
    Notification,
    OrderRecord,
    ProgramRecord,
    Referral,
    RefundRecord,
    Reward,
    RewardState,
    Role,
)
from referralkit.attribution import normalise_code, normalise_email

if TYPE_CHECKING:
    from referralkit._engine import Engine
    from referralkit._ports import Store
    from referralkit.testing.strategies import Playback

__all__ = [
    "LedgerSnapshot",
    "check_all",
    "check_ledger",
    "check_one_referrer",
    "check_outbox",
    "check_paid_once",
    "check_playback",
    "check_reversals",
    "ledger_snapshot",
    "round_fraction",
]

T = TypeVar("T")
_ZERO = Decimal(0)
_SHOWN = 25  # violations listed in one AssertionError
_REPEATED = frozenset(
    {
        "signup.repeated",
        "referral.already_referred",
        "order.repeated",
        "refund.repeated",
        "chargeback.repeated",
    }
)


class _Violations:
    """Collects violations and raises them together."""

    def __init__(self, invariant: str) -> None:
        self.invariant = invariant
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)

    def raise_any(self) -> None:
        if not self.lines:
            return
        shown = [f"  - {line}" for line in self.lines[:_SHOWN]]
        if len(self.lines) > _SHOWN:
            shown.append(f"  ... and {len(self.lines) - _SHOWN} more")
        raise AssertionError(
            f"{self.invariant}: {len(self.lines)} violation(s)\n" + "\n".join(shown)
        )


def _table(dump: Mapping[str, list[Any]], name: str, kind: type[T]) -> list[T]:
    return [r for r in dump.get(name, ()) if isinstance(r, kind)]


def _quantum(reward: Reward) -> Decimal:
    return Decimal(1).scaleb(-reward.unit.exponent)


def round_fraction(value: Fraction, rounding: str) -> int:
    """``value`` rounded to an integer exactly, with a ``decimal`` rounding mode.

    ``ROUND_HALF_UP`` rounds ties away from zero, as ``decimal`` does (2.5 -> 3,
    -2.5 -> -3).

    Raises:
        ValueError: an unknown rounding mode.
    """
    floor = math.floor(value)
    rest = value - floor
    if not rest:
        return floor
    away = floor + 1 if value > 0 else floor  # away from zero
    toward = floor if value > 0 else floor + 1  # toward zero
    simple = {
        decimal.ROUND_FLOOR: floor,
        decimal.ROUND_CEILING: floor + 1,
        decimal.ROUND_DOWN: toward,
        decimal.ROUND_UP: away,
    }
    if rounding in simple:
        return simple[rounding]
    half = Fraction(1, 2)
    if rest != half:
        return floor + 1 if rest > half else floor
    ties = {
        decimal.ROUND_HALF_UP: away,
        decimal.ROUND_HALF_DOWN: toward,
        decimal.ROUND_HALF_EVEN: floor if floor % 2 == 0 else floor + 1,
    }
    if rounding not in ties:
        raise ValueError(f"rounding={rounding!r} is not a supported decimal rounding mode")
    return ties[rounding]


# -- the ledger ---------------------------------------------------------------------------
def check_ledger(store: Store, engine: Engine | None = None) -> None:
    """The ledger is well formed and bounded (invariant 4).

    Checks every reward and entry:

    - each entry names a known reward, its program and participant; each reward has
      entries, the first being its only grant, of the value's quantity, greater than zero;
    - quantities are positive and exact to the unit (money to the currency's minor unit);
    - reversals (and clawbacks) never exceed the grant; approvals, holds, releases,
      rejections and payments move what is outstanding; every entry follows the state
      machine (pending -> approved -> paid, held and released, rejected / fraud and full
      reversals final); a reward is paid at most once; recovered and written-off
      quantities never exceed what was clawed back;
    - each reward belongs to a referral, to its referrer or referee as its role says, under
      the referral's program version (terms lock), and to the order it names; a reward an
      operator's re-attribution took back (``Engine.reattribute``), or one to a former
      referrer of a moved referral, is wholly reversed (or clawed back, rejected, used) and
      went to a former referrer or the referee;
    - with ``engine``: every participant's balance (pending, available, held, paid, owed,
      lifetime) equals the sums of their entries.

    Args:
        store: The store to read.
        engine: The engine over ``store``, to compare its balances (optional).

    Raises:
        AssertionError: listing every violation.
    """
    dump = store.dump()
    bad = _Violations("ledger (invariant 4)")
    rewards = {r.reward_id: r for r in _table(dump, "rewards", Reward)}
    referrals = {r.referral_id: r for r in _table(dump, "referrals", Referral)}
    orders = {(o.program_id, o.order_id): o for o in _table(dump, "orders", OrderRecord)}
    for (pid, name, order_id), mark in dump.get("counters", []):
        order = orders.get((pid, order_id))
        if name == ORDER_BACKFILLED and mark and order is not None and not order.referral_id:
            # counted by Engine.reattribute for the referee's referral after it was recorded
            referral_id = derive_id("ref", pid, order.participant_id)
            orders[(pid, order_id)] = attrs.evolve(order, referral_id=referral_id)
    entries: dict[str, list[Entry]] = defaultdict(list)
    seen_entries: set[str] = set()
    for entry in _table(dump, "entries", Entry):
        if entry.entry_id in seen_entries:
            bad.add(f"entry id {entry.entry_id} appears twice")
        seen_entries.add(entry.entry_id)
        if entry.reward_id not in rewards:
            bad.add(f"entry {entry.entry_id} names unknown reward {entry.reward_id}")
            continue
        entries[entry.reward_id].append(entry)
    for reward in rewards.values():
        _check_reward(bad, reward, entries.get(reward.reward_id, []))
        referral = referrals.get(reward.referral_id)
        if referral is None:
            bad.add(f"reward {reward.reward_id} names unknown referral {reward.referral_id}")
        elif _moved(entries.get(reward.reward_id, [])) or (
            reward.role is Role.REFERRER and reward.participant_id != referral.referrer_id
        ):
            # Taken back when an operator changed the referral's referrer (or reversed
            # before): wholly, and it went to a former referrer of the referral, or to its
            # referee.
            _check_moved(bad, reward, referral, entries[reward.reward_id])
            continue
        else:
            expected = referral.referrer_id if reward.role is Role.REFERRER else referral.referee_id
            if reward.participant_id != expected:
                bad.add(
                    f"reward {reward.reward_id} goes to {reward.participant_id!r} but the "
                    f"{reward.role.value} of {referral.referral_id} is {expected!r}"
                )
            if reward.program_version != referral.program_version:
                bad.add(
                    f"reward {reward.reward_id} was granted under version "
                    f"{reward.program_version}, its referral was attributed under "
                    f"{referral.program_version}"
                )
        if reward.order_id is not None:
            order = orders.get((reward.program_id, reward.order_id))
            if order is None:
                bad.add(f"reward {reward.reward_id} names unknown order {reward.order_id}")
            elif order.referral_id != reward.referral_id:
                bad.add(
                    f"reward {reward.reward_id} is for order {order.order_id} of referral "
                    f"{order.referral_id}, not {reward.referral_id}"
                )
    if engine is not None:
        _check_balances(bad, engine, rewards.values(), entries)
    bad.raise_any()


def _moved(entries: Iterable[Entry]) -> bool:
    """Whether ``Engine.reattribute`` took this reward back (its reversal's cause)."""
    taken = (EntryKind.REVERSED, EntryKind.CLAWED_BACK)
    return any(e.kind in taken and e.cause.startswith("reattribution_") for e in entries)


def _check_moved(bad: _Violations, reward: Reward, referral: Referral, items: list[Entry]) -> None:
    taken = sum(
        (
            e.quantity
            for e in items
            if e.kind
            in (
                EntryKind.REVERSED,
                EntryKind.CLAWED_BACK,
                EntryKind.REJECTED,
                EntryKind.REDEEMED,
                EntryKind.EXPIRED,
            )
        ),
        _ZERO,
    )
    if taken < reward.value.quantity:
        bad.add(
            f"reward {reward.reward_id} was taken back by a re-attribution, but only "
            f"{taken} of {reward.value.quantity}"
        )
    if reward.role is Role.REFEREE:
        allowed = {referral.referee_id}
    else:
        allowed = {referral.referrer_id} | {
            d.param_map.get("old_referrer", "")
            for d in referral.explanation
            if d.code == "referral.reattributed"
        }
    if reward.participant_id not in allowed:
        bad.add(
            f"reward {reward.reward_id} goes to {reward.participant_id!r}, who was never the "
            f"{reward.role.value} of {referral.referral_id}"
        )


_FINAL = frozenset({RewardState.REVERSED, RewardState.REJECTED, RewardState.FRAUD})
_OUTSTANDING_KINDS = frozenset(
    {EntryKind.APPROVED, EntryKind.HELD, EntryKind.RELEASED, EntryKind.REJECTED, EntryKind.PAID}
)
_FROM: dict[EntryKind, frozenset[RewardState]] = {
    EntryKind.APPROVED: frozenset({RewardState.PENDING, RewardState.HELD}),
    EntryKind.HELD: frozenset({RewardState.PENDING, RewardState.APPROVED}),
    EntryKind.RELEASED: frozenset({RewardState.HELD}),
    EntryKind.REJECTED: frozenset({RewardState.PENDING, RewardState.HELD, RewardState.APPROVED}),
    EntryKind.REVIEW_DUE: frozenset({RewardState.HELD}),
    EntryKind.PAID: frozenset({RewardState.APPROVED, RewardState.HELD}),
    EntryKind.REVERSED: frozenset({RewardState.PENDING, RewardState.APPROVED, RewardState.HELD}),
    EntryKind.CLAWED_BACK: frozenset({RewardState.PAID}),
    EntryKind.RECOVERED: frozenset({RewardState.PAID}),
    EntryKind.WRITTEN_OFF: frozenset({RewardState.PAID}),
    EntryKind.REDEEMED: frozenset({RewardState.APPROVED}),
    EntryKind.EXPIRED: frozenset({RewardState.PENDING, RewardState.APPROVED, RewardState.HELD}),
}


def _check_reward(bad: _Violations, reward: Reward, entries: list[Entry]) -> None:
    rid = reward.reward_id
    if not entries:
        bad.add(f"reward {rid} has no entries")
        return
    quantum = _quantum(reward)
    granted = removed = clawed = settled = _ZERO
    paid = 0
    state: RewardState | None = None
    before_hold = RewardState.PENDING
    for n, entry in enumerate(entries):
        kind = entry.kind
        where = f"reward {rid} entry #{n} ({kind.value} {entry.quantity})"
        if entry.program_id != reward.program_id or entry.participant_id != reward.participant_id:
            bad.add(f"{where}: program or participant differs from its reward")
        if entry.quantity != entry.quantity.quantize(quantum):
            bad.add(f"{where}: not exact to the unit {reward.unit} ({quantum})")
        if state in _FINAL:
            bad.add(f"{where}: follows the final state {state}")
        if n == 0 and kind is not EntryKind.GRANTED:
            bad.add(f"{where}: the first entry must be the grant")
        if kind is EntryKind.GRANTED:
            if n:
                bad.add(f"{where}: a second grant")
            if entry.quantity <= 0:
                bad.add(f"{where}: a grant must be greater than zero")
            if entry.quantity != reward.value.quantity:
                bad.add(f"{where}: grants {entry.quantity}, the value is {reward.value}")
            granted += entry.quantity
            state = entry.state_after
            if state is not RewardState.PENDING:
                bad.add(f"{where}: leaves the reward {state}, expected pending")
            continue
        allowed = _FROM.get(kind, frozenset())
        if state not in allowed:
            bad.add(f"{where}: not allowed from {state}")
        outstanding = granted - removed
        if kind in _OUTSTANDING_KINDS and entry.quantity != outstanding:
            bad.add(f"{where}: moves {entry.quantity}, {outstanding} outstanding")
        if kind is EntryKind.REVIEW_DUE:
            if entry.quantity != 0:
                bad.add(f"{where}: a reminder moves nothing")
        elif entry.quantity <= 0:
            bad.add(f"{where}: must be greater than zero")
        expected: RewardState | None = state
        if kind is EntryKind.APPROVED:
            expected = RewardState.APPROVED
        elif kind is EntryKind.HELD:
            before_hold = state or RewardState.PENDING
            expected = RewardState.HELD
        elif kind is EntryKind.RELEASED:
            expected = before_hold
        elif kind is EntryKind.REJECTED:
            removed += entry.quantity
            if entry.state_after not in (RewardState.REJECTED, RewardState.FRAUD):
                bad.add(f"{where}: a rejection leaves {entry.state_after}")
            expected = entry.state_after
        elif kind is EntryKind.PAID:
            paid += 1
            if paid > 1:
                bad.add(f"{where}: paid a second time")
            expected = RewardState.PAID
        elif kind in (EntryKind.REVERSED, EntryKind.CLAWED_BACK):
            removed += entry.quantity
            if kind is EntryKind.CLAWED_BACK:
                clawed += entry.quantity
            if removed > granted:
                bad.add(f"{where}: removes {removed} in total, more than granted {granted}")
            if kind is EntryKind.REVERSED and removed >= granted:
                expected = RewardState.REVERSED
        elif kind in (EntryKind.REDEEMED, EntryKind.EXPIRED):
            removed += entry.quantity
            if reward.unit.kind != "points":
                bad.add(f"{where}: only points are redeemed or expire")
            if removed > granted:
                bad.add(f"{where}: removes {removed} in total, more than granted {granted}")
        elif kind in (EntryKind.RECOVERED, EntryKind.WRITTEN_OFF):
            settled += entry.quantity
            if settled > clawed:
                bad.add(f"{where}: settles {settled} of a debt of {clawed}")
        if entry.state_after is not expected:
            bad.add(f"{where}: leaves the reward {entry.state_after}, expected {expected}")
        state = entry.state_after


def _check_balances(
    bad: _Violations,
    engine: Engine,
    rewards: Iterable[Reward],
    entries: Mapping[str, list[Entry]],
) -> None:
    program_id = engine.program.id
    negative = engine.program.negative_balance
    expected: dict[str, dict[Any, list[Decimal]]] = defaultdict(dict)
    minus = (
        EntryKind.REVERSED,
        EntryKind.CLAWED_BACK,
        EntryKind.REJECTED,
        EntryKind.REDEEMED,
        EntryKind.EXPIRED,
    )
    for reward in rewards:
        if reward.program_id != program_id:
            continue
        items = entries.get(reward.reward_id, [])
        if not items:
            continue
        outstanding = sum((e.quantity for e in items if e.kind is EntryKind.GRANTED), _ZERO) - sum(
            (e.quantity for e in items if e.kind in minus), _ZERO
        )
        owed = sum((e.quantity for e in items if e.kind is EntryKind.CLAWED_BACK), _ZERO) - sum(
            (e.quantity for e in items if e.kind in (EntryKind.RECOVERED, EntryKind.WRITTEN_OFF)),
            _ZERO,
        )
        # pending, available, lifetime, held, paid, owed
        line = expected[reward.participant_id].setdefault(reward.unit, [_ZERO] * 6)
        column = {
            RewardState.PENDING: 0,
            RewardState.APPROVED: 1,
            RewardState.HELD: 3,
            RewardState.PAID: 4,
        }.get(items[-1].state_after)
        if column is not None:
            line[column] += outstanding
        line[2] += outstanding
        line[5] += owed
    for participant, units in expected.items():
        balance = engine.balance(participant)
        for unit, sums in units.items():
            want = [sums[0], sums[1] - sums[5], *sums[2:]] if negative else sums
            got = balance[unit]
            got_sums = [got.pending, got.available, got.lifetime, got.held, got.paid, got.owed]
            if got_sums != want:
                bad.add(
                    f"balance of {participant!r} in {unit}: engine says pending / available / "
                    f"lifetime / held / paid / owed = {got_sums}, the entries sum to {want}"
                )
            if got.pending + got.held + got.available + got.paid != got.lifetime + (
                -got.owed if negative else _ZERO
            ):
                bad.add(f"balance of {participant!r} in {unit}: the columns do not add up")
        extra = {line.unit for line in balance} - set(units)
        if extra:
            bad.add(f"balance of {participant!r} has units without rewards: {sorted(extra)}")


def check_reversals(store: Store) -> None:
    """Refunds and chargebacks reversed exactly what the program's terms say (invariant 4).

    For every order: a chargeback, or refunds adding up to its amount, reverse all of its
    rewards; partial refunds reverse ``granted * refunded / amount`` of money rewards,
    rounded to the minor unit with the program's rounding mode, and of points, rounded
    down; indivisible rewards (free periods, badges, percent vouchers) are reversed only
    by a full refund. Computed with exact fractions.

    Raises:
        AssertionError: listing every reward whose reversed quantity differs.
    """
    dump = store.dump()
    bad = _Violations("pro-rata reversals (invariant 4)")
    roundings = {
        (p.program_id, p.version): str(p.definition.get("rounding", decimal.ROUND_HALF_UP))
        for p in _table(dump, "programs", ProgramRecord)
    }
    refunded: dict[tuple[str, str], int] = defaultdict(int)
    for refund in _table(dump, "refunds", RefundRecord):
        refunded[(refund.program_id, refund.order_id)] += refund.amount.to_minor()
    charged = {(c.program_id, c.order_id) for c in _table(dump, "chargebacks", ChargebackRecord)}
    orders = {(o.program_id, o.order_id): o for o in _table(dump, "orders", OrderRecord)}
    reversed_: dict[str, Decimal] = defaultdict(lambda: _ZERO)
    used: dict[str, Decimal] = defaultdict(lambda: _ZERO)
    rejected: set[str] = set()
    for entry in _table(dump, "entries", Entry):
        if entry.kind in (EntryKind.REVERSED, EntryKind.CLAWED_BACK) and _moved((entry,)):
            rejected.add(entry.reward_id)  # re-attributed: check_ledger checks it
        elif entry.kind in (EntryKind.REVERSED, EntryKind.CLAWED_BACK):
            reversed_[entry.reward_id] += entry.quantity
        elif entry.kind in (EntryKind.REDEEMED, EntryKind.EXPIRED):
            used[entry.reward_id] += entry.quantity
        elif entry.kind is EntryKind.REJECTED:
            rejected.add(entry.reward_id)
    # Refunds that name line items reverse those items' rewards wholly, not pro rata.
    by_items = {
        (r.program_id, r.event.order_id)
        for r in dump.get("events", [])
        if isinstance(r.event, Refund) and r.event.items
    }
    for reward in _table(dump, "rewards", Reward):
        key = (reward.program_id, reward.order_id or "")
        if reward.reward_id in rejected or key in by_items:
            continue
        order = orders.get(key)
        if reward.order_id is None or order is None:
            if reversed_[reward.reward_id]:
                bad.add(f"reward {reward.reward_id} belongs to no order but was reversed")
            continue
        base = (reward.base_amount or order.amount).to_minor()
        done = refunded[key]
        granted = reward.value.quantity
        unit = reward.unit
        if key in charged or done >= base:
            expected = granted
        elif not unit.divisible or not done:
            expected = _ZERO
        else:
            quantum = _quantum(reward)
            mode = roundings.get((reward.program_id, reward.program_version))
            mode = mode if unit.is_money and mode else decimal.ROUND_DOWN
            exact = Fraction(granted) / Fraction(quantum) * done / base
            expected = min(granted, round_fraction(exact, mode) * quantum)
        # Points redeemed or expired before a reversal are not clawed back.
        least = min(expected, granted - used[reward.reward_id])
        if not least <= reversed_[reward.reward_id] <= expected:
            bad.add(
                f"reward {reward.reward_id} ({reward.value}) of order {order.order_id} "
                f"({order.amount}, {Decimal(done).scaleb(-order.amount.exponent)} refunded"
                f"{', charged back' if key in charged else ''}): reversed "
                f"{reversed_[reward.reward_id]}, expected {expected}"
            )
    bad.raise_any()


# -- referrals ------------------------------------------------------------------------------
def check_one_referrer(store: Store) -> None:
    """One referrer per referee per program, and nobody refers themself (invariant 5).

    Checks that no referee has two referrals in a program, no referral joins a person to
    themself (by participant id, or by their normalised emails when both are known, unless
    the referral is held for review: a referrer who signs up later with the referee's
    inbox is caught then), and every referral's code is owned by its referrer.

    Raises:
        AssertionError: listing every violation.
    """
    dump = store.dump()
    bad = _Violations("one referrer, no self-referral (invariant 5)")
    owners = {(c.program_id, c.code): c.participant_id for c in _table(dump, "codes", CodeRecord)}
    emails: dict[tuple[str, str], str] = {}
    for (program_id, participant), email in dump.get("personal_data", ()):
        emails[(program_id, participant)] = normalise_email(email)
    by_referee: dict[tuple[str, str], list[Referral]] = defaultdict(list)
    for referral in _table(dump, "referrals", Referral):
        pid = referral.program_id
        by_referee[(pid, referral.referee_id)].append(referral)
        rid = referral.referral_id
        if referral.referrer_id == referral.referee_id:
            bad.add(f"referral {rid}: {referral.referee_id!r} referred themself")
        mail = emails.get((pid, referral.referee_id))
        if (
            mail is not None
            and mail == emails.get((pid, referral.referrer_id))
            and referral.status != "held"  # found out later and held for an operator
        ):
            bad.add(
                f"referral {rid}: referee {referral.referee_id!r} and referrer "
                f"{referral.referrer_id!r} share the email {mail!r}"
            )
        owner = owners.get((pid, normalise_code(referral.code)))
        if owner != referral.referrer_id:
            bad.add(
                f"referral {rid}: code {referral.code!r} belongs to {owner!r}, not the referrer"
            )
    for (pid, referee), found in by_referee.items():
        if len(found) > 1:
            bad.add(
                f"{referee!r} has {len(found)} referrals in program {pid!r}: "
                + ", ".join(f"{r.referral_id} by {r.referrer_id!r}" for r in found)
            )
    bad.raise_any()


# -- the outbox ---------------------------------------------------------------------------
_NOT_CHECKED = frozenset(
    {
        "milestone_reached",
        "status_changed",
        "points_redeemed",
        "points_expired",
        "budget_exhausted",
    }
)


def check_outbox(store: Store) -> None:
    """Every change was written with its notification, and no notification without its
    change (invariant 3).

    One ``referral_created`` per referral, one ``reward_earned`` per reward, one
    ``reward_approved`` per approval entry and one ``reward_reversed`` per reversal entry,
    one ``reward_held``, ``reward_released``, ``reward_rejected``, ``review_due`` or
    ``reward_clawed_back`` per entry of that kind, and one ``reward_paid`` per paid payout,
    each sent to the person concerned; one ``referral_reattributed`` per re-attribution in
    a referral's explanation, to its new referrer (``referral_created`` went to the first
    referrer); ``referral_held`` to one of the referral's referrers; no notification names
    a missing record.

    Raises:
        AssertionError: listing every violation.
    """
    dump = store.dump()
    bad = _Violations("outbox written with its changes (invariant 3)")
    rewards = {r.reward_id: r for r in _table(dump, "rewards", Reward)}
    expected: dict[tuple[str, str], int] = defaultdict(int)
    recipients: dict[tuple[str, str], str] = {}
    moved: dict[str, set[str]] = defaultdict(set)  # referral id -> its new referrers
    referrers: dict[str, set[str]] = defaultdict(set)  # referral id -> every referrer
    for referral in _table(dump, "referrals", Referral):
        referrers[referral.referral_id] = {
            referral.referrer_id,
            *(
                d.param_map.get("old_referrer", "")
                for d in referral.explanation
                if d.code == "referral.reattributed"
            ),
        }
        expected[("referral_created", referral.referral_id)] += 1
        first = referral.referrer_id  # who was told of the referral when it was made
        for decision in referral.explanation:
            if decision.code == "referral.reattributed":  # Engine.reattribute
                params = decision.param_map
                if first == referral.referrer_id and not moved[referral.referral_id]:
                    first = params["old_referrer"] or params["new_referrer"]
                expected[("referral_reattributed", referral.referral_id)] += 1
                moved[referral.referral_id].add(params["new_referrer"])
        recipients[("referral_created", referral.referral_id)] = first
    for reward in rewards.values():
        expected[("reward_earned", reward.reward_id)] += 1
    kinds = {
        EntryKind.APPROVED: "reward_approved",
        EntryKind.REVERSED: "reward_reversed",
        EntryKind.HELD: "reward_held",
        EntryKind.RELEASED: "reward_released",
        EntryKind.REJECTED: "reward_rejected",
        EntryKind.REVIEW_DUE: "review_due",
        EntryKind.CLAWED_BACK: "reward_clawed_back",
    }
    for entry in _table(dump, "entries", Entry):
        if entry.kind in kinds:
            expected[(kinds[entry.kind], entry.reward_id)] += 1
    for payout in dump.get("payouts", []):
        if payout.status.value == "paid":
            expected[("reward_paid", payout.payout_id)] += 1
            recipients[("reward_paid", payout.payout_id)] = payout.participant_id
    found: dict[tuple[str, str], int] = defaultdict(int)
    ids: set[str] = set()
    for note in _table(dump, "outbox", Notification):
        if note.notification_id in ids:
            bad.add(f"notification id {note.notification_id} appears twice")
        ids.add(note.notification_id)
        if note.kind in _NOT_CHECKED:  # milestones, status, points, budget
            continue
        if note.kind == "referral_held":  # to the referrer of the time; not counted
            rid = str(note.data.get("referral_id"))
            if note.recipient_id not in referrers.get(rid, ()):
                bad.add(
                    f"notification {note.notification_id} (referral_held) goes to "
                    f"{note.recipient_id!r}, who never referred in referral {rid!r}"
                )
            continue
        field = {
            "referral_created": "referral_id",
            "referral_reattributed": "referral_id",
            "reward_paid": "payout_id",
        }
        subject = note.data.get(field.get(note.kind, "reward_id"))
        if subject is None:
            bad.add(f"notification {note.notification_id} ({note.kind}) names no record")
            continue
        key = (note.kind, subject)
        found[key] += 1
        known = rewards.get(subject)
        recipient = recipients.get(key, known.participant_id if known else None)
        if note.kind == "referral_reattributed":
            new_referrer = note.data.get("new_referrer")
            recipient = new_referrer if new_referrer in moved[subject] else None
        if note.kind == "review_due" and known is not None:
            recipient = "operator"  # a reminder for the program's operator
        if recipient is None:
            bad.add(f"notification {note.notification_id} ({note.kind}) names unknown {subject}")
        elif note.recipient_id != recipient:
            bad.add(
                f"notification {note.notification_id} ({note.kind}) goes to "
                f"{note.recipient_id!r}, not {recipient!r}"
            )
    for key in sorted(set(expected) | set(found)):
        if expected[key] != found[key]:
            bad.add(
                f"{key[0]} for {key[1]}: {found[key]} notification(s), expected {expected[key]}"
            )
    bad.raise_any()


def check_paid_once(store: Store) -> None:
    """No reward is paid twice, and payouts agree with the ledger.

    - each reward has at most one ``paid`` entry, naming a payout whose status is paid and
      whose reward ids include the reward;
    - no reward is listed by two paid payouts;
    - each paid payout's amount plus what it netted equals the quantities its ``paid``
      entries moved, and its netted amount equals its ``recovered`` entries.

    Raises:
        AssertionError: listing every violation.
    """
    dump = store.dump()
    bad = _Violations("paid at most once")
    payouts = {p.payout_id: p for p in dump.get("payouts", [])}
    paid_by: dict[str, str] = {}
    moved: dict[str, Decimal] = defaultdict(lambda: _ZERO)
    recovered: dict[str, Decimal] = defaultdict(lambda: _ZERO)
    for entry in _table(dump, "entries", Entry):
        if entry.kind is EntryKind.RECOVERED:
            recovered[entry.cause] += entry.quantity
        if entry.kind is not EntryKind.PAID:
            continue
        if entry.reward_id in paid_by:
            bad.add(
                f"reward {entry.reward_id} paid by {paid_by[entry.reward_id]} and {entry.cause}"
            )
        paid_by[entry.reward_id] = entry.cause
        moved[entry.cause] += entry.quantity
        payout = payouts.get(entry.cause)
        if payout is None:
            bad.add(f"reward {entry.reward_id} paid by unknown payout {entry.cause}")
        elif payout.status.value != "paid" or entry.reward_id not in payout.reward_ids:
            bad.add(f"reward {entry.reward_id} paid by {entry.cause} ({payout.status.value})")
    listed: dict[str, str] = {}
    for payout in payouts.values():
        if payout.status.value != "paid":
            continue
        for rid in payout.reward_ids:
            if rid in listed:
                bad.add(f"reward {rid} is in paid payouts {listed[rid]} and {payout.payout_id}")
            listed[rid] = payout.payout_id
        if payout.amount.amount + payout.netted.amount != moved[payout.payout_id]:
            bad.add(
                f"payout {payout.payout_id} paid {payout.amount} netting {payout.netted}, its "
                f"entries moved {moved[payout.payout_id]}"
            )
        if payout.netted.amount != recovered[payout.payout_id]:
            bad.add(
                f"payout {payout.payout_id} netted {payout.netted}, its entries recovered "
                f"{recovered[payout.payout_id]}"
            )
    bad.raise_any()


def check_all(store: Store, engine: Engine | None = None) -> None:
    """Run ``check_ledger``, ``check_reversals``, ``check_outbox``,
    ``check_one_referrer`` and ``check_paid_once``.

    Raises:
        AssertionError: from the first check that fails.
    """
    check_ledger(store, engine)
    check_reversals(store)
    check_outbox(store)
    check_one_referrer(store)
    check_paid_once(store)


# -- deliveries ---------------------------------------------------------------------------
def check_playback(playback: Playback) -> None:
    """Deliveries behaved as at-least-once delivery requires (invariant 1).

    - an early delivery (a refund or chargeback before its order) raised
      ``RetryLaterError``, and every other delivery was handled;
    - a duplicate returned the stored outcome of the first delivery, flagged
      ``duplicate=True``;
    - a retry (same business id and fields, new event id) was accepted as new and granted
      and reversed nothing, with a ``*.repeated`` (or ``referral.already_referred``) reason.

    Raises:
        AssertionError: listing every violation.
    """
    bad = _Violations("idempotent deliveries (invariant 1)")
    first: dict[str, Any] = {}
    for n, result in enumerate(playback.results):
        step = result.step
        delivery = getattr(step, "delivery", None)
        if delivery is None:  # a settlement
            continue
        where = f"step {n} ({step.describe()})"
        outcome = result.outcome
        if delivery == "early":
            if result.error is None:
                bad.add(f"{where}: expected RetryLaterError, got {outcome!r}")
            continue
        if outcome is None:
            bad.add(f"{where}: raised {result.error!r}")
            continue
        event_id = outcome.event_id
        if delivery == "duplicate":
            original = first.get(event_id)
            if not outcome.duplicate:
                bad.add(f"{where}: a duplicate not flagged duplicate=True")
            elif original is not None and outcome != attrs.evolve(original, duplicate=True):
                bad.add(f"{where}: returned {outcome!r}, the stored outcome is {original!r}")
            continue
        if outcome.duplicate:
            bad.add(f"{where}: a new event id reported as a duplicate")
        first.setdefault(event_id, outcome)
        if delivery == "retry":
            if outcome.grants or outcome.reward_ids or outcome.reversals:
                bad.add(f"{where}: a retry granted or reversed something: {outcome!r}")
            if not set(outcome.reasons()) & _REPEATED:
                bad.add(f"{where}: a retry without a repeated reason: {outcome.reasons()}")
    bad.raise_any()


# -- snapshots ----------------------------------------------------------------------------
@attrs.frozen
class LedgerSnapshot:
    """What must be identical after replaying a log: a comparable projection of a store.

    Attributes:
        referrals: Every referral, by id.
        rewards: Every reward, by id.
        entries: Every ledger entry, by reward id then append order.
        notifications: Every notification as (id, kind, recipient, sorted data items).
    """

    referrals: tuple[Referral, ...]
    rewards: tuple[Reward, ...]
    entries: tuple[Entry, ...]
    notifications: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...]

    def differences(self, other: LedgerSnapshot) -> list[str]:
        """Human-readable differences from ``other`` (empty when equal)."""
        out: list[str] = []
        for field in attrs.fields(LedgerSnapshot):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine == theirs:
                continue
            only_mine = [x for x in mine if x not in theirs]
            only_theirs = [x for x in theirs if x not in mine]
            out.append(
                f"{field.name}: {len(mine)} vs {len(theirs)}; only in first: "
                f"{only_mine[:3]!r}; only in second: {only_theirs[:3]!r}"
            )
        return out


def ledger_snapshot(store: Store) -> LedgerSnapshot:
    """The store's referrals, rewards, entries and notifications, ids included."""
    dump = store.dump()
    notes = sorted(_table(dump, "outbox", Notification), key=lambda n: n.notification_id)
    return LedgerSnapshot(
        referrals=tuple(sorted(_table(dump, "referrals", Referral), key=lambda r: r.referral_id)),
        rewards=tuple(sorted(_table(dump, "rewards", Reward), key=lambda r: r.reward_id)),
        entries=tuple(_table(dump, "entries", Entry)),
        notifications=tuple(
            (n.notification_id, n.kind, n.recipient_id, tuple(sorted(n.data.items())))
            for n in notes
        ),
    )
