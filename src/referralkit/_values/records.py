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

from referralkit._values.decisions import Decision
from referralkit._values.events import Event
from referralkit._values.money import Money
from referralkit._values.rewards import RewardValue, Unit

__all__ = [
    "AttributionExplanation",
    "ChargebackRecord",
    "CodeRecord",
    "Entry",
    "EntryKind",
    "EventRecord",
    "Notification",
    "OrderRecord",
    "Outcome",
    "ParticipantRecord",
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
    return MappingProxyType(dict(data))


def _decisions(value: Iterable[Decision]) -> tuple[Decision, ...]:
    return tuple(value)


class Role(enum.StrEnum):
    """Which side of a referral a reward goes to."""

    REFERRER = "referrer"
    REFEREE = "referee"


@attrs.frozen
class RewardGrant:
    """A reward a policy grants to one participant.

    Attributes:
        role: The participant's side of the referral.
        participant_id: Who receives it.
        value: What they receive.
        policy: The name of the policy that granted it.
        reason: A reason code (``"policy.granted"`` or a policy-specific one).
    """

    role: Role
    participant_id: str
    value: RewardValue
    policy: str
    reason: str = "policy.granted"


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
        return frozenset(self.data.items())


@attrs.frozen
class ParticipantRecord:
    """A person the program has seen: a sign-up, or a buyer who never signed up."""

    program_id: str
    participant_id: str
    first_seen_at: datetime
    signed_up_at: datetime | None


@attrs.frozen
class OrderRecord:
    """A recorded purchase (every purchase is, referred or not).

    Attributes:
        referral_id: The referral it counted for, if the buyer was referred.
        converted: Whether this order made its referral successful.
        digest: Digest of the business fields, to tell a repeat from a conflict.
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


class RewardState(enum.StrEnum):
    """A reward's state, derived from its entries."""

    PENDING = "pending"
    """Granted, not yet payable (in its hold period)."""
    APPROVED = "approved"
    """Payable (available)."""
    REVERSED = "reversed"
    """Wholly reversed (final)."""


@attrs.frozen
class Reward:
    """The immutable facts of one reward; its state comes from its entries.

    Attributes:
        reward_id: Derived from (program, source event, policy, role).
        base_amount: The order amount the reward was computed on, for pro-rata reversals.
        payable_at: When the hold ends and ``settle`` approves it.
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
        cause: The event id or operation (``"settle"``) that caused it.
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
        kind: ``referral_created``, ``reward_earned``, ``reward_approved``,
            ``reward_reversed``.
        data: Structured fields (strings) for the host's own templates.
    """

    notification_id: str
    program_id: str
    kind: str
    recipient_id: str
    created_at: datetime
    data: Mapping[str, str] = attrs.field(converter=_frozen_map, eq=False, hash=False)

    def message(self) -> str:
        """A default English message."""
        d = self.data
        if self.kind == "referral_created":
            return f"{d.get('referee', 'A friend')} signed up with your code."
        if self.kind == "reward_earned":
            return (
                f"You earned {d.get('value', 'a reward')}, payable on "
                f"{d.get('payable_on', 'a later date')}."
            )
        if self.kind == "reward_approved":
            return f"Your reward of {d.get('value', '')} is now available."
        if self.kind == "reward_reversed":
            return (
                f"{d.get('value', 'A reward')} of your rewards was reversed ({d.get('cause', '')})."
            )
        return f"{self.kind}: {dict(d)}"


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
