"""Hypothesis strategies for referral programs, and scenarios to play against an engine.

The value strategies (``currencies``, ``money``, ``aware_datetimes``, ``participant_ids``,
``email_aliases``, ``reward_values``, ``programs``) build valid inputs. ``event_streams``
builds a whole [`Scenario`][referralkit.testing.strategies.Scenario]: a program and the
events a host application would deliver for it, duplicates, retries and reordering
included:

```python
from hypothesis import given

from referralkit.testing import check_all
from referralkit.testing.strategies import event_streams, programs


@given(event_streams(programs(currency="EUR")))
def test_my_program_never_pays_twice(scenario):
    engine = scenario.new_engine()
    scenario.play(engine)
    check_all(engine.store, engine)
```

Referral codes are random (``Engine.issue_code``), so a scenario cannot know them in
advance: a sign-up or click that uses a code names its owner in
[`Deliver.code_of`][referralkit.testing.strategies.Deliver] and the code is filled in when
the scenario is played, after the codes of ``Scenario.referrers`` were issued.

Money is always built from whole minor units, never from floats.
"""

from __future__ import annotations

import decimal
import enum
import heapq
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, Literal, TypeAlias, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from dateutil.relativedelta import relativedelta

from referralkit._adapters.memory import InMemoryStore
from referralkit._engine import Engine
from referralkit._errors import MissingExtraError, ReferralKitError, RetryLaterError
from referralkit._ports import Notifier, Store
from referralkit._program import Program
from referralkit._values.clock import ManualClock
from referralkit._values.events import (
    CHANNELS,
    Chargeback,
    Click,
    Event,
    Purchase,
    Refund,
    Signup,
)
from referralkit._values.money import Money, currency_exponent, parse_amount
from referralkit._values.records import CodeRecord, Outcome, Payout, PayoutStatus
from referralkit._values.retry import RetrySchedule
from referralkit._values.rewards import (
    Badge,
    Cash,
    Credit,
    Discount,
    FreePeriod,
    Points,
    RewardValue,
)
from referralkit.attribution._resolve import AttributionRules, Touch
from referralkit.policies import (
    All as AllOf,
)
from referralkit.policies import (
    Any as AnyOf,
)
from referralkit.policies import (
    Attr,
    Caps,
    Compare,
    Condition,
    DoubleSided,
    Escalating,
    FirstMatch,
    Hybrid,
    Level,
    Milestone,
    Milestones,
    PerItem,
    PointsPolicy,
    RevenueShare,
    RewardPolicy,
    SingleSided,
    Stack,
    StatusLevels,
    Tier,
    Tiered,
    Trigger,
    when,
)

try:
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("referralkit.testing.strategies", extra="testing") from exc

__all__ = [
    "REWARD_KINDS",
    "attribution_rules",
    "clicks",
    "touches",
    "CodeForm",
    "Deliver",
    "Delivery",
    "Playback",
    "Scenario",
    "Settle",
    "Step",
    "StepResult",
    "aware_datetimes",
    "budgets",
    "caps",
    "catalogue_policies",
    "catalogue_programs",
    "conditions",
    "copy_codes",
    "currencies",
    "email_aliases",
    "escalating_policies",
    "event_streams",
    "hybrid_policies",
    "milestones_policies",
    "money",
    "participant_ids",
    "payout_records",
    "per_item_policies",
    "points_policies",
    "programs",
    "replay",
    "retry_schedules",
    "revenue_share_policies",
    "reward_values",
    "status_levels",
    "tiered_policies",
]

#: The kinds ``reward_values`` can draw, as ``Unit.kind`` names them.
REWARD_KINDS = frozenset(
    {"cash", "credit", "discount", "discount_percent", "free_period", "points", "badge"}
)

#: Currencies drawn by default: minor units of 0 (JPY), 2 (USD), 3 (BHD) and 4 (CLF) digits.
_CURRENCIES = ("USD", "EUR", "GBP", "JPY", "CHF", "KRW", "BHD", "KWD", "ISK", "CLF")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
_ZONE_NAMES = ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
_DOMAINS = ("example.com", "gmail.com", "mail.test")
_GMAIL = ("gmail.com", "googlemail.com")
# Codes with a "U" can never be issued: Crockford base32 has no U and normalisation keeps it.
_UNKNOWN_CODES = ("UNKNOWN1", "nou-such", "UUUU-0000", "TYPO-U")
_MINUTES_PER_DAY = 24 * 60

Amount: TypeAlias = Money | Decimal | int | str
"""A bound for ``money``: Money, or an amount in major units (``Decimal``, ``int``, ``str``)."""


# -- values ------------------------------------------------------------------------------
def currencies(codes: Iterable[str] | None = None) -> st.SearchStrategy[str]:
    """ISO 4217 codes that can carry money amounts.

    Args:
        codes: The codes to draw from; by default a mix of common currencies with 0, 2, 3
            and 4 minor-unit digits (JPY, USD, BHD, CLF, ...), shrinking towards ``"USD"``.

    Raises:
        InvalidArgument: a code that is not an ISO 4217 currency with a minor unit.
    """
    chosen = tuple(_CURRENCIES if codes is None else codes)
    if not chosen:
        raise InvalidArgument("codes=() is empty: give at least one currency")
    for code in chosen:
        try:
            currency_exponent(code, "codes")
        except ReferralKitError as exc:
            raise InvalidArgument(str(exc)) from None
    return st.sampled_from(chosen)


def _minor_bound(value: Amount, currency: str, rounding: str, name: str) -> int:
    if isinstance(value, Money):
        if value.currency != currency:
            raise InvalidArgument(f"{name}={value!r} is not in currency={currency!r}")
        return value.to_minor()
    try:
        amount = parse_amount(value, name)
    except ReferralKitError as exc:
        raise InvalidArgument(str(exc)) from None
    exponent = currency_exponent(currency)
    return int(amount.scaleb(exponent).to_integral_value(rounding=rounding))


def _money_in(currency: str, min_minor: int, max_minor: int) -> st.SearchStrategy[Money]:
    if min_minor > max_minor:
        raise InvalidArgument(
            f"no {currency} amount lies between {min_minor} and {max_minor} minor units"
        )
    return st.integers(min_minor, max_minor).map(lambda units: Money.from_minor(units, currency))


def money(
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    min_value: Amount = 0,
    max_value: Amount = 10_000,
) -> st.SearchStrategy[Money]:
    """Money built from a whole number of minor units (never a float).

    Args:
        currency: A currency code, a strategy of codes, or None for ``currencies()``.
        min_value: The smallest amount, inclusive: Money in that currency, or major units
            (``Decimal``, ``int`` or ``str``; ``"0.01"``). Rounded up to the minor unit.
        max_value: The largest amount, inclusive; rounded down to the minor unit.

    Returns:
        Money in ``currency``, shrinking towards ``min_value``.

    Raises:
        InvalidArgument: a float bound, a bound in another currency, or an empty range.
    """

    def build(code: str) -> st.SearchStrategy[Money]:
        low = _minor_bound(min_value, code, decimal.ROUND_CEILING, "min_value")
        high = _minor_bound(max_value, code, decimal.ROUND_FLOOR, "max_value")
        return _money_in(code, low, high)

    if isinstance(currency, str):
        try:
            currency_exponent(currency)
        except ReferralKitError as exc:
            raise InvalidArgument(str(exc)) from None
        return build(currency)
    return (currencies() if currency is None else currency).flatmap(build)


