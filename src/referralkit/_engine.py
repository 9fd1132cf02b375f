"""The engine: the application service that handles events in units of work."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import attrs

from referralkit._counter_names import (
    CODE_DEACTIVATED,
    CODE_USES,
    CONVERSIONS,
    EXISTING_CUSTOMER,
    MILESTONE,
    ORDER_BACKFILLED,
    ORDER_CLOSED,
    ORDER_REVERSED,
    ORDER_SLOT,
    POINTS_EARNED,
    STATUS_LEVEL,
    STATUS_MONTH,
)
from referralkit._erasure import email_pseudonym, redact_events
from referralkit._errors import (
    ConcurrencyError,
    CurrencyMismatchError,
    EventConflictError,
    ExchangeRateError,
    InvalidEventError,
    InvalidInputError,
    InvalidProgramError,
    InvalidTokenError,
    ReferralKitError,
    UnknownOrderError,
)
from referralkit._fraud_context import chain_depth, fraud_context, velocity_keys
from referralkit._ledger import (
    Balance,
    RewardView,
    approve_entry,
    grant_entry,
    reversal_entry,
    target_reversed,
)
from referralkit._ledger_ops import LedgerOperations, PayoutCheck, Veto, reward_note
from referralkit._ports import (
    CounterKey,
    ExchangeRates,
    Fulfiller,
    Notifier,
    Store,
    UnitOfWork,
    events_about,
)
from referralkit._program import Program, purchase_converts, qualifying_triggers
from referralkit._reattribution import Reattribution
from referralkit._values._checks import require_aware, require_id
from referralkit._values.canonical import parts_digest, record_digest
from referralkit._values.clock import Clock, SystemClock
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.events import Chargeback, Click, Event, Purchase, Refund, Signup
from referralkit._values.ids import derive_id, sub_id
from referralkit._values.money import Money, currency_exponent
from referralkit._values.rates import Rate, convert_purchase
from referralkit._values.records import (
    AttributionExplanation,
    ChargebackRecord,
    CodeRecord,
    DeadLetter,
    Entry,
    EntryKind,
    EventRecord,
    MilestoneReached,
    Notification,
    OrderRecord,
    Outcome,
    ParticipantRecord,
    ProgramRecord,
    Referral,
    RefundRecord,
    Reversal,
    Reward,
    RewardGrant,
    RewardState,
    Role,
    TouchRecord,
)
from referralkit._values.retry import RetrySchedule
from referralkit._values.rewards import Unit, describe
from referralkit.attribution._codes import generate_code, normalise_code
from referralkit.attribution._fraud import (
    FraudAction,
    FraudCheck,
    FraudVerdict,
    IdentityFacts,
    combine,
)
from referralkit.attribution._identity import normalise_email
from referralkit.attribution._links import LinkSigner
from referralkit.attribution._resolve import (
    AttributionRules,
    Touch,
    TouchVerdict,
    resolve_attribution,
)
from referralkit.policies._base import Counter, PolicyContext, PolicyResult, Trigger
from referralkit.policies._combinators import When, choose
from referralkit.policies._limits import (
    BUDGET_EXHAUSTED,
    REFEREE_FIRST_REWARD,
    REFEREE_PURCHASES_REWARDED,
    LimitPlan,
    apply_limits,
    referee_gate,
    spend_keys,
)
from referralkit.policies._milestones import (
    Milestones,
    Progress,
    RollingStatusLevels,
    StatusBasis,
    StatusLevels,
)
from referralkit.policies._points import (
    PointLot,
    PointsAccount,
    PointsPolicy,
    Redemption,
    plan_redemption,
)

__all__ = ["DispatchResult", "Engine"]

log = logging.getLogger("referralkit")

T = TypeVar("T")
_ZERO = Decimal(0)
_ONE = Decimal(1)
_EVENT_TYPES = (Click, Signup, Purchase, Refund, Chargeback)
_PEOPLE_EVENTS = (Signup, Purchase)
_ORDER_EVENTS = (Purchase, Refund, Chargeback)
_REVERSING_EVENTS = (Refund, Chargeback)
_VISITOR_EVENTS = (Click, Signup)

_PURCHASE_TRIGGERS = frozenset({Trigger.FIRST_PURCHASE, Trigger.EVERY_PURCHASE})
_MARK_BATCH = 100  # delivery attempts recorded per unit of work
_REFERRAL_HELD = "referral held for review"
_FRAUD_ACTOR = "fraud_check"
_IDENTITY_FIELDS = ("device", "payment_fingerprint", "payout_account", "ip")
# The counters' stored names, read once (an enum's .value is a property).
_PROGRAM_SPEND = Counter.PROGRAM_SPEND.value
_REFEREE_PURCHASES = Counter.REFEREE_PURCHASES.value
_REFERRER_REFERRALS = Counter.REFERRER_REFERRALS.value
_REFERRER_REVENUE_REFERRED = Counter.REFERRER_REVENUE_REFERRED.value
_REFERRER_SUCCESSFUL_REFERRALS = Counter.REFERRER_SUCCESSFUL_REFERRALS.value
_NO_DATA: dict[str, str] = {}  # never changed: the data of touches without any
_SIGNUP_TRIGGERS = frozenset({Trigger.SIGNUP})
_NO_CODE = Decision("attribution", Verdict.NOTED, "referral.no_code")
_TOUCH_VERDICTS: dict[TouchVerdict, tuple[Verdict, str]] = {
    TouchVerdict.WON: (Verdict.NOTED, "touch.won"),
    TouchVerdict.LOST: (Verdict.SKIPPED, "touch.lost"),
    TouchVerdict.IGNORED: (Verdict.SKIPPED, "touch.ignored"),
}


class _VersionPlan:
    """What the engine reads of a program version on every event, worked out once."""

    __slots__ = (
        "caps",
        "limits",
        "needs",
        "not_trigger",
        "pays_signup",
        "referee_limits",
        "status_levels",
        "when",
    )

    def __init__(self, version: Program) -> None:
        caps = version.caps
        # (counter, its stored name, whose it is: 0 the program, 1 the referee, 2 the
        # referrer), in the order ``version.needs()`` iterates.
        needs: list[tuple[Counter, str, int]] = []
        for counter in version.needs():
            if counter is Counter.PROGRAM_SPEND:
                whose = 0
            elif (
                counter is Counter.REFEREE_PURCHASES or counter is Counter.REFEREE_EXISTING_CUSTOMER
            ):
                whose = 1
            else:
                whose = 2
            needs.append((counter, counter.value, whose))
        self.needs: tuple[tuple[Counter, str, int], ...] = tuple(needs)
        self.caps = bool(caps)
        self.referee_limits = bool(caps.max_referee_purchases or caps.referee_window)
        self.limits = self.caps or version.budget is not None
        self.when = version.precedence != "all" and any(
            isinstance(policy, When) for policy in version.policies
        )
        # The "policy.not_trigger" decisions made so far, by (policy name, trigger, event
        # kind): the same three values always make the same decision.
        self.not_trigger: dict[tuple[str, Trigger, str], Decision] = {}
        self.pays_signup = any(p.trigger is Trigger.SIGNUP for p in version.policies)
        self.status_levels: StatusLevels | None = next(
            (p for p in version.policies if isinstance(p, StatusLevels)), None
        )


def _text(value: str) -> str:
    """A decision parameter as ``Decision.of`` converts it (an exact ``str``)."""
    return value if type(value) is str else str(value)


_ROLE_VALUE = {role: role.value for role in Role}


def _touch_order(record: TouchRecord) -> tuple[datetime, str]:
    return record.at, record.touch_id


def _touch_decision(record: TouchRecord, verdict: TouchVerdict, reason: str) -> Decision:
    """One line of an attribution explanation: a touch, what became of it, and why."""
    outcome, code = _TOUCH_VERDICTS[verdict]
    params: tuple[tuple[str, str], ...] = (
        ("kind", "code" if record.kind == "code" else "click"),
        ("referrer", str(record.referrer_id)),
        ("at", record.at.isoformat()),
        ("channel", record.channel),
        ("reason", reason),
    )
    if record.campaign:
        params += (("campaign", record.campaign),)
    return Decision("attribution", outcome, code, params)


@attrs.frozen
class DispatchResult:
    """What one [`Engine.dispatch`][referralkit.Engine.dispatch] call delivered."""

    delivered: int
    failed: int
    dead: int = 0
    """Of the failed ones, how many ran out of attempts and became dead letters."""


_PREFETCH_KEYWORDS: dict[type, frozenset[str] | None] = {}


# The largest count a SQL store can bind (a signed 64-bit integer): limits, positions and
# batch sizes that go into a query stay at or below it.
_MAX_COUNT = 2**63 - 1


def _count(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(field, value, f"must be an int >= {minimum}")
    if value > _MAX_COUNT:
        raise InvalidInputError(field, value, f"must be at most {_MAX_COUNT}")
    return value


def _events(value: object) -> Iterable[Event]:
    """The events of a batch call, refused before any is read if they are not iterable."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInputError("events", value, "must be an iterable of events")
    return value


def _prefetch_keywords(uow_type: type, prefetch: Callable[..., object]) -> frozenset[str] | None:
    """The keywords a unit of work's ``prefetch`` takes (None: any, through ``**kwargs``),
    read once per unit-of-work class."""
    if uow_type not in _PREFETCH_KEYWORDS:
        parameters = inspect.signature(prefetch).parameters.values()
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            _PREFETCH_KEYWORDS[uow_type] = None
        else:
            _PREFETCH_KEYWORDS[uow_type] = frozenset(
                p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY
            )
    return _PREFETCH_KEYWORDS[uow_type]


