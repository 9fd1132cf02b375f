"""Manual re-attribution by an operator: the ``Engine.reattribute`` mixin.

Two cases share one entry point:

- the referee had no referrer: a referral is made and the referee's past sign-up and
  purchases are backfilled (``Engine._backfill``);
- the referee had one: the referral keeps its id (it is derived from the referee) and gets
  the new referrer. Every reward it earned is taken back (reversed, or clawed back when
  paid), the old referrer's counters go back as a full refund would move them, and the
  referee's sign-up rewards, purchases, refunds and chargebacks are replayed from the event
  log for the new referrer, with reward ids of their own (salted with the re-attribution's
  id, so they never collide with the rewards taken back).

It also holds the sign-up rewards of a referral bound at the first purchase, which the
engine pays at that purchase and a re-attribution pays again. Whether a replayed purchase
converts is decided by the live rule (``_program.purchase_converts``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

import attrs

from referralkit._counter_names import (
    CODE_USES,
    CONVERSIONS,
    EXISTING_CUSTOMER,
    ORDER_BACKFILLED,
    ORDER_CLOSED,
    ORDER_REVERSED,
)
from referralkit._errors import InvalidInputError
from referralkit._fraud_context import chain_depth, fraud_context
from referralkit._ledger import RewardView, reversal_entry
from referralkit._ports import CounterKey, UnitOfWork, events_about
from referralkit._program import Program
from referralkit._values._checks import require_aware, require_id
from referralkit._values.clock import Clock
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.events import Chargeback, Purchase, Refund, Signup
from referralkit._values.ids import derive_id, sub_id
from referralkit._values.money import Money
from referralkit._values.rates import Rate
from referralkit._values.records import (
    CodeRecord,
    EntryKind,
    EventRecord,
    Notification,
    OrderRecord,
    ParticipantRecord,
    Referral,
    Reversal,
    Reward,
    RewardGrant,
)
from referralkit._values.rewards import describe
from referralkit.attribution._fraud import (
    FraudAction,
    FraudCheck,
    FraudVerdict,
    IdentityFacts,
    combine,
)
from referralkit.policies._base import Counter, Trigger
from referralkit.policies._limits import REFEREE_FIRST_REWARD, REFEREE_PURCHASES_REWARDED
from referralkit.policies._milestones import StatusBasis

__all__ = ["REATTRIBUTED", "Reattribution"]

T = TypeVar("T")
_ZERO = Decimal(0)
_ONE = Decimal(1)

REATTRIBUTED = "referral.reattributed"
"""The reason code of the audit decision a re-attribution appends to the explanation."""
_CAUSE = "reattribution"  # prefix of a re-attribution's id, the cause of its reversals


class Reattribution:
    """``Engine.reattribute`` (a mixin; use [`Engine`][referralkit.Engine])."""

    _clock: Clock
    _program_id: str
    _fraud_checks: tuple[FraudCheck, ...]

    if TYPE_CHECKING:

        def _transact(self, work: Callable[[UnitOfWork], T]) -> T: ...

        def _in_force(self, at: datetime) -> Program: ...

        def _version(self, version: int, referral_id: str) -> Program: ...

        def _add_referral(
            self, uow: UnitOfWork, referral: Referral, held: FraudVerdict | None
        ) -> None: ...

        def _backfill(self, uow: UnitOfWork, version: Program, referral: Referral) -> None: ...

        def _backfilled(self, uow: UnitOfWork, order: OrderRecord) -> OrderRecord: ...

        def _referral_views(self, uow: UnitOfWork, referral_id: str) -> list[RewardView]: ...

        def _give_back(self, uow: UnitOfWork, reward: Reward, quantity: Decimal) -> None: ...

        def _points_earned(
            self, uow: UnitOfWork, reward: Reward, quantity: Decimal, at: datetime, cause: str
        ) -> None: ...

        def _count_rolling(
            self,
            uow: UnitOfWork,
            participant: str,
            basis: StatusBasis,
            earned_at: datetime,
            delta: Decimal,
            account: str = "",
        ) -> None: ...

        def _update_status(
            self,
            uow: UnitOfWork,
            participant: str,
            at: datetime,
            cause: str,
            basis: StatusBasis,
            change: tuple[datetime, Decimal] | None = None,
            account: str = "",
        ) -> None: ...

        def _snapshot(
            self,
            uow: UnitOfWork,
            version: Program,
            referral: Referral,
            extra: Sequence[CounterKey] = (),
        ) -> dict[CounterKey, Decimal]: ...

        def _reward(
            self,
            uow: UnitOfWork,
            version: Program,
            referral: Referral,
            ev: Signup | Purchase,
            triggers: frozenset[Trigger],
            snapshot: dict[CounterKey, Decimal],
            base: Money | None,
            rate: Rate | None = None,
            country: str | None = None,
            salt: tuple[str, ...] = (),
        ) -> tuple[tuple[RewardGrant, ...], tuple[str, ...], list[Decision]]: ...

        def _reverse_rewards(
            self,
            uow: UnitOfWork,
            order: OrderRecord,
            ev: Refund | Chargeback,
            total: Decimal,
            rewards: Sequence[Reward],
        ) -> tuple[list[Reversal], list[Decision]]: ...

        def _signup_reward(
            self,
            uow: UnitOfWork,
            version: Program,
            referral: Referral,
            ev: Signup,
            country: str | None,
            salt: tuple[str, ...] = (),
        ) -> tuple[tuple[RewardGrant, ...], tuple[str, ...], list[Decision]]: ...

        def _replay_purchase(
            self,
            uow: UnitOfWork,
            version: Program,
            referral: Referral,
            ev: Purchase,
            order: OrderRecord,
            number: int,
            converted_before: bool,
            country: str | None,
            salt: tuple[str, ...] = (),
        ) -> tuple[Purchase, tuple[str, ...], bool]: ...

        def _in_program_currency(
            self, order: OrderRecord, referral: Referral, amount: Decimal
        ) -> Decimal: ...

        def _identity(self, uow: UnitOfWork, who: str, email: str | None) -> IdentityFacts: ...

    def reattribute(
        self,
        referee_id: str,
        referrer_id: str,
        *,
        actor: str,
        reason: str,
        now: datetime | None = None,
        operation_id: str | None = None,
    ) -> Referral:
        """Make ``referrer_id`` the referrer of ``referee_id`` by an operator's decision.

        **A referee without a referrer** gets a referral under the program version in force
        at their sign-up; their past sign-up and purchases in the event log are evaluated
        again and the new referrer's rewards are backfilled.

        **A referee with a referrer** keeps their referral (and its id, derived from the
        referee): it gets the new referrer and their code, and nothing else changes (program
        version, channel, ``created_at``). Every reward the referral earned, the referee's
        too, is taken back: reversed, or clawed back when already paid (the participant owes
        it, netted against their next payout). The old referrer's counters go back as a
        full refund would move them (referrals, successful referrals, revenue referred, the
        spend of caps and budget, points earned, status level; a milestone reward the
        referral triggered is reversed and stays used, as milestones are granted once
        ever). Then the referee's sign-up rewards (when the referral was made at the
        sign-up, or at a first purchase that paid them) and their purchases since the
        referral was made are evaluated for the new referrer under the same qualification
        rules, and the refunds and chargebacks of those orders are applied again in log
        order (pro rata, as they were), as if the referral had been theirs from the start;
        the new rewards have ids of their own. A held referral becomes active (the
        operator decided). No other referral is touched.

        Either way the referral's explanation gets the fraud checks' verdicts on the new
        pair and a ``referral.reattributed`` decision (actor, reason, old and new referrer,
        and ``operation`` when given), and a ``referral_reattributed`` notification goes to
        the new referrer. Orders paid before the referral was made (before the referee's
        sign-up, for a referee who had no referrer) earn nothing, as ``handle`` decides
        them. For a referee who had no referrer, orders refunded or charged back before the
        call earn nothing, and purchases in another currency are priced at their order's
        recorded rate. The referee's events are looked up by key (their id, then their
        orders' ids; see [`event_key`][referralkit.event_key]), an indexed query on the
        shipped stores: a call costs time in proportion to the referee's history, not to
        the log (a host store without ``KeyedEventLog.about`` reads the whole log).

        Checks on the operator's choice: a self-referral (the referee themself, or the
        same normalised email) is refused, and so is a circular referral (the new referrer
        was referred by the referee). The program's fraud checks run on the new pair: a
        ``block`` refuses the call; ``hold`` and ``flag`` are recorded in the explanation
        and overridden by the operator's decision. The existing-customer rule is noted and
        overridden too.

        Idempotent: with ``operation_id``, a call whose id is in the referral's audit
        trail already returns the referral unchanged. Without one, a call that names the
        current referrer with the same actor and reason as the latest re-attribution is
        taken for a retry and returns the referral unchanged.

        Args:
            referee_id: The referee.
            referrer_id: The new referrer; must own a referral code.
            actor: Who decided (recorded).
            reason: Why (recorded).
            now: Timezone-aware time of the decision (of reversal entries and
                notifications); the engine's clock by default.
            operation_id: The operator tool's request id, so a retry is recognised.

        Returns:
            The referral as it is now.

        Raises:
            InvalidInputError: an unknown referee (``referee_id``); a referrer without a
                code, the referee themself or someone with the referee's email, the
                referee's own referee, the current referrer (not a retry), or a pair a
                fraud check blocks (``referrer_id``); a rejected referral (``referee_id``).
                Nothing is written.
            NaiveDatetimeError: ``now`` without a time zone.
        """
        require_id("referee_id", referee_id)
        require_id("referrer_id", referrer_id)
        actor = require_id("actor", actor)
        reason = require_id("reason", reason)
        if operation_id is not None:
            require_id("operation_id", operation_id)
        at = require_aware("now", now) if now is not None else self._clock.now()
        pid = self._program_id

        def work(uow: UnitOfWork) -> Referral:
            who = uow.participants.get(pid, referee_id)
            if who is None:
                raise InvalidInputError("referee_id", referee_id, "no such participant")
            if referrer_id == referee_id:
                raise InvalidInputError("referrer_id", referrer_id, "is the referee themself")
            current = uow.referrals.by_referee(pid, referee_id)
            if current is not None:
                if _retried(current, referrer_id, actor, reason, operation_id):
                    return current
                if current.referrer_id == referrer_id:
                    raise InvalidInputError("referrer_id", referrer_id, "is already the referrer")
                if current.status == "rejected":
                    raise InvalidInputError(
                        "referee_id", referee_id, "has a rejected referral (a final state)"
                    )
            above = uow.referrals.by_referee(pid, referrer_id)
            if above is not None and above.referrer_id == referee_id:
                raise InvalidInputError(
                    "referrer_id", referrer_id, "was referred by the referee (circular)"
                )
            code = uow.participants.code_of(pid, referrer_id)
            if code is None:
                raise InvalidInputError("referrer_id", referrer_id, "has no referral code")
            email = uow.participants.email_of(pid, referee_id)
            if email is not None and email == uow.participants.email_of(pid, referrer_id):
                raise InvalidInputError(
                    "referrer_id", referrer_id, "has the referee's email (a self-referral)"
                )
            since = current.created_at if current is not None else who.signed_up_at
            since = since or who.first_seen_at
            version = (
                self._in_force(since)
                if current is None
                else self._version(current.program_version, current.referral_id)
            )
            checks = self._operator_checks(uow, version, who, referrer_id, code, since, email)
            old = "" if current is None else current.referrer_id
            n = 0 if current is None else _count(current)
            params: dict[str, str] = {
                "actor": actor,
                "reason": reason,
                "old_referrer": old,
                "new_referrer": referrer_id,
            }
            if operation_id is not None:
                params["operation"] = operation_id
            audit = Decision.of("operator", Verdict.NOTED, REATTRIBUTED, **params)
            if current is None:
                referral = Referral(
                    referral_id=derive_id("ref", pid, referee_id),
                    program_id=pid,
                    program_version=version.version,
                    referrer_id=referrer_id,
                    referee_id=referee_id,
                    code=code.code,
                    channel="other",
                    created_at=since,
                    event_id=derive_id("rat", pid, referee_id, referrer_id),
                    explanation=(*checks, audit),
                )
                self._add_referral(uow, referral, None)
                if who.signed_up_at is not None and who.first_seen_at < who.signed_up_at:
                    # A buyer before signing up: a customer before the referral.
                    key = (pid, Counter.REFEREE_EXISTING_CUSTOMER.value, referee_id)
                    if not uow.counters.get([key])[key]:
                        uow.counters.add(key, _ONE)
                self._backfill(uow, version, referral)
            else:
                referral = self._move(uow, current, code, (*checks, audit), at, n)
            data = {
                "referral_id": referral.referral_id,
                "referee": referee_id,
                "old_referrer": old,
                "new_referrer": referrer_id,
                "actor": actor,
            }
            uow.outbox.add(
                [
                    Notification(
                        notification_id=sub_id(
                            "ntf", referral.referral_id, f"reattributed{n}" if n else "reattributed"
                        ),
                        program_id=pid,
                        kind="referral_reattributed",
                        recipient_id=referrer_id,
                        created_at=at,
                        data=data,
                    )
                ]
            )
            return referral

        return self._transact(work)

    # -- sign-up rewards of a referral bound at the first purchase -----------------------
    def _signup_rewards_at_bind(
        self,
        uow: UnitOfWork,
        referral: Referral,
        ev: Purchase,
        decisions: list[Decision],
        salt: tuple[str, ...] = (),
    ) -> tuple[tuple[RewardGrant, ...], tuple[str, ...]]:
        """The sign-up policies' rewards of a referral just bound at the referee's first
        purchase (``bind_at="first_purchase"``), paid then, as if at the sign-up: their
        source event is the binding purchase, but they belong to no order (a refund does
        not reverse them, as it would not a sign-up reward). A buyer who never signed up
        earns none. Their decisions are appended to ``decisions``."""
        version = self._version(referral.program_version, referral.referral_id)
        if not any(p.trigger is Trigger.SIGNUP for p in version.policies):
            return (), ()
        who = uow.participants.get(self._program_id, referral.referee_id)
        if who is None or who.signed_up_at is None:
            return (), ()
        carrier = Signup(event_id=ev.event_id, participant_id=referral.referee_id, at=ev.at)
        grants, ids, made = self._signup_reward(
            uow, version, referral, carrier, who.country, (*salt, "signup")
        )
        decisions.extend(d for d in made if d.code != "policy.not_trigger")
        return grants, ids

    # -- checks on the operator's choice ------------------------------------------------
    def _operator_checks(
        self,
        uow: UnitOfWork,
        version: Program,
        who: ParticipantRecord,
        referrer_id: str,
        code: CodeRecord,
        at: datetime,
        email: str | None,
    ) -> list[Decision]:
        """The program's checks on the operator's pair, as decisions to record; a block
        raises. The operator's decision overrides the existing-customer rule, a hold and a
        flag (each noted)."""
        pid = self._program_id
        referee_id = who.participant_id
        decisions: list[Decision] = []
        key = (pid, EXISTING_CUSTOMER, referee_id)
        customer = uow.counters.get([key])[key] > 0 or (
            who.signed_up_at is not None and who.first_seen_at < who.signed_up_at
        )
        if customer and not version.attribution.allow_existing_customers:
            decisions.append(
                Decision.of(
                    "operator",
                    Verdict.NOTED,
                    "referral.existing_customer_overridden",
                    referee=referee_id,
                )
            )
        if not self._fraud_checks:
            return decisions
        referrer_email = uow.participants.email_of(pid, referrer_id)
        context = fraud_context(
            uow,
            pid,
            referrer_id=referrer_id,
            referee_id=referee_id,
            at=at,
            referrer=self._identity(uow, referrer_id, referrer_email),
            referee=self._identity(uow, referee_id, email),
            code=code.code,
            channel="other",
            depth=chain_depth(self._fraud_checks),
        )
        verdict = combine(check.check(context) for check in self._fraud_checks)
        reasons = ",".join(verdict.reasons)
        if verdict.action is FraudAction.BLOCK:
            raise InvalidInputError(
                "referrer_id", referrer_id, f"a fraud check blocks this referral ({reasons})"
            )
        if verdict.action is not FraudAction.ALLOW:
            decisions.append(
                Decision.of(
                    "fraud",
                    Verdict.NOTED,
                    "referral.check_overridden",
                    action=verdict.action.value,
                    reasons=reasons,
                )
            )
        return decisions

    # -- changing the referrer -----------------------------------------------------------
    def _move(
        self,
        uow: UnitOfWork,
        current: Referral,
        code: CodeRecord,
        notes: Sequence[Decision],
        at: datetime,
        n: int,
    ) -> Referral:
        """Give ``current`` the code's owner as referrer and recompute its rewards."""
        pid = self._program_id
        rid = current.referral_id
        old = current.referrer_id
        new = code.participant_id
        cause = derive_id(_CAUSE, rid, str(n))
        version = self._version(current.program_version, rid)
        self._take_back(uow, self._referral_views(uow, rid), at, cause)
        signup, steps = self._history(uow, current)
        lost_conversions = 0
        for ev, order in steps:
            if not isinstance(ev, Purchase):
                continue
            counted = self._backfilled(uow, order)
            if counted.referral_id != rid:
                continue
            state = uow.counters.get([(pid, ORDER_REVERSED, order.order_id)])
            refunded = state[(pid, ORDER_REVERSED, order.order_id)]
            closed_key = (pid, ORDER_CLOSED, order.order_id)
            closed = uow.counters.get([closed_key])[closed_key] > 0
            left = order.amount.amount - refunded
            if left and order.exchange_rate is not None:  # counted in program currency
                left = self._in_program_currency(
                    order, current, order.amount.amount
                ) - self._in_program_currency(order, current, refunded)
            if left:
                uow.counters.add((pid, Counter.REFERRER_REVENUE_REFERRED.value, old), -left)
            if counted.converted and not closed:
                lost_conversions += 1
                # it leaves the month it converted in, for rolling status levels
                self._count_rolling(uow, old, StatusBasis.SUCCESSFUL_REFERRALS, order.at, -_ONE)
        if lost_conversions:
            uow.counters.add((pid, CONVERSIONS, rid), Decimal(-lost_conversions))
            uow.counters.add(
                (pid, Counter.REFERRER_SUCCESSFUL_REFERRALS.value, old),
                Decimal(-lost_conversions),
            )
            self._update_status(uow, old, at, cause, StatusBasis.SUCCESSFUL_REFERRALS)
        uow.counters.add((pid, Counter.REFERRER_REFERRALS.value, old), -_ONE)
        uow.counters.add((pid, Counter.REFERRER_REFERRALS.value, new), _ONE)
        uow.counters.add((pid, CODE_USES, current.code), -_ONE)
        uow.counters.add((pid, CODE_USES, code.code), _ONE)
        referee_keys = [
            (pid, REFEREE_PURCHASES_REWARDED, current.referee_id),
            (pid, REFEREE_FIRST_REWARD, current.referee_id),
        ]
        for key, value in uow.counters.get(referee_keys).items():
            if value:
                uow.counters.add(key, -value)  # counted again for the new referrer below
        moved = attrs.evolve(
            current,
            referrer_id=new,
            code=code.code,
            status="active" if current.status == "held" else current.status,
            explanation=(*current.explanation, *notes),
        )
        uow.referrals.update(moved)
        self._earn_again(uow, version, moved, signup, steps, cause)
        return moved

    def _take_back(
        self, uow: UnitOfWork, views: Sequence[RewardView], at: datetime, cause: str
    ) -> None:
        """Reverse every reward in ``views`` wholly (a paid one is clawed back), giving the
        spend back to caps and budget, as a chargeback would."""
        pid = self._program_id
        appended = []
        notifications = []
        spend = _ZERO
        for view in views:
            entry = reversal_entry(view, view.granted, at, cause)
            if entry is None:
                continue
            reward = view.reward
            appended.append(entry)
            if reward.unit.is_money:
                spend += entry.quantity
                self._give_back(uow, reward, entry.quantity)
            elif reward.unit.kind == "points":
                self._points_earned(uow, reward, -entry.quantity, at, cause)
            clawback = entry.kind is EntryKind.CLAWED_BACK
            notifications.append(
                Notification(
                    notification_id=f"ntf_{entry.entry_id}",
                    program_id=pid,
                    kind="reward_clawed_back" if clawback else "reward_reversed",
                    recipient_id=reward.participant_id,
                    created_at=at,
                    data={
                        "reward_id": reward.reward_id,
                        "quantity": str(entry.quantity),
                        "value": describe(reward.value, entry.quantity),
                        "unit": str(reward.unit),
                        "cause": "reattribution",
                    },
                )
            )
        if appended:
            uow.ledger.append(appended)
            uow.outbox.add(notifications)
        if spend:
            uow.counters.add((pid, Counter.PROGRAM_SPEND.value, ""), -spend)

    def _history(self, uow: UnitOfWork, referral: Referral) -> tuple[Signup | None, list[_Step]]:
        """The referee's sign-up, and their purchases with the refunds and chargebacks of
        those orders in log order, each with its order (found by their keys: the referee's
        id, then the ids of their orders)."""
        pid = self._program_id
        who = referral.referee_id
        signup: Signup | None = None
        steps: list[_Step] = []
        orders: dict[str, OrderRecord] = {}
        for record in _with_their_orders(uow, pid, who):
            ev = record.event
            if isinstance(ev, Signup) and ev.participant_id == who:
                signup = signup or ev
            elif isinstance(ev, Purchase) and ev.participant_id == who:
                order = uow.orders.get(pid, ev.order_id)
                if order is not None and order.event_id == ev.event_id:
                    orders[order.order_id] = order
                    steps.append((ev, order))
            elif isinstance(ev, Refund) and ev.order_id in orders:
                refund = uow.orders.refund(pid, ev.refund_id)
                if refund is not None and refund.event_id == ev.event_id:
                    steps.append((ev, orders[ev.order_id]))
            elif isinstance(ev, Chargeback) and ev.order_id in orders:
                chargeback = uow.orders.chargeback(pid, ev.chargeback_id)
                if chargeback is not None and chargeback.event_id == ev.event_id:
                    steps.append((ev, orders[ev.order_id]))
        return signup, steps

    def _earn_again(
        self,
        uow: UnitOfWork,
        version: Program,
        referral: Referral,
        signup: Signup | None,
        steps: Sequence[_Step],
        cause: str,
    ) -> None:
        """Evaluate the referee's sign-up and purchases for the referral's new referrer, as
        ``Engine.handle`` would have when they happened (minus refunds since)."""
        pid = self._program_id
        rid = referral.referral_id
        salt = (cause,)
        referee = uow.participants.get(pid, referral.referee_id)
        country = None if referee is None else referee.country
        audits = _audits(referral)
        by_operator = bool(audits) and audits[0].param_map.get("old_referrer") == ""
        bound_at = uow.events.get(pid, referral.event_id)
        if not by_operator and bound_at is not None and isinstance(bound_at.event, Purchase):
            # Bound at the first purchase: the sign-up policies paid then.
            self._signup_rewards_at_bind(uow, referral, bound_at.event, [], salt)
        elif signup is not None and (version.attribution.bind_at == "signup" or by_operator):
            # Sign-up policies pay when the program binds at sign-up, and for a referral an
            # operator made (its backfill paid the sign-up).
            self._signup_reward(uow, version, referral, signup, signup.country, salt)
        revenue_key = (pid, Counter.REFERRER_REVENUE_REFERRED.value, referral.referrer_id)
        successful_key = (pid, Counter.REFERRER_SUCCESSFUL_REFERRALS.value, referral.referrer_id)
        conversions = 0  # converted orders not wholly refunded, as the engine counts them
        number = 0
        replayed: dict[str, _Replayed] = {}
        for ev, order in steps:
            if not isinstance(ev, Purchase):
                done = replayed.get(order.order_id)
                if done is None:
                    continue  # an order from before the referral
                if isinstance(ev, Refund):
                    total = min(done.refunded + ev.amount.amount, order.amount.amount)
                else:
                    total = order.amount.amount
                newly = total - done.refunded
                if newly > 0:
                    revenue = newly
                    if order.exchange_rate is not None:
                        # At the order's rate, as Engine.handle counts a refund.
                        revenue = self._in_program_currency(order, referral, total) - (
                            self._in_program_currency(order, referral, done.refunded)
                        )
                    uow.counters.add(revenue_key, -revenue)
                done.refunded = total
                if total >= order.amount.amount and not done.closed:
                    done.closed = True
                    if done.converted:
                        conversions -= 1
                        uow.counters.add((pid, CONVERSIONS, rid), -_ONE)
                        uow.counters.add(successful_key, -_ONE)
                        self._update_status(
                            uow,
                            referral.referrer_id,
                            ev.at,
                            f"{cause}/{ev.event_id}",
                            StatusBasis.SUCCESSFUL_REFERRALS,
                            (order.at, -_ONE),  # it leaves the month it converted in
                        )
                self._reverse_again(uow, order, ev, total, done.reward_ids)
                continue
            number += 1
            if ev.at < referral.created_at:
                continue  # paid before the referral existed: nobody's referral
            mark_key = (pid, ORDER_BACKFILLED, order.order_id)
            mark = uow.counters.get([mark_key])[mark_key]
            if mark:
                uow.counters.add(mark_key, -mark)  # the order record says it now
            priced, reward_ids, converts = self._replay_purchase(
                uow, version, referral, ev, order, number, conversions > 0, country, salt
            )
            replayed[order.order_id] = _Replayed(frozenset(reward_ids), converts)
            uow.counters.add(revenue_key, priced.amount.amount)
            if converts:
                conversions += 1
                uow.counters.add((pid, CONVERSIONS, rid), _ONE)
                uow.counters.add(successful_key, _ONE)
                self._update_status(
                    uow,
                    referral.referrer_id,
                    ev.at,
                    f"{cause}/{ev.event_id}",
                    StatusBasis.SUCCESSFUL_REFERRALS,
                    (ev.at, _ONE),
                )
            if order.referral_id != rid or order.converted != converts:
                uow.orders.update(attrs.evolve(order, referral_id=rid, converted=converts))

    def _reverse_again(
        self,
        uow: UnitOfWork,
        order: OrderRecord,
        ev: Refund | Chargeback,
        total: Decimal,
        reward_ids: frozenset[str],
    ) -> None:
        """Reverse the rewards just granted again for ``order`` as the refund or chargeback
        ``ev`` did at the time (``total`` refunded so far), the way ``Engine.handle`` does."""
        pid = self._program_id
        rewards = [
            r for r in uow.ledger.rewards(pid, order_id=order.order_id) if r.reward_id in reward_ids
        ]
        if rewards:
            self._reverse_rewards(uow, order, ev, total, rewards)