def _zones() -> list[tzinfo]:
    zones: list[tzinfo] = [
        UTC,
        timezone(timedelta(hours=-5)),
        timezone(timedelta(hours=5, minutes=30)),
    ]
    for name in _ZONE_NAMES:
        try:
            zones.append(ZoneInfo(name))
        except ZoneInfoNotFoundError:  # pragma: no cover - no tz database installed
            continue
    return zones


def aware_datetimes(
    min_value: datetime = datetime(2020, 1, 1),
    max_value: datetime = datetime(2035, 12, 31),
    *,
    timezones: st.SearchStrategy[tzinfo] | None = None,
) -> st.SearchStrategy[datetime]:
    """Timezone-aware datetimes, in UTC, fixed offsets and zones with daylight saving time.

    Args:
        min_value: Naive lower bound of the local wall time (hypothesis' convention).
        max_value: Naive upper bound of the local wall time.
        timezones: Where the datetimes live; UTC, two fixed offsets and four IANA zones
            (one with a 30-minute DST shift) by default.

    Wall times that a DST change skips or repeats are never drawn: they do not round-trip
    through a store as equal values.
    """
    zones = st.sampled_from(_zones()) if timezones is None else timezones
    # Wall times a DST change skips (02:30 on a spring-forward night) name no instant, and
    # those it repeats (02:30 on a fall-back night) never compare equal to the same instant
    # in another zone (PEP 495): neither would come back from a store equal to itself.
    return st.datetimes(min_value, max_value, timezones=zones, allow_imaginary=False).filter(
        _unambiguous
    )


def _unambiguous(value: datetime) -> bool:
    return value.replace(fold=1 - value.fold).utcoffset() == value.utcoffset()


def participant_ids(*, max_size: int = 16) -> st.SearchStrategy[str]:
    """Participant ids as a host application might have them: letters of any script,
    digits and ``-_.:@``, between 1 and ``max_size`` characters."""
    alphabet = st.characters(categories=("L", "N"), include_characters="-_.:@")
    return st.text(alphabet=alphabet, min_size=1, max_size=max_size)


def email_aliases(email: str) -> st.SearchStrategy[str]:
    """Other spellings of ``email`` that reach the same inbox.

    Changes the case, adds a ``+tag`` and, for Gmail, inserts or removes dots in the
    local part and switches between ``gmail.com`` and ``googlemail.com``. Every alias
    normalises to the same address as ``email``
    ([`normalise_email`][referralkit.attribution.normalise_email]).

    Raises:
        InvalidArgument: ``email`` has no ``@``.
    """
    local, at, domain = email.strip().rpartition("@")
    if not at or not local:
        raise InvalidArgument(f"email={email!r} is not an email address")
    local = local.split("+", 1)[0]
    gmail = domain.lower() in _GMAIL

    @st.composite
    def alias(draw: st.DrawFn) -> str:
        name, host = local, domain
        if gmail:
            bare = name.replace(".", "")
            dots = draw(st.lists(st.booleans(), min_size=len(bare), max_size=len(bare)))
            name = "".join(
                c + ("." if dot and i < len(bare) - 1 else "")
                for i, (c, dot) in enumerate(zip(bare, dots, strict=True))
            )
            host = draw(st.sampled_from(_GMAIL))
        tag = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", max_size=8))
        text = f"{name}{'+' + tag if tag else ''}@{host}"
        upper = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
        return "".join(
            c.upper() if up and c.upper().lower() == c.lower() else c
            for c, up in zip(text, upper, strict=True)
        )

    return alias()


def reward_values(
    currency: str, *, kinds: Iterable[str] | None = None, max_amount: Amount = 100
) -> st.SearchStrategy[RewardValue]:
    """Reward values a policy may grant in a program of ``currency``.

    Args:
        currency: The program's currency; money values use it.
        kinds: Which kinds to draw, from ``REWARD_KINDS`` (all by default).
        max_amount: The largest money value (major units or Money).

    Raises:
        InvalidArgument: an unknown kind.
    """
    chosen = sorted(REWARD_KINDS if kinds is None else set(kinds))
    unknown = set(chosen) - REWARD_KINDS
    if unknown or not chosen:
        raise InvalidArgument(
            f"kinds={chosen!r}: must be a non-empty subset of {sorted(REWARD_KINDS)}"
        )
    positive = _money_in(
        currency, 1, _minor_bound(max_amount, currency, decimal.ROUND_FLOOR, "max_amount")
    )
    options: dict[str, st.SearchStrategy[RewardValue]] = {
        "cash": positive.map(Cash),
        "credit": positive.map(Credit),
        "discount": positive.map(lambda m: Discount(amount=m)),
        "discount_percent": st.integers(1, 1000).map(
            lambda tenths: Discount(percent=Decimal(tenths).scaleb(-1))
        ),
        "free_period": st.one_of(
            st.integers(1, 90).map(lambda d: FreePeriod(days=d)),
            st.integers(1, 12).map(lambda m: FreePeriod(months=m)),
        ),
        "points": st.integers(1, 10_000).map(Points),
        "badge": st.sampled_from(["bronze", "silver", "gold"]).map(Badge),
    }
    order = ["cash", "credit", "discount", "points", "discount_percent", "free_period", "badge"]
    return st.one_of([options[k] for k in order if k in chosen])


def _holds() -> st.SearchStrategy[relativedelta]:
    return st.one_of(
        st.just(relativedelta()),
        st.integers(1, 60).map(lambda d: relativedelta(days=d)),
        st.integers(1, 2).map(lambda m: relativedelta(months=m)),
    )


def _terms(draw: st.DrawFn, code: str) -> dict[str, Any]:
    """A program's basic terms (minimum order, zone, rounding, hold, first purchase only),
    drawn in one fixed order so every program strategy shrinks alike."""
    min_order = draw(st.none() | _money_in(code, 1, 200 * 10 ** currency_exponent(code)))
    return {
        "timezone": draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])),
        "rounding": draw(
            st.sampled_from([decimal.ROUND_HALF_UP, decimal.ROUND_HALF_EVEN, decimal.ROUND_DOWN])
        ),
        "hold": draw(_holds()),
        "min_order": min_order,
        "first_purchase_only": draw(st.booleans()),
    }


@st.composite
def _programs(
    draw: st.DrawFn,
    currency: str | st.SearchStrategy[str] | None,
    sided: Literal["single", "double"] | None,
    triggers: tuple[Trigger, ...],
    kinds: tuple[str, ...] | None,
    max_policies: int,
    program_id: str,
    effective_at: datetime,
) -> Program:
    if isinstance(currency, str):
        code = currency
    else:
        code = draw(currencies() if currency is None else currency)
    values = reward_values(code, kinds=kinds)
    policies: list[RewardPolicy] = []
    for i in range(draw(st.integers(1, max_policies))):
        side = sided or draw(st.sampled_from(["double", "single"]))
        trigger = draw(st.sampled_from(triggers))
        if side == "double":
            policies.append(
                DoubleSided(draw(values), draw(values), trigger=trigger, name=f"double_{i}")
            )
        else:
            policies.append(SingleSided(draw(values), trigger=trigger, name=f"single_{i}"))
    return Program(
        id=program_id,
        effective_at=effective_at,
        currency=code,
        policies=policies,
        **_terms(draw, code),
        caps=draw(caps(code)) if draw(st.booleans()) else Caps(),
        budget=draw(budgets(code)),
        precedence=draw(st.sampled_from(["all", "first_match", "highest"])),
    )


