"""The engine's ledger operations: holds, decisions, the veto, clawbacks, payouts.

[`Engine`][referralkit.Engine] inherits these methods; they live apart from event handling
so each can be read on its own. Every operation is one unit of work whose ledger entries and
notifications commit together; the pure transitions come from ``referralkit._ledger``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import attrs

from referralkit._errors import (
    CurrencyMismatchError,
    InvalidInputError,
    UnknownReferralError,
    UnknownRewardError,
)
from referralkit._ledger import (
    Balance,
    RewardView,
    balance_of,
    decide_approve,
    hold_entry,
    pay_entry,
    recover_entry,
    reject_entry,
    release_entry,
    review_due_entry,
    write_off_entry,
)
from referralkit._ports import Fulfiller, Store, UnitOfWork
from referralkit._values._checks import is_text, require_aware, require_id
from referralkit._values.clock import Clock
from referralkit._values.ids import derive_id
from referralkit._values.money import Money
from referralkit._values.records import (
    Entry,
    Notification,
    Payout,
    PayoutStatus,
    Reward,
    RewardState,
)
from referralkit._values.rewards import Unit, describe
from referralkit.policies._base import Counter

if TYPE_CHECKING:
    from referralkit._program import Program

__all__ = [
    "OPERATOR_RECIPIENT",
    "PAYOUT_KINDS",
    "LedgerOperations",
    "PayableReason",
    "PayoutCheck",
    "PayoutResult",
    "PayoutSkip",
    "Veto",
    "reward_note",
]

log = logging.getLogger("referralkit")

T = TypeVar("T")
_ZERO = Decimal(0)
PAYOUT_KINDS = frozenset({"cash", "credit"})
"""Unit kinds ``Engine.payout`` pays. Other units are not paid out: discount vouchers,
points, free periods and badges are redeemed in the host application, so they stay
``available`` (``Engine.payable`` says ``not_paid_out``)."""
OPERATOR_RECIPIENT = "operator"
"""The ``recipient_id`` of notifications meant for the program's operator (``review_due``)."""
_SCAN = 10_000  # rewards / payouts one settle or payout call looks at, per query

Veto = Callable[[RewardView], "str | None"]
"""A host hook asked before ``settle`` approves a reward: a reason refuses it."""
PayoutCheck = Callable[[str, Money], "str | None"]
"""A host hook asked before a payout: (participant id, amount) -> a reason blocks it."""


@attrs.frozen
class PayoutSkip:
    """A participant's balance that ``Engine.payout`` did not pay, and why.

    Attributes:
        participant_id: Whose balance.
        unit: Which balance.
        amount: What would have been paid (net of what the participant owes).
        reason: ``below_minimum``, ``nothing_after_netting`` or ``payout_check``.
        detail: The minimum, or the payout check's reason.
    """

    participant_id: str
    unit: Unit
    amount: Money
    reason: str
    detail: str = ""


@attrs.frozen
class PayoutResult:
    """What one ``Engine.payout`` call did.

    Attributes:
        paid: Payouts the fulfiller confirmed; their rewards are now paid.
        failed: Payouts whose fulfilment raised; their rewards stay approved and the next
            call retries them under the same id.
        skipped: Balances not paid, with the reason.
    """

    paid: tuple[Payout, ...] = ()
    failed: tuple[Payout, ...] = ()
    skipped: tuple[PayoutSkip, ...] = ()

    @property
    def total(self) -> dict[Unit, Money]:
        """The amounts paid, per unit."""
        out: dict[Unit, Money] = {}
        for payout in self.paid:
            out[payout.unit] = out.get(payout.unit, Money._trusted(_ZERO, payout.amount.currency))
            out[payout.unit] = out[payout.unit] + payout.amount
        return out


