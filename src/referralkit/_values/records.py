"""The records the engine keeps: participants, referrals, orders, rewards, ledger entries,
notifications and the event log. Stores persist them as they are.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs

from referralkit._values._fastinit import fast_init
from referralkit._values.decisions import Decision
from referralkit._values.events import Event
from referralkit._values.messages import render_message
from referralkit._values.money import Money
from referralkit._values.rates import Rate
from referralkit._values.rewards import RewardValue, Unit

__all__ = [
    "AttributionExplanation",
    "ChargebackRecord",
    "CodeRecord",
    "Entry",
    "EntryKind",
    "EventRecord",
    "DeadLetter",
    "Notification",
    "OrderRecord",
    "MilestoneReached",
    "Outcome",
    "OutboxStatus",
    "ParticipantRecord",
    "Payout",
    "PayoutStatus",
    "ProgramRecord",
    "Referral",
    "RefundRecord",
    "Reversal",
    "Reward",
    "RewardGrant",
    "RewardState",
    "Role",
    "TouchRecord",
]


def _frozen_map(data: Mapping[str, Any]) -> Mapping[str, Any]:
    if type(data) is dict and not data:
        return _EMPTY_MAP  # read-only and empty: one serves every record
    return MappingProxyType(dict(data))


_EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})


_NO_ITEMS: frozenset[tuple[str, str]] = frozenset()


def _decisions(value: Iterable[Decision]) -> tuple[Decision, ...]:
    return tuple(value)


class Role(enum.StrEnum):
    """Which side of a referral a reward goes to."""

    REFERRER = "referrer"
    REFEREE = "referee"


@attrs.frozen
class MilestoneReached:
    """A grant's milestone: the grant is made once ever per participant and milestone.

    Attributes:
        name: The milestone's name, unique within its policy.
        threshold: The count it is reached at.
        count: The count when it was reached.
    """

    name: str
    threshold: int
    count: int


@attrs.frozen
class RewardGrant:
    """A reward a policy grants to one participant.

    Attributes:
        role: The participant's side of the referral.
        participant_id: Who receives it.
        value: What they receive.
        policy: The name of the policy that granted it.
        reason: A reason code (``"policy.granted"`` or a policy-specific one).
        milestone: Set by milestone policies: the reward id is then derived from
            (program, participant, policy, milestone), so it is granted once ever.
        item: The line item (sku) a per-item grant is for, so a refund naming that item
            reverses it; None for grants on the whole order or on a sign-up.
    """

    role: Role
    participant_id: str
    value: RewardValue
    policy: str
    reason: str = "policy.granted"
    milestone: MilestoneReached | None = None
    item: str | None = None


@attrs.frozen
class Referral:
    """Who referred whom, under which program version.

    Attributes:
        referral_id: Derived from (program id, referee id).
        program_id: The program.
        program_version: The version in force when the referral was attributed; it governs
            every reward the referral earns (terms lock).
        referrer_id: Who referred.
        referee_id: Who was referred.
        code: The normalised code used.
        channel: Where the referral came from.
        created_at: When it was attributed.
        event_id: The sign-up event that created it.
        status: ``"active"``, or ``"held"`` when a fraud check (or a later finding) put it
            on hold for an operator.
        explanation: Why this referrer won: one decision per touch seen (the winner, the
            touches that lost or were ignored, and why) and the fraud verdicts.
    """

    referral_id: str
    program_id: str
    program_version: int
    referrer_id: str
    referee_id: str
    code: str
    channel: str
    created_at: datetime
    event_id: str
    status: str = "active"
    explanation: tuple[Decision, ...] = attrs.field(default=(), converter=_decisions)

    @property
    def campaign(self) -> str | None:
        """The campaign of the touch that won the attribution (its ``touch.won`` decision
        in the explanation), or None when it had none."""
        for decision in self.explanation:
            if decision.code == "touch.won":
                value = decision.param_map.get("campaign")
                return value if isinstance(value, str) and value else None
        return None


@attrs.frozen
class CodeRecord:
    """A referral code and its owner. ``code`` is normalised.

    Attributes:
        max_uses: How many referrals the code may make; ``None`` for no limit.
        expires_at: From this instant on the code makes no referral; ``None`` for never.
    """

    program_id: str
    code: str
    participant_id: str
    created_at: datetime
    max_uses: int | None = None
    expires_at: datetime | None = None


@attrs.frozen
class TouchRecord:
    """One step of a would-be referee's journey, kept for attribution.

    Attributes:
        touch_id: Derived from the event that recorded it.
        kind: ``"click"`` (a referral link followed), ``"code"`` (a code typed at sign-up
            or at checkout) or ``"decision"`` (where attribution was decided for
            ``participant_id``: the event id of that sign-up or first purchase).
        at: When it happened.
        event_id: The event that recorded it.
        visitor_id: The host's anonymous visitor id, if known.
        participant_id: The would-be referee, once known (set for every touch of a visitor
            when that visitor signs up).
        referrer_id: Whose link or code it was (``None`` for a decision).
        code: The referrer's normalised code, if any.
        channel: One of ``CHANNELS``.
        campaign: The campaign (UTM campaign), if known.
        data: Other touch fields (UTM source, medium, content, term) as strings.
    """

    program_id: str
    touch_id: str
    kind: str
    at: datetime
    event_id: str
    visitor_id: str | None = None
    participant_id: str | None = None
    referrer_id: str | None = None
    code: str | None = None
    channel: str = "link"
    campaign: str | None = None
    data: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map, eq=False, hash=False)
    _data_items: frozenset[tuple[str, str]] = attrs.field(init=False, repr=False)

    @_data_items.default
    def _freeze_data(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.data.items()) if self.data else _NO_ITEMS


@attrs.frozen
class ParticipantRecord:
    """A person the program has seen: a sign-up, or a buyer who never signed up.

    Attributes:
        country: The ISO 3166-1 alpha-2 country given at sign-up (``Signup.country``), if any.
    """

    program_id: str
    participant_id: str
    first_seen_at: datetime
    signed_up_at: datetime | None
    country: str | None = None


@attrs.frozen
class OrderRecord:
    """A recorded purchase (every purchase is, referred or not).

    Attributes:
        referral_id: The referral it counted for, if the buyer was referred.
        converted: Whether this order made its referral successful.
        digest: Digest of the business fields, to tell a repeat from a conflict.
        exchange_rate: For an order in another currency than the program's, the rate
            (order currency → program currency) it was converted at; its refunds are
            converted at this rate too. None for an order in the program's currency.
    """

    program_id: str
    order_id: str
    participant_id: str
    amount: Money
    at: datetime
    event_id: str
    referral_id: str | None
    converted: bool
    digest: str
    exchange_rate: Rate | None = None


@attrs.frozen
class RefundRecord:
    """A recorded refund."""

    program_id: str
    refund_id: str
    order_id: str
    amount: Money
    at: datetime
    event_id: str
    digest: str


@attrs.frozen
class ChargebackRecord:
    """A recorded chargeback."""

    program_id: str
    chargeback_id: str
    order_id: str
    at: datetime
    event_id: str
    digest: str


class EntryKind(enum.StrEnum):
    """What a ledger entry records."""

    GRANTED = "granted"
    APPROVED = "approved"
    REVERSED = "reversed"
    HELD = "held"
    """Put on hold (fraud check, review); quantity: the outstanding quantity."""
    RELEASED = "released"
    """Released from a hold, back to the state before it."""
    REJECTED = "rejected"
    """Refused (operator, veto or fraud); quantity: the outstanding quantity, which leaves
    every balance."""
    REVIEW_DUE = "review_due"
    """The operator was reminded that a held reward awaits a decision (quantity 0)."""
    PAID = "paid"
    """Paid out by a payout (cause: its id); quantity: the outstanding quantity paid."""
    CLAWED_BACK = "clawed_back"
    """A reversal after payment: the participant owes the quantity."""
    RECOVERED = "recovered"
    """Owed quantity netted against a payout (cause: its id)."""
    WRITTEN_OFF = "written_off"
    """Owed quantity written off by an operator."""
    REDEEMED = "redeemed"
    """Points spent by a redemption (the reward's state is unchanged)."""
    EXPIRED = "expired"
    """Points that expired unused (the reward's state is unchanged)."""


class RewardState(enum.StrEnum):
    """A reward's state, derived from its entries."""

    PENDING = "pending"
    """Granted, not yet payable (in its hold period)."""
    APPROVED = "approved"
    """Payable (available)."""
    REVERSED = "reversed"
    """Wholly reversed (final)."""
    HELD = "held"
    """On hold for review or by a fraud check; never approved without a decision."""
    PAID = "paid"
    """Paid out; a later reversal is a clawback the participant owes."""
    REJECTED = "rejected"
    """Refused by an operator or the host's veto (final)."""
    FRAUD = "fraud"
    """Refused as fraudulent (final)."""


@attrs.frozen
class Reward:
    """The immutable facts of one reward; its state comes from its entries.

    Attributes:
        reward_id: Derived from (program, source event, policy, role).
        base_amount: The order amount the reward was computed on, for pro-rata reversals.
        payable_at: When the hold ends and ``settle`` approves it.
        item: The line item (sku) of a per-item reward, or None.
        exchange_rate: For a reward on a purchase in another currency, the rate (and its
            date) the purchase was converted to the program currency at; ``base_amount``
            stays in the order's currency. None otherwise.
    """

    reward_id: str
    program_id: str
    program_version: int
    referral_id: str
    participant_id: str
    role: Role
    value: RewardValue
    policy: str
    source_event_id: str
    order_id: str | None
    base_amount: Money | None
    created_at: datetime
    payable_at: datetime
    item: str | None = None
    exchange_rate: Rate | None = None

    @property
    def unit(self) -> Unit:
        """The unit the reward is counted in."""
        return self.value.unit


@attrs.frozen
class Entry:
    """One append-only ledger entry.

    Attributes:
        entry_id: Derived from the reward and the cause.
        quantity: In the reward's unit; positive for grants and reversals alike (the kind
            says the direction); the outstanding quantity for approvals.
        state_after: The reward's state once this entry applies.
        cause: The event id or operation (``"settle"``) that caused it; the reason for
            holds, the payout id for payments.
        actor: Who made the change: ``"engine"`` for automatic steps, otherwise the
            operator or system the caller named.
    """

    entry_id: str
    reward_id: str
    program_id: str
    participant_id: str
    kind: EntryKind
    quantity: Decimal
    at: datetime
    cause: str
    state_after: RewardState
    actor: str = "engine"


class PayoutStatus(enum.StrEnum):
    """Where a payout stands."""

    PENDING = "pending"
    """Recorded; the fulfiller has not confirmed it yet (or the process stopped)."""
    FAILED = "failed"
    """The fulfiller raised; the next ``Engine.payout`` retries it under the same id."""
    PAID = "paid"
    """The fulfiller succeeded and its rewards are marked paid (final)."""
    CANCELLED = "cancelled"
    """Its rewards changed (reversed, rejected, held) before it succeeded; a new payout
    covers what remains payable."""


@attrs.frozen
class Payout:
    """One payment to one participant in one money unit, covering approved rewards.

    Attributes:
        payout_id: Derived from (program, participant, unit kind, amounts, the reward ids it
            covers), so a retry has the same id; the fulfiller deduplicates on it.
        amount: What the fulfiller pays: the rewards' outstanding sum minus ``netted``.
        kind: The unit kind paid (``cash`` or ``credit``); with the currency of ``amount``
            it names the balance unit.
        reward_ids: The approved rewards it pays, sorted.
        netted: Clawbacks the participant owed, recovered from this payout.
        status: Pending, failed or paid.
        attempts: Fulfilment attempts so far.
        error: The last failure, if any.
        updated_at: When the status last changed.
    """

    payout_id: str
    program_id: str
    participant_id: str
    amount: Money
    kind: str
    reward_ids: tuple[str, ...]
    netted: Money
    created_at: datetime
    status: PayoutStatus = PayoutStatus.PENDING
    attempts: int = 0
    error: str | None = None
    updated_at: datetime | None = None

    @property
    def unit(self) -> Unit:
        """The balance unit paid."""
        return Unit(self.kind, self.amount.currency)


@attrs.frozen
class Reversal:
    """A reversal made while handling an event."""

    reward_id: str
    participant_id: str
    unit: Unit
    quantity: Decimal


@attrs.frozen
class Notification:
    """A message for a participant, written to the outbox with the change that causes it.

    Attributes:
        notification_id: Derived from the change; a receiver deduplicates on it.
        kind: What happened: ``referral_created``, ``reward_earned``, ``reward_approved``,
            ``reward_reversed``, ... (the Notifications page lists every kind).
        data: Structured fields (strings) for the host's own templates; the keys depend
            on the kind.
    """

    notification_id: str
    program_id: str
    kind: str
    recipient_id: str
    created_at: datetime
    data: Mapping[str, str] = attrs.field(converter=_frozen_map, eq=False, hash=False)

    def message(self) -> str:
        """The default English message (see
        [`render_message`][referralkit.render_message]); never raises."""
        return render_message(self)


@attrs.frozen
class Outcome:
    """What handling one event did, and why.

    Attributes:
        event_id: The event.
        event_type: ``click``, ``signup``, ``purchase``, ``refund`` or ``chargeback``.
        duplicate: True when the event id was seen before: this is the stored outcome and
            nothing was written.
        referral_id: The referral the event concerned, if any.
        grants: Rewards granted.
        reward_ids: Ids of the rewards granted, in the order of ``grants``.
        reversals: Rewards (partly) reversed.
        decisions: The decision trace, in order.
    """

    event_id: str
    event_type: str
    duplicate: bool = False
    referral_id: str | None = None
    grants: tuple[RewardGrant, ...] = ()
    reward_ids: tuple[str, ...] = ()
    reversals: tuple[Reversal, ...] = ()
    decisions: tuple[Decision, ...] = ()

    def explain(self) -> str:
        """The decision trace as readable lines."""
        head = f"{self.event_type} {self.event_id}" + (" (duplicate)" if self.duplicate else "")
        return "\n".join([head, *(f"  {d}" for d in self.decisions)])

    def reasons(self) -> tuple[str, ...]:
        """The reason codes of the decisions, in order."""
        return tuple(d.code for d in self.decisions)


@attrs.frozen
class EventRecord:
    """An accepted event in the event log, with its digest and outcome."""

    program_id: str
    event_id: str
    digest: str
    event: Event
    outcome: Outcome
    schema_version: int = 1


@attrs.frozen
class ProgramRecord:
    """A published program version."""

    program_id: str
    version: int
    digest: str
    effective_at: datetime
    published_at: datetime
    definition: Mapping[str, Any] = attrs.field(
        factory=dict, converter=_frozen_map, eq=False, hash=False
    )


@attrs.frozen
class OutboxStatus:
    """Delivery state of one notification in a store's outbox.

    Attributes:
        delivered_at: When a delivery succeeded; None while undelivered.
        attempts: Delivery attempts so far (reset to 0 when a dead letter is retried).
        last_error: The error of the latest failed attempt, or None.
        next_attempt_at: When a failed notification is due again; None when it was never
            attempted (due at once), delivered, or dead.
        dead_at: When it became a dead letter (its attempts ran out); None otherwise.
    """

    delivered_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    dead_at: datetime | None = None


@attrs.frozen
class DeadLetter:
    """A notification whose delivery attempts ran out; retry it with
    [`Engine.retry_dead`][referralkit.Engine.retry_dead].

    Attributes:
        notification: The notification, as queued.
        attempts: How many deliveries were attempted.
        last_error: The error of the last attempt.
        dead_at: When the last attempt failed.
    """

    notification: Notification
    attempts: int
    last_error: str | None
    dead_at: datetime


@attrs.frozen
class AttributionExplanation:
    """Why a participant was, or was not, referred: what support staff read.

    Attributes:
        referee_id: The participant asked about.
        referral: Their referral, or ``None``.
        decisions: With a referral, the explanation stored with it (every touch seen, which
            rule chose the winner, which touches lost or were rejected and why, the fraud
            verdicts); without one, the decisions of the event where attribution was
            decided (or an ``attribution.no_touches`` decision when nothing was on record).
        event_id: The event where attribution was decided, if any.
    """

    referee_id: str
    referral: Referral | None
    decisions: tuple[Decision, ...]
    event_id: str | None = None

    def text(self) -> str:
        """The explanation as readable lines."""
        if self.referral is not None:
            head = (
                f"{self.referee_id} was referred by {self.referral.referrer_id}"
                f" ({self.referral.status})"
            )
        else:
            head = f"{self.referee_id} was not referred"
        return "\n".join([head, *(f"  {d}" for d in self.decisions)])

    def reasons(self) -> tuple[str, ...]:
        """The reason codes of the decisions, in order."""
        return tuple(d.code for d in self.decisions)


# The records an event makes (or a store reads back) on every event get the faster
# ``__init__`` of ``_fastinit``: same parameters, same result, fewer lookups.
for _record in (
    RewardGrant,
    Referral,
    TouchRecord,
    ParticipantRecord,
    OrderRecord,
    RefundRecord,
    Reward,
    Entry,
    Reversal,
    Notification,
    Outcome,
    EventRecord,
):
    fast_init(_record)
del _record