def programs(
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    sided: Literal["single", "double"] | None = None,
    triggers: Iterable[Trigger] | None = None,
    kinds: Iterable[str] | None = None,
    max_policies: int = 2,
    program_id: str = "referrals",
    effective_at: datetime = _EPOCH,
) -> st.SearchStrategy[Program]:
    """Programs of single- and double-sided policies with random terms.

    Each program has 1 to ``max_policies`` policies (named ``double_0``, ``single_1``,
    ...), a hold of none, some days or some months, an optional ``min_order``, a random
    ``first_purchase_only``, a time zone and a rounding mode (half-up, half-even or down).

    Args:
        currency: A code, a strategy of codes, or None for ``currencies()``.
        sided: Only ``"single"`` or only ``"double"``-sided policies; both by default.
        triggers: The triggers policies may pay on; all of [`Trigger`][referralkit.Trigger]
            by default. Pass the purchase triggers alone when every reward must be
            reversible by a refund (sign-up rewards belong to no order).
        kinds: Reward kinds, as for ``reward_values``.
        max_policies: At least 1.
        program_id: The program id.
        effective_at: When version 1 takes effect (timezone-aware); scenarios start then.

    Raises:
        InvalidArgument: an empty ``triggers`` or ``max_policies < 1``.
    """
    chosen = tuple(Trigger) if triggers is None else tuple(Trigger(t) for t in triggers)
    if not chosen:
        raise InvalidArgument("triggers=() is empty")
    if max_policies < 1:
        raise InvalidArgument(f"max_policies={max_policies!r} must be at least 1")
    if effective_at.tzinfo is None:
        raise InvalidArgument(f"effective_at={effective_at!r} must be timezone-aware")
    return _programs(
        currency,
        sided,
        chosen,
        None if kinds is None else tuple(kinds),
        max_policies,
        program_id,
        effective_at,
    )


# -- scenarios ---------------------------------------------------------------------------
class Delivery(enum.StrEnum):
    """How an event reaches the engine in a scenario."""

    ORIGINAL = "original"
    """The delivery that is expected to be accepted."""
    DUPLICATE = "duplicate"
    """The same event (same event id) delivered again: returns the stored outcome."""
    RETRY = "retry"
    """The same business id and fields under a new event id: accepted, earns nothing."""
    EARLY = "early"
    """A refund or chargeback delivered before its order: raises ``RetryLaterError`` and
    writes nothing; its ``ORIGINAL`` delivery comes after the order."""


class CodeForm(enum.StrEnum):
    """How a person types a referral code; every form normalises to the issued code."""

    AS_ISSUED = "as_issued"
    LOWER = "lower"
    GROUPED = "grouped"
    """Groups of four joined by dashes: ``ABCD-EFGH``."""
    CONFUSABLE = "confusable"
    """Digits 0 and 1 typed as the letters O and I."""

    def apply(self, code: str) -> str:
        """``code`` as typed in this form."""
        if self is CodeForm.LOWER:
            return code.lower()
        if self is CodeForm.GROUPED:
            return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
        if self is CodeForm.CONFUSABLE:
            return code.replace("0", "O").replace("1", "I")
        return code


@attrs.frozen
class Deliver:
    """One delivery of an event.

    Attributes:
        event: The event. For a sign-up or click whose ``code_of`` is set, its ``code`` is
            None here and filled in by ``resolve``.
        delivery: Original, duplicate, retry or early.
        code_of: The participant whose referral code the event carries, if any.
        code_form: How that code is typed.
    """

    event: Event
    delivery: Delivery = Delivery.ORIGINAL
    code_of: str | None = None
    code_form: CodeForm = CodeForm.AS_ISSUED

    def resolve(self, codes: Mapping[str, str]) -> Event:
        """The event to hand to the engine, with the code of ``code_of`` filled in.

        Args:
            codes: Participant id to issued code (``Scenario.issue_codes``).

        Raises:
            KeyError: no code was issued for ``code_of``.
        """
        if self.code_of is None:
            return self.event
        event = self.event
        if not isinstance(event, Signup | Click):  # pragma: no cover - built by event_streams
            raise TypeError(f"{type(event).__name__} carries no code")
        try:
            code = codes[self.code_of]
        except KeyError:
            raise KeyError(f"no code was issued for participant {self.code_of!r}") from None
        return attrs.evolve(event, code=self.code_form.apply(code))

    def describe(self) -> str:
        """One line for reports: delivery, event type, ids and the fields that matter."""
        ev = self.event
        head = f"{self.delivery.value:<9} {ev.kind:<10} {ev.event_id:<5} {ev.at:%Y-%m-%d %H:%M}"
        if self.code_of is not None:
            code = f"<code of {self.code_of!r}, {self.code_form.value}>"
        else:
            code = repr(getattr(ev, "code", None))
        if isinstance(ev, Signup):
            return f"{head} {ev.participant_id!r} code={code} email={ev.email!r}"
        if isinstance(ev, Click):
            return f"{head} code={code}"
        if isinstance(ev, Purchase):
            return f"{head} {ev.participant_id!r} order={ev.order_id} {ev.amount}"
        if isinstance(ev, Refund):
            return f"{head} refund={ev.refund_id} order={ev.order_id} {ev.amount}"
        return f"{head} chargeback={ev.chargeback_id} order={ev.order_id}"


@attrs.frozen
class Settle:
    """``Engine.settle(at)``: approve the rewards whose hold ended by ``at``."""

    at: datetime

    def describe(self) -> str:
        """One line for reports."""
        return f"settle    at {self.at:%Y-%m-%d %H:%M}"


Step: TypeAlias = Deliver | Settle
"""One step of a scenario."""


@attrs.frozen
class StepResult:
    """What playing one step did.

    Attributes:
        step: The step.
        event: The event handed to the engine (None for ``Settle``).
        outcome: The engine's outcome, or None if it raised.
        error: The ``RetryLaterError`` it raised, if any.
        approved: For ``Settle``, how many rewards were approved.
    """

    step: Step
    event: Event | None = None
    outcome: Outcome | None = None
    error: ReferralKitError | None = None
    approved: int | None = None

    @property
    def accepted(self) -> bool:
        """Whether the event was recorded now (not a duplicate, not rejected)."""
        return self.outcome is not None and not self.outcome.duplicate


@attrs.frozen
class Playback:
    """A played scenario: the codes issued and every step's result, in order."""

    scenario: Scenario
    codes: Mapping[str, str]
    results: tuple[StepResult, ...]

    @property
    def log(self) -> tuple[Event | Settle, ...]:
        """The accepted events and the settlements, in the order they were applied.

        Replaying it into an empty store holding the same program and codes must give the
        same records (see [`replay`][referralkit.testing.strategies.replay]).
        """
        out: list[Event | Settle] = []
        for result in self.results:
            if isinstance(result.step, Settle):
                out.append(result.step)
            elif result.accepted and result.event is not None:
                out.append(result.event)
        return tuple(out)


