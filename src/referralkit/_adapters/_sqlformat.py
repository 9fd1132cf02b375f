"""The storage format both SQL stores share: UTC timestamps that sort as text, exact
integers for money and counters; and the row decoders, one per table, each reading a row
of its ``*_COLUMNS`` in order. A decoder raises ``ValueError`` (``InvalidInputError`` and
``codec.CodecError`` are ones) or ``TypeError`` for a value it cannot read; each store
reports that as its own corrupt-row error naming the row."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from referralkit._adapters.memory import OutboxStatus
from referralkit._errors import StoreError
from referralkit._ports import event_key
from referralkit._values import codec
from referralkit._values.canonical import utc_text
from referralkit._values.money import Money
from referralkit._values.rates import Rate
from referralkit._values.records import (
    ChargebackRecord,
    CodeRecord,
    Entry,
    EntryKind,
    EventRecord,
    Notification,
    OrderRecord,
    ParticipantRecord,
    Payout,
    PayoutStatus,
    ProgramRecord,
    Referral,
    RefundRecord,
    Reward,
    RewardState,
    Role,
    TouchRecord,
)
from referralkit._values.rewards import Badge, Cash, Credit, Discount, FreePeriod, Points, Unit

__all__ = [
    "CHARGEBACK_COLUMNS",
    "CODE_COLUMNS",
    "COUNTER_SCALE",
    "ENTRY_COLUMNS",
    "EVENT_COLUMNS",
    "ORDER_COLUMNS",
    "OUTBOX_COLUMNS",
    "PARTICIPANT_COLUMNS",
    "PAYOUT_COLUMNS",
    "PROGRAM_COLUMNS",
    "REFERRAL_COLUMNS",
    "REFUND_COLUMNS",
    "REWARD_COLUMNS",
    "TOUCH_COLUMNS",
    "chargeback",
    "code",
    "entry",
    "event_record",
    "notification",
    "opt_ts",
    "order",
    "outbox_status",
    "participant",
    "payout",
    "program",
    "rate",
    "rate_columns",
    "referral",
    "refund",
    "reward",
    "reward_value_exponent",
    "reward_value_text",
    "reward_value_unit",
    "scaled",
    "stored_event_key",
    "touch",
    "ts",
]

#: Counters are integers of 10**-6 units: exact for every ISO 4217 currency.
COUNTER_SCALE: Final = 6


#: Timestamps ``ts`` wrote lately, by the datetime object's ``id`` (an event's time is one
#: object written to several rows). Each entry holds its datetime, so no other object has
#: that id while the entry is kept; keyed by value instead, each new datetime would cost a
#: hash of an aware datetime, dearer than the text, and equal new objects are rare.
_TEXTS: dict[int, tuple[datetime, str]] = {}
_TEXTS_KEPT: Final = 1024


def ts(value: datetime) -> str:
    """A UTC timestamp that sorts as text: ``2026-01-05T09:00:00.000000+00:00``."""
    kept = _TEXTS.get(id(value))
    if kept is not None and kept[0] is value:
        return kept[1]
    if value.tzinfo is not UTC:
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    text = utc_text(value, ".000000")  # isoformat(timespec="microseconds")
    if len(_TEXTS) >= _TEXTS_KEPT:
        _TEXTS.clear()
    _TEXTS[id(value)] = (value, text)
    return text


def opt_ts(value: datetime | None) -> str | None:
    """``ts(value)``, or None."""
    return None if value is None else ts(value)


def scaled(value: Decimal, exponent: int, what: str) -> int:
    """``value * 10**exponent`` as an exact int; more decimal places is a ``StoreError``."""
    result = value.scaleb(exponent)
    if result != result.to_integral_value():
        raise StoreError(f"{what}={value}: more than {exponent} decimal places")
    return int(result)


#: The columns of ``rk_payouts`` in the order ``payout`` reads them.
PAYOUT_COLUMNS: Final = (
    "payout_id",
    "program_id",
    "participant_id",
    "kind",
    "currency",
    "amount_minor",
    "netted_minor",
    "reward_ids",
    "created_at",
    "status",
    "attempts",
    "error",
    "updated_at",
)


def rate_columns(value: Rate | None) -> tuple[str | None, str | None]:
    """An exchange rate as its two columns: the exact decimal text and the ISO date."""
    if value is None:
        return None, None
    return str(value.value), value.on.isoformat()


def rate(value: str | None, on: str | None) -> Rate | None:
    """The exchange rate ``rate_columns`` wrote, or None."""
    if value is None:
        return None
    if on is None:
        raise ValueError("exchange_rate without rate_on")
    return Rate(Decimal(value), date.fromisoformat(on))


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:  # fromisoformat gives a fixed offset, or none
        raise ValueError(f"naive datetime {text!r}")
    return value


def _opt_aware(text: str | None) -> datetime | None:
    return None if text is None else _aware(text)


#: The columns of ``rk_events`` in the order ``event_record`` reads them.
EVENT_COLUMNS: Final = ("program_id", "event_id", "digest", "schema_version", "event", "outcome")


def stored_event_key(text: str) -> str | None:
    """The ``event_key`` of a stored ``event`` column (for filling the column of the rows
    an older schema wrote)."""
    return event_key(codec.loads(text))


def event_record(r: Sequence[Any]) -> EventRecord:
    """An event record from a row of ``EVENT_COLUMNS``."""
    return EventRecord(r[0], r[1], r[2], codec.loads(r[4]), codec.loads(r[5]), r[3])


#: The columns of ``rk_programs`` in the order ``program`` reads them.
PROGRAM_COLUMNS: Final = (
    "program_id",
    "version",
    "digest",
    "effective_at",
    "published_at",
    "definition",
)


def program(r: Sequence[Any]) -> ProgramRecord:
    """A program version from a row of ``PROGRAM_COLUMNS``."""
    return ProgramRecord(r[0], r[1], r[2], _aware(r[3]), _aware(r[4]), codec.loads(r[5]))


#: The columns of ``rk_participants`` in the order ``participant`` reads them.
PARTICIPANT_COLUMNS: Final = (
    "program_id",
    "participant_id",
    "first_seen_at",
    "signed_up_at",
    "country",
)


def participant(r: Sequence[Any]) -> ParticipantRecord:
    """A participant from a row of ``PARTICIPANT_COLUMNS``."""
    return ParticipantRecord(r[0], r[1], _aware(r[2]), _opt_aware(r[3]), r[4])


#: The columns of ``rk_codes`` in the order ``code`` reads them.
CODE_COLUMNS: Final = (
    "program_id",
    "code",
    "participant_id",
    "created_at",
    "max_uses",
    "expires_at",
)


def code(r: Sequence[Any]) -> CodeRecord:
    """A code from a row of ``CODE_COLUMNS``."""
    return CodeRecord(r[0], r[1], r[2], _aware(r[3]), r[4], _opt_aware(r[5]))


#: The columns of ``rk_referrals`` in the order ``referral`` reads them.
REFERRAL_COLUMNS: Final = (
    "referral_id",
    "program_id",
    "program_version",
    "referrer_id",
    "referee_id",
    "code",
    "channel",
    "created_at",
    "event_id",
    "status",
    "explanation",
)


def referral(r: Sequence[Any]) -> Referral:
    """A referral from a row of ``REFERRAL_COLUMNS``."""
    return Referral(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], _aware(r[7]), r[8], r[9], codec.loads(r[10])
    )


#: The columns of ``rk_touches`` in the order ``touch`` reads them.
TOUCH_COLUMNS: Final = (
    "program_id",
    "touch_id",
    "kind",
    "at",
    "event_id",
    "visitor_id",
    "participant_id",
    "referrer_id",
    "code",
    "channel",
    "campaign",
    "data",
)


def touch(r: Sequence[Any]) -> TouchRecord:
    """A touch from a row of ``TOUCH_COLUMNS``."""
    return TouchRecord(
        r[0],
        r[1],
        r[2],
        _aware(r[3]),
        r[4],
        r[5],
        r[6],
        r[7],
        r[8],
        r[9],
        r[10],
        codec.loads(r[11]),
    )


#: The columns of ``rk_orders`` in the order ``order`` reads them.
ORDER_COLUMNS: Final = (
    "program_id",
    "order_id",
    "participant_id",
    "amount_minor",
    "currency",
    "at",
    "event_id",
    "referral_id",
    "converted",
    "digest",
    "exchange_rate",
    "rate_on",
)


def order(r: Sequence[Any]) -> OrderRecord:
    """An order from a row of ``ORDER_COLUMNS``."""
    amount = Money.from_minor(r[3], r[4])
    return OrderRecord(
        r[0],
        r[1],
        r[2],
        amount,
        _aware(r[5]),
        r[6],
        r[7],
        bool(r[8]),
        r[9],
        rate(r[10], r[11]),
    )


#: The columns of ``rk_refunds`` in the order ``refund`` reads them.
REFUND_COLUMNS: Final = (
    "program_id",
    "refund_id",
    "order_id",
    "amount_minor",
    "currency",
    "at",
    "event_id",
    "digest",
)


def refund(r: Sequence[Any]) -> RefundRecord:
    """A refund from a row of ``REFUND_COLUMNS``."""
    amount = Money.from_minor(r[3], r[4])
    return RefundRecord(r[0], r[1], r[2], amount, _aware(r[5]), r[6], r[7])


#: The columns of ``rk_chargebacks`` in the order ``chargeback`` reads them.
CHARGEBACK_COLUMNS: Final = ("program_id", "chargeback_id", "order_id", "at", "event_id", "digest")


def chargeback(r: Sequence[Any]) -> ChargebackRecord:
    """A chargeback from a row of ``CHARGEBACK_COLUMNS``."""
    return ChargebackRecord(r[0], r[1], r[2], _aware(r[3]), r[4], r[5])


#: The columns of ``rk_rewards`` in the order ``reward`` reads them.
REWARD_COLUMNS: Final = (
    "reward_id",
    "program_id",
    "program_version",
    "referral_id",
    "participant_id",
    "role",
    "value",
    "policy",
    "source_event_id",
    "order_id",
    "base_minor",
    "base_currency",
    "created_at",
    "payable_at",
    "item",
    "exchange_rate",
    "rate_on",
)


def reward(r: Sequence[Any]) -> Reward:
    """A reward from a row of ``REWARD_COLUMNS``."""
    return Reward(
        reward_id=r[0],
        program_id=r[1],
        program_version=r[2],
        referral_id=r[3],
        participant_id=r[4],
        role=_ROLES.get(r[5]) or Role(r[5]),
        value=_reward_value(r[6]),
        policy=r[7],
        source_event_id=r[8],
        order_id=r[9],
        base_amount=None if r[10] is None else Money.from_minor(r[10], r[11]),
        created_at=_aware(r[12]),
        payable_at=_aware(r[13]),
        item=r[14],
        exchange_rate=rate(r[15], r[16]),
    )


#: Reward values read lately, by their text: a program pays a few values many times over,
#: and a value is frozen, so one decoded value serves every reward with that text.
_VALUES: dict[str, Any] = {}
_VALUES_KEPT: Final = 256
_VALUE_TYPES: Final = (Cash, Credit, Discount, FreePeriod, Points, Badge)


def _reward_value(text: str) -> Any:
    value = _VALUES.get(text)
    if value is None:
        value = codec.loads(text)
        if isinstance(value, _VALUE_TYPES):
            if len(_VALUES) >= _VALUES_KEPT:
                _VALUES.clear()
            _VALUES[text] = value
    return value


#: Reward values written lately, by the value object's ``id`` (a policy grants one value
#: object to many rewards): the value (kept, so no other object has its id while the entry
#: is kept) and its text. Only the reward value types, frozen all through, are kept.
_TEXTS_OF_VALUES: dict[int, tuple[Any, str]] = {}


def reward_value_text(value: Any) -> str:
    """``codec.dumps(value)`` of a reward value, remembered for the same object."""
    kept = _TEXTS_OF_VALUES.get(id(value))
    if kept is not None and kept[0] is value:
        return kept[1]
    text = codec.dumps(value)
    if type(value) in _VALUE_TYPES:
        if len(_TEXTS_OF_VALUES) >= _VALUES_KEPT:
            _TEXTS_OF_VALUES.clear()
        _TEXTS_OF_VALUES[id(value)] = (value, text)
    return text


#: Reward values' units, and their exponents once asked for, by the value object's ``id``
#: (as ``_TEXTS_OF_VALUES``): a value's ``unit`` is a new object at each call.
_UNITS_OF_VALUES: dict[int, list[Any]] = {}


def _unit_entry(value: Any) -> list[Any]:
    kept = _UNITS_OF_VALUES.get(id(value))
    if kept is not None and kept[0] is value:
        return kept
    entry = [value, value.unit, None]
    if type(value) in _VALUE_TYPES:
        if len(_UNITS_OF_VALUES) >= _VALUES_KEPT:
            _UNITS_OF_VALUES.clear()
        _UNITS_OF_VALUES[id(value)] = entry
    return entry


def reward_value_unit(value: Any) -> Unit:
    """``value.unit`` of a reward value, remembered for the same object."""
    unit: Unit = _unit_entry(value)[1]
    return unit


def reward_value_exponent(value: Any) -> int:
    """``value.unit.exponent`` of a reward value, remembered for the same object."""
    entry = _unit_entry(value)
    exponent = entry[2]
    if exponent is None:
        exponent = entry[2] = entry[1].exponent
    return int(exponent)


#: Enum members by value, looked up faster than by calling the enum (which still reports a
#: value that is none of them).
_ROLES: Final[dict[Any, Role]] = {m.value: m for m in Role}
_ENTRY_KINDS: Final[dict[Any, EntryKind]] = {m.value: m for m in EntryKind}
_STATES: Final[dict[Any, RewardState]] = {m.value: m for m in RewardState}


#: The columns of ``rk_entries`` in the order ``entry`` reads them.
ENTRY_COLUMNS: Final = (
    "entry_id",
    "reward_id",
    "program_id",
    "participant_id",
    "kind",
    "quantity_minor",
    "exponent",
    "at",
    "cause",
    "state_after",
    "actor",
)


def entry(r: Sequence[Any]) -> Entry:
    """A ledger entry from a row of ``ENTRY_COLUMNS``."""
    return Entry(
        entry_id=r[0],
        reward_id=r[1],
        program_id=r[2],
        participant_id=r[3],
        kind=_ENTRY_KINDS.get(r[4]) or EntryKind(r[4]),
        quantity=Decimal(r[5]).scaleb(-r[6]),
        at=_aware(r[7]),
        cause=r[8],
        state_after=_STATES.get(r[9]) or RewardState(r[9]),
        actor=r[10],
    )


#: The columns of ``rk_outbox`` in the order ``notification`` and ``outbox_status`` read
#: them.
OUTBOX_COLUMNS: Final = (
    "notification_id",
    "program_id",
    "kind",
    "recipient_id",
    "created_at",
    "data",
    "delivered_at",
    "attempts",
    "last_error",
    "next_attempt_at",
    "dead_at",
)


def notification(r: Sequence[Any]) -> Notification:
    """A notification from a row of ``OUTBOX_COLUMNS``."""
    return Notification(r[0], r[1], r[2], r[3], _aware(r[4]), codec.loads(r[5]))


def outbox_status(r: Sequence[Any]) -> OutboxStatus:
    """A notification's delivery status from a row of ``OUTBOX_COLUMNS``."""
    return OutboxStatus(_opt_aware(r[6]), r[7], r[8], _opt_aware(r[9]), _opt_aware(r[10]))


def payout(r: Sequence[Any]) -> Payout:
    """A payout from a row of ``PAYOUT_COLUMNS``; a bad value raises ``ValueError`` (or an
    ``InvalidInputError``), which each store reports as a corrupt row."""
    return Payout(
        payout_id=r[0],
        program_id=r[1],
        participant_id=r[2],
        kind=r[3],
        amount=Money.from_minor(r[5], r[4]),
        netted=Money.from_minor(r[6], r[4]),
        reward_ids=tuple(r[7].split(",")) if r[7] else (),
        created_at=_aware(r[8]),
        status=PayoutStatus(r[9]),
        attempts=r[10],
        error=r[11],
        updated_at=None if r[12] is None else _aware(r[12]),
    )