class Engine(Reattribution, LedgerOperations):
    """Runs one referral program over a store.

    The engine takes inbound events ([`handle`][referralkit.Engine.handle]), approves rewards
    whose hold has ended ([`settle`][referralkit.Engine.settle]) and delivers the outbox
    ([`dispatch`][referralkit.Engine.dispatch]). Every call is one unit of work: all of its
    effects, notifications included, or none.

    Args:
        program: The program's current version. It is published on construction
            (recorded in the store; republishing a version with other content is refused).
        store: Where records are kept.
        notifier: Delivers notifications on ``dispatch``; without one they stay queued.
        clock: The time source for operations without an event time (``settle``,
            ``issue_code``, ``dispatch``); the system clock by default.
        history: Earlier versions of the program that referrals in the store may still
            reference; each is published too.
        auto_dispatch: Deliver the outbox after every handled event.
        max_retries: How often a unit of work that hit a ``ConcurrencyError`` is retried.
        code_factory: Makes new referral codes for ``issue_code`` (8 random Crockford
            characters by default); inject a seeded one for reproducible demos and tests.
        fulfiller: Pays rewards out on [`payout`][referralkit.Engine.payout].
        veto: Asked before ``settle`` approves a reward; a returned reason rejects it.
        payout_check: Asked before a payout with (participant id, amount); a returned
            reason (a missing tax form, ...) blocks it.
        retry: When ``dispatch`` retries a notification the notifier failed to send, and
            after how many attempts it becomes a dead letter; ``RetrySchedule()`` (8
            attempts, 30 s doubling up to an hour) by default.
        link_signer: Verifies the signed tokens of referral links (``Click.link_token``,
            ``Signup.link_token``) and signs them (``link_token``). A tampered token is a
            refused touch in the outcome, not an error.
        fraud_checks: Checks run on every referral about to be made, in order (the shipped
            ones are in ``referralkit.attribution``: ``SameIdentityCheck``,
            ``VelocityCheck``, ``CircularCheck``, ``DisposableEmailCheck``). The strictest
            verdict wins: block refuses the referral, hold makes it with status ``"held"``,
            flag makes it and notes why.
        future_tolerance: When set, a click dated more than this after the clock's now is
            refused (``InvalidEventError``); by default clicks are not compared with the clock
            (replays and backfills).
        exchange_rates: Converts purchases in another currency than the program's (see
            [`ExchangeRates`][referralkit.ExchangeRates]); without it such a purchase is a
            ``CurrencyMismatchError``.

    Raises:
        InvalidProgramError: a version was published before with other content, or the
            versions belong to different programs.
    """

    def __init__(
        self,
        program: Program,
        store: Store,
        *,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        history: Iterable[Program] = (),
        auto_dispatch: bool = False,
        code_factory: Callable[[], str] | None = None,
        max_retries: int = 5,
        fulfiller: Fulfiller | None = None,
        veto: Veto | None = None,
        payout_check: PayoutCheck | None = None,
        retry: RetrySchedule | None = None,
        link_signer: LinkSigner | None = None,
        fraud_checks: Iterable[FraudCheck] = (),
        future_tolerance: timedelta | None = None,
        exchange_rates: ExchangeRates | None = None,
    ) -> None:
        if not isinstance(program, Program):
            raise InvalidProgramError("program", program, "must be a Program")
        if retry is not None and not isinstance(retry, RetrySchedule):
            raise InvalidInputError("retry", retry, "must be a RetrySchedule")
        self._retry = RetrySchedule() if retry is None else retry
        if not callable(getattr(store, "unit_of_work", None)):
            raise InvalidInputError("store", store, "must implement Store (a unit_of_work method)")
        self._store = store
        self._notifier = notifier
        if clock is not None and not callable(getattr(clock, "now", None)):
            raise InvalidInputError("clock", clock, "must implement Clock (a now method)")
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._auto_dispatch = auto_dispatch
        self._max_retries = max_retries
        self._code_factory: Callable[[], str] = code_factory or generate_code
        self._fulfiller = fulfiller
        self._veto = veto
        self._payout_check = payout_check
        if link_signer is not None and not isinstance(link_signer, LinkSigner):
            raise InvalidInputError("link_signer", link_signer, "must be a LinkSigner")
        self._link_signer = link_signer
        if not isinstance(fraud_checks, Iterable):
            raise InvalidInputError("fraud_checks", fraud_checks, "must be an iterable of checks")
        self._fraud_checks: tuple[FraudCheck, ...] = tuple(fraud_checks)
        for i, check in enumerate(self._fraud_checks):
            if not callable(getattr(check, "check", None)):
                raise InvalidInputError(f"fraud_checks[{i}]", check, "must implement FraudCheck")
        if future_tolerance is not None and (
            not isinstance(future_tolerance, timedelta) or future_tolerance < timedelta(0)
        ):
            raise InvalidInputError(
                "future_tolerance", future_tolerance, "must be a timedelta >= 0, or None"
            )
        self._future_tolerance = future_tolerance
        if exchange_rates is not None and not callable(getattr(exchange_rates, "rate", None)):
            raise InvalidInputError(
                "exchange_rates", exchange_rates, "must implement ExchangeRates (a rate method)"
            )
        self._exchange_rates = exchange_rates
        self._program_id = program.id
        self._versions: dict[int, Program] = {}
        self._by_effective: list[Program] = []
        self._plans: dict[int, _VersionPlan] = {}
        self._latest: Program = program
        self._single: Program | None = None  # the only version, when there is one
        self._slots_counted = False  # a version caps the referee's rewarded purchases
        self._rolling: frozenset[str] = frozenset()  # bases counted per month
        if not isinstance(history, Iterable):
            raise InvalidInputError("history", history, "must be an iterable of Programs")
        for version in (*history, program):
            self.publish(version)

    # -- programs ------------------------------------------------------------------------
    @property
    def program(self) -> Program:
        """The latest published version."""
        return self._latest

    @property
    def store(self) -> Store:
        """The store the engine writes to."""
        return self._store

    def publish(self, program: Program) -> ProgramRecord:
        """Record a program version in the store and let the engine evaluate it.

        New referrals are attributed under the version in force at their sign-up: the
        highest version whose ``effective_at`` is at or before it. Existing referrals keep
        the version they were attributed under (terms lock).

        Raises:
            InvalidProgramError: another program id, or this version was published with
                other content.
        """
        if not isinstance(program, Program):
            raise InvalidProgramError("program", program, "must be a Program")
        if program.id != self._program_id:
            raise InvalidProgramError(
                "program.id", program.id, f"this engine runs program {self._program_id!r}"
            )
        if self._versions and program.currency != self.program.currency:
            raise InvalidProgramError(
                "program.currency",
                program.currency,
                f"must stay {self.program.currency} across versions of {program.id!r}",
            )
        known = self._versions.get(program.version)
        if known is not None and known.digest != program.digest:
            raise InvalidProgramError(
                "program.version", program.version, "was published before with other content"
            )

        def work(uow: UnitOfWork) -> ProgramRecord:
            record = uow.programs.get(program.id, program.version)
            if record is None:
                record = ProgramRecord(
                    program_id=program.id,
                    version=program.version,
                    digest=program.digest,
                    effective_at=program.effective_at,
                    published_at=self._clock.now(),
                    definition=program.definition(),
                )
                uow.programs.add(record)
            elif record.digest != program.digest:
                raise InvalidProgramError(
                    "program.version",
                    program.version,
                    "was published before with other content; publish a new version",
                )
            return record

        # Workers starting together may publish at once: the loser retries and finds it.
        record = self._transact(work)
        replaced = self._versions.get(program.version)
        if replaced is not None:
            del self._plans[id(replaced)]
        self._versions[program.version] = program
        self._plans[id(program)] = _VersionPlan(program)
        self._latest = self._versions[max(self._versions)]
        self._by_effective = sorted(
            self._versions.values(), key=lambda p: (p.effective_at, p.version)
        )
        self._single = self._by_effective[0] if len(self._by_effective) == 1 else None
        self._slots_counted = any(v.caps.max_referee_purchases for v in self._by_effective)
        self._rolling = frozenset(
            self._rolling_basis(policy.basis, policy.account)
            for version in self._by_effective
            for policy in version.policies
            if isinstance(policy, RollingStatusLevels)
        )
        return record

    def _in_force(self, at: datetime) -> Program:
        if self._single is not None:
            return self._single
        chosen = self._by_effective[0]
        for version in self._by_effective:
            if version.effective_at <= at:
                chosen = version
        return chosen

    def _plan(self, version: Program) -> _VersionPlan:
        """The worked-out terms of ``version`` (a published one, or any other)."""
        # Keyed by id: the engine keeps every published version alive, so no other object
        # can have the id of one.
        plan = self._plans.get(id(version))
        return _VersionPlan(version) if plan is None else plan

    def _version(self, version: int, referral_id: str) -> Program:
        try:
            return self._versions[version]
        except KeyError:
            raise InvalidProgramError(
                "program.version",
                version,
                f"referral {referral_id} was attributed under this version; "
                "pass it to Engine(history=...)",
            ) from None

    # -- codes ---------------------------------------------------------------------------
    def issue_code(
        self,
        participant_id: str,
        *,
        max_uses: int | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """The participant's referral code, created on first call (get-or-create).

        Codes are 8 random Crockford base32 characters (40 bits), stored normalised.

        Args:
            participant_id: The code's owner.
            max_uses: How many referrals the code may make (``None``: no limit); a
                sign-up with an exhausted code is refused (``referral.code_exhausted``).
            expires_at: From this instant on the code makes no referral
                (``referral.code_expired``); timezone-aware.

        The limits apply when the code is created; an existing code keeps its own.

        Raises:
            InvalidInputError: ``max_uses`` below 1, or a bad ``participant_id``.
            NaiveDatetimeError: ``expires_at`` without a time zone.
        """
        require_id("participant_id", participant_id)
        if max_uses is not None and (
            isinstance(max_uses, bool) or not isinstance(max_uses, int) or max_uses < 1
        ):
            raise InvalidInputError("max_uses", max_uses, "must be an int >= 1, or None")
        if expires_at is not None:
            require_aware("expires_at", expires_at)
        pid = self._program_id
        for _ in range(8):
            try:
                with self._store.unit_of_work() as uow:
                    existing = uow.participants.code_of(pid, participant_id)
                    if existing is not None:
                        return existing.code
                    code = normalise_code(self._code_factory())
                    if uow.participants.code_owner(pid, code) is not None:
                        continue
                    uow.participants.add_code(
                        CodeRecord(
                            pid, code, participant_id, self._clock.now(), max_uses, expires_at
                        )
                    )
                    uow.commit()
                    return code
            except ConcurrencyError:
                continue
        raise ConcurrencyError(f"could not issue a code for {participant_id!r}")

    def code_of(self, participant_id: str) -> str | None:
        """The participant's code, or None if none was issued."""
        require_id("participant_id", participant_id)
        with self._store.unit_of_work() as uow:
            record = uow.participants.code_of(self._program_id, participant_id)
        return None if record is None else record.code

    def deactivate_code(self, code: str) -> bool:
        """Stop a code from making referrals (``referral.code_deactivated``); touches
        recorded with it before no longer count either. Existing referrals stay.

        Returns:
            True if the code was active, False if it was deactivated already.

        Raises:
            InvalidInputError: a malformed code, or one no participant owns.
        """
        normalised = normalise_code(code, "code")
        pid = self._program_id

        def work(uow: UnitOfWork) -> bool:
            if uow.participants.code_owner(pid, normalised) is None:
                raise InvalidInputError("code", code, "no participant owns this code")
            key = (pid, CODE_DEACTIVATED, normalised)
            if uow.counters.get([key])[key] > 0:
                return False
            uow.counters.add(key, _ONE)
            return True

        return self._transact(work)

    def link_token(self, participant_id: str) -> str:
        """A signed token for the participant's referral link (their code, signed with the
        ``link_signer``'s current key); the code is issued first if needed.

        Raises:
            InvalidInputError: the engine has no ``link_signer``.
        """
        if self._link_signer is None:
            raise InvalidInputError("link_signer", None, "Engine(link_signer=...) is needed")
        return self._link_signer.sign(self.issue_code(participant_id))

    # -- events --------------------------------------------------------------------------
    def handle(self, event: Event) -> Outcome:
        """Handle one event in one unit of work and return what it did and why.

        A repeated event id returns the stored outcome with ``duplicate=True`` and writes
        nothing. A referral that cannot be made is a decision in the outcome, not an error.

        Raises:
            InvalidInputError: not an event, or a currency other than the program's.
            EventConflictError: the event id, or the order / refund / chargeback id, was
                recorded before with other fields.
            UnknownOrderError: a refund or chargeback of an order not recorded yet (retry).
            InvalidEventError: a refund above what remains refundable on the order.
        """
        if not isinstance(event, _EVENT_TYPES):
            raise InvalidInputError(
                "event", event, "must be a Click, Signup, Purchase, Refund or Chargeback"
            )
        event_digest = record_digest(event)
        outcome = self._transact(lambda uow: self._handle_in(uow, event, event_digest))
        if self._auto_dispatch and not outcome.duplicate:
            self.dispatch()
        return outcome

    def handle_many(
        self, events: Iterable[Event], *, batch_size: int = 100
    ) -> list[Outcome | ReferralKitError]:
        """Handle events in order, committing ``batch_size`` of them per unit of work.

        A batch is one transaction, which is much faster on SQL stores. When any event of
        a batch fails, the batch is rolled back and handled again event by event, so the
        other events are not lost and the failing one is reported in its place. Events
        that repeat within a batch are duplicates like any other. For a stream too long to
        keep every result in a list, use ``handle_stream``.

        Args:
            events: The events, in delivery order.
            batch_size: Events per unit of work (1 commits each event on its own).

        Returns:
            One entry per event, in order: its ``Outcome``, or the ``ReferralKitError`` it
            raised (nothing of that event was written).

        Raises:
            InvalidInputError: ``batch_size`` is not an int >= 1.
        """
        results: list[Outcome | ReferralKitError] = []
        for done in self._batches(_events(events), _count("batch_size", batch_size, 1)):
            results.extend(done)
        if self._auto_dispatch:
            self.dispatch()
        return results

    def handle_stream(
        self, events: Iterable[Event], *, batch_size: int = 100
    ) -> Generator[Outcome | ReferralKitError, None, None]:
        """``handle_many`` for a stream too long to keep every outcome: handle the events
        batch by batch as the results are iterated, holding one batch at a time.

        Each batch is committed before its results are yielded, so every result seen is
        durable. ``events`` is read lazily, ``batch_size`` events ahead of the results (an
        endless queue works). Stop iterating and the events not read yet are not handled;
        those of a batch read but not yet yielded are committed with it. With
        ``auto_dispatch``, notifications are dispatched after each batch.

        Args:
            events: The events, in delivery order.
            batch_size: Events per unit of work (1 commits each event on its own).

        Yields:
            One entry per event, in order: its ``Outcome``, or the ``ReferralKitError`` it
            raised (nothing of that event was written).

        Raises:
            InvalidInputError: ``batch_size`` is not an int >= 1 (when called, before any
                event is read).
        """
        return self._stream(_events(events), _count("batch_size", batch_size, 1))

    def _stream(
        self, events: Iterable[Event], batch_size: int
    ) -> Generator[Outcome | ReferralKitError, None, None]:
        for done in self._batches(events, batch_size):
            if self._auto_dispatch:
                self.dispatch()
            yield from done

    def _batches(
        self, events: Iterable[Event], batch_size: int
    ) -> Iterator[list[Outcome | ReferralKitError]]:
        """Handle ``events`` ``batch_size`` at a time, yielding each batch's results."""
        batch: list[Event] = []
        for event in events:
            batch.append(event)
            if len(batch) >= batch_size:
                yield self._handle_batch(batch)
                batch = []
        if batch:
            yield self._handle_batch(batch)

    def _handle_batch(self, batch: Sequence[Event]) -> list[Outcome | ReferralKitError]:
        if len(batch) > 1:
            try:
                with self._store.unit_of_work() as uow:
                    self._prefetch(uow, batch)
                    handle_in = self._handle_in
                    outcomes: list[Outcome | ReferralKitError] = []
                    append = outcomes.append
                    for event in batch:
                        if isinstance(event, _EVENT_TYPES):
                            append(handle_in(uow, event, record_digest(event)))
                        else:  # a caller without type checking passed something else
                            append(InvalidInputError("event", event, "must be an event"))  # type: ignore[unreachable]
                    uow.commit()
                return outcomes
            except ReferralKitError:
                log.debug("a batch of %d events failed; handling them one by one", len(batch))
        results: list[Outcome | ReferralKitError] = []
        for event in batch:
            if not isinstance(event, _EVENT_TYPES):
                results.append(InvalidInputError("event", event, "must be an event"))  # type: ignore[unreachable]
                continue
            item = (event, record_digest(event))
            try:
                results.append(self._transact(functools.partial(self._handle_item, item)))
            except ReferralKitError as exc:
                results.append(exc)
        return results

    def quote(self, event: Event) -> Outcome:
        """What handling ``event`` would do now, without writing anything.

        Answers "what would this purchase earn?" at checkout. Raises what ``handle`` would.
        """
        if not isinstance(event, _EVENT_TYPES):
            raise InvalidInputError("event", event, "must be an event")
        event_digest = record_digest(event)
        with self._store.unit_of_work() as uow:
            return self._handle_in(uow, event, event_digest, log_event=False)

    def event_log(self, after: int = 0, limit: int = 1000) -> list[tuple[int, Event]]:
        """Accepted events in the order they were committed, each with its log position.

        Page through the log with ``after`` set to the last position seen. Replaying these
        events into an empty store with the same programs and codes gives the same ledger.

        Raises:
            InvalidInputError: ``after`` or ``limit`` is not an int from 0 to 2**63 - 1.
        """
        _count("after", after, 0)
        _count("limit", limit, 0)
        with self._store.unit_of_work() as uow:
            page = uow.events.since(self._program_id, after, limit)
        return [(position, record.event) for position, record in page]

    def outcome_of(self, event_id: str) -> Outcome | None:
        """The stored outcome of an event, to answer "why no reward?" later."""
        require_id("event_id", event_id)
        with self._store.unit_of_work() as uow:
            record = uow.events.get(self._program_id, event_id)
        return None if record is None else record.outcome

    def _prefetch(self, uow: UnitOfWork, batch: Sequence[Event]) -> None:
        """Let a store that can load a batch's rows in a few queries do so (optional)."""
        prefetch = getattr(uow, "prefetch", None)
        if prefetch is None:
            return
        event_ids: list[str] = []
        people: list[str] = []
        orders: list[str] = []
        codes: list[str] = []
        visitors: list[str] = []
        refunds: list[str] = []
        refunded: list[str] = []
        for event in batch:
            if not isinstance(event, _EVENT_TYPES):
                continue  # type: ignore[unreachable]  # reported in its place by the caller
            event_ids.append(event.event_id)
            if isinstance(event, _PEOPLE_EVENTS):
                people.append(event.participant_id)
            if isinstance(event, _ORDER_EVENTS):
                orders.append(event.order_id)
            if isinstance(event, _REVERSING_EVENTS):
                refunded.append(event.order_id)
                if isinstance(event, Refund):
                    refunds.append(event.refund_id)
            elif event.code is not None:
                with contextlib.suppress(InvalidInputError):  # a code nobody can own
                    codes.append(normalise_code(event.code))
            if isinstance(event, _VISITOR_EVENTS) and event.visitor_id is not None:
                visitors.append(event.visitor_id)
        pid = self._program_id
        referrals = [derive_id("ref", pid, who) for who in people]
        wanted: dict[str, list[str]] = {
            "event_ids": event_ids,
            "participant_ids": people,
            "order_ids": orders,
            "codes": codes,
            "counter_subjects": [*people, *referrals, *refunded, *codes],
            "visitor_ids": visitors,
            "refund_ids": refunds,
            "refunded_orders": refunded,
        }
        accepted = _prefetch_keywords(type(uow), prefetch)
        if accepted is not None:  # a store written for fewer keywords gets those it takes
            wanted = {k: v for k, v in wanted.items() if k in accepted}
        prefetch(pid, **wanted)

    def _handle_item(self, item: tuple[Event, str], uow: UnitOfWork) -> Outcome:
        return self._handle_in(uow, *item)

    def _transact(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run ``work`` in a unit of work and commit; retry on ``ConcurrencyError``."""
        attempt = 0
        while True:
            try:
                with self._store.unit_of_work() as uow:
                    result = work(uow)
                    uow.commit()
                    return result
            except ConcurrencyError:
                attempt += 1
                if attempt > self._max_retries:
                    raise
                log.debug("retrying a unit of work after a conflict (attempt %d)", attempt)

    def _handle_in(
        self, uow: UnitOfWork, event: Event, event_digest: str, *, log_event: bool = True
    ) -> Outcome:
        pid = self._program_id
        seen = uow.events.get(pid, event.event_id)
        if seen is not None:
            if seen.digest != event_digest:
                raise EventConflictError(
                    "event_id", event.event_id, "was recorded before with a different payload"
                )
            return attrs.evolve(seen.outcome, duplicate=True)
        if isinstance(event, Signup):
            outcome = self._signup(uow, event)
        elif isinstance(event, Purchase):
            outcome = self._purchase(uow, event)
        elif isinstance(event, Refund):
            outcome = self._refund(uow, event)
        elif isinstance(event, Chargeback):
            outcome = self._chargeback(uow, event)
        else:
            outcome = self._click(uow, event)
        if log_event:
            uow.events.add(EventRecord(pid, event.event_id, event_digest, event, outcome))
        return outcome

    # -- sign-ups ------------------------------------------------------------------------
    def _signup(self, uow: UnitOfWork, ev: Signup) -> Outcome:
        pid = self._program_id
        who = ev.participant_id
        existing = uow.participants.get(pid, who)
        if existing is not None and existing.signed_up_at is not None:
            return self._repeated_signup(uow, ev)
        uow.participants.put(
            ParticipantRecord(  # first_seen_at, signed_up_at, country
                pid, who, existing.first_seen_at if existing else ev.at, ev.at, ev.country
            )
        )
        email = normalise_email(ev.email) if ev.email is not None else None
        late: Sequence[Decision] = ()
        if email is not None:
            uow.participants.set_email(pid, who, email)
            late = self._hold_late_self_referrals(uow, who, email, ev.at)
        version = self._in_force(ev.at)
        rules = version.attribution
        identity = {name: getattr(ev, name) for name in _IDENTITY_FIELDS if getattr(ev, name)}
        if ev.visitor_id is not None or identity:
            # The visitor and the keyed hashes are remembered for later decisions.
            uow.touches.add(
                TouchRecord(
                    pid,
                    derive_id("tch", pid, ev.event_id, "signup"),
                    "signup",
                    ev.at,
                    ev.event_id,
                    visitor_id=ev.visitor_id,
                    participant_id=who,
                    channel=ev.channel,
                    data=identity,
                )
            )
        if ev.existing_customer:
            uow.counters.add((pid, EXISTING_CUSTOMER, who), _ONE)
        fresh, refused = self._event_touches(uow, ev, who, ev.visitor_id)
        if rules.bind_at == "first_purchase":
            for record in fresh:
                uow.touches.add(record)
            if ev.visitor_id is not None:
                uow.touches.attach(pid, ev.visitor_id, who)
            d = Decision.of("attribution", Verdict.NOTED, "attribution.deferred", referee=who)
            return Outcome(ev.event_id, ev.kind, decisions=(*late, *refused, d))
        # Bound now: the event's own touches live on in the event log and the explanation.
        stored = self._stored_touches(uow, who, ev.visitor_id, mine=existing is not None)
        if ev.visitor_id is not None:
            uow.touches.attach(pid, ev.visitor_id, who)
        was_customer = existing is not None or ev.existing_customer
        referral, decisions, held = self._attribute(
            uow,
            version,
            rules,
            ev,
            who,
            [*stored, *fresh] if stored else fresh,
            refused,
            was_customer,
            email,
        )
        if referral is None:
            if not decisions:
                decisions = [_NO_CODE]
            return Outcome(
                ev.event_id,
                ev.kind,
                False,
                None,
                (),
                (),
                (),
                (*late, *decisions) if late else tuple(decisions),
            )
        if existing is not None and not ev.existing_customer:
            # Seen buying before this sign-up, and referrable all the same: the counter
            # tells ``referee.new_customer`` they were a customer before the referral.
            uow.counters.add((pid, EXISTING_CUSTOMER, who), _ONE)
        snapshot = self._snapshot(uow, version, referral)
        self._add_referral(uow, referral, held)
        grants, reward_ids, policy_decisions = self._reward(
            uow,
            version,
            referral,
            ev,
            _SIGNUP_TRIGGERS,
            snapshot,
            None,
            None,
            ev.country,
        )
        if late:
            decisions[:0] = late
        decisions.extend(policy_decisions)
        return Outcome(
            ev.event_id,
            ev.kind,
            False,
            referral.referral_id,
            grants,
            reward_ids,
            (),
            tuple(decisions),
        )

    def _repeated_signup(self, uow: UnitOfWork, ev: Signup) -> Outcome:
        """A second sign-up of one participant: nothing new is written; a code or link it
        carries is noted, and never takes the referral."""
        who = ev.participant_id
        referral = uow.referrals.by_referee(self._program_id, who)
        if (ev.code is not None or ev.link_token is not None) and referral is not None:
            d = Decision.of(
                "attribution",
                Verdict.REFUSED,
                "referral.already_referred",
                referee=who,
                referrer=referral.referrer_id,
            )
        else:
            d = Decision.of("engine", Verdict.NOTED, "signup.repeated", participant=who)
        return Outcome(ev.event_id, ev.kind, decisions=(d,))

    def _click(self, uow: UnitOfWork, ev: Click) -> Outcome:
        """A click on a referral link: kept as a touch of its visitor (with no visitor id,
        or a code nobody owns, it is only logged)."""
        if (
            self._future_tolerance is not None
            and ev.at > self._clock.now() + self._future_tolerance
        ):
            raise InvalidEventError("click.at", ev.at, "is in the future")
        owner = None
        visitor = ev.visitor_id
        if visitor is not None and (ev.code is not None or ev.link_token is not None):
            known = uow.touches.of_visitor(self._program_id, visitor)
            if known:
                owners = {t.participant_id for t in known if t.participant_id is not None}
                if len(owners) == 1:  # the visitor signed up already
                    owner = owners.pop()
        fresh, refused = self._event_touches(uow, ev, owner, visitor)
        if visitor is not None:
            for record in fresh:
                uow.touches.add(record)
        return Outcome(
            ev.event_id, ev.kind, False, None, (), (), (), tuple(refused) if refused else ()
        )

    def _event_touches(
        self, uow: UnitOfWork, ev: Click | Signup | Purchase, who: str | None, visitor: str | None
    ) -> tuple[list[TouchRecord], list[Decision]]:
        """The touches an event carries (a code, a link token), and the refusals of those
        that name no referrer (unknown code, refused token)."""
        pid = self._program_id
        records: list[TouchRecord] = []
        refused: list[Decision] = []
        sources: list[tuple[str, str, str]] = []  # (kind, code as given, channel)
        data: dict[str, str]
        is_click = isinstance(ev, Click)
        if is_click:
            data = {
                name: value
                for name in ("utm_source", "utm_medium", "utm_content", "utm_term")
                if (value := getattr(ev, name)) is not None
            }
            campaign = ev.campaign  # type: ignore[union-attr]
            if ev.code is not None:
                sources.append(("click", ev.code, ev.channel))  # type: ignore[union-attr]
        else:
            data, campaign = _NO_DATA, None
            if ev.code is not None:
                sources.append(("code", ev.code, ev.channel if isinstance(ev, Signup) else "code"))
        token = getattr(ev, "link_token", None)
        if token is not None:
            if self._link_signer is None:
                refused.append(
                    Decision.of(
                        "attribution",
                        Verdict.REFUSED,
                        "referral.invalid_token",
                        problem="this engine has no link_signer to verify it",
                    )
                )
            else:
                try:
                    payload = self._link_signer.verify(token)
                except InvalidTokenError as exc:
                    refused.append(
                        Decision.of(
                            "attribution",
                            Verdict.REFUSED,
                            "referral.invalid_token",
                            problem=exc.problem,
                        )
                    )
                else:
                    channel = ev.channel if is_click else "link"  # type: ignore[union-attr]
                    sources.append(("click", payload, channel))
        if not sources:
            return records, refused
        code_owner = uow.participants.code_owner
        for n, (kind, given, channel) in enumerate(sources):
            try:
                code = normalise_code(given, f"{ev.kind}.code")
            except InvalidInputError:
                code = ""
            owner = code_owner(pid, code) if code else None
            if owner is None:
                if not is_click:
                    refused.append(
                        Decision.of(
                            "attribution",
                            Verdict.REFUSED,
                            "referral.unknown_code",
                            code=code or given,
                        )
                    )
                continue
            records.append(
                TouchRecord(  # positional: program_id ... visitor_id, participant_id, ...
                    pid,
                    derive_id("tch", pid, ev.event_id, kind, "0" if n == 0 else str(n)),
                    kind,
                    ev.at,
                    ev.event_id,
                    visitor,
                    who,
                    owner.participant_id,
                    code,
                    channel,
                    campaign,
                    data,
                )
            )
        return records, refused

    def _stored_touches(
        self, uow: UnitOfWork, who: str, visitor: str | None, *, mine: bool
    ) -> list[TouchRecord]:
        """The participant's recorded clicks and codes (``mine``: they may have some of
        their own already), and their visitor's that no one else claimed."""
        if not mine and visitor is None:
            return []
        pid = self._program_id
        found: dict[str, TouchRecord] = {}
        if mine:
            for record in uow.touches.of_participant(pid, who):
                found[record.touch_id] = record
        if visitor is not None:
            for record in uow.touches.of_visitor(pid, visitor):
                if record.participant_id in (None, who):
                    found.setdefault(record.touch_id, record)
        return [r for r in found.values() if r.referrer_id is not None and r.code is not None]

    def _usable(
        self, uow: UnitOfWork, record: TouchRecord, who: str, at: datetime
    ) -> Decision | None:
        """Why a touch cannot count (self-referral, code limits), or None."""
        pid = self._program_id
        code = record.code
        assert code is not None
        assert record.referrer_id is not None
        if record.referrer_id == who:
            via = "code" if record.kind == "code" else "link"
            return Decision.of(
                "attribution", Verdict.REFUSED, "referral.self_referral", referee=who, via=via
            )
        owner = uow.participants.code_owner(pid, code)
        deactivated = (pid, CODE_DEACTIVATED, code)
        uses = (pid, CODE_USES, code)
        counters = uow.counters.get([deactivated, uses])
        if owner is None or counters[deactivated] > 0:
            return Decision.of(
                "attribution", Verdict.REFUSED, "referral.code_deactivated", code=code
            )
        if owner.expires_at is not None and at >= owner.expires_at:
            return Decision.of(
                "attribution",
                Verdict.REFUSED,
                "referral.code_expired",
                code=code,
                expires_at=owner.expires_at.isoformat(),
            )
        if owner.max_uses is not None and counters[uses] >= owner.max_uses:
            return Decision.of(
                "attribution",
                Verdict.REFUSED,
                "referral.code_exhausted",
                code=code,
                max_uses=owner.max_uses,
            )
        return None

    def _attribute(
        self,
        uow: UnitOfWork,
        version: Program,
        rules: AttributionRules,
        ev: Signup | Purchase,
        who: str,
        records: Sequence[TouchRecord],
        refused: Sequence[Decision],
        was_customer: bool,
        email: str | None,
    ) -> tuple[Referral | None, list[Decision], FraudVerdict | None]:
        """Choose the referrer among the touches and check the referral may be made.

        Returns the referral to add (or None), the decisions for the outcome, and the
        fraud verdict when it holds the referral.
        """
        pid = self._program_id
        rejected: list[Decision] = list(refused)
        usable: list[TouchRecord] = []
        ordered: Sequence[TouchRecord]
        if len(records) > 1:
            seen: set[str] = set()
            ordered = []
            for record in sorted(records, key=_touch_order):
                if record.touch_id not in seen:
                    seen.add(record.touch_id)
                    ordered.append(record)
        else:
            ordered = records
        for record in ordered:
            problem = self._usable(uow, record, who, ev.at)
            if problem is not None:
                rejected.append(problem)
            else:
                usable.append(record)
        explanation: list[Decision] = []
        others: list[Decision] = []  # what the outcome shows besides the result
        winner: TouchRecord | None = None
        if len(usable) == 1 and usable[0].at == ev.at:
            # The common case, a code typed now and nothing else: it wins under every model.
            winner = usable[0]
            explanation.append(
                _touch_decision(winner, TouchVerdict.WON, f"attribution.{rules.model}")
            )
        elif usable:
            touches: list[Touch] = []
            by_touch: dict[int, TouchRecord] = {}
            for record in usable:
                assert record.referrer_id is not None
                touch = Touch(
                    kind="code" if record.kind == "code" else "click",
                    referrer_id=record.referrer_id,
                    at=record.at,
                    channel=record.channel,
                    campaign=record.campaign,
                    visitor_id=record.visitor_id,
                    event_id=record.event_id,
                )
                touches.append(touch)
                by_touch[id(touch)] = record
            decision = resolve_attribution(touches, ev.at, rules)
            for touch, verdict, reason in decision.explanation:
                d = _touch_decision(by_touch[id(touch)], verdict, reason)
                explanation.append(d)
                if verdict is not TouchVerdict.WON:
                    others.append(d)
            if decision.winner is not None:
                winner = by_touch[id(decision.winner)]
        if winner is None:
            if not rejected and usable:
                others.append(
                    Decision.of("attribution", Verdict.REFUSED, "referral.no_touch_in_window")
                )
            return None, [*rejected, *others], None
        referrer = winner.referrer_id
        assert referrer is not None
        assert winner.code is not None
        shown = [*rejected, *others]
        referrer_email = uow.participants.email_of(pid, referrer) if email is not None else None
        if email is not None and email == referrer_email:
            refusal = Decision.of(
                "attribution", Verdict.REFUSED, "referral.self_referral", referee=who, via="email"
            )
            return None, [refusal, *shown], None
        if was_customer and not rules.allow_existing_customers:
            refusal = Decision.of(
                "attribution", Verdict.REFUSED, "referral.existing_customer", referee=who
            )
            return None, [refusal, *shown], None
        fraud_verdict = (
            self._fraud_verdict(uow, ev, who, referrer, winner, email, referrer_email)
            if self._fraud_checks
            else None
        )
        fraud: Sequence[Decision] = ()
        if fraud_verdict is not None and fraud_verdict.action is not FraudAction.ALLOW:
            reasons = ",".join(fraud_verdict.reasons)
            if fraud_verdict.action is FraudAction.BLOCK:
                refusal = Decision.of(
                    "fraud", Verdict.REFUSED, "referral.blocked", referrer=referrer, reasons=reasons
                )
                return None, [refusal, *shown], None
            code = (
                "referral.held" if fraud_verdict.action is FraudAction.HOLD else "referral.flagged"
            )
            fraud = [Decision.of("fraud", Verdict.NOTED, code, reasons=reasons)]
        held = fraud_verdict is not None and fraud_verdict.action is FraudAction.HOLD
        referral = Referral(  # referral_id, program_id, program_version, referrer_id, ...
            derive_id("ref", pid, who),
            pid,
            version.version,
            referrer,
            who,
            winner.code,
            winner.channel,
            ev.at,
            ev.event_id,
            "held" if held else "active",
            (*rejected, *explanation, *fraud),
        )
        created = Decision(  # Decision.of(..., referee=who, referrer=referrer, code=...)
            "attribution",
            Verdict.NOTED,
            "referral.created",
            (("referee", _text(who)), ("referrer", _text(referrer)), ("code", _text(winner.code))),
        )
        return referral, [*shown, created, *fraud], fraud_verdict if held else None

    def _fraud_verdict(
        self,
        uow: UnitOfWork,
        ev: Signup | Purchase,
        who: str,
        referrer: str,
        winner: TouchRecord,
        email: str | None,
        referrer_email: str | None,
    ) -> FraudVerdict | None:
        if not self._fraud_checks:
            return None
        pid = self._program_id
        if referrer_email is None:
            referrer_email = uow.participants.email_of(pid, referrer)
        context = fraud_context(
            uow,
            pid,
            referrer_id=referrer,
            referee_id=who,
            at=ev.at,
            referrer=self._identity(uow, referrer, referrer_email),
            referee=self._identity(uow, who, email),
            code=winner.code,
            channel=winner.channel,
            depth=chain_depth(self._fraud_checks),
        )
        return combine(check.check(context) for check in self._fraud_checks)

    def _identity(self, uow: UnitOfWork, who: str, email: str | None) -> IdentityFacts:
        """What the participant's sign-up told of them (keyed hashes only), and their email."""
        facts: dict[str, str] = {}
        for record in uow.touches.of_participant(self._program_id, who):
            if record.kind == "signup":
                facts.update(record.data)
        return IdentityFacts(
            email=email, **{k: v for k, v in facts.items() if k in _IDENTITY_FIELDS}
        )

    def _velocity_keys(self, referrer: str, at: datetime) -> tuple[CounterKey, CounterKey]:
        return velocity_keys(self._program_id, referrer, at)

    def _add_referral(self, uow: UnitOfWork, referral: Referral, held: FraudVerdict | None) -> None:
        pid = self._program_id
        uow.referrals.add(referral)
        uow.counters.add((pid, _REFERRER_REFERRALS, referral.referrer_id), _ONE)
        uow.counters.add((pid, CODE_USES, referral.code), _ONE)
        if self._fraud_checks:
            for key in self._velocity_keys(referral.referrer_id, referral.created_at):
                uow.counters.add(key, _ONE)
        notes = [
            Notification(  # notification_id, program_id, kind, recipient_id, created_at, data
                sub_id("ntf", referral.referral_id, "created"),
                pid,
                "referral_created",
                referral.referrer_id,
                referral.created_at,
                {
                    "referee": referral.referee_id,
                    "referral_id": referral.referral_id,
                    "code": referral.code,
                },
            )
        ]
        if held is not None:
            notes.append(self._held_note(referral, ",".join(held.reasons), referral.created_at))
        uow.outbox.add(notes)

    def _held_note(self, referral: Referral, reason: str, at: datetime) -> Notification:
        return Notification(
            notification_id=sub_id("ntf", referral.referral_id, "held"),
            program_id=self._program_id,
            kind="referral_held",
            recipient_id=referral.referrer_id,
            created_at=at,
            data={"referral_id": referral.referral_id, "reason": reason},
        )

    def _hold_late_self_referrals(
        self, uow: UnitOfWork, who: str, email: str, at: datetime
    ) -> list[Decision]:
        """A referrer signing up after their referee, with the referee's inbox: each such
        referral is held (one person with two accounts)."""
        pid = self._program_id
        if uow.participants.code_of(pid, who) is None:
            return []  # without a code nobody was referred by them
        decisions = []
        for referral in uow.referrals.by_referrer(pid, who):
            if referral.status == "held":
                continue
            if uow.participants.email_of(pid, referral.referee_id) != email:
                continue
            d = Decision.of(
                "fraud",
                Verdict.NOTED,
                "referral.held_later",
                referral_id=referral.referral_id,
                reasons="fraud.same_email",
            )
            uow.referrals.update(
                attrs.evolve(referral, status="held", explanation=(*referral.explanation, d))
            )
            uow.outbox.add((self._held_note(referral, "fraud.same_email", at),))
            for view in self._referral_views(uow, referral.referral_id):
                if view.state in (RewardState.PENDING, RewardState.APPROVED):
                    self._hold_in(uow, view, at, _REFERRAL_HELD, _FRAUD_ACTOR, None)
            decisions.append(d)
        return decisions

    def purge_touches(self, older_than: timedelta, *, now: datetime | None = None) -> int:
        """Delete raw touch data (clicks, typed codes, visitor ids, the keyed hashes a sign-up
        carried) recorded more than ``older_than`` before ``now``: data retention.

        Referrals keep their explanations, and the ledger, counters and event outcomes are
        untouched. A touch purged before its referee's decision no longer counts then, so
        keep ``older_than`` above the attribution window (checked).

        Args:
            older_than: The retention period; at least the program's attribution window.
            now: Timezone-aware; the engine's clock by default.

        Returns:
            How many touches were deleted.

        Raises:
            InvalidInputError: ``older_than`` is not a timedelta, or shorter than the window
                of a published version.
            NaiveDatetimeError: ``now`` without a time zone.
        """
        if not isinstance(older_than, timedelta):
            raise InvalidInputError("older_than", older_than, "must be a timedelta")
        longest = max(v.attribution.window for v in self._versions.values())
        if older_than < longest:
            raise InvalidInputError(
                "older_than", older_than, f"must be at least the attribution window {longest}"
            )
        at = self._clock.now() if now is None else require_aware("now", now)
        try:
            cutoff = at - older_than
        except OverflowError:
            raise InvalidInputError(
                "older_than", older_than, f"reaches before the year 1 from now={at.isoformat()}"
            ) from None
        return self._transact(lambda uow: uow.touches.purge(self._program_id, cutoff))

    def erase_participant(self, participant_id: str) -> int:
        """Erase a participant's personal data: their email is replaced by a pseudonym and
        their touches (visitor ids, the keyed hashes their sign-up carried, codes typed) are
        deleted. In the event log their sign-ups lose the email (the pseudonym instead), the
        keyed hashes and the metadata, their visitor id becomes a pseudonym (in that
        visitor's clicks too), and their purchases and those orders' refunds and
        chargebacks lose their metadata. Participant ids, referrals, their explanations, the
        ledger and counters stay, so every total still adds up; each logged event keeps the
        digest of the payload as delivered, so a retry of an erased event is still
        recognised as a duplicate (and writes nothing). A replay of the erased log sees only
        what is left: checks on the erased fields cannot decide as they did.

        The pseudonym is stable and unique to the participant, so a later sign-up of someone
        else never matches it as a self-referral. The participant's events are looked up
        by key (their id, then their visitor and order ids), an indexed query on the
        shipped stores (a host store without ``KeyedEventLog.about`` reads the whole log).

        Returns:
            How many touches were deleted.
        """
        require_id("participant_id", participant_id)
        pid = self._program_id

        def work(uow: UnitOfWork) -> int:
            if uow.participants.email_of(pid, participant_id) is not None:
                pseudonym = email_pseudonym(pid, participant_id)
                uow.participants.set_email(pid, participant_id, pseudonym)
            redact_events(uow, pid, participant_id)
            return uow.touches.forget(pid, participant_id)

        return self._transact(work)

    def explain(self, referee_id: str) -> AttributionExplanation:
        """Why ``referee_id`` was, or was not, referred: the answer to "why did my friend not
        count?".

        With a referral, the explanation stored with it; without one, the decisions of the
        event where attribution was decided for them.
        """
        require_id("referee_id", referee_id)
        pid = self._program_id
        with self._store.unit_of_work() as uow:
            referral = uow.referrals.by_referee(pid, referee_id)
            if referral is not None:
                return AttributionExplanation(
                    referee_id, referral, referral.explanation, referral.event_id
                )
            mine = uow.touches.of_participant(pid, referee_id)
            deciding = [t for t in mine if t.kind in ("signup", "bind")]
            for marker in reversed(deciding):
                record = uow.events.get(pid, marker.event_id)
                if record is not None:
                    return AttributionExplanation(
                        referee_id, None, record.outcome.decisions, marker.event_id
                    )
            if any(t.referrer_id is not None for t in mine):
                # Touches kept for a decision still to come (bound at the first purchase).
                waiting = Decision.of(
                    "attribution", Verdict.NOTED, "attribution.deferred", referee=referee_id
                )
                return AttributionExplanation(referee_id, None, (waiting,))
        none = Decision.of(
            "attribution", Verdict.NOTED, "attribution.no_touches", referee=referee_id
        )
        return AttributionExplanation(referee_id, None, (none,))

    # -- purchases -----------------------------------------------------------------------
    def _purchase(self, uow: UnitOfWork, ev: Purchase) -> Outcome:
        pid = self._program_id
        who = ev.participant_id
        currency = self._latest.currency
        if (
            ev.subtotal is None and ev.discount is None and ev.tax is None and ev.shipping is None
        ):  # digests of orders without these parts stay as they were
            order_digest = parts_digest(who, ev.amount, ev.items)
        else:
            order_digest = parts_digest(
                who, ev.amount, ev.items, ev.subtotal, ev.discount, ev.tax, ev.shipping
            )
        existing = uow.orders.get(pid, ev.order_id)
        if existing is not None:
            return self._repeat(existing.digest, order_digest, "order_id", ev.order_id, ev)
        rate = None
        if ev.amount.currency != currency:  # converted at the host's rate, or refused
            rate = self._rate(ev, currency)
        buyer = uow.participants.get(pid, who)
        if buyer is None:
            uow.participants.put(ParticipantRecord(pid, who, ev.at, None))
        purchases_key = (pid, _REFEREE_PURCHASES, who)
        referral = uow.referrals.by_referee(pid, who)
        bound: list[Decision] = []
        at_bind: tuple[tuple[RewardGrant, ...], tuple[str, ...]] = ((), ())
        if referral is None:
            referral, bound = self._bind_at_purchase(uow, ev, purchases_key)
            if referral is not None:
                at_bind = self._signup_rewards_at_bind(uow, referral, ev, bound)
        elif ev.code is not None:
            bound = self._not_binding(uow, ev, referral)
        if referral is not None and ev.at < referral.created_at:
            # Paid before the referral existed (delivered late): an existing customer's order.
            referral = None
            reason = "purchase.before_referral"
        else:
            reason = "purchase.not_referred"
        if referral is None:
            uow.counters.add(purchases_key, _ONE)
            uow.orders.add(
                OrderRecord(
                    pid,
                    ev.order_id,
                    who,
                    ev.amount,
                    ev.at,
                    ev.event_id,
                    None,
                    False,
                    order_digest,
                    rate,
                )
            )
            d = Decision(  # Decision.of("engine", Verdict.NOTED, reason, participant=who)
                "engine",
                Verdict.NOTED,
                reason,
                (("participant", _text(who)),),
            )
            return Outcome(
                ev.event_id, ev.kind, False, None, (), (), (), (*bound, d) if bound else (d,)
            )

        version = self._version(referral.program_version, referral.referral_id)
        # A purchase in another currency: the policies see it converted (rounded with the
        # governing version's mode); the order and the rewards' base keep its own amounts.
        priced = ev if rate is None else convert_purchase(ev, rate, currency, version.rounding)
        if rate is not None:
            bound.append(self._converted(ev, priced, rate))
        conversions_key = (pid, CONVERSIONS, referral.referral_id)
        plan = self._plan(version)
        if plan.needs:
            snapshot = self._snapshot(uow, version, referral, (purchases_key, conversions_key))
        else:
            snapshot = uow.counters.get([purchases_key, conversions_key])
        number = int(snapshot.get(purchases_key, _ZERO)) + 1
        converted_before = snapshot.get(conversions_key, _ZERO) > 0
        triggers, qualification = qualifying_triggers(
            version, number, priced.amount, converted_before
        )
        if bound:
            bound.extend(qualification)
            decisions = bound
        else:
            decisions = qualification
        grants: tuple[RewardGrant, ...] = ()
        reward_ids: tuple[str, ...] = ()
        policy_decisions: list[Decision] = []
        if triggers or referral.status == "rejected" or plan.pays_signup:
            # (Otherwise no policy is asked and none is explained: _reward does nothing.)
            grants, reward_ids, policy_decisions = self._reward(
                uow,
                version,
                referral,
                priced,
                frozenset(triggers),
                snapshot,
                ev.amount,
                rate,
                None if buyer is None else buyer.country,
            )
            decisions.extend(policy_decisions)
        converted = purchase_converts(triggers, bool(grants), policy_decisions, converted_before)
        uow.counters.add(purchases_key, _ONE)
        uow.counters.add(
            (pid, _REFERRER_REVENUE_REFERRED, referral.referrer_id),
            priced.amount.amount,
        )
        if converted:
            uow.counters.add(conversions_key, _ONE)
            uow.counters.add((pid, _REFERRER_SUCCESSFUL_REFERRALS, referral.referrer_id), _ONE)
            self._update_status(
                uow,
                referral.referrer_id,
                ev.at,
                ev.event_id,
                StatusBasis.SUCCESSFUL_REFERRALS,
                (ev.at, _ONE),
            )
        uow.orders.add(
            OrderRecord(
                pid,
                ev.order_id,
                who,
                ev.amount,
                ev.at,
                ev.event_id,
                referral.referral_id,
                converted,
                order_digest,
                rate,
            )
        )
        return Outcome(
            ev.event_id,
            ev.kind,
            False,
            referral.referral_id,
            (*at_bind[0], *grants) if at_bind[0] else grants,
            (*at_bind[1], *reward_ids) if at_bind[1] else reward_ids,
            (),
            tuple(decisions),
        )

    def _bind_at_purchase(
        self, uow: UnitOfWork, ev: Purchase, purchases_key: CounterKey
    ) -> tuple[Referral | None, list[Decision]]:
        """Attribution at the buyer's first purchase, when the program binds then."""
        pid = self._program_id
        who = ev.participant_id
        version = self._in_force(ev.at)
        rules = version.attribution
        if rules.bind_at != "first_purchase":
            if ev.code is None:
                return None, []
            d = Decision.of(
                "attribution", Verdict.SKIPPED, "attribution.not_at_purchase", code=ev.code
            )
            return None, [d]
        existing_key = (pid, EXISTING_CUSTOMER, who)
        counts = uow.counters.get([purchases_key, existing_key])
        if counts[purchases_key] > 0:
            return None, []  # only the first purchase binds
        fresh, refused = self._event_touches(uow, ev, who, None)
        stored = self._stored_touches(uow, who, None, mine=True)
        for record in fresh:
            uow.touches.add(record)
        uow.touches.add(
            TouchRecord(
                pid,
                derive_id("tch", pid, ev.event_id, "bind"),
                "bind",
                ev.at,
                ev.event_id,
                participant_id=who,
                channel="other",
            )
        )
        referral, decisions, held = self._attribute(
            uow,
            version,
            rules,
            ev,
            who,
            [*stored, *fresh],
            refused,
            counts[existing_key] > 0,
            uow.participants.email_of(pid, who),
        )
        if referral is not None:
            self._add_referral(uow, referral, held)
        return referral, decisions

    def _not_binding(self, uow: UnitOfWork, ev: Purchase, referral: Referral) -> list[Decision]:
        """A code typed at checkout by a buyer already bound to a referrer: noted only."""
        assert ev.code is not None
        try:
            code = normalise_code(ev.code, "purchase.code")
        except InvalidInputError:
            code = ""
        owner = uow.participants.code_owner(self._program_id, code) if code else None
        if owner is None:
            return [
                Decision.of(
                    "attribution", Verdict.REFUSED, "referral.unknown_code", code=code or ev.code
                )
            ]
        return [
            Decision.of(
                "attribution",
                Verdict.SKIPPED,
                "touch.not_binding",
                kind="code",
                referrer=owner.participant_id,
                referee=ev.participant_id,
                bound=referral.referrer_id,
                reason="attribution.bound",
            )
        ]

    def _repeat(self, stored: str, given: str, field: str, business_id: str, ev: Event) -> Outcome:
        if stored != given:
            raise EventConflictError(
                field, business_id, "was recorded before with different fields"
            )
        code = {"order_id": "order.repeated", "refund_id": "refund.repeated"}.get(
            field, "chargeback.repeated"
        )
        d = Decision.of("engine", Verdict.SKIPPED, code, **{field: business_id})
        return Outcome(ev.event_id, ev.kind, decisions=(d,))

    def _rate(self, ev: Purchase, currency: str) -> Rate:
        """The host's rate to convert a purchase into the program currency."""
        source = ev.amount.currency
        if self._exchange_rates is None:
            raise CurrencyMismatchError(
                "purchase.amount",
                ev.amount,
                f"must be in the program's currency {currency} "
                "(or give the engine exchange_rates to convert it)",
            )
        # The purchase time in the program's time zone, so that its date there (the
        # rate's date by default) is the same whatever zone the event's time was given in.
        on = ev.at.astimezone(self._in_force(ev.at).zone)
        rate = self._exchange_rates.rate(source, currency, on)
        field = f"exchange_rates.rate({source!r}, {currency!r})"
        if rate is None:
            raise ExchangeRateError(field, None, f"no {source}->{currency} rate for {ev.at}")
        if not isinstance(rate, Rate):
            raise ExchangeRateError(field, rate, "must return a Rate or None")
        return rate

    def _converted(self, ev: Purchase, priced: Purchase, rate: Rate) -> Decision:
        return Decision.of(
            "engine",
            Verdict.NOTED,
            "purchase.converted",
            amount=ev.amount,
            converted=priced.amount,
            rate=str(rate.value),
            rate_on=rate.on.isoformat(),
        )

    def _snapshot(
        self,
        uow: UnitOfWork,
        version: Program,
        referral: Referral,
        extra: Sequence[CounterKey] = (),
    ) -> dict[CounterKey, Decimal]:
        needs = self._plan(version).needs
        if not needs:
            return uow.counters.get(list(extra)) if extra else {}
        pid = self._program_id
        whose = ("", referral.referee_id, referral.referrer_id)
        keys: list[CounterKey] = [(pid, name, whose[w]) for _, name, w in needs]
        keys.extend(extra)
        return uow.counters.get(keys)

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
    ) -> tuple[tuple[RewardGrant, ...], tuple[str, ...], list[Decision]]:
        pid = self._program_id
        if referral.status == "rejected":
            refused = Decision.of(
                "engine", Verdict.REFUSED, "referral.rejected", referral_id=referral.referral_id
            )
            return (), (), [refused]
        plan = self._plan(version)
        counters: dict[Counter, Decimal] = {}
        if plan.needs:
            whose = ("", referral.referee_id, referral.referrer_id)
            for counter, name, w in plan.needs:
                counters[counter] = snapshot.get((pid, name, whose[w]), _ZERO)
        is_purchase = isinstance(ev, Purchase)
        currency = version.currency
        decisions: list[Decision] = []
        grants: list[RewardGrant] = []
        conditional: list[tuple[str, PolicyResult]] | None = None  # made when needed
        base_of = None
        for policy in version.policies:
            trigger = policy.trigger
            if trigger not in triggers:
                # Say why a policy was not asked; a purchase-paying policy skipped on a
                # purchase is explained by the qualification decision instead.
                if isinstance(ev, Signup) or trigger is Trigger.SIGNUP:
                    key = (policy.name, trigger, ev.kind)
                    skipped = plan.not_trigger.get(key)
                    if skipped is None:
                        skipped = plan.not_trigger[key] = Decision.of(
                            key[0],
                            Verdict.SKIPPED,
                            "policy.not_trigger",
                            trigger=key[1],
                            event=key[2],
                        )
                    decisions.append(skipped)
                continue
            if base_of is None:
                base_of = (
                    (None,)
                    if not is_purchase or version.commissionable_base == "total"
                    else (ev.net(),)  # type: ignore[union-attr]
                )
            ctx = PolicyContext(  # program_id, program_version, currency, rounding, referral,
                pid,  # event, trigger, counters, base, referee_country, zone
                version.version,
                currency,
                version.rounding,
                referral,
                ev,
                trigger,
                counters,
                base_of[0],
                country,
                version.zone,
            )
            result = policy.evaluate(ctx)
            for grant in result.grants:
                amount = getattr(grant.value, "amount", None)
                if isinstance(amount, Money) and amount.currency != currency:
                    raise InvalidProgramError(
                        f"{policy.name}.grant", grant.value, f"must be in {currency}"
                    )
                if grant.participant_id not in (referral.referrer_id, referral.referee_id):
                    raise InvalidProgramError(
                        f"{policy.name}.grant.participant_id",
                        grant.participant_id,
                        "must be the referral's referrer or referee",
                    )
            if plan.when and isinstance(policy, When):
                if conditional is None:
                    conditional = []
                conditional.append((policy.name, result))
                continue
            grants.extend(result.grants)
            decisions.extend(result.decisions)
        if conditional:
            kept, dropped = choose(version.precedence, conditional)
            for i, (_, result) in enumerate(conditional):
                decisions.extend(result.decisions)
                if i in kept:
                    grants.extend(result.grants)
            decisions.extend(dropped)
        if not grants:
            if plan.referee_limits:
                self._referee_used(uow, referral, ev, False, False)
            return (), (), decisions
        gate = None
        if plan.referee_limits:
            gate = self._referee_gate(uow, version, referral, ev)
            if gate is not None:
                grants = []
                decisions.append(gate)
        milestones = False
        for grant in grants:
            if grant.milestone is not None:
                milestones = True
                break
        if milestones:
            grants = self._once(uow, grants, decisions)
        limits = None
        if grants and plan.limits:
            limits = self._limits(uow, version, referral, ev.at, grants)
            grants = list(limits.grants)
            decisions.extend(limits.decisions)
        seen: dict[tuple[str, str], int] = {}
        reward_ids: list[str] = []
        notifications: list[Notification] = []
        spend = _ZERO
        at = ev.at
        event_id = ev.event_id
        order_id = ev.order_id if is_purchase else None  # type: ignore[union-attr]
        held = referral.status == "held"
        referral_id = referral.referral_id
        referee = referral.referee_id
        version_number = version.version
        add_reward = uow.ledger.add_reward
        payable_at_of = version.payable_at
        payable: dict[str, datetime] = {}
        for grant in grants:
            name = grant.policy
            role = grant.role
            milestone = grant.milestone
            n = seen.get((name, role), 0)
            seen[(name, role)] = n + 1
            payable_at = payable.get(name)
            if payable_at is None:
                try:
                    payable_at = payable[name] = payable_at_of(at, name)
                except OverflowError:
                    raise InvalidEventError(
                        f"{ev.kind}.at", at, "is too late: the reward's hold would end after 9999"
                    ) from None
            value = grant.value
            if milestone is None:
                reward = Reward(
                    derive_id("rwd", pid, event_id, name, role, str(n), *salt),
                    pid,
                    version_number,
                    referral_id,
                    grant.participant_id,
                    role,
                    value,
                    name,
                    event_id,
                    order_id,
                    base,
                    at,
                    payable_at,
                    grant.item,
                    rate,
                )
            else:
                reward = Reward(
                    self._milestone_id(grant),
                    pid,
                    version_number,
                    referral_id,
                    grant.participant_id,
                    role,
                    value,
                    name,
                    event_id,
                    None,
                    None,
                    at,
                    payable_at,
                    grant.item,
                    None,
                )
            reward_id = reward.reward_id
            granted = grant_entry(reward)
            add_reward(reward, granted)
            if held:
                # A referral held by a fraud check (or a later finding): its rewards wait
                # for an operator's decision (Engine.release_referral / reject_referral).
                self._hold_in(
                    uow, RewardView(reward, (granted,)), at, _REFERRAL_HELD, _FRAUD_ACTOR, None
                )
            reward_ids.append(reward_id)
            unit = value.unit
            if unit.is_money:
                spend += value.quantity
            notifications.append(
                Notification(
                    sub_id("ntf", reward_id, "earned"),
                    pid,
                    "reward_earned",
                    grant.participant_id,
                    at,
                    {
                        "reward_id": reward_id,
                        "role": _ROLE_VALUE[role],
                        "value": str(value),
                        "payable_on": payable_at.astimezone(version.zone).date().isoformat(),
                        "referral_id": referral_id,
                        "referee": referee,
                    },
                )
            )
            if milestone is not None or unit.kind == "points":
                self._granted_extra(uow, reward, grant, ev, notifications, salt)
        if spend:
            uow.counters.add((pid, _PROGRAM_SPEND, ""), spend)
        if limits is not None:
            self._spend(uow, version, limits, at, notifications)
        if plan.referee_limits:
            self._referee_used(uow, referral, ev, bool(grants), gate is not None)
        if notifications:
            uow.outbox.add(notifications)
        return tuple(grants), tuple(reward_ids), decisions

    # -- milestones and status levels ----------------------------------------------------
    def _milestone_id(self, grant: RewardGrant) -> str:
        assert grant.milestone is not None
        return derive_id(
            "rwd", self._program_id, grant.participant_id, grant.policy, grant.milestone.name
        )

    def _milestone_key(self, grant: RewardGrant) -> CounterKey:
        assert grant.milestone is not None
        subject = derive_id("ms", grant.participant_id, grant.policy, grant.milestone.name)
        return (self._program_id, MILESTONE, subject)

    def _once(
        self, uow: UnitOfWork, grants: Sequence[RewardGrant], decisions: list[Decision]
    ) -> list[RewardGrant]:
        """Drop milestone grants made before (once ever per participant and milestone)."""
        keys = [self._milestone_key(g) for g in grants if g.milestone is not None]
        done = uow.counters.get(keys)
        kept = []
        for grant in grants:
            if grant.milestone is not None and done[self._milestone_key(grant)]:
                decisions.append(
                    Decision.of(
                        grant.policy,
                        Verdict.SKIPPED,
                        "milestone.already_granted",
                        participant=grant.participant_id,
                        milestone=grant.milestone.name,
                    )
                )
                continue
            kept.append(grant)
        return kept

    def _granted_extra(
        self,
        uow: UnitOfWork,
        reward: Reward,
        grant: RewardGrant,
        ev: Signup | Purchase,
        notifications: list[Notification],
        salt: tuple[str, ...] = (),
    ) -> None:
        """Milestone bookkeeping and lifetime points for a reward just granted."""
        pid = self._program_id
        if grant.milestone is not None:
            uow.counters.add(self._milestone_key(grant), _ONE)
            notifications.append(
                Notification(
                    notification_id=sub_id("ntf", reward.reward_id, "milestone"),
                    program_id=pid,
                    kind="milestone_reached",
                    recipient_id=grant.participant_id,
                    created_at=ev.at,
                    data={
                        "milestone": grant.milestone.name,
                        "threshold": str(grant.milestone.threshold),
                        "count": str(grant.milestone.count),
                        "value": str(grant.value),
                    },
                )
            )
        if reward.unit.kind == "points":
            cause = "/".join((*salt, ev.event_id)) if salt else ev.event_id
            self._points_earned(uow, reward, reward.value.quantity, ev.at, cause)

    def _points_earned(
        self, uow: UnitOfWork, reward: Reward, quantity: Decimal, at: datetime, cause: str
    ) -> None:
        key = (self._program_id, POINTS_EARNED, f"{reward.participant_id}/{reward.unit.code}")
        uow.counters.add(key, quantity)
        self._update_status(
            uow,
            reward.participant_id,
            at,
            cause,
            StatusBasis.POINTS,
            (reward.created_at, quantity),
            reward.unit.code,
        )

    def _status_levels(self, at: datetime) -> StatusLevels | None:
        return self._plan(self._in_force(at)).status_levels

    def _count_rolling(
        self,
        uow: UnitOfWork,
        participant: str,
        basis: StatusBasis,
        earned_at: datetime,
        delta: Decimal,
        account: str = "",
    ) -> None:
        """Move the monthly count that rolling status levels read (when a version has them):
        ``delta`` in the month ``earned_at`` falls in."""
        if self._rolling:
            name = self._rolling_basis(basis, account)
            if name in self._rolling:
                uow.counters.add(self._month_key(participant, name, earned_at), delta)

    @staticmethod
    def _rolling_basis(basis: StatusBasis, account: str) -> str:
        return "referrals" if basis is StatusBasis.SUCCESSFUL_REFERRALS else f"points:{account}"

    def _month_key(self, participant: str, basis: str, at: datetime) -> CounterKey:
        local = at.astimezone(self._in_force(at).zone)
        return self._month_counter(participant, basis, local.year, local.month)

    def _month_counter(self, participant: str, basis: str, year: int, month: int) -> CounterKey:
        return (self._program_id, STATUS_MONTH, f"{participant}/{basis}/{year:04d}-{month:02d}")

    def _status_count(
        self, uow: UnitOfWork, levels: StatusLevels, participant: str, at: datetime
    ) -> Decimal:
        pid = self._program_id
        if isinstance(levels, RollingStatusLevels):
            # The current calendar month and the months before it, in the program's zone.
            # (Counted from the month's number: a time in it, looked up again, could fall
            # in another month under an earlier version's zone.)
            basis = self._rolling_basis(levels.basis, levels.account)
            local = at.astimezone(self._in_force(at).zone)
            current = local.year * 12 + local.month - 1
            keys = [
                self._month_counter(participant, basis, (current - n) // 12, (current - n) % 12 + 1)
                for n in range(levels.months)
            ]
            return sum(uow.counters.get(keys).values(), _ZERO)
        if levels.basis is StatusBasis.POINTS:
            key = (pid, POINTS_EARNED, f"{participant}/{levels.account}")
        else:
            key = (pid, _REFERRER_SUCCESSFUL_REFERRALS, participant)
        return uow.counters.get([key])[key]

    def _update_status(
        self,
        uow: UnitOfWork,
        participant: str,
        at: datetime,
        cause: str,
        basis: StatusBasis,
        change: tuple[datetime, Decimal] | None = None,
        account: str = "",
    ) -> None:
        """Keep the participant's level; write ``status_changed`` when it changes.

        ``change`` is the count's change and when it was earned, for the monthly counts of
        rolling status levels.
        """
        if change is not None:
            self._count_rolling(uow, participant, basis, change[0], change[1], account)
        levels = self._status_levels(at)
        if levels is None or levels.basis is not basis:
            return
        pid = self._program_id
        new = levels.level_for(self._status_count(uow, levels, participant, at))
        new_index = 0 if new is None else levels.levels.index(new) + 1
        key = (pid, STATUS_LEVEL, participant)
        old_index = int(uow.counters.get([key])[key])
        if new_index == old_index:
            return
        uow.counters.add(key, Decimal(new_index - old_index))
        old = levels.levels[old_index - 1].name if 0 < old_index <= len(levels.levels) else ""
        uow.outbox.add(
            [
                Notification(
                    # The new level too: one event may change a level twice (two points
                    # rewards into one account), and each change is its own notification.
                    notification_id=derive_id(
                        "ntf", pid, participant, "status", cause, str(new_index)
                    ),
                    program_id=pid,
                    kind="status_changed",
                    recipient_id=participant,
                    created_at=at,
                    data={"old": old, "new": "" if new is None else new.name},
                )
            ]
        )

    def status_of(self, participant_id: str) -> str | None:
        """The participant's status level now (``StatusLevels`` of the version in force
        by the engine's clock), or None below the first level or without levels."""
        return self.progress(participant_id).level

    def progress(self, participant_id: str) -> Progress:
        """Where the participant stands: successful referrals, level, and how many more
        referrals (or points) to the next level and the next milestone.

        Read from the program version in force by the engine's clock; milestones of
        top-level ``Milestones`` policies that the participant has not been granted.
        """
        require_id("participant_id", participant_id)
        version = self._in_force(self._clock.now())
        levels = self._status_levels(self._clock.now())
        pid = self._program_id
        with self._store.unit_of_work() as uow:
            key = (pid, _REFERRER_SUCCESSFUL_REFERRALS, participant_id)
            count = int(uow.counters.get([key])[key])
            level = upcoming = to_level = None
            if levels is not None:
                basis = self._status_count(uow, levels, participant_id, self._clock.now())
                held, following = levels.level_for(basis), levels.next_after(basis)
                level = None if held is None else held.name
                if following is not None:
                    upcoming, to_level = following.name, int(following.minimum - basis)
            milestone = to_milestone = None
            for policy in version.policies:
                if not isinstance(policy, Milestones):
                    continue
                for m in policy.milestones:
                    probe = RewardGrant(
                        Role.REFERRER,
                        participant_id,
                        m.reward,
                        policy.name,
                        milestone=MilestoneReached(m.name, m.threshold, m.threshold),
                    )
                    mkey = self._milestone_key(probe)
                    if uow.counters.get([mkey])[mkey]:
                        continue
                    more = max(m.threshold - count, 0)
                    if to_milestone is None or more < to_milestone:
                        milestone, to_milestone = m.name, more
                    break
        return Progress(
            participant_id,
            count,
            level=level,
            next_level=upcoming,
            to_next_level=to_level,
            next_milestone=milestone,
            to_next_milestone=to_milestone,
        )

    def _referee_keys(self, referral: Referral) -> tuple[CounterKey, CounterKey]:
        pid, who = self._program_id, referral.referee_id
        return (pid, REFEREE_PURCHASES_REWARDED, who), (pid, REFEREE_FIRST_REWARD, who)

    def _referee_gate(
        self, uow: UnitOfWork, version: Program, referral: Referral, ev: Signup | Purchase
    ) -> Decision | None:
        purchases, first = self._referee_keys(referral)
        values = uow.counters.get([purchases, first])
        return referee_gate(
            version.caps,
            purchase=isinstance(ev, Purchase),
            rewarded_purchases=values[purchases],
            first_reward_at=values[first],
            at=ev.at,
            zone=version.zone,
        )

    def _referee_used(
        self,
        uow: UnitOfWork,
        referral: Referral,
        ev: Signup | Purchase,
        granted: bool,
        refused: bool,
    ) -> None:
        """Count a rewarded purchase and the referee's first reward; a refusal writes the
        counters it read unchanged, so a concurrent change conflicts with it."""
        purchases, first = self._referee_keys(referral)
        if refused:
            for key in (purchases, first):
                uow.counters.add(key, _ONE)
                uow.counters.add(key, -_ONE)
            return
        if not granted:
            return
        if isinstance(ev, Purchase):
            uow.counters.add(purchases, _ONE)
            uow.counters.add((self._program_id, ORDER_SLOT, ev.order_id), _ONE)
        if not uow.counters.get([first])[first]:
            uow.counters.add(first, Decimal(int(ev.at.timestamp())))

    def _limits(
        self,
        uow: UnitOfWork,
        version: Program,
        referral: Referral,
        at: datetime,
        grants: Sequence[RewardGrant],
    ) -> LimitPlan:
        """Clamp an event's grants to the governing version's caps and budget."""
        pid = self._program_id
        keys: set[tuple[str, str]] = set()
        for grant in grants:
            if grant.value.unit.is_money:
                found = spend_keys(
                    version.caps,
                    grant.role,
                    grant.participant_id,
                    referral.referral_id,
                    at,
                    version.zone,
                )
                keys.update(found.values())
        spend_key = (pid, _PROGRAM_SPEND, "")
        values = uow.counters.get([spend_key, *((pid, n, s) for n, s in sorted(keys))])
        return apply_limits(
            grants,
            caps=version.caps,
            budget=version.budget,
            referral_id=referral.referral_id,
            at=at,
            zone=version.zone,
            spent={(n, s): values[(pid, n, s)] for n, s in keys},
            program_spent=values[spend_key],
        )

    def _spend(
        self,
        uow: UnitOfWork,
        version: Program,
        plan: LimitPlan,
        at: datetime,
        notifications: list[Notification],
    ) -> None:
        """Count a plan's spend; write the budget-exhausted notification once ever."""
        pid = self._program_id
        for (name, subject), delta in sorted(plan.spend.items()):
            uow.counters.add((pid, name, subject), delta)
        if plan.limited:
            # A grant refused because of a counter it read must conflict with a concurrent
            # unit that changes that counter (a refund giving spend back), as a grant that
            # writes it does; otherwise the refusal could rest on a stale snapshot. Write
            # the counters it read without changing them.
            untouched = [(pid, n, s) for n, s in sorted(plan.read) if (n, s) not in plan.spend]
            if version.budget is not None and not plan.program_spend:
                untouched.append((pid, _PROGRAM_SPEND, ""))
            for key in untouched:
                uow.counters.add(key, _ONE)
                uow.counters.add(key, -_ONE)
        budget = version.budget
        if budget is None or plan.spent_after < budget.amount:
            return
        flag = (pid, BUDGET_EXHAUSTED, "")
        if uow.counters.get([flag])[flag]:
            return
        uow.counters.add(flag, _ONE)
        spent = plan.spent_after.quantize(Decimal(1).scaleb(-currency_exponent(budget.currency)))
        notifications.append(
            Notification(
                notification_id=derive_id("ntf", pid, "budget_exhausted"),
                program_id=pid,
                kind="budget_exhausted",
                recipient_id=pid,
                created_at=at,
                data={"budget": str(budget), "spent": str(Money._trusted(spent, budget.currency))},
            )
        )

    def _give_back(self, uow: UnitOfWork, reward: Reward, quantity: Decimal) -> None:
        """Return a reversed money quantity to the spend counters it was counted in."""
        version = self._version(reward.program_version, reward.referral_id)
        if not self._plan(version).caps:
            return
        keys = spend_keys(
            version.caps,
            reward.role,
            reward.participant_id,
            reward.referral_id,
            reward.created_at,
            version.zone,
        )
        for name, subject in sorted(keys.values()):
            uow.counters.add((self._program_id, name, subject), -quantity)

    # -- refunds and chargebacks ---------------------------------------------------------
    def _order_for(self, uow: UnitOfWork, order_id: str, field: str) -> OrderRecord:
        order = uow.orders.get(self._program_id, order_id)
        if order is None:
            raise UnknownOrderError(order_id, field)
        return order

    def _refund(self, uow: UnitOfWork, ev: Refund) -> Outcome:
        pid = self._program_id
        order = self._order_for(uow, ev.order_id, "refund.order_id")
        refund_digest = parts_digest(ev.order_id, ev.amount, *ev.items)
        existing = uow.orders.refund(pid, ev.refund_id)
        if existing is not None:
            return self._repeat(existing.digest, refund_digest, "refund_id", ev.refund_id, ev)
        if ev.amount.currency != order.amount.currency:
            raise CurrencyMismatchError(
                "refund.amount",
                ev.amount,
                f"must be in the order's currency {order.amount.currency}",
            )
        reversed_key = (pid, ORDER_REVERSED, order.order_id)
        before = uow.counters.get([reversed_key])[reversed_key]
        remaining = order.amount.amount - before
        if ev.amount.amount > remaining:
            raise InvalidEventError(
                "refund.amount",
                ev.amount,
                f"exceeds what remains refundable on order {order.order_id} "
                f"({Money._trusted(remaining, order.amount.currency)})",
            )
        if ev.items:
            self._check_refund_items(uow, order, ev)
        uow.orders.add_refund(
            RefundRecord(
                pid, ev.refund_id, ev.order_id, ev.amount, ev.at, ev.event_id, refund_digest
            )
        )
        return self._reverse(uow, order, ev, before + ev.amount.amount)

    def _check_refund_items(self, uow: UnitOfWork, order: OrderRecord, ev: Refund) -> None:
        record = uow.events.get(self._program_id, order.event_id)
        purchase = None if record is None else record.event
        skus = {i.sku for i in purchase.items} if isinstance(purchase, Purchase) else set()
        for i, item in enumerate(ev.items):
            if item not in skus:
                raise InvalidEventError(
                    f"refund.items[{i}]", item, f"is no line item of order {order.order_id}"
                )

    def _chargeback(self, uow: UnitOfWork, ev: Chargeback) -> Outcome:
        pid = self._program_id
        order = self._order_for(uow, ev.order_id, "chargeback.order_id")
        cb_digest = parts_digest(ev.order_id)
        existing = uow.orders.chargeback(pid, ev.chargeback_id)
        if existing is not None:
            return self._repeat(existing.digest, cb_digest, "chargeback_id", ev.chargeback_id, ev)
        uow.orders.add_chargeback(
            ChargebackRecord(pid, ev.chargeback_id, ev.order_id, ev.at, ev.event_id, cb_digest)
        )
        return self._reverse(uow, order, ev, order.amount.amount)

    def _free_slot(self, uow: UnitOfWork, order: OrderRecord, referral_id: str) -> None:
        """A wholly refunded or charged-back order gives back the purchase slot it used
        under ``Caps(max_referee_purchases=...)``, so a later purchase may earn again."""
        if not self._slots_counted:
            return  # no version counts slots: no read
        referral = uow.referrals.get(referral_id)
        assert referral is not None
        version = self._version(referral.program_version, referral_id)
        if not version.caps.max_referee_purchases:
            return
        slot = (self._program_id, ORDER_SLOT, order.order_id)
        if uow.counters.get([slot])[slot] <= 0:
            return
        purchases, _ = self._referee_keys(referral)
        uow.counters.add(slot, -_ONE)
        uow.counters.add(purchases, -_ONE)

    def _in_program_currency(
        self, order: OrderRecord, referral: Referral, amount: Decimal
    ) -> Decimal:
        """``amount`` of a converted order's currency at the order's recorded rate."""
        assert order.exchange_rate is not None
        version = self._version(referral.program_version, referral.referral_id)
        quantum = Decimal(1).scaleb(-currency_exponent(version.currency))
        return (amount * order.exchange_rate.value).quantize(quantum, version.rounding)

    def _reverse(
        self, uow: UnitOfWork, order: OrderRecord, ev: Refund | Chargeback, total: Decimal
    ) -> Outcome:
        """Bring the order's reversals up to ``total`` refunded of its amount."""
        pid = self._program_id
        order = self._backfilled(uow, order)
        reversed_key = (pid, ORDER_REVERSED, order.order_id)
        closed_key = (pid, ORDER_CLOSED, order.order_id)
        state = uow.counters.get([reversed_key, closed_key])
        newly = total - state[reversed_key]
        if newly > 0:
            uow.counters.add(reversed_key, newly)
            if order.referral_id is not None:
                referral = uow.referrals.get(order.referral_id)
                assert referral is not None
                key = (pid, _REFERRER_REVENUE_REFERRED, referral.referrer_id)
                revenue = newly
                if order.exchange_rate is not None:
                    # At the order's rate: the refunds' converted parts add up to the
                    # converted order exactly, whatever the rounding.
                    revenue = self._in_program_currency(order, referral, total) - (
                        self._in_program_currency(order, referral, state[reversed_key])
                    )
                uow.counters.add(key, -revenue)
        full = total >= order.amount.amount
        if full and not state[closed_key]:
            uow.counters.add(closed_key, _ONE)
            if order.referral_id is not None:
                self._free_slot(uow, order, order.referral_id)
            if order.converted and order.referral_id is not None:
                referral = uow.referrals.get(order.referral_id)
                assert referral is not None
                uow.counters.add((pid, CONVERSIONS, referral.referral_id), -_ONE)
                uow.counters.add((pid, _REFERRER_SUCCESSFUL_REFERRALS, referral.referrer_id), -_ONE)
                self._update_status(
                    uow,
                    referral.referrer_id,
                    ev.at,
                    ev.event_id,
                    StatusBasis.SUCCESSFUL_REFERRALS,
                    (order.at, -_ONE),  # it leaves the month it converted in
                )
        rewards = uow.ledger.rewards(pid, order_id=order.order_id)
        reversals, decisions = self._reverse_rewards(uow, order, ev, total, rewards)
        if not reversals:
            decisions.append(  # Decision.of(..., order_id=order.order_id)
                Decision(
                    "ledger",
                    Verdict.SKIPPED,
                    "reward.nothing_to_reverse",
                    (("order_id", _text(order.order_id)),),
                )
            )
        return Outcome(
            ev.event_id,
            ev.kind,
            False,
            order.referral_id,
            (),
            (),
            tuple(reversals),
            tuple(decisions),
        )

    def _reverse_rewards(
        self,
        uow: UnitOfWork,
        order: OrderRecord,
        ev: Refund | Chargeback,
        total: Decimal,
        rewards: Sequence[Reward],
    ) -> tuple[list[Reversal], list[Decision]]:
        """Bring ``rewards`` of ``order`` to what ``total`` refunded of it leaves them (a
        refund naming line items reverses their per-item rewards wholly): reversal or
        clawback entries, spend given back, points taken back, one notification each.
        Returns the reversals and their decisions (none when nothing was left to reverse).
        """
        pid = self._program_id
        items = ev.items if isinstance(ev, Refund) else ()
        if items:  # a refund of named line items reverses their per-item rewards wholly
            rewards = [r for r in rewards if r.item in items]
        if not rewards:
            return [], []
        entries = uow.ledger.entries([r.reward_id for r in rewards])
        refunded = Money._trusted(total, order.amount.currency)
        reversals: list[Reversal] = []
        decisions: list[Decision] = []
        notifications: list[Notification] = []
        appended = []
        spend = _ZERO
        at = ev.at
        cause = ev.kind
        for reward in rewards:
            reward_id = reward.reward_id
            view = RewardView(reward, tuple(entries[reward_id]))
            base = reward.base_amount or order.amount
            rounding = self._version(reward.program_version, reward.referral_id).rounding
            target = view.granted if items else target_reversed(view, refunded, base, rounding)
            entry = reversal_entry(view, target, at, ev.event_id)
            if entry is None:
                continue
            appended.append(entry)
            quantity = entry.quantity
            unit = reward.unit
            reversals.append(Reversal(reward_id, reward.participant_id, unit, quantity))
            if unit.is_money:
                spend += quantity
                self._give_back(uow, reward, quantity)
            elif unit.kind == "points":
                self._points_earned(uow, reward, -quantity, at, ev.event_id)
            text = describe(reward.value, quantity)
            decisions.append(
                Decision(
                    "ledger",
                    Verdict.NOTED,
                    "reward.reversed",
                    (("reward_id", reward_id), ("quantity", text), ("cause", cause)),
                )
            )
            clawback = entry.kind is EntryKind.CLAWED_BACK
            notifications.append(
                reward_note(
                    "reward_clawed_back" if clawback else "reward_reversed",
                    entry.entry_id,
                    reward,
                    at,
                    quantity=str(quantity),
                    value=text,
                    unit=str(unit),
                    cause=cause,
                )
            )
        if appended:
            uow.ledger.append(appended)
            uow.outbox.add(notifications)
        if spend:
            uow.counters.add((pid, _PROGRAM_SPEND, ""), -spend)
        return reversals, decisions

    # -- ledger operations ---------------------------------------------------------------
    def settle(self, now: datetime | None = None, *, batch_size: int = 500) -> int:
        """Approve every pending reward whose ``payable_at`` is at or before ``now``.

        Held rewards are never approved: a hold whose ``until`` passed is released first,
        and an overdue review (``Program.review_after``) gets one ``review_due``
        notification. The host's ``veto`` is asked about each reward before its approval;
        a reason rejects it instead.

        Args:
            now: Timezone-aware; the engine's clock by default.
            batch_size: Rewards approved per unit of work.

        Returns:
            How many rewards were approved.

        Raises:
            InvalidInputError: ``batch_size`` below 1.
            NaiveDatetimeError: ``now`` without a time zone.
        """
        _count("batch_size", batch_size, 1)
        at = self._clock.now() if now is None else require_aware("now", now)
        pid = self._program_id
        total = 0
        self._settle_holds(at)
        while True:

            def work(uow: UnitOfWork) -> tuple[int, int]:
                due = uow.ledger.in_state(pid, RewardState.PENDING, due_by=at, limit=batch_size)
                entries = uow.ledger.entries(r.reward_id for r in due)
                approvals = []
                notes = []
                vetoed = 0
                for reward in due:
                    view = RewardView(reward, tuple(entries[reward.reward_id]))
                    if self._vetoed(uow, view, at):
                        vetoed += 1
                        continue
                    entry = approve_entry(view, at)
                    if entry is None:
                        continue
                    approvals.append(entry)
                    notes.append(
                        reward_note(
                            "reward_approved",
                            entry.entry_id,
                            reward,
                            at,
                            value=describe(reward.value, entry.quantity),
                        )
                    )
                uow.ledger.append(approvals)
                uow.outbox.add(notes)
                return len(approvals), vetoed

            done, vetoed = self._transact(work)
            total += done
            if done + vetoed < batch_size:
                break
        if self._auto_dispatch and total:
            self.dispatch()
        return total

    def rewards_for(self, participant_id: str) -> list[RewardView]:
        """Every reward of a participant with its entries and derived state, oldest first."""
        require_id("participant_id", participant_id)
        with self._store.unit_of_work() as uow:
            rewards = uow.ledger.rewards(self._program_id, participant_id=participant_id)
            entries = uow.ledger.entries(r.reward_id for r in rewards)
        return [RewardView(r, tuple(entries[r.reward_id])) for r in rewards]

    def balance(self, participant_id: str) -> Balance:
        """The participant's balances per unit (pending, held, available, paid, owed,
        lifetime), derived from the ledger entries."""
        require_id("participant_id", participant_id)
        return self._balance(participant_id)

    # -- points ---------------------------------------------------------------------------
    def _points_policy(self, version: Program, account: str) -> PointsPolicy | None:
        pending: list[object] = list(version.policies)
        while pending:
            policy = pending.pop(0)
            if isinstance(policy, PointsPolicy) and policy.account == account:
                return policy
            pending.extend(getattr(policy, "policies", ()))
            inner = getattr(policy, "policy", None)
            if inner is not None:
                pending.append(inner)
        return None

    def _lots(self, views: Sequence[RewardView], account: str) -> list[tuple[PointLot, RewardView]]:
        unit = Unit("points", account)
        lots = []
        for view in views:
            reward = view.reward
            if reward.unit != unit or view.state is RewardState.REVERSED:
                continue
            version = self._version(reward.program_version, reward.referral_id)
            policy = self._points_policy(version, account)
            expires = None
            if policy is not None and policy.name == reward.policy:
                # A calendar term, in the program's time zone.
                expires = policy.expires_at(reward.created_at.astimezone(version.zone))
            lot = PointLot(
                reward.reward_id,
                reward.created_at,
                view.outstanding,
                expires,
                view.state is RewardState.APPROVED,
            )
            lots.append((lot, view))
        return lots

    def points(
        self, participant_id: str, account: str = "points", *, at: datetime | None = None
    ) -> PointsAccount:
        """The participant's points in ``account`` at ``at`` (the clock by default).

        Available points are approved and unexpired; points whose expiry has passed count
        as expired even before a redemption writes their expiry entries.
        """
        require_id("participant_id", participant_id)
        when = self._clock.now() if at is None else require_aware("at", at)
        views = self.rewards_for(participant_id)
        available = pending = expired = redeemed = 0
        next_expiry: datetime | None = None
        for view in views:
            if view.reward.unit == Unit("points", account):
                for entry in view.entries:
                    if entry.kind is EntryKind.REDEEMED:
                        redeemed += int(entry.quantity)
                    elif entry.kind is EntryKind.EXPIRED:
                        expired += int(entry.quantity)
        for lot, _view in self._lots(views, account):
            left = int(lot.left)
            if lot.expires_at is not None and lot.expires_at <= when:
                expired += left
            elif lot.approved:
                available += left
                if left and lot.expires_at is not None:
                    next_expiry = min(next_expiry or lot.expires_at, lot.expires_at)
            else:
                pending += left
        return PointsAccount(
            participant_id, account, available, pending, expired, redeemed, next_expiry
        )

    def redeem(
        self,
        participant_id: str,
        points: int,
        *,
        account: str = "points",
        at: datetime | None = None,
    ) -> Redemption:
        """Spend approved, unexpired points, oldest first, for the account's value.

        Points whose expiry has passed are written off (expiry entries) in the same unit of
        work. The value is ``points * redeem_rate`` of the ``PointsPolicy`` of ``account``
        in the program version in force at ``at``; a ``points_redeemed`` notification
        carries it to the host. Asking again with the same arguments returns the same
        redemption and spends nothing more.

        Args:
            participant_id: Who redeems.
            points: Whole points, >= 1.
            account: The points account.
            at: When (timezone-aware); the engine's clock by default.

        Raises:
            InsufficientPointsError: more than the available points; nothing is written.
            InvalidInputError: ``points`` is not a whole number >= 1.
            InvalidProgramError: no ``PointsPolicy`` with a ``redeem_rate`` for ``account``.
        """
        require_id("participant_id", participant_id)
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            raise InvalidInputError("points", points, "must be a whole number >= 1")
        when = self._clock.now() if at is None else require_aware("at", at)
        policy = self._points_policy(self._in_force(when), account)
        if policy is None:
            raise InvalidProgramError(
                "account", account, "no PointsPolicy of the program keeps this account"
            )
        value = policy.value_of(points)
        pid = self._program_id
        redemption_id = derive_id(
            "rdm", pid, participant_id, account, when.isoformat(), str(points)
        )

        def work(uow: UnitOfWork) -> Redemption:
            rewards = uow.ledger.rewards(pid, participant_id=participant_id)
            entries = uow.ledger.entries(r.reward_id for r in rewards)
            views = [RewardView(r, tuple(entries[r.reward_id])) for r in rewards]
            if any(e.cause == redemption_id for v in views for e in v.entries):
                return Redemption(redemption_id, participant_id, account, points, value, when)
            lots = self._lots(views, account)
            plan = plan_redemption([lot for lot, _ in lots], points, when, account)
            by_id = {lot.reward_id: (lot, view) for lot, view in lots}
            written = []
            for reward_id, quantity in plan.expire:
                lot, view = by_id[reward_id]
                assert lot.expires_at is not None
                written.append(
                    self._use_entry(view, EntryKind.EXPIRED, quantity, lot.expires_at, "expiry")
                )
            for reward_id, quantity in plan.take:
                _, view = by_id[reward_id]
                written.append(
                    self._use_entry(view, EntryKind.REDEEMED, quantity, when, redemption_id)
                )
            uow.ledger.append(written)
            uow.outbox.add(
                [
                    Notification(
                        notification_id=sub_id("ntf", redemption_id, "redeemed"),
                        program_id=pid,
                        kind="points_redeemed",
                        recipient_id=participant_id,
                        created_at=when,
                        data={
                            "redemption_id": redemption_id,
                            "account": account,
                            "points": str(points),
                            "value": str(value),
                        },
                    )
                ]
            )
            expired = sum(q for _, q in plan.expire)
            return Redemption(redemption_id, participant_id, account, points, value, when, expired)

        return self._transact(work)

    def expire_points(self, now: datetime | None = None, *, batch_size: int = 500) -> int:
        """Write off every points lot whose expiry has passed, without waiting for a
        redemption: one ``expired`` entry per lot for what is left of it (approved, pending
        or held alike, as a redemption would), dated at the lot's expiry. Run it from the
        host's scheduler (daily, say); it is idempotent, and a redemption later writes no
        second entry for a lot this expired.

        Only points whose ``PointsPolicy`` sets ``expires_after`` expire. Each call reads the
        points rewards old enough to have expired, expired or not yet, in pages of
        ``batch_size`` (one unit of work each).

        Args:
            now: Timezone-aware; the engine's clock by default.
            batch_size: Rewards read per unit of work.

        Returns:
            How many points expired.

        Raises:
            InvalidInputError: ``batch_size`` below 1.
            NaiveDatetimeError: ``now`` without a time zone.
        """
        _count("batch_size", batch_size, 1)
        at = self._clock.now() if now is None else require_aware("now", now)
        durations = []
        for version in self._versions.values():
            pending: list[object] = list(version.policies)
            while pending:
                policy = pending.pop(0)
                if isinstance(policy, PointsPolicy) and policy.expires_after is not None:
                    durations.append(policy.expires_after)
                pending.extend(getattr(policy, "policies", ()))
                inner = getattr(policy, "policy", None)
                if inner is not None:
                    pending.append(inner)
        if not durations:
            return 0
        # Nothing earned after the earliest of these cut-offs can have expired by ``at``
        # (a week of slack: month ends shift an expiry by up to 3 days); each lot's own
        # expiry is checked below.
        created_by = max(at - d for d in durations) + timedelta(days=7)
        pid = self._program_id
        total = 0
        cursor: tuple[datetime, str] | None = None
        while True:

            def work(
                uow: UnitOfWork, after: tuple[datetime, str] | None = cursor
            ) -> tuple[int, list[Reward]]:
                page = uow.ledger.of_kind(
                    pid, "points", created_by=created_by, after=after, limit=batch_size
                )
                entries = uow.ledger.entries(r.reward_id for r in page)
                views = [RewardView(r, tuple(entries[r.reward_id])) for r in page]
                written = []
                for account in sorted({v.reward.unit.code for v in views}):
                    for lot, view in self._lots(views, account):
                        if lot.left > 0 and lot.expires_at is not None and lot.expires_at <= at:
                            written.append(
                                self._use_entry(
                                    view, EntryKind.EXPIRED, int(lot.left), lot.expires_at, "expiry"
                                )
                            )
                uow.ledger.append(written)
                self._expired_notes(uow, views, written, at)
                return sum(int(e.quantity) for e in written), page

            expired, page = self._transact(work)
            total += expired
            if len(page) < batch_size:
                return total
            cursor = (page[-1].created_at, page[-1].reward_id)

    def _expired_notes(
        self, uow: UnitOfWork, views: Sequence[RewardView], written: Sequence[Entry], at: datetime
    ) -> None:
        """One ``points_expired`` notification per participant and account of a page."""
        accounts = {v.reward.reward_id: v.reward.unit.code for v in views}
        groups: dict[tuple[str, str], list[Entry]] = {}
        for entry in written:
            groups.setdefault((entry.participant_id, accounts[entry.reward_id]), []).append(entry)
        uow.outbox.add(
            [
                Notification(
                    notification_id=derive_id("ntf", *sorted(e.entry_id for e in entries)),
                    program_id=self._program_id,
                    kind="points_expired",
                    recipient_id=participant,
                    created_at=at,
                    data={
                        "account": account,
                        "points": str(sum(int(e.quantity) for e in entries)),
                    },
                )
                for (participant, account), entries in sorted(groups.items())
            ]
        )

    @staticmethod
    def _use_entry(
        view: RewardView, kind: EntryKind, quantity: int, at: datetime, cause: str
    ) -> Entry:
        return Entry(
            entry_id=sub_id("ent", view.reward.reward_id, derive_id(kind.value, cause)),
            reward_id=view.reward.reward_id,
            program_id=view.reward.program_id,
            participant_id=view.reward.participant_id,
            kind=kind,
            quantity=Decimal(quantity),
            at=at,
            cause=cause,
            state_after=view.state,
        )

    def referral_of(self, referee_id: str) -> Referral | None:
        """The referee's referral, or None."""
        require_id("referee_id", referee_id)
        with self._store.unit_of_work() as uow:
            return uow.referrals.by_referee(self._program_id, referee_id)

    # -- outbox --------------------------------------------------------------------------
    def dispatch(self, limit: int = 1000, now: datetime | None = None) -> DispatchResult:
        """Deliver up to ``limit`` due notifications through the notifier.

        Due are the notifications never attempted and those whose retry time (set by the
        engine's [`RetrySchedule`][referralkit.RetrySchedule]) is at or before ``now``.
        Delivery is at least once: a notification is marked delivered only after the
        notifier returned (attempts are recorded in units of up to 100, so a process that
        stops half-way sends at most those again). One that raised is retried after the
        schedule's delay, and
        after its last attempt becomes a dead letter
        ([`dead_letters`][referralkit.Engine.dead_letters]). Two dispatchers running at
        once may both send a notification (receivers deduplicate on its id); none is lost.
        A failing notifier never fails or undoes the events that queued the notifications.

        Args:
            limit: At most this many notifications (0 delivers nothing).
            now: Timezone-aware; the engine's clock by default. Also the time recorded for
                each attempt.

        Raises:
            InvalidInputError: ``limit`` is not an int >= 0.
            NaiveDatetimeError: ``now`` without a time zone.
        """
        _count("limit", limit, 0)
        at = self._clock.now() if now is None else require_aware("now", now)
        if self._notifier is None or limit == 0:
            return DispatchResult(0, 0)
        with self._store.unit_of_work() as uow:
            due = uow.outbox.due(at, limit)
        delivered = failed = dead = 0
        marks: list[tuple[str, Callable[[UnitOfWork], None]]] = []
        try:
            for note, attempts in due:
                nid = note.notification_id
                try:
                    self._notifier.send(note)
                except Exception as exc:  # the notifier is host code: any failure is retried
                    failed += 1
                    retry_at = self._retry.next_attempt_at(at, attempts + 1, nid)
                    if retry_at is None:
                        dead += 1
                        log.error("notification %s is a dead letter: %r", nid, exc)
                    else:
                        log.warning("notification %s failed, retry at %s: %r", nid, retry_at, exc)
                    mark = functools.partial(self._mark_failed, nid, at, repr(exc), retry_at)
                    marks.append((nid, mark))
                else:
                    delivered += 1
                    marks.append((nid, functools.partial(self._mark_delivered, nid, at)))
                if len(marks) >= _MARK_BATCH:
                    self._record_attempts(marks)
                    marks.clear()
        finally:
            if marks:
                self._record_attempts(marks)
        return DispatchResult(delivered, failed, dead)

    def _record_attempts(self, marks: Sequence[tuple[str, Callable[[UnitOfWork], None]]]) -> None:
        """Record delivery attempts in one unit; if another dispatcher keeps conflicting
        with it, record them one by one and leave any still in conflict due (it is sent
        again later: delivery is at least once)."""

        def record(uow: UnitOfWork) -> None:
            for _, mark in marks:
                mark(uow)

        try:
            self._transact(record)
            return
        except ConcurrencyError:
            if len(marks) == 1:
                log.warning("notification %s is being marked elsewhere; it stays due", marks[0][0])
                return
        for nid, mark in marks:
            try:
                self._transact(mark)
            except ConcurrencyError:
                log.warning("notification %s is being marked elsewhere; it stays due", nid)

    def _mark_delivered(self, notification_id: str, at: datetime, uow: UnitOfWork) -> None:
        uow.outbox.mark_delivered(notification_id, at)

    def _mark_failed(
        self,
        notification_id: str,
        at: datetime,
        error: str,
        retry_at: datetime | None,
        uow: UnitOfWork,
    ) -> None:
        if retry_at is None:
            uow.outbox.mark_dead(notification_id, at, error)
        else:
            uow.outbox.mark_failed(notification_id, at, error, retry_at)

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Notifications whose delivery attempts ran out, oldest first, with their attempts
        and last error.

        Raises:
            InvalidInputError: ``limit`` is not an int >= 0.
        """
        _count("limit", limit, 0)
        with self._store.unit_of_work() as uow:
            return uow.outbox.dead(limit)

    def retry_dead(self, notification_ids: Iterable[str] | None = None) -> int:
        """Put dead letters back in the outbox, due at once with a fresh set of attempts
        (the next ``dispatch`` sends them).

        Args:
            notification_ids: The dead letters to retry; None retries every one. Ids that
                are not dead letters (unknown, pending or delivered) are ignored.

        Returns:
            How many dead letters became pending again.

        Raises:
            InvalidInputError: ``notification_ids`` is a single string, or holds a non-string.
        """
        if notification_ids is None:
            total = 0
            while True:

                def revive_batch(uow: UnitOfWork) -> int:
                    ids = [d.notification.notification_id for d in uow.outbox.dead(500)]
                    return uow.outbox.revive(ids) if ids else 0

                done = self._transact(revive_batch)
                total += done
                if done < 500:
                    return total
        if isinstance(notification_ids, str):
            raise InvalidInputError(
                "notification_ids", notification_ids, "must be a collection of ids, not one str"
            )
        if not isinstance(notification_ids, Iterable):
            raise InvalidInputError(
                "notification_ids", notification_ids, "must be a collection of ids, or None"
            )
        ids = list(notification_ids)
        for nid in ids:
            if not isinstance(nid, str):
                raise InvalidInputError("notification_ids", nid, "must hold str ids")
        if not ids:
            return 0
        return self._transact(lambda uow: uow.outbox.revive(ids))

    # -- manual re-attribution (Engine.reattribute is in _reattribution) -------------
    def _backfill(self, uow: UnitOfWork, version: Program, referral: Referral) -> None:
        """Grant a new referral the rewards of its referee's past sign-up and purchases."""
        pid = self._program_id
        who = referral.referee_id
        past = [
            r.event
            for _, r in events_about(uow, pid, [who])
            if isinstance(r.event, Signup | Purchase) and r.event.participant_id == who
        ]
        number = 0
        first = 0
        converted = False
        referee = uow.participants.get(pid, who)
        country = None if referee is None else referee.country
        for ev in past:
            if isinstance(ev, Signup):
                self._signup_reward(uow, version, referral, ev, country)
                continue
            number += 1
            if ev.at < referral.created_at:
                continue  # paid before the referral existed, as Engine.handle decides
            order = uow.orders.get(pid, ev.order_id)
            reversed_key = (pid, ORDER_REVERSED, ev.order_id)
            if order is None or order.referral_id is not None:
                continue
            if uow.counters.get([reversed_key])[reversed_key] > 0:
                continue  # refunded or charged back before: nothing to backfill
            priced, _, converts = self._replay_purchase(
                uow, version, referral, ev, order, number, converted, country
            )
            if converts:
                converted = True
                first = number
                uow.counters.add((pid, CONVERSIONS, referral.referral_id), _ONE)
                uow.counters.add(
                    (pid, _REFERRER_SUCCESSFUL_REFERRALS, referral.referrer_id),
                    _ONE,
                )
                self._update_status(
                    uow,
                    referral.referrer_id,
                    ev.at,
                    ev.event_id,
                    StatusBasis.SUCCESSFUL_REFERRALS,
                    (ev.at, _ONE),
                )
            uow.counters.add(
                (pid, _REFERRER_REVENUE_REFERRED, referral.referrer_id),
                priced.amount.amount,
            )
            mark = Decimal(2) if converted and number == first else _ONE
            uow.counters.add((pid, ORDER_BACKFILLED, ev.order_id), mark)

    def _signup_reward(
        self,
        uow: UnitOfWork,
        version: Program,
        referral: Referral,
        ev: Signup,
        country: str | None,
        salt: tuple[str, ...] = (),
    ) -> tuple[tuple[RewardGrant, ...], tuple[str, ...], list[Decision]]:
        """The sign-up policies' rewards of ``referral`` for ``ev``, paid after the fact (a
        backfill, a re-attribution, a referral bound at the first purchase)."""
        snapshot = self._snapshot(uow, version, referral)
        return self._reward(
            uow,
            version,
            referral,
            ev,
            _SIGNUP_TRIGGERS,
            snapshot,
            None,
            country=country,
            salt=salt,
        )

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
    ) -> tuple[Purchase, tuple[str, ...], bool]:
        """Evaluate the referee's ``number``-th purchase, handled before, for ``referral``
        as ``handle`` would have: priced at its order's recorded rate, qualified by the
        same rule. Returns the purchase as priced, the ids of the rewards granted, and
        whether it converts the referral."""
        rate = order.exchange_rate
        priced = ev
        if rate is not None:
            priced = convert_purchase(ev, rate, version.currency, version.rounding)
        triggers, _ = qualifying_triggers(version, number, priced.amount, converted_before)
        if not triggers:
            return priced, (), False
        purchases_key = (self._program_id, _REFEREE_PURCHASES, referral.referee_id)
        snapshot = self._snapshot(uow, version, referral, extra=[purchases_key])
        snapshot[purchases_key] = Decimal(number - 1)
        grants, reward_ids, decisions = self._reward(
            uow,
            version,
            referral,
            priced,
            frozenset(triggers),
            snapshot,
            ev.amount,
            rate,
            country,
            salt,
        )
        converts = purchase_converts(triggers, bool(grants), decisions, converted_before)
        return priced, reward_ids, converts

    def _backfilled(self, uow: UnitOfWork, order: OrderRecord) -> OrderRecord:
        """An order counted for a referral by ``reattribute`` after it was recorded."""
        if order.referral_id is not None:
            return order
        key = (self._program_id, ORDER_BACKFILLED, order.order_id)
        mark = uow.counters.get([key])[key]
        if not mark:
            return order
        referral_id = derive_id("ref", self._program_id, order.participant_id)
        return attrs.evolve(order, referral_id=referral_id, converted=mark > 1)

    def __repr__(self) -> str:
        return f"Engine(program={self._program_id!r}, versions={sorted(self._versions)})"