@attrs.frozen(repr=False)
class Scenario:
    """A program and the steps a host application takes with it.

    Attributes:
        program: The program the events are for.
        start: The scenario's first instant (the program's ``effective_at``); engines made
            by ``new_engine`` start their clock here.
        participants: Everyone taking part, in the order they were drawn.
        referrers: The participants whose codes are issued before the first step.
        steps: Deliveries and settlements, in play order.
    """

    program: Program
    start: datetime
    participants: tuple[str, ...]
    referrers: tuple[str, ...]
    steps: tuple[Step, ...]

    @property
    def events(self) -> tuple[Deliver, ...]:
        """The deliveries alone."""
        return tuple(s for s in self.steps if isinstance(s, Deliver))

    def new_engine(self, store: Store | None = None, *, notifier: Notifier | None = None) -> Engine:
        """An engine for the program over ``store`` (a new ``InMemoryStore`` by default),
        with a ``ManualClock`` set to ``start``."""
        if store is None:
            # cast: mypy does not see InMemoryStore as a Store (its unit of work's
            # repository attributes are concrete classes, the protocol's are invariant).
            store = cast("Store", InMemoryStore())
        return Engine(
            self.program,
            store,
            notifier=notifier,
            clock=ManualClock(self.start),
        )

    def issue_codes(self, engine: Engine) -> dict[str, str]:
        """Issue (or look up) the code of every referrer."""
        return {pid: engine.issue_code(pid) for pid in self.referrers}

    def play(self, engine: Engine) -> Playback:
        """Issue the referrers' codes, then run every step.

        A ``RetryLaterError`` is recorded in the step's result (an early delivery is
        expected to raise one); any other error propagates.
        """
        codes = self.issue_codes(engine)
        results: list[StepResult] = []
        for step in self.steps:
            if isinstance(step, Settle):
                results.append(StepResult(step, approved=engine.settle(step.at)))
                continue
            event = step.resolve(codes)
            try:
                outcome = engine.handle(event)
            except RetryLaterError as exc:
                results.append(StepResult(step, event, error=exc))
                continue
            results.append(StepResult(step, event, outcome))
        return Playback(self, codes, tuple(results))

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Show ``describe()`` in hypothesis' falsifying examples."""
        printer.text(self.describe())

    def describe(self) -> str:
        """The scenario as readable lines, one per step."""
        p = self.program
        lines = [
            f"Scenario: program {p.id!r} v{p.version} {p.currency}, hold={p.hold!r}, "
            f"min_order={p.min_order}, first_purchase_only={p.first_purchase_only}, "
            f"rounding={p.rounding}",
            *(f"  policy {pol!r}" for pol in p.policies),
            f"  participants={list(self.participants)!r} referrers={list(self.referrers)!r}",
        ]
        lines.extend(f"  {i:>3} {step.describe()}" for i, step in enumerate(self.steps))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.describe()


def replay(engine: Engine, log: Iterable[Event | Settle]) -> list[Outcome | int]:
    """Hand every event of ``log`` to ``engine`` and run every settlement, in order.

    Returns:
        The outcome of each event, or the number approved by each settlement.
    """
    out: list[Outcome | int] = []
    for item in log:
        out.append(engine.settle(item.at) if isinstance(item, Settle) else engine.handle(item))
    return out


def copy_codes(source: Store, target: Store) -> int:
    """Copy the referral codes of ``source`` into ``target`` (those it lacks), so a log
    can be replayed into ``target``.

    Returns:
        How many codes were copied.
    """
    records = [r for r in source.dump().get("codes", ()) if isinstance(r, CodeRecord)]
    copied = 0
    with target.unit_of_work() as uow:
        for record in records:
            if uow.participants.code_of(record.program_id, record.participant_id) is None:
                uow.participants.add_code(record)
                copied += 1
        uow.commit()
    return copied


# -- event streams ------------------------------------------------------------------------
class _Kind(enum.Enum):
    PLAIN = "no code"
    NONE = "never signs up"
    REFERRED = "a referrer's code"
    UNKNOWN = "an unknown code"
    SELF = "their own code"
    ALIAS = "a referrer's code and an alias of the referrer's email"


@attrs.define
class _Node:
    event: Event
    deps: list[int]
    code_of: str | None = None
    code_form: CodeForm = CodeForm.AS_ISSUED
    order: int | None = None  # for refunds and chargebacks: the purchase node


@attrs.frozen
class _Options:
    min_participants: int
    max_participants: int
    max_orders: int
    duplicates: bool
    retries: bool
    reorder: bool
    early: bool
    settle: bool
    clicks: bool