@attrs.frozen
class PayableReason:
    """Why part of a participant's balance is not payable now.

    Attributes:
        code: ``on_hold_until`` (pending until the hold ends), ``awaiting_settle`` (the hold
            ended; the next ``Engine.settle`` approves it), ``held_for_review`` (held by
            a review or a fraud check), ``below_minimum``, ``payout_check`` (the host's
            pre-check refused), ``owed`` (netted against clawbacks) or ``not_paid_out``
            (a unit payouts do not pay: vouchers, points, free periods, badges).
        unit: Which balance.
        quantity: How much of it.
        until: When it becomes payable, where known, in the program's time zone (the
            text shows its date there).
        detail: The hold or check reason, or the minimum.
    """

    code: str
    unit: Unit
    quantity: Decimal
    until: datetime | None = None
    detail: str = ""

    def __str__(self) -> str:
        what = f"{self.quantity} {self.unit}"
        if self.code == "on_hold_until":
            assert self.until is not None
            return f"{what} on hold until {self.until.date().isoformat()}"
        if self.code == "held_for_review":
            until = f" until {self.until.date().isoformat()}" if self.until else ""
            return f"{what} held for review ({self.detail}){until}"
        if self.code == "below_minimum":
            return f"{what} is below the minimum payout of {self.detail}"
        if self.code == "payout_check":
            return f"{what} blocked by the payout check: {self.detail}"
        if self.code == "awaiting_settle":
            return f"{what} becomes payable at the next settle"
        if self.code == "owed":
            return f"{what} owed after a clawback is netted against payouts"
        return f"{what} is not paid out (redeem it in the application)"


def _actor(value: object) -> str:
    return require_id("actor", value)


def _reason(value: object) -> str:
    reason = require_id("reason", value)
    if len(reason) > 160:  # the cause column holds 200 characters, " until <time>" included
        raise InvalidInputError("reason", value, "must be at most 160 characters")
    return reason


def reward_note(
    kind: str, entry_id: str, reward: Reward, at: datetime, **data: str
) -> Notification:
    """The notification of one ledger entry of ``reward`` (its id follows the entry's)."""
    return Notification(
        notification_id=f"ntf_{entry_id}",
        program_id=reward.program_id,
        kind=kind,
        recipient_id=reward.participant_id,
        created_at=at,
        data={"reward_id": reward.reward_id, **data},
    )