@attrs.define
class _Replayed:
    """An order as the re-attribution's replay has it so far."""

    reward_ids: frozenset[str]
    converted: bool
    refunded: Decimal = _ZERO
    closed: bool = False


_Step = tuple[Purchase | Refund | Chargeback, OrderRecord]


def _with_their_orders(uow: UnitOfWork, program_id: str, who: str) -> list[EventRecord]:
    """The logged events whose key is ``who`` (their sign-ups and purchases, and any other
    event whose key is the same text), then those whose key is the order id of one of
    these purchases (the refunds and chargebacks of the orders), merged in log order."""
    mine = events_about(uow, program_id, [who])
    orders = sorted({r.event.order_id for _, r in mine if isinstance(r.event, Purchase)} - {who})
    merged = dict(mine)
    merged.update(events_about(uow, program_id, orders))
    return [merged[position] for position in sorted(merged)]


def _audits(referral: Referral) -> list[Decision]:
    return [d for d in referral.explanation if d.code == REATTRIBUTED]


def _count(referral: Referral) -> int:
    return len(_audits(referral))


def _retried(
    current: Referral, referrer_id: str, actor: str, reason: str, operation_id: str | None
) -> bool:
    """Whether this call repeats a re-attribution already made (see ``reattribute``)."""
    audits = _audits(current)
    if operation_id is not None:
        return any(d.param_map.get("operation") == operation_id for d in audits)
    if not audits or current.referrer_id != referrer_id:
        return False
    last = audits[-1].param_map
    return (
        last["actor"] == actor and last["reason"] == reason and last["new_referrer"] == referrer_id
    )