class _Builder:
    """Draws one scenario: a causal history, then deliveries of it."""

    def __init__(self, draw: st.DrawFn, program: Program, opts: _Options) -> None:
        self.draw = draw
        self.program = program
        self.opts = opts
        self.start = program.effective_at
        self.nodes: list[_Node] = []
        self.counts = {"e": 0, "o": 0, "r": 0, "c": 0}
        self.exponent = currency_exponent(program.currency)
        self.emails: dict[str, str | None] = {}
        self.signed_up: dict[str, int] = {}

    def next_id(self, prefix: str) -> str:
        self.counts[prefix] += 1
        return f"{prefix}{self.counts[prefix]}"

    def chance(self, one_in: int) -> bool:
        """True about once in ``one_in`` draws; shrinks to False."""
        return self.draw(st.integers(0, one_in - 1)) == one_in - 1

    def later(self, at: datetime, max_days: int) -> datetime:
        return at + timedelta(minutes=self.draw(st.integers(1, max_days * _MINUTES_PER_DAY)))

    def add(self, node: _Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    # -- the causal history -----------------------------------------------------------
    def build(self) -> Scenario:
        draw, opts = self.draw, self.opts
        n = draw(st.integers(opts.min_participants, opts.max_participants))
        people = draw(st.lists(participant_ids(), min_size=n, max_size=n, unique=True))
        chosen = set(
            draw(st.lists(st.sampled_from(people), min_size=1, max_size=n // 2 + 1, unique=True))
        )
        referrers = [p for p in people if p in chosen]
        # Whoever signs up does so before anyone uses their code (they got it on sign-up);
        # referrers who never sign up (affiliates given a code) can be used at any time.
        never = {p for p in people if self.chance(5)}
        self.emails = {}
        self.signed_up = {}
        for i, person in enumerate(people):
            if draw(st.booleans()):
                local = draw(st.sampled_from([f"user{i}", f"first.last{i}"]))
                self.emails[person] = f"{local}@{draw(st.sampled_from(_DOMAINS))}"
            else:
                self.emails[person] = None
            usable = [r for r in referrers if r != person and (r in never or r in self.signed_up)]
            aliases = [r for r in usable if r in self.signed_up and self.emails[r]]
            if person in never:
                kind = _Kind.NONE
            else:
                options = [_Kind.PLAIN, _Kind.UNKNOWN]
                options += [_Kind.REFERRED] * 4 if usable else []
                options += [_Kind.SELF] if person in chosen else []
                options += [_Kind.ALIAS] if aliases else []
                kind = draw(st.sampled_from(options))
            self.participant(person, kind, usable, aliases)
        steps = self.deliveries()
        return Scenario(self.program, self.start, tuple(people), tuple(referrers), steps)

    def signup(
        self,
        person: str,
        at: datetime,
        code_of: str | None,
        deps: list[int],
        *,
        code: str | None = None,
        email: str | None = None,
    ) -> int:
        """Add a sign-up, after the sign-up of the code's owner if they signed up."""
        owner = self.signed_up.get(code_of) if code_of and code_of != person else None
        if owner is not None:
            deps.append(owner)
            at = max(at, self.later(self.nodes[owner].event.at, 2))
        event = Signup(
            event_id=self.next_id("e"),
            participant_id=person,
            at=at,
            code=code,
            email=email,
            channel=self.draw(st.sampled_from(sorted(CHANNELS))),
        )
        form = self.draw(st.sampled_from(CodeForm)) if code_of else CodeForm.AS_ISSUED
        return self.add(_Node(event, deps, code_of, form))

    def participant(self, person: str, kind: _Kind, usable: list[str], aliases: list[str]) -> None:
        draw = self.draw
        at = self.start + timedelta(minutes=draw(st.integers(0, 20 * _MINUTES_PER_DAY)))
        code_of: str | None = None
        code: str | None = None
        email = self.emails[person]
        if kind is _Kind.REFERRED:
            code_of = draw(st.sampled_from(usable))
        elif kind is _Kind.SELF:
            code_of = person
        elif kind is _Kind.UNKNOWN:
            code = draw(st.sampled_from(_UNKNOWN_CODES))
        elif kind is _Kind.ALIAS:
            code_of = draw(st.sampled_from(aliases))
            owner_email = self.emails[code_of]
            assert owner_email is not None
            email = draw(email_aliases(owner_email))
        late = kind is _Kind.REFERRED and self.chance(4)
        signup: int | None = None
        if kind is not _Kind.NONE and not late:
            signup = self.signup(person, at, code_of, [], code=code, email=email)
            at = self.nodes[signup].event.at
        orders: list[int] = []
        purchase_at = at
        for _ in range(draw(st.integers(0, self.opts.max_orders))):
            purchase_at = self.later(purchase_at, 5)
            orders.append(self.purchase(person, purchase_at, [] if signup is None else [signup]))
        if late:  # an existing customer signs up with a code after buying
            signup = self.signup(
                person, self.later(purchase_at, 2), code_of, list(orders), email=email
            )
        if signup is None:
            return
        self.signed_up[person] = signup
        signup_at = self.nodes[signup].event.at
        if code_of is not None and self.opts.clicks and self.chance(3):
            click = Click(
                event_id=self.next_id("e"),
                at=signup_at - timedelta(minutes=draw(st.integers(1, 600))),
                visitor_id=f"visitor-{len(self.nodes)}",
            )
            self.nodes[signup].deps.append(self.add(_Node(click, [], code_of)))
        if self.chance(4):  # signs up again, maybe with another code
            again = draw(st.sampled_from([None, *usable]))
            self.signup(person, self.later(signup_at, 3), again, [signup])
        for order in orders:
            self.after_sales(order)

    def purchase(self, person: str, at: datetime, deps: list[int]) -> int:
        draw, program = self.draw, self.program
        candidates = [st.integers(1, 300 * 10**self.exponent)]
        if program.min_order is not None:
            m = program.min_order.to_minor()
            candidates.append(st.sampled_from([max(1, m - 1), m, m + 1]))
        units = draw(st.one_of(candidates))
        return self.add(
            _Node(
                Purchase(
                    event_id=self.next_id("e"),
                    participant_id=person,
                    order_id=self.next_id("o"),
                    amount=Money.from_minor(units, program.currency),
                    at=at,
                ),
                deps,
            )
        )

    def after_sales(self, order: int) -> None:
        """Refunds and chargebacks of one order, each after the previous one."""
        purchase = self.nodes[order].event
        assert isinstance(purchase, Purchase)
        plan = self.draw(
            st.sampled_from(["none", "partial", "full", "chargeback", "partial+chargeback"])
        )
        remaining = purchase.amount.to_minor()
        previous, at = order, purchase.at
        parts: list[int] = []
        if plan in ("partial", "partial+chargeback"):
            for _ in range(self.draw(st.integers(1, 3))):
                if remaining <= 1:
                    break
                part = self.draw(st.integers(1, remaining - 1))
                parts.append(part)
                remaining -= part
        elif plan == "full":
            if remaining > 1 and self.draw(st.booleans()):
                part = self.draw(st.integers(1, remaining - 1))
                parts += [part, remaining - part]
            else:
                parts.append(remaining)
        for part in parts:
            at = self.later(at, 10)
            refund = Refund(
                event_id=self.next_id("e"),
                refund_id=self.next_id("r"),
                order_id=purchase.order_id,
                amount=Money.from_minor(part, purchase.amount.currency),
                at=at,
            )
            previous = self.add(_Node(refund, [previous], order=order))
        if plan.endswith("chargeback"):
            chargeback = Chargeback(
                event_id=self.next_id("e"),
                chargeback_id=self.next_id("c"),
                order_id=purchase.order_id,
                at=self.later(at, 30),
            )
            self.add(_Node(chargeback, [previous], order=order))

    # -- deliveries ---------------------------------------------------------------------
    def deliveries(self) -> tuple[Step, ...]:
        draw, opts, nodes = self.draw, self.opts, self.nodes
        count = len(nodes)
        rank = {
            i: r for r, i in enumerate(sorted(range(count), key=lambda i: (nodes[i].event.at, i)))
        }
        if opts.reorder and count:
            jitter = draw(st.lists(st.integers(0, 3), min_size=count, max_size=count))
        else:
            jitter = [0] * count
        children: list[list[int]] = [[] for _ in nodes]
        waiting = [0] * count
        for i, node in enumerate(nodes):
            for dep in set(node.deps):
                children[dep].append(i)
                waiting[i] += 1
        ready = [(rank[i] + jitter[i], rank[i], i) for i in range(count) if not waiting[i]]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            _, _, i = heapq.heappop(ready)
            order.append(i)
            for child in children[i]:
                waiting[child] -= 1
                if not waiting[child]:
                    heapq.heappush(ready, (rank[child] + jitter[child], rank[child], child))
        assert len(order) == count, "the scenario's dependencies have a cycle"
        steps: list[Step] = [
            Deliver(nodes[i].event, Delivery.ORIGINAL, nodes[i].code_of, nodes[i].code_form)
            for i in order
        ]
        if opts.early:
            self.early(steps)
        if opts.duplicates:
            self.again(steps, Delivery.DUPLICATE)
        if opts.retries:
            self.again(steps, Delivery.RETRY)
        if opts.settle:
            self.settlements(steps)
        return tuple(steps)

    def early(self, steps: list[Step]) -> None:
        late = [i for i, node in enumerate(self.nodes) if node.order is not None]
        if not late:
            return
        picked = self.draw(st.lists(st.sampled_from(late), max_size=3, unique=True))
        for i in picked:
            node = self.nodes[i]
            assert node.order is not None
            order_id = self.nodes[node.order].event.event_id
            position = next(
                j
                for j, s in enumerate(steps)
                if isinstance(s, Deliver)
                and s.delivery is Delivery.ORIGINAL
                and s.event.event_id == order_id
            )
            steps.insert(self.draw(st.integers(0, position)), Deliver(node.event, Delivery.EARLY))

    def again(self, steps: list[Step], delivery: Delivery) -> None:
        for _ in range(self.draw(st.integers(0, 4))):
            candidates = [
                j
                for j, s in enumerate(steps)
                if isinstance(s, Deliver)
                and s.delivery is Delivery.ORIGINAL
                and (delivery is Delivery.DUPLICATE or not isinstance(s.event, Click))
            ]
            if not candidates:
                return
            j = self.draw(st.sampled_from(candidates))
            source = steps[j]
            assert isinstance(source, Deliver)
            event = source.event
            if delivery is Delivery.RETRY:
                event = attrs.evolve(event, event_id=self.next_id("e"))
            position = self.draw(st.integers(j + 1, len(steps)))
            steps.insert(position, attrs.evolve(source, event=event, delivery=delivery))

    def settlements(self, steps: list[Step]) -> None:
        k = self.draw(st.integers(0, 3))
        last = max((s.event.at for s in steps if isinstance(s, Deliver)), default=self.start)
        horizon = int((last - self.start) / timedelta(minutes=1)) + 90 * _MINUTES_PER_DAY
        positions = sorted(self.draw(st.lists(st.integers(0, len(steps)), min_size=k, max_size=k)))
        minutes = sorted(self.draw(st.lists(st.integers(0, horizon), min_size=k, max_size=k)))
        for position, offset in reversed(list(zip(positions, minutes, strict=True))):
            steps.insert(position, Settle(self.start + timedelta(minutes=offset)))
        if self.chance(2):  # and once every hold has ended
            end = max(self.start + timedelta(minutes=max(minutes, default=0)), last)
            steps.append(Settle(end + timedelta(days=120)))


@st.composite
def _scenarios(
    draw: st.DrawFn,
    program: Program | st.SearchStrategy[Program] | None,
    opts: _Options,
) -> Scenario:
    if program is None:
        chosen = draw(programs())
    elif isinstance(program, Program):
        chosen = program
    else:
        chosen = draw(program)
    return _Builder(draw, chosen, opts).build()


def event_streams(
    program: Program | st.SearchStrategy[Program] | None = None,
    *,
    min_participants: int = 2,
    max_participants: int = 6,
    max_orders: int = 3,
    duplicates: bool = True,
    retries: bool = True,
    reorder: bool = True,
    early: bool = True,
    settle: bool = True,
    clicks: bool = True,
) -> st.SearchStrategy[Scenario]:
    """Realistic scenarios: a program and the events a host application delivers for it.

    Some participants are referrers (their codes are issued before the first step). Each
    participant may sign up with no code, a referrer's code (typed in any
    [`CodeForm`][referralkit.testing.strategies.CodeForm], sometimes after a click on the link), an
    unknown code, their own code, or a referrer's code together with an alias of that
    referrer's email (a self-referral in disguise); some never sign up, some buy before
    signing up with a code (existing customers), some sign up twice. Participants place
    orders (some below the program's ``min_order``), and orders are partly or fully
    refunded, charged back, or both (a chargeback always comes last).

    The deliveries are then perturbed as webhooks and queues do:

    - ``reorder``: events are delivered a few places away from the order they happened in,
      keeping causal order (a refund after its order, an order's refunds in sequence, a
      sign-up that uses a referrer's email after the referrer's own sign-up).
    - ``early``: some refunds and chargebacks are also delivered before their order; the
      engine must refuse them with ``RetryLaterError``. The same event is delivered again
      (accepted) after the order.
    - ``duplicates``: some events are delivered again under the same event id.
    - ``retries``: some sign-ups, orders, refunds and chargebacks are delivered again
      under a new event id with the same fields.
    - ``settle``: ``Engine.settle`` runs at a few points, at non-decreasing times.

    Args:
        program: A program, a strategy of programs, or None for ``programs()``.
        min_participants: At least 1.
        max_participants: At least ``min_participants``.
        max_orders: Orders per participant, at most.
        duplicates: Re-deliver some events under the same event id.
        retries: Re-deliver some events under a new event id.
        reorder: Deliver events out of the order they happened in.
        early: Deliver some refunds and chargebacks before their order, too.
        settle: Interleave settlements.
        clicks: Add link clicks before some referred sign-ups.

    Returns:
        [`Scenario`][referralkit.testing.strategies.Scenario]s; play one with
        ``scenario.play(engine)``.

    Raises:
        InvalidArgument: inconsistent sizes.
    """
    if min_participants < 1 or max_participants < min_participants or max_orders < 0:
        raise InvalidArgument(
            f"min_participants={min_participants!r}, max_participants={max_participants!r}, "
            f"max_orders={max_orders!r}: need 1 <= min <= max and max_orders >= 0"
        )
    opts = _Options(
        min_participants,
        max_participants,
        max_orders,
        duplicates,
        retries,
        reorder,
        early,
        settle,
        clicks,
    )
    return _scenarios(program, opts)


# -- the policy catalogue ----------------------------------------------------------------
_GROWABLE = ("cash", "credit", "points")
_PURCHASE_TRIGGERS = (Trigger.FIRST_PURCHASE,)


def _code(draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None) -> str:
    if isinstance(currency, str):
        return currency
    return draw(currencies() if currency is None else currency)


def _same_unit(value: RewardValue, quantity: Decimal) -> RewardValue:
    from referralkit._values.rewards import reward_from_quantity

    return reward_from_quantity(value, quantity)


@st.composite
def _growing_values(draw: st.DrawFn, currency: str, size: int) -> list[RewardValue]:
    first = draw(reward_values(currency, kinds=_GROWABLE, max_amount=50))
    values = [first]
    for _ in range(size - 1):
        step = draw(st.integers(0, 50)) * first.quantity
        values.append(_same_unit(first, values[-1].quantity + step))
    return values


@st.composite
def tiered_policies(
    draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None = None, name: str = "tiered"
) -> Tiered:
    """``Tiered`` policies: 1 to 4 sorted tiers whose rewards never decrease, paid per tier
    or (for the referrer) with retroactive top-ups."""
    code = _code(draw, currency)
    size = draw(st.integers(1, 4))
    thresholds = sorted(draw(st.sets(st.integers(1, 20), min_size=size, max_size=size)))
    values = draw(_growing_values(code, size))
    side = draw(st.sampled_from(["referrer", "referee"]))
    mode = "per_tier" if side == "referee" else draw(st.sampled_from(["per_tier", "retroactive"]))
    tiers = [Tier(t, v) for t, v in zip(thresholds, values, strict=True)]
    return Tiered(tiers, side=side, name=name, mode=mode)


@st.composite
def escalating_policies(
    draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None = None, name: str = "escalating"
) -> Escalating:
    """``Escalating`` policies: a list, arithmetic steps or geometric steps, with a ceiling."""
    code = _code(draw, currency)
    style = draw(st.sampled_from(["step", "factor", "values"]))
    if style == "values":
        return Escalating(values=draw(_growing_values(code, draw(st.integers(1, 4)))), name=name)
    first = draw(reward_values(code, kinds=_GROWABLE, max_amount=50))
    ceiling = _same_unit(first, first.quantity * draw(st.integers(1, 10)))
    if style == "step":
        step = _same_unit(first, first.quantity * draw(st.integers(1, 3)))
        return Escalating(first=first, step=step, ceiling=ceiling, name=name)
    factor = Decimal(draw(st.integers(11, 30))).scaleb(-1)
    return Escalating(first=first, factor=factor, ceiling=ceiling, name=name)


@st.composite
def per_item_policies(
    draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None = None, name: str = "per_item"
) -> PerItem:
    """``PerItem`` policies for one or both sides, with optional sku / category filters."""
    code = _code(draw, currency)
    values = reward_values(code, max_amount=20)
    referrer = draw(st.none() | values)
    referee = draw(values) if referrer is None else draw(st.none() | values)
    names = st.none() | st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, unique=True)
    return PerItem(
        referrer=referrer,
        referee=referee,
        skus=draw(names),
        categories=draw(names),
        cap_per_referral=draw(st.none() | st.integers(1, 5)),
        trigger=draw(st.sampled_from([Trigger.FIRST_PURCHASE, Trigger.EVERY_PURCHASE])),
        name=name,
    )


def _percents() -> st.SearchStrategy[Decimal]:
    return st.integers(1, 10_000).map(lambda hundredths: Decimal(hundredths).scaleb(-2))


def _durations() -> st.SearchStrategy[relativedelta | None]:
    return st.one_of(
        st.none(),
        st.integers(1, 24).map(lambda m: relativedelta(months=m)),
        st.integers(1, 90).map(lambda d: relativedelta(days=d)),
    )


@st.composite
def revenue_share_policies(draw: st.DrawFn, name: str = "revenue_share") -> RevenueShare:
    """``RevenueShare`` policies: 0.01 to 100 %, for days, months or life, cash or credit."""
    return RevenueShare(
        draw(_percents()),
        duration=draw(_durations()),
        as_=draw(st.sampled_from(["cash", "credit"])),
        name=name,
    )


@st.composite
def hybrid_policies(
    draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None = None, name: str = "hybrid"
) -> Hybrid:
    """``Hybrid`` policies: a fixed reward plus a share."""
    code = _code(draw, currency)
    return Hybrid(
        fixed=draw(reward_values(code, max_amount=50)),
        percent=draw(_percents()),
        duration=draw(_durations()),
        as_=draw(st.sampled_from(["cash", "credit"])),
        name=name,
    )


def conditions(currency: str, *, max_depth: int = 2) -> st.SearchStrategy[Condition]:
    """Conditions over every kind of attribute, nested in ``All`` / ``Any``."""
    amounts = _money_in(currency, 0, 500 * 10 ** currency_exponent(currency))
    words = st.sampled_from(["a", "b", "c"])
    leaves: st.SearchStrategy[Condition] = st.one_of(
        st.tuples(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), amounts).map(
            lambda t: Compare("sale.amount", t[0], t[1])
        ),
        st.integers(0, 10).map(lambda n: Attr("referrer.successful_referrals") >= n),
        st.integers(0, 5).map(lambda n: Attr("referee.purchase_number") <= n),
        st.integers(0, 60).map(lambda n: Attr("referee.days_since_signup") < n),
        st.lists(st.sampled_from(sorted(CHANNELS)), min_size=1, unique=True).map(
            lambda cs: Attr("referral.channel").in_(cs)
        ),
        words.map(lambda w: Attr("sale.skus").contains(w)),
        words.map(lambda w: Attr("sale.categories").contains(w)),
        words.map(lambda w: Attr("sale.metadata.campaign") == w),
        amounts.map(lambda m: Attr("referrer.revenue_referred") >= m),
    )
    if max_depth <= 0:
        return leaves
    return st.recursive(leaves, _nested_conditions, max_leaves=4)


def _nested_conditions(inner: st.SearchStrategy[Condition]) -> st.SearchStrategy[Condition]:
    # A named function: Hypothesis inspects ``extend`` for use of its argument, which it
    # cannot always do for a lambda spread over several lines.
    return st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(AllOf),
        st.lists(inner, min_size=1, max_size=3).map(AnyOf),
    )


