"""Ports: the protocols a host application may implement.

The engine talks to storage only through [`Store`][referralkit.Store] and its unit of work,
and to the outside world through [`Notifier`][referralkit.Notifier]. Each repository is a
handful of narrow, indexed queries; nothing scans history per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from referralkit._errors import InvalidInputError
from referralkit._values.events import Chargeback, Click, Event, Purchase, Refund, Signup
from referralkit._values.rates import Rate
from referralkit._values.records import (
    ChargebackRecord,
    CodeRecord,
    DeadLetter,
    Entry,
    EventRecord,
    Notification,
    OrderRecord,
    ParticipantRecord,
    Payout,
    ProgramRecord,
    Referral,
    RefundRecord,
    Reward,
    RewardState,
    TouchRecord,
)

__all__ = [
    "CounterKey",
    "Counters",
    "EventLog",
    "ExchangeRates",
    "Fulfiller",
    "KeyedEventLog",
    "Ledger",
    "Notifier",
    "Orders",
    "Outbox",
    "Participants",
    "Payouts",
    "Programs",
    "Referrals",
    "Store",
    "Touches",
    "UnitOfWork",
    "event_key",
    "events_about",
]

CounterKey = tuple[str, str, str]
"""(program id, counter name, subject id): a counter's key. The subject is a participant,
an order, a referral, or ``""`` for program-wide counters."""


class EventLog(Protocol):
    """**Protocol:** the accepted events, keyed by (program id, event id)."""

    def get(self, program_id: str, event_id: str) -> EventRecord | None:
        """The record of an event id, or None if it was never accepted."""
        ...

    def add(self, record: EventRecord) -> None:
        """Append an accepted event. A second record with the same key is a conflict:
        ``ConcurrencyError`` at the latest when the unit of work commits."""
        ...

    def since(self, program_id: str, after: int, limit: int) -> list[tuple[int, EventRecord]]:
        """Up to ``limit`` accepted events of a program whose log position is greater than
        ``after``, in commit order, each with its position (positions increase with commit
        order; start from 0). Used for replays, backtests and audits."""
        ...

    def redact(self, program_id: str, event_id: str, event: Event) -> None:
        """Replace the payload of a logged event (erasure of personal fields), keeping its
        digest, outcome, schema version and log position; an unknown event is a
        ``StoreError``."""
        ...


_KEY_FIELDS: Mapping[type, str] = {
    Signup: "participant_id",
    Purchase: "participant_id",
    Refund: "order_id",
    Chargeback: "order_id",
    Click: "visitor_id",
}


def event_key(event: Event) -> str | None:
    """The key a logged event is found by (``KeyedEventLog.about``): the participant id of
    a sign-up or a purchase, the order id of a refund or a chargeback, the visitor id of a
    click (None for a click without one: such a click is found by no key).

    Keys of different kinds share one namespace (a participant id may equal an order id),
    so a caller of ``about`` checks the type and fields of what it gets back."""
    field = _KEY_FIELDS.get(type(event))
    if field is None:  # a subclass of an event type, or not an event
        field = next((name for cls, name in _KEY_FIELDS.items() if isinstance(event, cls)), None)
        if field is None:
            raise InvalidInputError(
                "event", event, "must be a Click, Signup, Purchase, Refund or Chargeback"
            )
    key: str | None = getattr(event, field)
    return key


@runtime_checkable
class KeyedEventLog(Protocol):
    """**Protocol:** an [`EventLog`][referralkit.EventLog] that also finds a program's
    events by their key ([`event_key`][referralkit.event_key]) with an index.

    Optional: the engine's operator calls (``reattribute``, ``erase_participant``) use it
    when the unit's ``events`` has ``about``, and otherwise read the whole log through
    ``since`` and keep the events whose key they want, with the same result.
    """

    def about(self, program_id: str, keys: Sequence[str]) -> list[tuple[int, EventRecord]]:
        """The logged events of the program whose key is one of ``keys``, each once, in log
        order with their log positions (the positions ``since`` gives), the unit's own
        writes included. The key is that of the event as it is now: an event redacted
        with another key (an erased click's visitor id) is found by its new key only."""
        ...


class Programs(Protocol):
    """**Protocol:** published program versions."""

    def get(self, program_id: str, version: int) -> ProgramRecord | None:
        """A published version, or None."""
        ...

    def add(self, record: ProgramRecord) -> None:
        """Record a version; the same (program id, version) twice is a conflict."""
        ...

    def versions(self, program_id: str) -> list[ProgramRecord]:
        """Every published version of a program, in version order."""
        ...


class Participants(Protocol):
    """**Protocol:** people the program has seen, their codes, and their personal data."""

    def get(self, program_id: str, participant_id: str) -> ParticipantRecord | None:
        """A participant, or None."""
        ...

    def put(self, record: ParticipantRecord) -> None:
        """Insert or replace a participant."""
        ...

    def code_owner(self, program_id: str, code: str) -> CodeRecord | None:
        """Who owns a normalised code, or None."""
        ...

    def code_of(self, program_id: str, participant_id: str) -> CodeRecord | None:
        """A participant's code, or None."""
        ...

    def add_code(self, record: CodeRecord) -> None:
        """Reserve a code; a code or a participant that already has one is a conflict."""
        ...

    def email_of(self, program_id: str, participant_id: str) -> str | None:
        """The participant's normalised email (personal data), or None."""
        ...

    def set_email(self, program_id: str, participant_id: str, email: str) -> None:
        """Keep the participant's normalised email in the personal-data table."""
        ...


class Referrals(Protocol):
    """**Protocol:** referrals, one per referee per program."""

    def by_referee(self, program_id: str, referee_id: str) -> Referral | None:
        """The referee's referral, or None."""
        ...

    def get(self, referral_id: str) -> Referral | None:
        """A referral by id, or None."""
        ...

    def add(self, referral: Referral) -> None:
        """Add a referral; a second one for the same referee is a conflict."""
        ...

    def by_referrer(self, program_id: str, referrer_id: str) -> list[Referral]:
        """Every referral a referrer made in a program, in ``referral_id`` order."""
        ...

    def update(self, referral: Referral) -> None:
        """Replace the ``referrer_id``, ``code``, ``status`` and ``explanation`` of a known
        referral (its id, program, version, referee, channel, ``created_at`` and
        ``event_id`` never change; ``by_referrer`` follows a new referrer); an unknown
        referral id is a ``StoreError``."""
        ...


class Touches(Protocol):
    """**Protocol:** the touches of would-be referees (clicks, codes typed), for attribution.

    Lists come back in (``at``, ``touch_id``) order.
    """

    def add(self, record: TouchRecord) -> None:
        """Record a touch; a known (program id, touch id) is a conflict."""
        ...

    def of_visitor(self, program_id: str, visitor_id: str) -> list[TouchRecord]:
        """Every touch recorded with this visitor id."""
        ...

    def of_participant(self, program_id: str, participant_id: str) -> list[TouchRecord]:
        """Every touch of this participant (their own, and their visitor's once attached)."""
        ...

    def attach(self, program_id: str, visitor_id: str, participant_id: str) -> None:
        """Set ``participant_id`` on every touch of the visitor that has none yet."""
        ...

    def purge(self, program_id: str, before: datetime) -> int:
        """Delete the program's touches whose ``at`` is before ``before``; how many."""
        ...

    def forget(self, program_id: str, participant_id: str) -> int:
        """Delete every touch of the participant (erasure); how many."""
        ...


class Orders(Protocol):
    """**Protocol:** purchases, refunds and chargebacks, by business id."""

    def get(self, program_id: str, order_id: str) -> OrderRecord | None:
        """An order, or None."""
        ...

    def add(self, record: OrderRecord) -> None:
        """Record an order; the same order id twice is a conflict."""
        ...

    def update(self, record: OrderRecord) -> None:
        """Replace the ``referral_id`` and ``converted`` of a known order (the other fields
        never change); an unknown order is a ``StoreError``."""
        ...

    def refund(self, program_id: str, refund_id: str) -> RefundRecord | None:
        """A refund, or None."""
        ...

    def add_refund(self, record: RefundRecord) -> None:
        """Record a refund; the same refund id twice is a conflict."""
        ...

    def chargeback(self, program_id: str, chargeback_id: str) -> ChargebackRecord | None:
        """A chargeback, or None."""
        ...

    def add_chargeback(self, record: ChargebackRecord) -> None:
        """Record a chargeback; the same chargeback id twice is a conflict."""
        ...


class Ledger(Protocol):
    """**Protocol:** rewards and their append-only entries.

    Stores keep records as given, except that datetimes may come back in UTC (the same
    instant, still timezone-aware); this holds for every repository.
    """

    def add_reward(self, reward: Reward, entry: Entry) -> None:
        """Add a reward with its first (granted) entry; a known reward id is a conflict."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Append entries to existing rewards; a known entry id is a conflict
        (``ConcurrencyError``), an entry of an unknown reward a ``StoreError``."""
        ...

    def rewards(
        self,
        program_id: str,
        *,
        participant_id: str | None = None,
        order_id: str | None = None,
    ) -> list[Reward]:
        """Rewards of one participant or one order (give exactly one), in the order they
        were added."""
        ...

    def entries(self, reward_ids: Iterable[str]) -> dict[str, list[Entry]]:
        """The entries of each reward, in append order."""
        ...

    def in_state(
        self, program_id: str, state: RewardState, *, due_by: datetime | None, limit: int
    ) -> list[Reward]:
        """Up to ``limit`` rewards whose latest entry left them in ``state`` (and, with
        ``due_by``, whose ``payable_at`` is at or before it), by payable_at then id."""
        ...

    def of_kind(
        self,
        program_id: str,
        kind: str,
        *,
        created_by: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Reward]:
        """Up to ``limit`` rewards of unit kind ``kind`` (``"points"``) created at or before
        ``created_by``, ordered by (created_at, reward_id) and strictly after the cursor
        ``after`` (the created_at and reward_id of the last reward of the previous page)."""
        ...


class Counters(Protocol):
    """**Protocol:** exact counters, updated in the same transaction as the change.

    Values are exact ``Decimal``s with up to 6 decimal places and a magnitude below
    9·10¹² (counts, and money in major units of any ISO 4217 currency).
    """

    def get(self, keys: Iterable[CounterKey]) -> dict[CounterKey, Decimal]:
        """Current values; a counter never written reads as 0."""
        ...

    def add(self, key: CounterKey, delta: Decimal) -> None:
        """Add ``delta`` (may be negative) to a counter."""
        ...


class Outbox(Protocol):
    """**Protocol:** notifications written with the changes that cause them, and their
    delivery state.

    A notification is *pending* until it is delivered or dead. A pending one is *due* when
    it was never attempted, or when its next attempt time has come. Every marking method is
    a no-op for an unknown id, and none undoes a delivery: a notification marked delivered
    stays delivered (two dispatchers may race; delivery is at least once).
    """

    def add(self, notifications: Sequence[Notification]) -> None:
        """Queue notifications; a known notification id is a conflict."""
        ...

    def pending(self, limit: int) -> list[Notification]:
        """Up to ``limit`` pending notifications (neither delivered nor dead, due or not),
        in the order they were added."""
        ...

    def due(self, at: datetime, limit: int) -> list[tuple[Notification, int]]:
        """Up to ``limit`` pending notifications due at ``at``, each with its attempts so far:
        first the failed ones whose next attempt is at or before ``at`` (by that time, then
        the order they were added), then the never-attempted ones in the order they were
        added. An indexed query: it does not read notifications that are not due."""
        ...

    def mark_delivered(self, notification_id: str, at: datetime) -> None:
        """Mark one notification delivered (counting the attempt); a dead letter delivered
        by a slower dispatcher is delivered too."""
        ...

    def mark_failed(
        self, notification_id: str, at: datetime, error: str, retry_at: datetime | None = None
    ) -> None:
        """Record a failed delivery attempt of a pending notification: it stays pending,
        due again at ``retry_at`` (``at`` when None). Ignored if it is delivered or dead."""
        ...

    def mark_dead(self, notification_id: str, at: datetime, error: str) -> None:
        """Record a failed last attempt of a pending notification: it becomes a dead letter
        (not pending, not due). Ignored if it is delivered or dead."""
        ...

    def dead(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, by the time they died, then the order they were
        added."""
        ...

    def revive(self, notification_ids: Sequence[str]) -> int:
        """Make these dead letters pending again, never attempted (attempts 0, the last
        error kept). Ids that are not dead letters are ignored.

        Returns:
            How many dead letters became pending.
        """
        ...


class Payouts(Protocol):
    """**Protocol:** payout records, keyed by payout id (unique).

    A payout's id is derived from what it pays, so recording it again is a conflict, never a
    second payment.
    """

    def add(self, payout: Payout) -> None:
        """Record a new payout; a known payout id is a conflict (``ConcurrencyError``)."""
        ...

    def get(self, program_id: str, payout_id: str) -> Payout | None:
        """A payout, or None."""
        ...

    def update(self, payout: Payout) -> None:
        """Replace a recorded payout's status, attempts, error and ``updated_at`` (the
        other fields never change); an unknown payout id is a ``StoreError``."""
        ...

    def open(self, program_id: str, participant_id: str | None, limit: int) -> list[Payout]:
        """Up to ``limit`` payouts that are pending or failed (of one participant, or of
        everyone with None), oldest first (by ``created_at``, then payout id)."""
        ...


@runtime_checkable
class UnitOfWork(Protocol):
    """**Protocol:** one transaction over the repositories.

    Used as ``with store.unit_of_work() as uow: ...; uow.commit()``. Reads see the unit's
    own writes. Leaving the block without ``commit()`` (or on an exception) rolls back, so
    nothing of the unit is visible afterwards. A write that conflicts with another unit's
    committed write raises ``ConcurrencyError`` (at the write or at ``commit()``), and the
    unit is rolled back.
    """

    @property
    def events(self) -> EventLog:
        """The event log."""
        ...

    @property
    def programs(self) -> Programs:
        """Published program versions."""
        ...

    @property
    def participants(self) -> Participants:
        """Participants, codes and personal data."""
        ...

    @property
    def referrals(self) -> Referrals:
        """Referrals."""
        ...

    @property
    def orders(self) -> Orders:
        """Orders, refunds and chargebacks."""
        ...

    @property
    def ledger(self) -> Ledger:
        """Rewards and ledger entries."""
        ...

    @property
    def counters(self) -> Counters:
        """Counters."""
        ...

    @property
    def outbox(self) -> Outbox:
        """The notification outbox."""
        ...

    @property
    def payouts(self) -> Payouts:
        """Payout records."""
        ...

    @property
    def touches(self) -> Touches:
        """Touches (clicks and codes) for attribution."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None:
        """Make every write of the unit durable and visible, atomically."""
        ...

    def rollback(self) -> None:
        """Discard every write of the unit."""
        ...


@runtime_checkable
class Store(Protocol):
    """**Protocol:** where referralkit keeps its records.

    ``unit_of_work()`` returns a new [`UnitOfWork`][referralkit.UnitOfWork]; units may run in
    several threads or processes at once and must be isolated from each other.
    ``dump()`` returns every record the store holds, table by table, so a test can assert
    that a rejected event wrote nothing.
    """

    def unit_of_work(self) -> UnitOfWork:
        """Begin a unit of work."""
        ...

    def dump(self) -> Mapping[str, list[Any]]:
        """Every record, by table name, each list in a stable order."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """**Protocol:** delivers notifications to participants (email, push, webhook, ...).

    ``send`` may be called more than once for the same notification (delivery is at least
    once); deduplicate on ``notification_id``. Raise any exception to signal failure: the
    notification stays in the outbox and is retried by the next ``dispatch``.
    """

    def send(self, notification: Notification) -> None:
        """Deliver one notification."""
        ...


@runtime_checkable
class Fulfiller(Protocol):
    """**Protocol:** pays a participant: issues a coupon, credits an account, sends money.

    ``fulfil`` is called outside any unit of work, and may be called again with the same
    ``payout_id`` (a failed payout is retried under its id, and a process may stop between
    the payment and its record): treat a payout id already paid as success without paying
    again. Return normally only once the payment is made; raise any exception to signal
    failure, and the payout's rewards stay approved for the next ``Engine.payout``.
    """

    def fulfil(self, payout: Payout) -> None:
        """Pay ``payout.amount`` (of kind ``payout.kind``) to ``payout.participant_id``."""
        ...


@runtime_checkable
class ExchangeRates(Protocol):
    """**Protocol:** the exchange rates a program converts purchases in other currencies with.

    ``rate`` is called while a purchase is handled, inside its unit of work, and may be
    called again for the same arguments (a unit retried after a conflict, a replay of the
    event log): it must answer the same for the same ``(base, quote, on)``, or replays will
    not reproduce the ledger. Return None when there is no rate for the pair; the engine
    then raises [`ExchangeRateError`][referralkit.ExchangeRateError] and writes nothing. Any
    other exception raised here propagates and the event is not recorded either.
    [`FixedRates`][referralkit.FixedRates] is a static table.
    """

    def rate(self, base: str, quote: str, on: datetime) -> Rate | None:
        """What one unit of ``base`` is worth in ``quote`` for a purchase paid at ``on``
        (timezone-aware, given in the program's time zone): the rate in force then, with
        the date it was published for."""
        ...


def events_about(
    uow: UnitOfWork, program_id: str, keys: Iterable[str]
) -> list[tuple[int, EventRecord]]:
    """The program's logged events whose [`event_key`][referralkit.event_key] is one of
    ``keys``, in log order with their log positions: through ``KeyedEventLog.about``
    (an indexed query) when the store's event log has it, otherwise by reading the whole
    log (a store written before ``about`` existed). Both give the same list."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return []
    log = uow.events
    about = getattr(log, "about", None)
    if about is not None:
        found: list[tuple[int, EventRecord]] = about(program_id, wanted)
        return found
    keys_set = set(wanted)
    out: list[tuple[int, EventRecord]] = []
    after = 0
    while True:
        records = log.since(program_id, after, 1000)
        if not records:
            return out
        after = records[-1][0]
        out.extend(
            (position, record)
            for position, record in records
            if event_key(record.event) in keys_set
        )