class LedgerOperations:
    """Ledger operations of [`Engine`][referralkit.Engine] (a mixin; use the engine)."""

    _store: Store
    _clock: Clock
    _program_id: str
    _auto_dispatch: bool
    _fulfiller: Fulfiller | None
    _veto: Veto | None
    _payout_check: PayoutCheck | None

    if TYPE_CHECKING:

        @property
        def program(self) -> Program: ...

        def _transact(self, work: Callable[[UnitOfWork], T]) -> T: ...

        def _version(self, version: int, referral_id: str) -> Program: ...

        def rewards_for(self, participant_id: str) -> list[RewardView]: ...

        def dispatch(self, limit: int = 1000) -> object: ...

        def _give_back(self, uow: UnitOfWork, reward: Reward, quantity: Decimal) -> None: ...

    # -- reading ---------------------------------------------------------------------------
    def _now(self, now: datetime | None) -> datetime:
        return self._clock.now() if now is None else require_aware("now", now)

    def _view(self, uow: UnitOfWork, reward_id: str) -> RewardView:
        if not isinstance(reward_id, str) or not reward_id or not is_text(reward_id):
            raise UnknownRewardError(reward_id)
        entries = uow.ledger.entries([reward_id]).get(reward_id, [])
        if not entries or entries[0].program_id != self._program_id:
            raise UnknownRewardError(reward_id)
        owner = entries[0].participant_id
        for reward in uow.ledger.rewards(self._program_id, participant_id=owner):
            if reward.reward_id == reward_id:
                return RewardView(reward, tuple(entries))
        raise UnknownRewardError(reward_id)  # pragma: no cover - entries imply the reward

    def _referral_views(self, uow: UnitOfWork, referral_id: str) -> list[RewardView]:
        known = isinstance(referral_id, str) and is_text(referral_id)
        referral = uow.referrals.get(referral_id) if known else None
        if referral is None or referral.program_id != self._program_id:
            raise UnknownReferralError(referral_id)
        rewards: dict[str, Reward] = {}
        for who in (referral.referrer_id, referral.referee_id):
            for reward in uow.ledger.rewards(self._program_id, participant_id=who):
                if reward.referral_id == referral_id:
                    rewards[reward.reward_id] = reward
        entries = uow.ledger.entries(rewards)
        return [RewardView(r, tuple(entries[r.reward_id])) for r in rewards.values()]

    def reward(self, reward_id: str) -> RewardView:
        """One reward with its entries and derived state.

        Raises:
            UnknownRewardError: no reward of this program has that id.
        """
        with self._store.unit_of_work() as uow:
            return self._view(uow, reward_id)

    # -- applying transitions --------------------------------------------------------------
    def _apply(
        self, uow: UnitOfWork, view: RewardView, entry: Entry, note: Notification | None
    ) -> RewardView:
        uow.ledger.append((entry,))
        if note is not None:
            uow.outbox.add((note,))
        if entry.state_after in (RewardState.REJECTED, RewardState.FRAUD):
            reward = view.reward
            if reward.unit.is_money and entry.quantity:
                # A refused reward no longer spends the program's budget.
                key = (self._program_id, Counter.PROGRAM_SPEND.value, "")
                uow.counters.add(key, -entry.quantity)
                self._give_back(uow, reward, entry.quantity)  # and the caps' spend
        return RewardView(view.reward, (*view.entries, entry))

    def _hold_in(
        self,
        uow: UnitOfWork,
        view: RewardView,
        at: datetime,
        reason: str,
        actor: str,
        until: datetime | None,
    ) -> RewardView:
        entry = hold_entry(view, at, reason, actor, until)
        if entry is None:
            return view
        note = reward_note("reward_held", entry.entry_id, view.reward, at, reason=reason)
        return self._apply(uow, view, entry, note)

    def _release_in(
        self, uow: UnitOfWork, view: RewardView, at: datetime, actor: str, cause: str = "release"
    ) -> RewardView:
        entry = release_entry(view, at, actor, cause)
        note = reward_note("reward_released", entry.entry_id, view.reward, at)
        return self._apply(uow, view, entry, note)

    def _reject_in(
        self,
        uow: UnitOfWork,
        view: RewardView,
        at: datetime,
        actor: str,
        cause: str,
        reason: str,
        *,
        fraud: bool = False,
    ) -> RewardView:
        entry = reject_entry(view, at, actor, cause, fraud=fraud)
        if entry is None:
            return view
        note = reward_note("reward_rejected", entry.entry_id, view.reward, at, reason=reason)
        return self._apply(uow, view, entry, note)

    def _one(
        self, reward_id: str, op: Callable[[UnitOfWork, RewardView], RewardView]
    ) -> RewardView:
        view = self._transact(lambda uow: op(uow, self._view(uow, reward_id)))
        if self._auto_dispatch:
            self.dispatch()
        return view

    def _many(
        self,
        referral_id: str,
        op: Callable[[UnitOfWork, RewardView], RewardView],
        status: str | None = None,
    ) -> list[RewardView]:
        def work(uow: UnitOfWork) -> list[RewardView]:
            views = [op(uow, view) for view in self._referral_views(uow, referral_id)]
            if status is not None:
                # An operator's decision on a held referral also decides its later rewards:
                # released ("active") ones are granted as usual, rejected ones not at all.
                referral = uow.referrals.get(referral_id)
                if referral is not None and referral.status not in (status, "rejected"):
                    uow.referrals.update(attrs.evolve(referral, status=status))
            return views

        views = self._transact(work)
        if self._auto_dispatch:
            self.dispatch()
        return views

    # -- holds and decisions ---------------------------------------------------------------
    def hold(
        self,
        reward_id: str,
        *,
        reason: str,
        actor: str,
        until: datetime | None = None,
        now: datetime | None = None,
    ) -> RewardView:
        """Put a pending or approved reward on hold (for review, or by a fraud check).

        ``settle`` never approves a held reward: a decision ends the hold (``release``,
        ``approve`` or ``reject``), or ``until`` passes and ``settle`` releases it. Holding a
        held reward again changes nothing (a retried hold is idempotent). Writes a
        ``reward_held`` notification.

        Args:
            reward_id: The reward.
            reason: Why (kept as the entry's cause), such as ``"review"``.
            actor: Who holds it (an operator, ``"fraud-check"``).
            until: When the hold ends by itself; None: only a decision ends it.
            now: When (timezone-aware); the engine's clock by default.

        Raises:
            UnknownRewardError: no such reward.
            IllegalTransitionError: the reward is paid, reversed, rejected or fraud.
            InvalidInputError: an empty reason or actor, a reason over 160 characters, or a
                naive datetime.
        """
        reason = _reason(reason)
        actor = _actor(actor)
        at = self._now(now)
        if until is not None:
            until = require_aware("until", until)
        return self._one(reward_id, lambda uow, v: self._hold_in(uow, v, at, reason, actor, until))

    def release(self, reward_id: str, *, actor: str, now: datetime | None = None) -> RewardView:
        """Release a held reward back to the state it had before the hold.

        A reward that was pending is approved by the next ``settle`` once due; one that was
        approved is available again. Writes a ``reward_released`` notification.

        Raises:
            UnknownRewardError: no such reward.
            IllegalTransitionError: the reward is not held.
        """
        actor = _actor(actor)
        at = self._now(now)
        return self._one(reward_id, lambda uow, v: self._release_in(uow, v, at, actor))

    def approve(self, reward_id: str, *, actor: str, now: datetime | None = None) -> RewardView:
        """An operator's decision: approve a pending or held reward now (before its hold
        period ends, or ending a review). Approving an approved reward changes nothing.
        Writes a ``reward_approved`` notification.

        Raises:
            UnknownRewardError: no such reward.
            IllegalTransitionError: the reward is paid, reversed, rejected or fraud.
        """
        actor = _actor(actor)
        at = self._now(now)

        def op(uow: UnitOfWork, view: RewardView) -> RewardView:
            entry = decide_approve(view, at, actor)
            if entry is None:
                return view
            value = describe(view.reward.value, entry.quantity)
            note = reward_note("reward_approved", entry.entry_id, view.reward, at, value=value)
            return self._apply(uow, view, entry, note)

        return self._one(reward_id, op)

    def reject(
        self, reward_id: str, *, actor: str, fraud: bool = False, now: datetime | None = None
    ) -> RewardView:
        """Refuse a pending, held or approved reward for good (state ``rejected``, or
        ``fraud`` with ``fraud=True``). Its outstanding quantity leaves every balance and the
        program's spend. Rejecting a rejected reward changes nothing. Writes a
        ``reward_rejected`` notification.

        Raises:
            UnknownRewardError: no such reward.
            IllegalTransitionError: the reward is paid (reverse it with a refund instead)
                or wholly reversed.
        """
        actor = _actor(actor)
        at = self._now(now)
        cause = "fraud" if fraud else "rejected"
        return self._one(
            reward_id,
            lambda uow, v: self._reject_in(uow, v, at, actor, cause, cause, fraud=bool(fraud)),
        )

    def hold_referral(
        self,
        referral_id: str,
        *,
        reason: str,
        actor: str,
        until: datetime | None = None,
        now: datetime | None = None,
    ) -> list[RewardView]:
        """Hold every pending or approved reward of a referral (both sides); rewards in
        other states are left as they are. See ``hold``.

        Without ``until``, the referral itself is held (status ``"held"``): rewards it earns
        later are held as they are granted until ``release_referral``, so a referral can be
        held before it has earned anything.

        Raises:
            UnknownReferralError: no such referral.
        """
        reason = _reason(reason)
        actor = _actor(actor)
        at = self._now(now)
        if until is not None:
            until = require_aware("until", until)

        def op(uow: UnitOfWork, view: RewardView) -> RewardView:
            if view.state not in (RewardState.PENDING, RewardState.APPROVED):
                return view
            return self._hold_in(uow, view, at, reason, actor, until)

        # Without an end, the referral itself is held: rewards it earns later are held too.
        return self._many(referral_id, op, status="held" if until is None else None)

    def release_referral(
        self, referral_id: str, *, actor: str, now: datetime | None = None
    ) -> list[RewardView]:
        """Release every held reward of a referral. See ``release``.

        A referral held by a fraud check becomes active again: its later rewards are
        granted without a hold.

        Raises:
            UnknownReferralError: no such referral.
        """
        actor = _actor(actor)
        at = self._now(now)

        def op(uow: UnitOfWork, view: RewardView) -> RewardView:
            if view.state is not RewardState.HELD:
                return view
            return self._release_in(uow, view, at, actor)

        return self._many(referral_id, op, status="active")

    def reject_referral(
        self, referral_id: str, *, actor: str, fraud: bool = False, now: datetime | None = None
    ) -> list[RewardView]:
        """Reject every pending, held or approved reward of a referral; paid and reversed
        ones are left as they are. See ``reject``.

        The referral itself is rejected too (a final state): it earns nothing more, and its
        later events say so with a ``referral.rejected`` decision.

        Raises:
            UnknownReferralError: no such referral.
        """
        actor = _actor(actor)
        at = self._now(now)
        cause = "fraud" if fraud else "rejected"

        def op(uow: UnitOfWork, view: RewardView) -> RewardView:
            if view.state not in (RewardState.PENDING, RewardState.HELD, RewardState.APPROVED):
                return view
            return self._reject_in(uow, view, at, actor, cause, cause, fraud=bool(fraud))

        return self._many(referral_id, op, status="rejected")

    # -- settle's share --------------------------------------------------------------------
    def _settle_holds(self, at: datetime) -> None:
        """Release holds whose ``until`` passed; remind the operator of overdue reviews."""

        def work(uow: UnitOfWork) -> None:
            held = uow.ledger.in_state(self._program_id, RewardState.HELD, due_by=None, limit=_SCAN)
            entries = uow.ledger.entries(r.reward_id for r in held)
            for reward in held:
                view = RewardView(reward, tuple(entries[reward.reward_id]))
                until = view.held_until
                if until is not None:
                    if until <= at:
                        self._release_in(uow, view, at, "engine", "hold_expired")
                    continue
                hold = view.hold
                assert hold is not None
                version = self._version(reward.program_version, reward.referral_id)
                deadline = version.review_due_at(hold.at)
                if deadline is None:
                    continue
                entry = review_due_entry(view, at, deadline)
                if entry is not None:
                    note = attrs.evolve(
                        reward_note("review_due", entry.entry_id, reward, at),
                        recipient_id=OPERATOR_RECIPIENT,
                        data={
                            "reward_id": reward.reward_id,
                            "participant_id": reward.participant_id,
                        },
                    )
                    self._apply(uow, view, entry, note)

        self._transact(work)

    def _vetoed(self, uow: UnitOfWork, view: RewardView, at: datetime) -> bool:
        """Ask the host's veto about a reward ``settle`` is about to approve; a reason
        rejects it (cause ``veto``; the reason is in the ``reward_rejected`` notification)."""
        if self._veto is None:
            return False
        reason = self._veto(view)
        if reason is None:
            return False
        self._reject_in(uow, view, at, "engine", "veto", str(reason) or "veto")
        return True

    # -- clawbacks -------------------------------------------------------------------------
    def write_off(
        self,
        participant_id: str,
        unit: Unit,
        *,
        actor: str,
        reason: str,
        now: datetime | None = None,
    ) -> Decimal:
        """Write off what a participant owes in ``unit`` after clawbacks (a negative
        balance), with one audit entry per clawed-back reward (actor and reason kept).

        Returns:
            The quantity written off (0 when nothing was owed).

        Raises:
            InvalidInputError: an empty participant id, actor or reason, or not a Unit.
        """
        require_id("participant_id", participant_id)
        actor = _actor(actor)
        reason = require_id("reason", reason)
        if not isinstance(unit, Unit):
            raise InvalidInputError("unit", unit, "must be a Unit")
        at = self._now(now)

        def work(uow: UnitOfWork) -> Decimal:
            rewards = [
                r
                for r in uow.ledger.rewards(self._program_id, participant_id=participant_id)
                if r.unit == unit
            ]
            entries = uow.ledger.entries(r.reward_id for r in rewards)
            total = _ZERO
            for reward in rewards:
                view = RewardView(reward, tuple(entries[reward.reward_id]))
                entry = write_off_entry(view, at, actor, reason)
                if entry is not None:
                    uow.ledger.append((entry,))
                    total += entry.quantity
            return total

        return self._transact(work)

    # -- payouts ---------------------------------------------------------------------------
    def _min_amount(self, min_amount: Money | None) -> Money | None:
        if min_amount is None:
            return None
        if not isinstance(min_amount, Money):
            raise InvalidInputError("min_amount", min_amount, "must be a Money")
        if min_amount.currency != self.program.currency:
            raise CurrencyMismatchError(
                "min_amount",
                min_amount,
                f"must be in the program's currency {self.program.currency}",
            )
        return min_amount

    def payout(
        self,
        participant_id: str | None = None,
        *,
        now: datetime | None = None,
        min_amount: Money | None = None,
    ) -> PayoutResult:
        """Pay approved money rewards through the fulfiller.

        For each participant (one, or everyone with approved rewards) and each payable unit
        (``cash`` and ``credit`` of the program's currency), the approved rewards are summed
        and what the participant owes after clawbacks is netted. A balance below
        ``min_amount``, or refused by the host's ``payout_check``, is skipped with its
        reason. Each payout is recorded first (status pending, id derived from the
        participant and the reward ids), then the fulfiller is called outside any unit of
        work, and only after it returns are the rewards marked paid and a ``reward_paid``
        notification written. A fulfiller that raises leaves the rewards approved and the
        payout failed; the next call retries it under the same id, so a reward is never
        paid twice. Other units (vouchers, points, free periods, badges) are not paid out.

        Args:
            participant_id: One participant, or None for everyone.
            now: Timezone-aware; the engine's clock by default.
            min_amount: Skip balances below this (program currency).

        Raises:
            InvalidInputError: the engine has no fulfiller, or a bad argument.
            CurrencyMismatchError: ``min_amount`` in another currency.
        """
        if self._fulfiller is None:
            raise InvalidInputError(
                "fulfiller", None, "pass Engine(fulfiller=...) to pay rewards out"
            )
        if participant_id is not None:
            require_id("participant_id", participant_id)
        at = self._now(now)
        minimum = self._min_amount(min_amount)
        skipped: list[PayoutSkip] = []
        todo = self._transact(
            lambda uow: self._plan_payouts(uow, participant_id, at, minimum, skipped)
        )
        paid: list[Payout] = []
        failed: list[Payout] = []
        for payout in todo:
            try:
                self._fulfiller.fulfil(payout)
            except Exception as exc:  # the fulfiller is host code: any failure is retried
                log.warning("payout %s failed: %r", payout.payout_id, exc)
                error = repr(exc)[:500]
                failed.append(
                    self._transact(functools.partial(self._payout_failed, payout, at, error))
                )
                continue
            paid.append(self._transact(functools.partial(self._payout_done, payout, at)))
        if self._auto_dispatch and paid:
            self.dispatch()
        return PayoutResult(tuple(paid), tuple(failed), tuple(skipped))

    def _plan_payouts(
        self,
        uow: UnitOfWork,
        participant_id: str | None,
        at: datetime,
        minimum: Money | None,
        skipped: list[PayoutSkip],
    ) -> list[Payout]:
        skipped.clear()  # a retried unit of work plans again
        pid = self._program_id
        currency = self.program.currency
        open_payouts = uow.payouts.open(pid, participant_id, _SCAN)
        if participant_id is not None:
            people = [participant_id]
        else:
            approved = uow.ledger.in_state(pid, RewardState.APPROVED, due_by=None, limit=_SCAN)
            people = sorted(
                {r.participant_id for r in approved} | {p.participant_id for p in open_payouts}
            )
        todo: list[Payout] = []
        for who in people:
            rewards = uow.ledger.rewards(pid, participant_id=who)
            entries = uow.ledger.entries(r.reward_id for r in rewards)
            views = {r.reward_id: RewardView(r, tuple(entries[r.reward_id])) for r in rewards}
            covered: set[str] = set()
            netted_open: dict[Unit, Decimal] = {}
            for payout in (p for p in open_payouts if p.participant_id == who):
                # A pending payout may have been paid before the process stopped: it is
                # retried as recorded (the fulfiller deduplicates on its id). A failed one
                # whose rewards changed since is cancelled; what remains is paid anew.
                owed = sum((v.owed for v in views.values() if v.reward.unit == payout.unit), _ZERO)
                owed_left = max(owed - netted_open.get(payout.unit, _ZERO), _ZERO)
                if payout.status is PayoutStatus.PENDING or self._still_payable(
                    payout, views, owed_left
                ):
                    todo.append(payout)
                    covered.update(payout.reward_ids)
                    netted_open[payout.unit] = (
                        netted_open.get(payout.unit, _ZERO) + payout.netted.amount
                    )
                else:
                    uow.payouts.update(
                        attrs.evolve(payout, status=PayoutStatus.CANCELLED, updated_at=at)
                    )
            for kind in sorted(PAYOUT_KINDS):
                unit = Unit(kind, currency)
                ready = sorted(
                    rid
                    for rid, v in views.items()
                    if v.reward.unit == unit
                    and v.state is RewardState.APPROVED
                    and rid not in covered
                )
                gross = sum((views[rid].outstanding for rid in ready), _ZERO)
                if not ready or gross <= 0:
                    continue
                owed = sum((v.owed for v in views.values() if v.reward.unit == unit), _ZERO)
                owed = max(owed - netted_open.get(unit, _ZERO), _ZERO)
                netted = min(owed, gross)
                amount = Money._trusted(gross - netted, currency)
                if amount.amount <= 0:
                    skipped.append(PayoutSkip(who, unit, amount, "nothing_after_netting"))
                    continue
                if minimum is not None and amount < minimum:
                    skipped.append(PayoutSkip(who, unit, amount, "below_minimum", str(minimum)))
                    continue
                if self._payout_check is not None:
                    refusal = self._payout_check(who, amount)
                    if refusal is not None:
                        skipped.append(PayoutSkip(who, unit, amount, "payout_check", str(refusal)))
                        continue
                # The amounts are part of the id: a payout whose rewards were partly
                # reversed after a failed attempt is a new payout, never the old one reopened.
                payout_id = derive_id("pay", pid, who, kind, str(gross), str(netted), *ready)
                payout = Payout(
                    payout_id=payout_id,
                    program_id=pid,
                    participant_id=who,
                    amount=amount,
                    kind=kind,
                    reward_ids=tuple(ready),
                    netted=Money._trusted(netted, currency),
                    created_at=at,
                )
                known = uow.payouts.get(pid, payout_id)
                if known is None:
                    uow.payouts.add(payout)
                elif known.status is PayoutStatus.PAID:  # pragma: no cover - rewards were paid
                    continue
                else:  # cancelled before, payable again with the same rewards: reopen it
                    payout = attrs.evolve(known, status=PayoutStatus.PENDING, updated_at=at)
                    uow.payouts.update(payout)
                todo.append(payout)
        return todo

    @staticmethod
    def _still_payable(payout: Payout, views: dict[str, RewardView], owed: Decimal) -> bool:
        """Whether an open payout still pays exactly what its rewards hold, netting what
        the participant still owes (``owed``: not netted by earlier open payouts)."""
        total = _ZERO
        for rid in payout.reward_ids:
            view = views.get(rid)
            if view is None or view.state is not RewardState.APPROVED:
                return False
            total += view.outstanding
        gross = payout.amount.amount + payout.netted.amount
        return total == gross and min(owed, gross) == payout.netted.amount

    def _payout_failed(self, payout: Payout, at: datetime, error: str, uow: UnitOfWork) -> Payout:
        current = uow.payouts.get(self._program_id, payout.payout_id) or payout
        failed = attrs.evolve(
            current,
            status=PayoutStatus.FAILED,
            attempts=current.attempts + 1,
            error=error,
            updated_at=at,
        )
        uow.payouts.update(failed)
        return failed

    def _payout_done(self, payout: Payout, at: datetime, uow: UnitOfWork) -> Payout:
        pid = self._program_id
        current = uow.payouts.get(pid, payout.payout_id) or payout
        if current.status is PayoutStatus.PAID:
            return current  # another worker confirmed it first
        who = payout.participant_id
        rewards = uow.ledger.rewards(pid, participant_id=who)
        entries = uow.ledger.entries(r.reward_id for r in rewards)
        views = {r.reward_id: RewardView(r, tuple(entries[r.reward_id])) for r in rewards}
        appended: list[Entry] = []
        for rid in payout.reward_ids:
            view = views[rid]
            if view.state in (RewardState.APPROVED, RewardState.HELD):
                appended.append(pay_entry(view, at, payout.payout_id))
            else:  # rejected or wholly reversed meanwhile: final, never paid again
                log.warning(
                    "payout %s: reward %s is %s, not marked paid", payout.payout_id, rid, view.state
                )
        left = payout.netted.amount
        for view in views.values():
            if left <= 0:
                break
            if view.reward.unit != payout.unit or view.owed <= 0:
                continue
            quantity = min(view.owed, left)
            appended.append(recover_entry(view, quantity, at, payout.payout_id))
            left -= quantity
        uow.ledger.append(appended)
        done = attrs.evolve(
            current,
            status=PayoutStatus.PAID,
            attempts=current.attempts + 1,
            error=None,
            updated_at=at,
        )
        uow.payouts.update(done)
        uow.outbox.add(
            (
                Notification(
                    notification_id=f"ntf_{payout.payout_id}",
                    program_id=pid,
                    kind="reward_paid",
                    recipient_id=who,
                    created_at=at,
                    data={
                        "payout_id": payout.payout_id,
                        "value": f"{payout.amount.amount} {payout.amount.currency} {payout.kind}",
                        "reward_ids": ",".join(payout.reward_ids),
                    },
                ),
            )
        )
        return done

    def payouts_of(self, participant_id: str) -> list[Payout]:
        """The participant's open (pending or failed) payouts, oldest first."""
        require_id("participant_id", participant_id)
        with self._store.unit_of_work() as uow:
            return uow.payouts.open(self._program_id, participant_id, _SCAN)

    # -- why not payable -------------------------------------------------------------------
    def payable(
        self,
        participant_id: str,
        now: datetime | None = None,
        *,
        min_amount: Money | None = None,
    ) -> list[PayableReason]:
        """Why part of the participant's balance is not payable now, one reason per cause.

        Pending rewards are "on hold until" their ``payable_at``; held ones are "held for
        review" (with the hold's reason); owed clawbacks are netted; an available money
        balance below ``min_amount``, or refused by the host's ``payout_check``, says so;
        units payouts do not pay are "not paid out". An empty list: everything the
        participant has is payable now (or there is nothing).
        """
        require_id("participant_id", participant_id)
        at = self._now(now)
        minimum = self._min_amount(min_amount)
        views = self.rewards_for(participant_id)
        reasons: list[PayableReason] = []
        pending: dict[tuple[Unit, datetime], Decimal] = {}
        for view in views:
            state = view.state
            unit = view.reward.unit
            # Times in the program's time zone: the texts show their dates.
            zone = self._version(view.reward.program_version, view.reward.referral_id).zone
            if state is RewardState.PENDING and view.outstanding:
                until = view.reward.payable_at.astimezone(zone)
                if until <= at:
                    reasons.append(PayableReason("awaiting_settle", unit, view.outstanding, until))
                    continue
                pending[(unit, until)] = pending.get((unit, until), _ZERO) + view.outstanding
            elif state is RewardState.HELD and view.outstanding:
                reasons.append(
                    PayableReason(
                        "held_for_review",
                        unit,
                        view.outstanding,
                        None if view.held_until is None else view.held_until.astimezone(zone),
                        view.hold_reason or "",
                    )
                )
        for (unit, until), quantity in sorted(pending.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            reasons.append(PayableReason("on_hold_until", unit, quantity, until))
        balance = balance_of(participant_id, views)
        for line in balance:
            if line.owed > 0:
                reasons.append(PayableReason("owed", line.unit, line.owed))
            if line.available <= 0:
                continue
            if line.unit.kind not in PAYOUT_KINDS:
                reasons.append(PayableReason("not_paid_out", line.unit, line.available))
                continue
            net = max(line.available - line.owed, _ZERO)
            amount = Money._trusted(net, line.unit.code)
            if minimum is not None and amount < minimum:
                reasons.append(PayableReason("below_minimum", line.unit, net, detail=str(minimum)))
            elif self._payout_check is not None and net > 0:
                refusal = self._payout_check(participant_id, amount)
                if refusal is not None:
                    reasons.append(
                        PayableReason("payout_check", line.unit, net, detail=str(refusal))
                    )
        return reasons

    def _balance(self, participant_id: str) -> Balance:
        return balance_of(
            participant_id,
            self.rewards_for(participant_id),
            negative_balance=self.program.negative_balance,
        )