def _limit(code: str) -> st.SearchStrategy[Money | None]:
    return st.none() | _money_in(code, 1, 60 * 10 ** currency_exponent(code))


@st.composite
def caps(draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None = None) -> Caps:
    """``Caps`` with each cap absent or a small positive amount (so streams reach them)."""
    code = _code(draw, currency)
    return Caps(
        per_referral=draw(_limit(code)),
        per_referrer=draw(_limit(code)),
        per_referrer_day=draw(_limit(code)),
        per_referrer_week=draw(_limit(code)),
        per_referrer_month=draw(_limit(code)),
        per_referee=draw(_limit(code)),
    )


def budgets(currency: str) -> st.SearchStrategy[Money | None]:
    """None, or a program budget small enough for an event stream to exhaust."""
    return st.none() | _money_in(currency, 1, 150 * 10 ** currency_exponent(currency))


@st.composite
def milestones_policies(
    draw: st.DrawFn,
    currency: str | st.SearchStrategy[str] | None = None,
    name: str = "milestones",
    *,
    max_threshold: int = 12,
) -> Milestones:
    """``Milestones`` at 1 to 4 increasing thresholds (from 1 to ``max_threshold``), badges
    or bonuses."""
    code = _code(draw, currency)
    thresholds = sorted(draw(st.sets(st.integers(1, max_threshold), min_size=1, max_size=4)))
    values = st.builds(Badge, st.sampled_from(["starter", "pro", "legend"])) | reward_values(
        code, kinds=["cash", "credit", "points"]
    )
    return Milestones([Milestone(t, draw(values)) for t in thresholds], name=name)


@st.composite
def status_levels(draw: st.DrawFn, name: str = "status") -> StatusLevels:
    """``StatusLevels`` of 1 to 3 levels on successful referrals or points."""
    basis = draw(st.sampled_from(["successful_referrals", "points"]))
    top = 12 if basis == "successful_referrals" else 2_000
    minimums = sorted(draw(st.sets(st.integers(1, top), min_size=1, max_size=3)))
    names = ["bronze", "silver", "gold"]
    return StatusLevels(
        [Level(names[i], m) for i, m in enumerate(minimums)], basis=basis, name=name
    )


@st.composite
def points_policies(
    draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None = None, name: str = "points"
) -> PointsPolicy:
    """``PointsPolicy`` per referral and/or per unit, maybe expiring and redeemable."""
    code = _code(draw, currency)
    per_referral = draw(st.integers(0, 500))
    per_unit = Decimal(draw(st.integers(0 if per_referral else 1, 300))).scaleb(-2)
    return PointsPolicy(
        per_referral=per_referral,
        per_unit=per_unit,
        trigger=draw(st.sampled_from([Trigger.FIRST_PURCHASE, Trigger.EVERY_PURCHASE])),
        expires_after=draw(st.none() | st.builds(relativedelta, days=st.integers(1, 400))),
        redeem_rate=draw(st.none() | _money_in(code, 1, 10 ** currency_exponent(code))),
        redeem_as=draw(st.sampled_from(["credit", "cash", "discount"])),
        name=name,
    )


@st.composite
def catalogue_policies(
    draw: st.DrawFn, currency: str | st.SearchStrategy[str] | None = None, name: str = "policy"
) -> RewardPolicy:
    """Any policy of the catalogue, maybe under a condition or combined in a ``Stack`` or
    ``FirstMatch``, named ``name`` (parts are named ``name_0``, ``name_1``, ...)."""
    code = _code(draw, currency)
    kind = draw(
        st.sampled_from(
            [
                "single",
                "double",
                "tiered",
                "escalating",
                "per_item",
                "revenue_share",
                "hybrid",
                "when",
                "stack",
                "first_match",
                "milestones",
                "status_levels",
                "points",
            ]
        )
    )
    values = reward_values(code)
    if kind == "milestones":
        return draw(milestones_policies(code, name))
    if kind == "status_levels":
        return draw(status_levels(name))
    if kind == "points":
        return draw(points_policies(code, name))
    if kind == "single":
        return SingleSided(draw(values), name=name)
    if kind == "double":
        return DoubleSided(draw(values), draw(values), name=name)
    if kind == "tiered":
        return draw(tiered_policies(code, name))
    if kind == "escalating":
        return draw(escalating_policies(code, name))
    if kind == "per_item":
        return draw(per_item_policies(code, name))
    if kind == "revenue_share":
        return draw(revenue_share_policies(name))
    if kind == "hybrid":
        return draw(hybrid_policies(code, name))
    if kind == "when":
        inner = SingleSided(draw(values), trigger=Trigger.EVERY_PURCHASE, name=name)
        return when(draw(conditions(code)), inner)
    parts: list[RewardPolicy] = [
        SingleSided(draw(values), name=f"{name}_{i}") for i in range(draw(st.integers(1, 3)))
    ]
    if draw(st.booleans()):
        parts[0] = when(draw(conditions(code, max_depth=0)), parts[0])
    return Stack(parts, name=name) if kind == "stack" else FirstMatch(parts, name=name)


@st.composite
def catalogue_programs(
    draw: st.DrawFn,
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    max_policies: int = 3,
    program_id: str = "referrals",
    effective_at: datetime = _EPOCH,
) -> Program:
    """Programs of 1 to ``max_policies`` catalogue policies (``catalogue_policies``) with
    random terms, as ``programs`` draws them."""
    code = _code(draw, currency)
    size = draw(st.integers(1, max_policies))
    policies = [draw(catalogue_policies(code, f"p{i}")) for i in range(size)]
    return Program(
        id=program_id,
        effective_at=effective_at,
        currency=code,
        policies=policies,
        **_terms(draw, code),
    )


@st.composite
def payout_records(
    draw: st.DrawFn,
    currency: str | st.SearchStrategy[str] | None = None,
    *,
    program_id: str = "referrals",
) -> Payout:
    """[`Payout`][referralkit.Payout] records in every status, as a store keeps them: a
    cash or credit amount with what it netted, 1 to 5 reward ids, aware datetimes, and an
    error for failed ones."""
    code = _code(draw, currency)
    status = draw(st.sampled_from(list(PayoutStatus)))
    created = draw(aware_datetimes())
    updated = None if status is PayoutStatus.PENDING else draw(aware_datetimes())
    rewards = draw(
        st.lists(
            st.text("0123456789abcdef", min_size=24, max_size=24),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    return Payout(
        payout_id=f"pay_{draw(st.text('0123456789abcdef', min_size=24, max_size=24))}",
        program_id=program_id,
        participant_id=draw(participant_ids()),
        amount=draw(money(code, min_value=Money.from_minor(1, code))),
        kind=draw(st.sampled_from(["cash", "credit"])),
        reward_ids=tuple(sorted(f"rwd_{r}" for r in rewards)),
        netted=draw(money(code, max_value=Money.from_minor(10**4, code))),
        created_at=created,
        status=status,
        attempts=draw(st.integers(0, 9)),
        error="TimeoutError('bank')" if status is PayoutStatus.FAILED else None,
        updated_at=updated,
    )


def retry_schedules(*, max_attempts: int = 6) -> st.SearchStrategy[RetrySchedule]:
    """Valid [`RetrySchedule`][referralkit.RetrySchedule]s: 1 to ``max_attempts`` attempts,
    a first delay of 1 s to 10 min, a factor of 1, 1.5, 2 or 3, a cap of up to a day and a
    jitter of 0 to 20 %."""
    return st.builds(
        RetrySchedule,
        max_attempts=st.integers(1, max_attempts),
        first_delay=st.integers(1, 600).map(lambda s: timedelta(seconds=s)),
        factor=st.sampled_from([Decimal(1), Decimal("1.5"), Decimal(2), Decimal(3)]),
        max_delay=st.integers(600, 86_400).map(lambda s: timedelta(seconds=s)),
        jitter_percent=st.sampled_from([Decimal(0), Decimal(0), Decimal(5), Decimal(20)]),
    )


# -- attribution ------------------------------------------------------------------------------
_MODELS = ("last_touch", "first_touch", "first_bind")


def attribution_rules(
    *,
    max_window: timedelta = timedelta(days=60),
    bind_at: Sequence[str] = ("signup", "first_purchase"),
) -> st.SearchStrategy[AttributionRules]:
    """``AttributionRules`` with any model, a window from one minute to ``max_window``, and
    ``bind_at`` drawn from ``bind_at``."""
    return st.builds(
        AttributionRules,
        window=st.timedeltas(min_value=timedelta(minutes=1), max_value=max_window),
        model=st.sampled_from(_MODELS),
        code_beats_click=st.booleans(),
        bind_at=st.sampled_from(tuple(bind_at)),
        allow_existing_customers=st.booleans(),
    )


def touches(
    referrer_ids: st.SearchStrategy[str] | None = None,
    *,
    start: datetime = _EPOCH,
    max_days: int = 60,
) -> st.SearchStrategy[Touch]:
    """Pure ``Touch`` values (for ``resolve_attribution``): a click or a code by one of
    ``referrer_ids`` (any participant id by default), within ``max_days`` after ``start``,
    with any channel, and sometimes a campaign and a visitor id."""
    return st.builds(
        Touch,
        kind=st.sampled_from(("click", "code")),
        referrer_id=referrer_ids if referrer_ids is not None else participant_ids(),
        at=st.integers(0, max_days * _MINUTES_PER_DAY).map(lambda m: start + timedelta(minutes=m)),
        channel=st.sampled_from(sorted(CHANNELS)),
        campaign=st.none() | st.sampled_from(("spring", "black-friday")),
        visitor_id=st.none() | st.sampled_from(("v-1", "v-2")),
    )


@st.composite
def clicks(
    draw: st.DrawFn,
    codes: Sequence[str],
    visitor_ids: Sequence[str],
    *,
    start: datetime = _EPOCH,
    max_days: int = 60,
) -> Click:
    """A ``Click`` on one of ``codes`` (as issued, or typed in another form) by one of
    ``visitor_ids``, within ``max_days`` after ``start``, with a channel and sometimes
    campaign / UTM fields. Event ids are unique within one test case's draws only by
    chance: give clicks your own ids when you need them unique."""
    if not codes or not visitor_ids:
        raise InvalidArgument("clicks() needs at least one code and one visitor id")
    code = draw(st.sampled_from(list(codes)), label="code")
    form = draw(st.sampled_from(CodeForm), label="form")
    minutes = draw(st.integers(0, max_days * _MINUTES_PER_DAY), label="minutes")
    return Click(
        event_id=f"click-{draw(st.integers(0, 2**32)):x}",
        at=start + timedelta(minutes=minutes),
        code=form.apply(code),
        visitor_id=draw(st.sampled_from(list(visitor_ids)), label="visitor"),
        channel=draw(st.sampled_from(sorted(CHANNELS)), label="channel"),
        campaign=draw(st.none() | st.sampled_from(("spring", "launch")), label="campaign"),
        utm_source=draw(st.none() | st.sampled_from(("newsletter", "twitter")), label="source"),
    )
