"""A store on SQLAlchemy 2 Core, for PostgreSQL and MariaDB (and SQLite files).

The tables are those of ``referralkit.sql``, the layout ``SQLiteStore``
writes: money as integer minor units, datetimes as sortable UTC text, counters as integers
of 10⁻⁶ units, records as JSON in referralkit's codec. The database enforces the
invariants: unique keys for event ids, business ids, one referral per referee, codes,
reward, entry and notification ids.

Concurrency. A unit of work is one transaction on one connection. Correctness rests on
unique keys, atomic updates (``value = value + delta``, dialect upserts) and conflict
detection, with the engine retrying a unit that raised ``ConcurrencyError``:

- **PostgreSQL** runs each unit at ``REPEATABLE READ``: every read of a unit sees one
  snapshot, and a unit that writes a row (a counter, a reward's state, an outbox row)
  changed by a unit that committed after its snapshot fails with a serialization failure
  (SQLSTATE 40001) instead of overwriting it. ``READ COMMITTED`` would let the second
  writer go ahead on a decision made from stale reads (two workers spending the last of a
  cap), so it is not used.
- **MariaDB** runs at ``REPEATABLE READ`` with ``innodb_snapshot_isolation=ON`` (set on the
  connections the store uses; MariaDB's default from 11.6.2), which gives the same
  first-updater-wins rule (error 1020). On a server without that setting (MySQL, MariaDB
  before 10.6.18) units run one at a time under a named lock (``GET_LOCK``), like SQLite:
  correct, without concurrency between workers.
- **SQLite** units begin with ``BEGIN IMMEDIATE``: one writer at a time, like ``SQLiteStore``.

Serialization failures, deadlocks, lock-wait timeouts and unique-key violations raise
``ConcurrencyError``; lost connections raise ``StoreUnavailableError``; anything else a
``StoreError``, always ``from`` the driver's exception. After an error the unit is rolled
back, and ``commit()`` refuses.

Event-log positions (``rk_events.seq``) follow commit order, as ``EventLog.since``
promises: a unit's events are inserted when it commits, under a lock held to the end of the
transaction (``pg_advisory_xact_lock``, MariaDB ``GET_LOCK``), so a later commit always gets
a higher position and a reader paging through the log never skips one. Only that final
insert and the commit are serialized; a duplicate event id is a ``ConcurrencyError`` at
``commit()`` (the port allows it "at the latest when the unit of work commits").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import attrs

from referralkit._adapters import _sqlformat
from referralkit._adapters._sqlformat import COUNTER_SCALE as _COUNTER_SCALE
from referralkit._adapters._sqlformat import opt_ts as _opt_ts
from referralkit._adapters._sqlformat import scaled as _scaled
from referralkit._adapters._sqlformat import ts as _ts
from referralkit._errors import (
    ConcurrencyError,
    CorruptRecordError,
    InvalidInputError,
    MissingExtraError,
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
)

try:
    import sqlalchemy as sa
    from sqlalchemy import event as sa_event
    from sqlalchemy import exc as sa_exc
    from sqlalchemy.dialects import mysql as sa_mysql
    from sqlalchemy.dialects import postgresql as sa_postgresql
    from sqlalchemy.dialects import sqlite as sa_sqlite
except ImportError as exc:
    raise MissingExtraError("SQLAlchemyStore", extra="sqlalchemy") from exc

from referralkit import sql as _sql
from referralkit._adapters.memory import OutboxStatus
from referralkit._ports import CounterKey
from referralkit._values import codec
from referralkit._values.events import Event
from referralkit._values.money import Money
from referralkit._values.records import (
    ChargebackRecord,
    CodeRecord,
    DeadLetter,
    Entry,
    EntryKind,
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
    Role,
    TouchRecord,
)
from referralkit._values.rewards import Unit

__all__ = ["SQLAlchemyStore"]

T = TypeVar("T")

_CHUNK: Final = 500  # ids per IN (...) query
_LOCK_TIMEOUT: Final = 30  # seconds a MariaDB unit waits for the event-log lock
_PG_LOG_LOCK: Final = 0x726B5F6576656E74  # b"rk_event": pg_advisory_xact_lock key
_PG_MIGRATE_LOCK: Final = 0x726B5F736368656D  # b"rk_schem"
_SNAPSHOT_SET: Final = "referralkit.snapshot_isolation"  # connection.info flag

# PostgreSQL SQLSTATEs and MariaDB / MySQL error numbers.
_PG_CONFLICT: Final = frozenset({"40001", "40P01", "55P03"})
_PG_NOT_A_CONFLICT: Final = frozenset({"23502", "23514"})  # not null, check
_PG_UNAVAILABLE: Final = frozenset({"57P01", "57P02", "57P03", "53300"})
_MY_CONFLICT: Final = frozenset({1020, 1205, 1213})
_MY_NOT_A_CONFLICT: Final = frozenset({1048, 1364, 3819, 4025})
_MY_UNAVAILABLE: Final = frozenset({1040, 1053, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031})

#: backend -> (the extra that installs its driver, that driver's SQLAlchemy name)
_EXTRAS: Final = {
    "postgresql": ("postgres", "psycopg"),
    "mysql": ("mariadb", "pymysql"),
    "mariadb": ("mariadb", "pymysql"),
    "sqlite": ("sqlalchemy", "pysqlite"),
}
_BACKENDS: Final = frozenset(_EXTRAS)

_SQLITE: Final = "sqlite"
_POSTGRESQL: Final = "postgresql"
_MYSQL: Final = "mysql"  # MariaDB and MySQL


# -- encodings (exactly SQLiteStore's) ------------------------------------------------------


def _dt(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {text!r}")
    return value


def _opt_dt(text: str | None) -> datetime | None:
    return None if text is None else _dt(text)


def _unscaled(value: int) -> Decimal:
    return Decimal(value).scaleb(-_COUNTER_SCALE)


# -- row decoding ---------------------------------------------------------------------------
def _decode(table: str, key: object, build: Callable[[], T]) -> T:
    """``build()``, or a CorruptRecordError naming the row that could not be read."""
    try:
        return build()
    except (ValueError, TypeError, KeyError, ArithmeticError, AttributeError) as exc:
        raise CorruptRecordError(f"{table} row {key!r} cannot be read: {exc}") from exc


_E = _sql.events
_EVENT_COLUMNS: Final = (
    _E.c.program_id,
    _E.c.event_id,
    _E.c.digest,
    _E.c.schema_version,
    _E.c.event,
    _E.c.outcome,
)


def _event_record(r: Sequence[Any]) -> EventRecord:
    return _decode(
        "rk_events",
        (r[0], r[1]),
        lambda: EventRecord(r[0], r[1], r[2], codec.loads(r[4]), codec.loads(r[5]), r[3]),
    )


_PR = _sql.programs
_PROGRAM_COLUMNS: Final = (
    _PR.c.program_id,
    _PR.c.version,
    _PR.c.digest,
    _PR.c.effective_at,
    _PR.c.published_at,
    _PR.c.definition,
)


def _program(r: Sequence[Any]) -> ProgramRecord:
    return _decode(
        "rk_programs",
        (r[0], r[1]),
        lambda: ProgramRecord(r[0], r[1], r[2], _dt(r[3]), _dt(r[4]), codec.loads(r[5])),
    )


_PA = _sql.participants
_PARTICIPANT_COLUMNS: Final = (
    _PA.c.program_id,
    _PA.c.participant_id,
    _PA.c.first_seen_at,
    _PA.c.signed_up_at,
)


def _participant(r: Sequence[Any]) -> ParticipantRecord:
    return _decode(
        "rk_participants",
        (r[0], r[1]),
        lambda: ParticipantRecord(r[0], r[1], _dt(r[2]), _opt_dt(r[3])),
    )


_C = _sql.codes
_CODE_COLUMNS: Final = (
    _C.c.program_id,
    _C.c.code,
    _C.c.participant_id,
    _C.c.created_at,
    _C.c.max_uses,
    _C.c.expires_at,
)


def _code(r: Sequence[Any]) -> CodeRecord:
    return _decode(
        "rk_codes",
        (r[0], r[1]),
        lambda: CodeRecord(r[0], r[1], r[2], _dt(r[3]), r[4], _opt_dt(r[5])),
    )


_PD = _sql.personal_data
_R = _sql.referrals
_REFERRAL_COLUMNS: Final = (
    _R.c.referral_id,
    _R.c.program_id,
    _R.c.program_version,
    _R.c.referrer_id,
    _R.c.referee_id,
    _R.c.code,
    _R.c.channel,
    _R.c.created_at,
    _R.c.event_id,
    _R.c.status,
    _R.c.explanation,
)


def _referral(r: Sequence[Any]) -> Referral:
    return _decode(
        "rk_referrals",
        r[0],
        lambda: Referral(
            r[0], r[1], r[2], r[3], r[4], r[5], r[6], _dt(r[7]), r[8], r[9], codec.loads(r[10])
        ),
    )


_T = _sql.touches
_TOUCH_COLUMNS: Final = (
    _T.c.program_id,
    _T.c.touch_id,
    _T.c.kind,
    _T.c.at,
    _T.c.event_id,
    _T.c.visitor_id,
    _T.c.participant_id,
    _T.c.referrer_id,
    _T.c.code,
    _T.c.channel,
    _T.c.campaign,
    _T.c.data,
)


def _touch(r: Sequence[Any]) -> TouchRecord:
    return _decode(
        "rk_touches",
        (r[0], r[1]),
        lambda: TouchRecord(
            r[0],
            r[1],
            r[2],
            _dt(r[3]),
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            codec.loads(r[11]),
        ),
    )


_O = _sql.orders
_ORDER_COLUMNS: Final = (
    _O.c.program_id,
    _O.c.order_id,
    _O.c.participant_id,
    _O.c.amount_minor,
    _O.c.currency,
    _O.c.at,
    _O.c.event_id,
    _O.c.referral_id,
    _O.c.converted,
    _O.c.digest,
)


def _order(r: Sequence[Any]) -> OrderRecord:
    return _decode(
        "rk_orders",
        (r[0], r[1]),
        lambda: OrderRecord(
            r[0],
            r[1],
            r[2],
            Money.from_minor(r[3], r[4]),
            _dt(r[5]),
            r[6],
            r[7],
            bool(r[8]),
            r[9],
        ),
    )


_RF = _sql.refunds
_REFUND_COLUMNS: Final = (
    _RF.c.program_id,
    _RF.c.refund_id,
    _RF.c.order_id,
    _RF.c.amount_minor,
    _RF.c.currency,
    _RF.c.at,
    _RF.c.event_id,
    _RF.c.digest,
)


def _refund(r: Sequence[Any]) -> RefundRecord:
    return _decode(
        "rk_refunds",
        (r[0], r[1]),
        lambda: RefundRecord(r[0], r[1], r[2], Money.from_minor(r[3], r[4]), _dt(r[5]), r[6], r[7]),
    )


_CB = _sql.chargebacks
_CHARGEBACK_COLUMNS: Final = (
    _CB.c.program_id,
    _CB.c.chargeback_id,
    _CB.c.order_id,
    _CB.c.at,
    _CB.c.event_id,
    _CB.c.digest,
)


def _chargeback(r: Sequence[Any]) -> ChargebackRecord:
    return _decode(
        "rk_chargebacks",
        (r[0], r[1]),
        lambda: ChargebackRecord(r[0], r[1], r[2], _dt(r[3]), r[4], r[5]),
    )


_RW = _sql.rewards
_REWARD_COLUMNS: Final = (
    _RW.c.reward_id,
    _RW.c.program_id,
    _RW.c.program_version,
    _RW.c.referral_id,
    _RW.c.participant_id,
    _RW.c.role,
    _RW.c.value,
    _RW.c.policy,
    _RW.c.source_event_id,
    _RW.c.order_id,
    _RW.c.base_minor,
    _RW.c.base_currency,
    _RW.c.created_at,
    _RW.c.payable_at,
    _RW.c.item,
)


def _reward(r: Sequence[Any]) -> Reward:
    return _decode(
        "rk_rewards",
        r[0],
        lambda: Reward(
            reward_id=r[0],
            program_id=r[1],
            program_version=r[2],
            referral_id=r[3],
            participant_id=r[4],
            role=Role(r[5]),
            value=codec.loads(r[6]),
            policy=r[7],
            source_event_id=r[8],
            order_id=r[9],
            base_amount=None if r[10] is None else Money.from_minor(r[10], r[11]),
            created_at=_dt(r[12]),
            payable_at=_dt(r[13]),
            item=r[14],
        ),
    )


_EN = _sql.entries
_ENTRY_COLUMNS: Final = (
    _EN.c.entry_id,
    _EN.c.reward_id,
    _EN.c.program_id,
    _EN.c.participant_id,
    _EN.c.kind,
    _EN.c.quantity_minor,
    _EN.c.exponent,
    _EN.c.at,
    _EN.c.cause,
    _EN.c.state_after,
    _EN.c.actor,
)


def _entry(r: Sequence[Any]) -> Entry:
    return _decode(
        "rk_entries",
        r[0],
        lambda: Entry(
            entry_id=r[0],
            reward_id=r[1],
            program_id=r[2],
            participant_id=r[3],
            kind=EntryKind(r[4]),
            quantity=Decimal(r[5]).scaleb(-r[6]),
            at=_dt(r[7]),
            cause=r[8],
            state_after=RewardState(r[9]),
            actor=r[10],
        ),
    )


_CT = _sql.counters
_OB = _sql.outbox
_OUTBOX_COLUMNS: Final = (
    _OB.c.notification_id,
    _OB.c.program_id,
    _OB.c.kind,
    _OB.c.recipient_id,
    _OB.c.created_at,
    _OB.c.data,
    _OB.c.delivered_at,
    _OB.c.attempts,
    _OB.c.last_error,
    _OB.c.next_attempt_at,
    _OB.c.dead_at,
)


def _notification(r: Sequence[Any]) -> Notification:
    return _decode(
        "rk_outbox",
        r[0],
        lambda: Notification(r[0], r[1], r[2], r[3], _dt(r[4]), codec.loads(r[5])),
    )


_PO = _sql.payouts
_PAYOUT_COLUMNS: Final = tuple(_PO.c[name] for name in _sqlformat.PAYOUT_COLUMNS)


def _payout(r: Sequence[Any]) -> Payout:
    return _decode("rk_payouts", r[0], lambda: _sqlformat.payout(r))


def _exponent(reward_id: str, kind: str, code: str) -> int:
    return _decode("rk_rewards", reward_id, lambda: Unit(kind, code).exponent)


def _outbox_status(r: Sequence[Any]) -> OutboxStatus:
    return _decode(
        "rk_outbox",
        r[0],
        lambda: OutboxStatus(_opt_dt(r[6]), r[7], r[8], _opt_dt(r[9]), _opt_dt(r[10])),
    )


def _dead_letter(r: Sequence[Any]) -> DeadLetter:
    return DeadLetter(_notification(r), r[7], r[8], _decode("rk_outbox", r[0], lambda: _dt(r[10])))


# -- statements (compiled once per dialect by SQLAlchemy's cache) ----------------------------
def _p(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name)


def _limit() -> sa.BindParameter[int]:
    return sa.bindparam("limit", type_=sa.Integer)


_GET_EVENT: Final = sa.select(*_EVENT_COLUMNS).where(
    _E.c.program_id == _p("program_id"), _E.c.event_id == _p("event_id")
)
_EVENTS_SINCE: Final = (
    sa.select(_E.c.seq, *_EVENT_COLUMNS)
    .where(_E.c.program_id == _p("program_id"), _E.c.seq > _p("after"))
    .order_by(_E.c.seq)
    .limit(_limit())
)
_GET_PROGRAM: Final = sa.select(*_PROGRAM_COLUMNS).where(
    _PR.c.program_id == _p("program_id"), _PR.c.version == _p("version")
)
_PROGRAM_VERSIONS: Final = (
    sa.select(*_PROGRAM_COLUMNS).where(_PR.c.program_id == _p("program_id")).order_by(_PR.c.version)
)
_GET_PARTICIPANT: Final = sa.select(*_PARTICIPANT_COLUMNS).where(
    _PA.c.program_id == _p("program_id"), _PA.c.participant_id == _p("participant_id")
)
_CODE_OWNER: Final = sa.select(*_CODE_COLUMNS).where(
    _C.c.program_id == _p("program_id"), _C.c.code == _p("code")
)
_CODE_OF: Final = sa.select(*_CODE_COLUMNS).where(
    _C.c.program_id == _p("program_id"), _C.c.participant_id == _p("participant_id")
)
_EMAIL_OF: Final = sa.select(_PD.c.email).where(
    _PD.c.program_id == _p("program_id"), _PD.c.participant_id == _p("participant_id")
)
_REFERRAL_BY_REFEREE: Final = sa.select(*_REFERRAL_COLUMNS).where(
    _R.c.program_id == _p("program_id"), _R.c.referee_id == _p("referee_id")
)
_GET_REFERRAL: Final = sa.select(*_REFERRAL_COLUMNS).where(_R.c.referral_id == _p("referral_id"))
_REFERRALS_BY_REFERRER: Final = (
    sa.select(*_REFERRAL_COLUMNS)
    .where(_R.c.program_id == _p("program_id"), _R.c.referrer_id == _p("referrer_id"))
    .order_by(_R.c.referral_id)
)
_UPDATE_REFERRAL: Final = (
    sa.update(_R)
    .where(_R.c.referral_id == _p("rid"))
    .values(
        referrer_id=_p("new_referrer"),
        code=_p("new_code"),
        status=_p("new_status"),
        explanation=_p("new_explanation"),
    )
)
_UPDATE_ORDER: Final = (
    sa.update(_O)
    .where(_O.c.program_id == _p("pid"), _O.c.order_id == _p("oid"))
    .values(referral_id=_p("new_referral"), converted=_p("new_converted"))
)
_REDACT_EVENT: Final = (
    sa.update(_E)
    .where(_E.c.program_id == _p("pid"), _E.c.event_id == _p("eid"))
    .values(event=_p("new_event"))
)
_TOUCHES_OF_VISITOR: Final = (
    sa.select(*_TOUCH_COLUMNS)
    .where(_T.c.program_id == _p("program_id"), _T.c.visitor_id == _p("key"))
    .order_by(_T.c.at, _T.c.touch_id)
)
_TOUCHES_OF_PARTICIPANT: Final = (
    sa.select(*_TOUCH_COLUMNS)
    .where(_T.c.program_id == _p("program_id"), _T.c.participant_id == _p("key"))
    .order_by(_T.c.at, _T.c.touch_id)
)
_ATTACH_TOUCHES: Final = (
    sa.update(_T)
    .where(
        _T.c.program_id == _p("pid"),
        _T.c.visitor_id == _p("vid"),
        _T.c.participant_id.is_(None),
    )
    .values(participant_id=_p("new_participant_id"))
)
_FORGET_TOUCHES: Final = sa.delete(_T).where(
    _T.c.program_id == _p("pid"), _T.c.participant_id == _p("who")
)
_PURGE_TOUCHES: Final = sa.delete(_T).where(
    _T.c.program_id == _p("program_id"), _T.c.at < _p("before")
)
_GET_ORDER: Final = sa.select(*_ORDER_COLUMNS).where(
    _O.c.program_id == _p("program_id"), _O.c.order_id == _p("order_id")
)
_GET_REFUND: Final = sa.select(*_REFUND_COLUMNS).where(
    _RF.c.program_id == _p("program_id"), _RF.c.refund_id == _p("refund_id")
)
_GET_CHARGEBACK: Final = sa.select(*_CHARGEBACK_COLUMNS).where(
    _CB.c.program_id == _p("program_id"), _CB.c.chargeback_id == _p("chargeback_id")
)
_REWARD_UNITS: Final = sa.select(_RW.c.reward_id, _RW.c.unit_kind, _RW.c.unit_code).where(
    _RW.c.reward_id.in_(sa.bindparam("ids", expanding=True))
)
_SET_REWARD_STATE: Final = (
    sa.update(_RW).where(_RW.c.reward_id == _p("rid")).values(state=_p("new_state"))
)
_REWARDS_OF_PARTICIPANT: Final = (
    sa.select(*_REWARD_COLUMNS)
    .where(_RW.c.program_id == _p("program_id"), _RW.c.participant_id == _p("key"))
    .order_by(_RW.c.seq)
)
_REWARDS_OF_ORDER: Final = (
    sa.select(*_REWARD_COLUMNS)
    .where(_RW.c.program_id == _p("program_id"), _RW.c.order_id == _p("key"))
    .order_by(_RW.c.seq)
)
_ENTRIES_OF: Final = (
    sa.select(*_ENTRY_COLUMNS)
    .where(_EN.c.reward_id.in_(sa.bindparam("ids", expanding=True)))
    .order_by(_EN.c.seq)
)
_IN_STATE: Final = (
    sa.select(*_REWARD_COLUMNS)
    .where(_RW.c.program_id == _p("program_id"), _RW.c.state == _p("state"))
    .order_by(_RW.c.payable_at, _RW.c.reward_id)
    .limit(_limit())
)
_IN_STATE_DUE: Final = (
    sa.select(*_REWARD_COLUMNS)
    .where(
        _RW.c.program_id == _p("program_id"),
        _RW.c.state == _p("state"),
        _RW.c.payable_at <= _p("due_by"),
    )
    .order_by(_RW.c.payable_at, _RW.c.reward_id)
    .limit(_limit())
)
_GET_COUNTERS: Final = sa.select(
    _CT.c.program_id, _CT.c.name, _CT.c.subject, _CT.c.value_scaled
).where(
    sa.tuple_(_CT.c.program_id, _CT.c.name, _CT.c.subject).in_(sa.bindparam("keys", expanding=True))
)
_PENDING: Final = (
    sa.select(*_OUTBOX_COLUMNS)
    .where(_OB.c.delivered_at.is_(None), _OB.c.dead_at.is_(None))
    .order_by(_OB.c.seq)
    .limit(_limit())
)
_DUE_RETRIES: Final = (
    sa.select(*_OUTBOX_COLUMNS)
    .where(
        _OB.c.next_attempt_at.is_not(None),
        _OB.c.next_attempt_at <= _p("at"),
        _OB.c.delivered_at.is_(None),
        _OB.c.dead_at.is_(None),
    )
    .order_by(_OB.c.next_attempt_at, _OB.c.seq)
    .limit(_limit())
)
_DUE_FRESH: Final = (
    sa.select(*_OUTBOX_COLUMNS)
    .where(_OB.c.delivered_at.is_(None), _OB.c.dead_at.is_(None), _OB.c.next_attempt_at.is_(None))
    .order_by(_OB.c.seq)
    .limit(_limit())
)
_DEAD: Final = (
    sa.select(*_OUTBOX_COLUMNS)
    .where(_OB.c.dead_at.is_not(None))
    .order_by(_OB.c.dead_at, _OB.c.seq)
    .limit(_limit())
)
_MARK_DELIVERED: Final = (
    sa.update(_OB)
    .where(_OB.c.notification_id == _p("nid"), _OB.c.delivered_at.is_(None))
    .values(delivered_at=_p("at"), attempts=_OB.c.attempts + 1, next_attempt_at=None, dead_at=None)
)
_OPEN: Final = (_OB.c.delivered_at.is_(None), _OB.c.dead_at.is_(None))
_MARK_FAILED: Final = (
    sa.update(_OB)
    .where(_OB.c.notification_id == _p("nid"), *_OPEN)
    .values(attempts=_OB.c.attempts + 1, last_error=_p("error"), next_attempt_at=_p("retry_at"))
)
_MARK_DEAD: Final = (
    sa.update(_OB)
    .where(_OB.c.notification_id == _p("nid"), *_OPEN)
    .values(
        attempts=_OB.c.attempts + 1, last_error=_p("error"), next_attempt_at=None, dead_at=_p("at")
    )
)
_REVIVE: Final = (
    sa.update(_OB)
    .where(_OB.c.notification_id == _p("nid"), _OB.c.dead_at.is_not(None))
    .values(attempts=0, next_attempt_at=None, dead_at=None)
)


_GET_PAYOUT: Final = sa.select(*_PAYOUT_COLUMNS).where(
    _PO.c.program_id == _p("program_id"), _PO.c.payout_id == _p("payout_id")
)
_UPDATE_PAYOUT: Final = (
    sa.update(_PO)
    .where(_PO.c.payout_id == _p("pid"))
    .values(
        status=_p("new_status"),
        attempts=_p("new_attempts"),
        error=_p("new_error"),
        updated_at=_p("new_updated_at"),
    )
)
_OPEN_PAYOUTS: Final = (
    sa.select(*_PAYOUT_COLUMNS)
    .where(_PO.c.program_id == _p("program_id"), _PO.c.status.in_(("pending", "failed")))
    .order_by(_PO.c.created_at, _PO.c.payout_id)
    .limit(_limit())
)
_OPEN_PAYOUTS_OF: Final = (
    sa.select(*_PAYOUT_COLUMNS)
    .where(
        _PO.c.program_id == _p("program_id"),
        _PO.c.participant_id == _p("participant_id"),
        _PO.c.status.in_(("pending", "failed")),
    )
    .order_by(_PO.c.created_at, _PO.c.payout_id)
    .limit(_limit())
)


class _Upserts:
    """The dialect's insert-or-update statements (``INSERT ... ON CONFLICT`` / ``ON DUPLICATE
    KEY UPDATE``): participants and emails are replaced, counters incremented in place."""

    def __init__(self, kind: str) -> None:
        self.participant = self._build(
            kind,
            _PA,
            lambda new: {"first_seen_at": new.first_seen_at, "signed_up_at": new.signed_up_at},
        )
        self.email = self._build(kind, _PD, lambda new: {"email": new.email})
        self.counter = self._build(
            kind, _CT, lambda new: {"value_scaled": _CT.c.value_scaled + new.value_scaled}
        )

    @staticmethod
    def _build(
        kind: str, table: sa.Table, updates: Callable[[Any], dict[str, Any]]
    ) -> sa.Executable:
        keys = list(table.primary_key.columns)
        if kind == _POSTGRESQL:
            pg = sa_postgresql.insert(table)
            return pg.on_conflict_do_update(index_elements=keys, set_=updates(pg.excluded))
        if kind == _MYSQL:
            my = sa_mysql.insert(table)
            return my.on_duplicate_key_update(updates(my.inserted))
        lite = sa_sqlite.insert(table)
        return lite.on_conflict_do_update(index_elements=keys, set_=updates(lite.excluded))


# -- driver errors -------------------------------------------------------------------------
def _driver_detail(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _translate(exc: sa_exc.SQLAlchemyError) -> StoreError:
    """The library's own error for a driver error (raise it ``from exc``)."""
    detail = _driver_detail(exc)
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        args = getattr(orig, "args", ())
        errno = args[0] if args and isinstance(args[0], int) else None
        sqlite_name = str(getattr(orig, "sqlite_errorname", ""))
        if exc.connection_invalidated:
            return StoreUnavailableError(f"database connection lost: {detail}")
        if (
            sqlstate in _PG_CONFLICT
            or errno in _MY_CONFLICT
            or sqlite_name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))
            or (sqlite_name == "" and "database is locked" in detail)
        ):
            return ConcurrencyError(f"conflicting concurrent unit of work: {detail}")
        if isinstance(exc, sa_exc.IntegrityError):
            if (
                sqlstate in _PG_NOT_A_CONFLICT
                or errno in _MY_NOT_A_CONFLICT
                or sqlite_name in ("SQLITE_CONSTRAINT_NOTNULL", "SQLITE_CONSTRAINT_CHECK")
            ):
                return StoreError(f"invalid record: {detail}")
            return ConcurrencyError(f"conflicting write: {detail}")
        if (
            isinstance(exc, sa_exc.InterfaceError)
            or (sqlstate is not None and (sqlstate[:2] == "08" or sqlstate in _PG_UNAVAILABLE))
            or errno in _MY_UNAVAILABLE
            or sqlite_name == "SQLITE_CANTOPEN"
        ):
            return StoreUnavailableError(f"database unavailable: {detail}")
        return StoreError(f"database error: {detail}")
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return StoreUnavailableError(f"database unavailable: {detail}")
    return StoreError(f"database error: {detail}")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        raise _translate(exc) from exc


# -- the store -------------------------------------------------------------------------------
def _sqlite_engine(url: sa.URL) -> sa.Engine:
    """An engine whose transactions are ``BEGIN IMMEDIATE`` (writers queue on the lock, as in
    SQLiteStore), with foreign keys on and WAL for files."""
    engine = sa.create_engine(url, connect_args={"timeout": 30.0})
    is_file = url.database not in (None, "", ":memory:")

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # referralkit issues BEGIN itself
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if is_file:
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    def on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    sa_event.listen(engine, "connect", on_connect)
    sa_event.listen(engine, "begin", on_begin)
    return engine


#: Columns added after their table first shipped; a database created before them gains
#: them when the store opens with ``create=True`` (existing rows take the default).
_ADDED_COLUMNS: Final = ((_sql.rewards, "item"), (_sql.entries, "actor"))


def _add_missing_columns(conn: sa.Connection) -> None:
    inspector = sa.inspect(conn)
    for table, name in _ADDED_COLUMNS:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        if name not in present:
            ddl = sa.schema.CreateColumn(table.c[name]).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))


class SQLAlchemyStore:
    """A [`Store`][referralkit.Store] on SQLAlchemy 2 Core: PostgreSQL, MariaDB, SQLite.

    For applications that run many workers on one database. Tables are those of
    ``referralkit.sql``; see the module docs for the isolation level and
    how conflicts surface (``ConcurrencyError``, which the engine retries).

    Args:
        url_or_engine: A database URL such as
            ``"postgresql+psycopg://user@host/db"``, ``"mysql+pymysql://user@host/db"`` or
            ``"sqlite:///path/to/file.db"``, or a ready ``sqlalchemy.Engine`` (its pool is
            shared; the store never disposes it). From a SQLite URL the store makes an
            engine whose units begin with ``BEGIN IMMEDIATE``; a SQLite engine passed in is
            used as it is.
        create: Create the missing tables and the schema-version row on first use. With
            ``False`` (schema managed with Alembic from ``referralkit.sql.metadata``) the
            tables must exist; only the version row is written if it is missing.

    Raises:
        InvalidInputError: not a URL or an engine, or a database other than PostgreSQL,
            MariaDB / MySQL or SQLite.
        MissingExtraError: the URL's driver is not installed (the ``postgres`` or
            ``mariadb`` extra).
        SchemaVersionError: the database was written by a newer referralkit, or (with
            ``create=False``) holds no referralkit schema.
        StoreUnavailableError: the database cannot be reached.
    """

    def __init__(self, url_or_engine: str | sa.Engine, *, create: bool = True) -> None:
        if isinstance(url_or_engine, sa.Engine):
            engine, self._owns_engine = url_or_engine, False
        elif isinstance(url_or_engine, str):
            engine, self._owns_engine = self._make_engine(url_or_engine), True
        else:
            raise InvalidInputError(
                "url_or_engine", url_or_engine, "must be a database URL or a sqlalchemy.Engine"
            )
        self._url = engine.url.render_as_string(hide_password=True)
        name = engine.dialect.name
        kind = _MYSQL if name in ("mysql", "mariadb") else name
        if kind not in (_POSTGRESQL, _MYSQL, _SQLITE):
            if self._owns_engine:
                engine.dispose()
            raise InvalidInputError(
                "url_or_engine",
                self._url,
                f"SQLAlchemyStore supports PostgreSQL, MariaDB / MySQL and SQLite, not {name!r}",
            )
        self._kind = kind
        self._snapshot_isolation = False
        self._serial = False
        self._log_lock_name = ""
        self._upserts = _Upserts(kind)
        try:
            if kind == _MYSQL:
                self._probe_mysql(engine)
            self._engine = self._with_isolation(engine)
            self._migrate(create)
        except BaseException:
            if self._owns_engine:
                engine.dispose()
            raise

    @staticmethod
    def _make_engine(url_text: str) -> sa.Engine:
        try:
            url = sa.make_url(url_text)
        except sa_exc.ArgumentError as exc:
            raise InvalidInputError("url_or_engine", url_text, "not a database URL") from exc
        backend = url.get_backend_name()
        if backend not in _BACKENDS:
            raise InvalidInputError(
                "url_or_engine",
                url.render_as_string(hide_password=True),
                f"SQLAlchemyStore supports PostgreSQL, MariaDB / MySQL and SQLite, not {backend!r}",
            )
        try:
            if backend == _SQLITE:
                return _sqlite_engine(url)
            return sa.create_engine(url, pool_pre_ping=True)
        except ImportError as exc:
            extra, driver = _EXTRAS[backend]
            if url.get_driver_name() == driver:
                raise MissingExtraError(f"SQLAlchemyStore on {backend}", extra=extra) from exc
            raise InvalidInputError(
                "url_or_engine",
                url.render_as_string(hide_password=True),
                f"its driver is not installed ({exc}); the {extra!r} extra installs "
                f"{driver}: use a {backend}+{driver}:// URL",
            ) from exc
        except sa_exc.SQLAlchemyError as exc:
            raise InvalidInputError(
                "url_or_engine", url.render_as_string(hide_password=True), str(exc)
            ) from exc

    def _probe_mysql(self, engine: sa.Engine) -> None:
        """Whether the server has ``innodb_snapshot_isolation`` (if not, units run one at a
        time), and the name of the lock to use."""
        with self._connection(engine) as conn, _translated():
            database = conn.exec_driver_sql("SELECT DATABASE()").scalar()
            try:
                conn.exec_driver_sql("SELECT @@innodb_snapshot_isolation").scalar()
            except sa_exc.DBAPIError:
                self._snapshot_isolation = False
            else:
                self._snapshot_isolation = True
            conn.rollback()
        self._serial = not self._snapshot_isolation
        self._log_lock_name = f"referralkit.rk_events.{database or ''}"[:64]

    def _with_isolation(self, engine: sa.Engine) -> sa.Engine:
        if self._kind == _POSTGRESQL:
            return engine.execution_options(isolation_level="REPEATABLE READ")
        if self._kind == _MYSQL:
            return engine.execution_options(isolation_level="REPEATABLE READ")
        return engine

    @contextmanager
    def _connection(self, engine: sa.Engine | None = None) -> Iterator[sa.Connection]:
        conn = self._connect(engine)
        try:
            yield conn
        finally:
            conn.close()

    def _connect(self, engine: sa.Engine | None = None) -> sa.Connection:
        """A connection set up for a unit of work (the caller closes it)."""
        try:
            conn = (engine or self._engine).connect()
        except sa_exc.SQLAlchemyError as exc:
            error = _translate(exc)
            if type(error) is StoreError:  # failing to connect is being unavailable
                error = StoreUnavailableError(
                    f"cannot connect to {self._url}: {_driver_detail(exc)}"
                )
            raise error from exc
        if self._snapshot_isolation and not conn.info.get(_SNAPSHOT_SET):
            try:
                with _translated():
                    conn.exec_driver_sql("SET SESSION innodb_snapshot_isolation = ON")
                    conn.commit()
            except BaseException:
                conn.close()
                raise
            conn.info[_SNAPSHOT_SET] = True
        return conn

    def _migrate(self, create: bool) -> None:
        with self._connection() as conn:
            try:
                with _translated():
                    conn.begin()
                    self._lock(conn, migrate=True)
                    version = self._stored_version(conn)
                    if version is not None and version > _sql.SCHEMA_VERSION:
                        raise SchemaVersionError(
                            f"database {self._url} has schema version {version}, newer than "
                            f"{_sql.SCHEMA_VERSION} which this referralkit writes; "
                            "upgrade referralkit"
                        )
                    if version is not None and version < _sql.SCHEMA_VERSION:
                        raise SchemaVersionError(
                            f"database {self._url} has schema version {version}, older than "
                            f"{_sql.SCHEMA_VERSION} which this referralkit writes; this pre-1.0 "
                            "release does not migrate it: replay Engine.event_log() into a new "
                            "store"
                        )
                    if create:
                        _sql.metadata.create_all(conn)
                        _add_missing_columns(conn)
                    elif version is None and not sa.inspect(conn).has_table("rk_schema"):
                        raise SchemaVersionError(
                            f"database {self._url} has no referralkit tables; create them "
                            "with create=True or from referralkit.sql.metadata"
                        )
                    if version is None:
                        conn.execute(
                            sa.insert(_sql.schema).values(id=1, version=_sql.SCHEMA_VERSION)
                        )
                    conn.commit()
            finally:
                with suppress(StoreError):
                    self._unlock(conn, migrate=True)

    @staticmethod
    def _stored_version(conn: sa.Connection) -> int | None:
        if not sa.inspect(conn).has_table("rk_schema"):
            return None
        value = conn.execute(sa.select(_sql.schema.c.version).where(_sql.schema.c.id == 1)).scalar()
        return None if value is None else int(value)

    def _lock(self, conn: sa.Connection, *, migrate: bool = False) -> None:
        """Take the event-log (or migration) lock, held to the end of the transaction.

        PostgreSQL: a transaction-level advisory lock. MariaDB: a named lock,
        released by ``_unlock`` after commit or rollback. SQLite: already serialized.
        """
        if self._kind == _POSTGRESQL:
            key = _PG_MIGRATE_LOCK if migrate else _PG_LOG_LOCK
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
        elif self._kind == _MYSQL:
            name = ("migrate:" if migrate else "") + self._log_lock_name
            got = conn.execute(
                sa.select(sa.func.get_lock(name[:64], _LOCK_TIMEOUT if not migrate else 300))
            ).scalar()
            if got != 1:
                raise ConcurrencyError(f"timed out waiting for the lock {name!r}")

    def _unlock(self, conn: sa.Connection, *, migrate: bool = False) -> None:
        """Release a MariaDB named lock (PostgreSQL's end with the transaction)."""
        if self._kind == _MYSQL:
            name = ("migrate:" if migrate else "") + self._log_lock_name
            with _translated():
                conn.execute(sa.select(sa.func.release_lock(name[:64])))

    # -- public API ------------------------------------------------------------------------
    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy engine the store uses (with its isolation level set)."""
        return self._engine

    def close(self) -> None:
        """Dispose of the engine if the store made it from a URL (a passed-in engine is
        left alone). The store cannot be used afterwards."""
        if self._owns_engine:
            self._engine.dispose()

    def unit_of_work(self) -> _SQLAlchemyUnitOfWork:
        """Begin a unit of work (use it in a ``with`` block)."""
        return _SQLAlchemyUnitOfWork(self)

    def dump(self) -> Mapping[str, list[Any]]:
        """Every record, by table, in the same shapes and order as ``InMemoryStore.dump``,
        read in one transaction."""
        with self._connection() as conn, _translated():
            conn.begin()
            try:
                return self._dump(conn)
            finally:
                conn.rollback()

    @staticmethod
    def _dump(conn: sa.Connection) -> dict[str, list[Any]]:
        def rows(*columns: sa.ColumnElement[Any]) -> list[Sequence[Any]]:
            return list(conn.execute(sa.select(*columns)).all())

        events = sorted(rows(*_EVENT_COLUMNS), key=lambda r: (r[0], r[1]))
        programs = sorted(rows(*_PROGRAM_COLUMNS), key=lambda r: (r[0], r[1]))
        participants = sorted(rows(*_PARTICIPANT_COLUMNS), key=lambda r: (r[0], r[1]))
        codes = sorted(rows(*_CODE_COLUMNS), key=lambda r: (r[0], r[1]))
        emails = sorted(
            rows(_PD.c.program_id, _PD.c.participant_id, _PD.c.email), key=lambda r: (r[0], r[1])
        )
        referrals = sorted(rows(*_REFERRAL_COLUMNS), key=lambda r: r[0])
        orders = sorted(rows(*_ORDER_COLUMNS), key=lambda r: (r[0], r[1]))
        refunds = sorted(rows(*_REFUND_COLUMNS), key=lambda r: (r[0], r[1]))
        chargebacks = sorted(rows(*_CHARGEBACK_COLUMNS), key=lambda r: (r[0], r[1]))
        rewards = sorted(rows(*_REWARD_COLUMNS), key=lambda r: r[0])
        entries = sorted(rows(_EN.c.seq, *_ENTRY_COLUMNS), key=lambda r: (r[2], r[0]))
        counters = sorted(
            (r for r in rows(_CT.c.program_id, _CT.c.name, _CT.c.subject, _CT.c.value_scaled)),
            key=lambda r: (r[0], r[1], r[2]),
        )
        outbox = sorted(rows(*_OUTBOX_COLUMNS), key=lambda r: r[0])
        touches = sorted(rows(*_TOUCH_COLUMNS), key=lambda r: (r[0], r[1]))
        return {
            "events": [_event_record(r) for r in events],
            "programs": [_program(r) for r in programs],
            "participants": [_participant(r) for r in participants],
            "codes": [_code(r) for r in codes],
            "personal_data": [((r[0], r[1]), r[2]) for r in emails],
            "referrals": [_referral(r) for r in referrals],
            "orders": [_order(r) for r in orders],
            "refunds": [_refund(r) for r in refunds],
            "chargebacks": [_chargeback(r) for r in chargebacks],
            "rewards": [_reward(r) for r in rewards],
            "entries": [_entry(r[1:]) for r in entries],
            "counters": [((r[0], r[1], r[2]), _unscaled(r[3])) for r in counters if r[3] != 0],
            "outbox": [_notification(r) for r in outbox],
            "outbox_status": [(r[0], _outbox_status(r)) for r in outbox],
            "payouts": [_payout(r) for r in sorted(rows(*_PAYOUT_COLUMNS), key=lambda r: r[0])],
            "touches": [_touch(r) for r in touches],
        }

    def __repr__(self) -> str:
        return f"SQLAlchemyStore({self._url!r})"


# -- the unit of work -------------------------------------------------------------------------
class _SQLAlchemyUnitOfWork:
    """One transaction on one connection, held from ``__enter__`` to ``__exit__``.

    After ``commit()`` the unit stays usable: the next statement begins a new transaction,
    rolled back on leaving the block unless committed too. A database error rolls the whole
    unit back, and a later ``commit()`` refuses. Added events wait in the unit (where its
    own reads see them) and are inserted at ``commit()``, under the event-log lock.
    """

    def __init__(self, store: SQLAlchemyStore) -> None:
        self._store = store
        self._conn: sa.Connection | None = None
        self._failed = False
        self._locked = False
        self._events: dict[tuple[str, str], EventRecord] = {}

    # -- transaction ---------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._conn is not None:
            raise StoreError("this unit of work is already open")
        conn = self._store._connect()
        try:
            with _translated():
                conn.begin()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._failed = False
        self._events.clear()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        self._events.clear()
        if conn is None:
            return
        try:
            if conn.in_transaction():
                conn.rollback()  # whatever was written since the last commit()
            self._unlock(conn)
        except sa_exc.SQLAlchemyError:
            conn.invalidate()  # the connection is broken; the server rolls back
        finally:
            conn.close()

    def commit(self) -> None:
        conn = self._require_open()
        if self._failed:
            raise StoreError("this unit of work was rolled back after an error")
        try:
            with _translated():
                self._flush_events(conn)
                conn.commit()
        except StoreError:
            self._abort()
            raise
        self._events.clear()
        self._unlock(conn)

    def rollback(self) -> None:
        conn = self._require_open()
        self._events.clear()
        with _translated():
            conn.rollback()
        self._unlock(conn)

    def _require_open(self) -> sa.Connection:
        if self._conn is None:
            raise StoreError("unit of work used outside its 'with' block")
        return self._conn

    def _abort(self) -> None:
        """Roll the whole unit back after an error; ``commit()`` refuses from now on."""
        self._failed = True
        self._events.clear()
        conn = self._conn
        if conn is None:
            return
        try:
            conn.rollback()
            self._unlock(conn)
        except sa_exc.SQLAlchemyError:
            conn.invalidate()

    def _unlock(self, conn: sa.Connection) -> None:
        if self._locked:
            self._locked = False
            with suppress(StoreError):
                self._store._unlock(conn)
            if conn.in_transaction():
                conn.commit()  # RELEASE_LOCK began a transaction that holds nothing

    def _flush_events(self, conn: sa.Connection) -> None:
        """Insert the unit's events under the event-log lock (log positions follow commit
        order); the lock is held to the end of the transaction."""
        if not self._events:
            return
        if not self._locked:
            self._store._lock(conn)
            self._locked = True
        conn.execute(
            sa.insert(_E),
            [
                {
                    "program_id": r.program_id,
                    "event_id": r.event_id,
                    "digest": r.digest,
                    "schema_version": r.schema_version,
                    "event": codec.dumps(r.event),
                    "outcome": codec.dumps(r.outcome),
                }
                for r in self._events.values()
            ],
        )
        self._events.clear()

    # -- statements: every driver error is translated and rolls the unit back ------------
    def _execute(self, statement: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        conn = self._conn
        if conn is None:
            conn = self._require_open()
        try:
            if self._store._serial and not self._locked:
                self._store._lock(conn)  # MySQL without snapshot isolation: one unit at a time
                self._locked = True
            return conn.execute(statement, params)
        except ConcurrencyError:  # the lock timed out
            self._abort()
            raise
        except sa_exc.SQLAlchemyError as exc:
            error = _translate(exc)
            self._abort()
            raise error from exc

    def _rows(self, statement: sa.Executable, params: Any = None) -> Sequence[Sequence[Any]]:
        return self._execute(statement, params).all()

    def _first(self, statement: sa.Executable, params: Any = None) -> Sequence[Any] | None:
        return self._execute(statement, params).first()

    # -- event log (the unit is its own EventLog) --------------------------------------
    def get(self, program_id: str, event_id: str) -> EventRecord | None:
        pending = self._events.get((program_id, event_id))
        if pending is not None:
            return pending
        row = self._first(_GET_EVENT, {"program_id": program_id, "event_id": event_id})
        return None if row is None else _event_record(row)

    def redact(self, program_id: str, event_id: str, event: Event) -> None:
        key = (program_id, event_id)
        pending = self._events.get(key)
        if pending is not None:
            self._events[key] = attrs.evolve(pending, event=event)
            return
        if self.get(program_id, event_id) is None:
            raise StoreError(f"unknown event {key!r}")
        self._execute(
            _REDACT_EVENT, {"pid": program_id, "eid": event_id, "new_event": codec.dumps(event)}
        )

    def add(self, record: EventRecord) -> None:
        self._require_open()
        key = (record.program_id, record.event_id)
        if key in self._events:
            self._abort()
            raise ConcurrencyError(f"event {key!r} already exists")
        self._events[key] = record

    def since(self, program_id: str, after: int, limit: int) -> list[tuple[int, EventRecord]]:
        if limit < 1:
            return []
        conn = self._require_open()
        if self._events:
            try:
                with _translated():
                    self._flush_events(conn)
            except StoreError:
                self._abort()
                raise
        rows = self._rows(_EVENTS_SINCE, {"program_id": program_id, "after": after, "limit": limit})
        return [(int(r[0]), _event_record(r[1:])) for r in rows]

    @property
    def events(self) -> _SQLAlchemyUnitOfWork:
        return self

    @functools.cached_property
    def programs(self) -> _Programs:
        return _Programs(self)

    @functools.cached_property
    def participants(self) -> _Participants:
        return _Participants(self)

    @functools.cached_property
    def referrals(self) -> _Referrals:
        return _Referrals(self)

    @functools.cached_property
    def orders(self) -> _Orders:
        return _Orders(self)

    @functools.cached_property
    def ledger(self) -> _Ledger:
        return _Ledger(self)

    @functools.cached_property
    def counters(self) -> _Counters:
        return _Counters(self)

    @functools.cached_property
    def outbox(self) -> _Outbox:
        return _Outbox(self)

    @functools.cached_property
    def payouts(self) -> _Payouts:
        return _Payouts(self)

    @functools.cached_property
    def touches(self) -> _Touches:
        return _Touches(self)


class _Repo:
    def __init__(self, uow: _SQLAlchemyUnitOfWork) -> None:
        self._u = uow


class _Programs(_Repo):
    def get(self, program_id: str, version: int) -> ProgramRecord | None:
        row = self._u._first(_GET_PROGRAM, {"program_id": program_id, "version": version})
        return None if row is None else _program(row)

    def add(self, record: ProgramRecord) -> None:
        self._u._execute(
            sa.insert(_PR),
            {
                "program_id": record.program_id,
                "version": record.version,
                "digest": record.digest,
                "effective_at": _ts(record.effective_at),
                "published_at": _ts(record.published_at),
                "definition": codec.dumps(record.definition),
            },
        )

    def versions(self, program_id: str) -> list[ProgramRecord]:
        return [_program(r) for r in self._u._rows(_PROGRAM_VERSIONS, {"program_id": program_id})]


class _Participants(_Repo):
    def get(self, program_id: str, participant_id: str) -> ParticipantRecord | None:
        row = self._u._first(
            _GET_PARTICIPANT, {"program_id": program_id, "participant_id": participant_id}
        )
        return None if row is None else _participant(row)

    def put(self, record: ParticipantRecord) -> None:
        self._u._execute(
            self._u._store._upserts.participant,
            {
                "program_id": record.program_id,
                "participant_id": record.participant_id,
                "first_seen_at": _ts(record.first_seen_at),
                "signed_up_at": _opt_ts(record.signed_up_at),
            },
        )

    def code_owner(self, program_id: str, code: str) -> CodeRecord | None:
        row = self._u._first(_CODE_OWNER, {"program_id": program_id, "code": code})
        return None if row is None else _code(row)

    def code_of(self, program_id: str, participant_id: str) -> CodeRecord | None:
        row = self._u._first(_CODE_OF, {"program_id": program_id, "participant_id": participant_id})
        return None if row is None else _code(row)

    def add_code(self, record: CodeRecord) -> None:
        self._u._execute(
            sa.insert(_C),
            {
                "program_id": record.program_id,
                "code": record.code,
                "participant_id": record.participant_id,
                "created_at": _ts(record.created_at),
                "max_uses": record.max_uses,
                "expires_at": _opt_ts(record.expires_at),
            },
        )

    def email_of(self, program_id: str, participant_id: str) -> str | None:
        row = self._u._first(
            _EMAIL_OF, {"program_id": program_id, "participant_id": participant_id}
        )
        return None if row is None else str(row[0])

    def set_email(self, program_id: str, participant_id: str, email: str) -> None:
        self._u._execute(
            self._u._store._upserts.email,
            {"program_id": program_id, "participant_id": participant_id, "email": email},
        )


class _Referrals(_Repo):
    def by_referee(self, program_id: str, referee_id: str) -> Referral | None:
        row = self._u._first(
            _REFERRAL_BY_REFEREE, {"program_id": program_id, "referee_id": referee_id}
        )
        return None if row is None else _referral(row)

    def get(self, referral_id: str) -> Referral | None:
        row = self._u._first(_GET_REFERRAL, {"referral_id": referral_id})
        return None if row is None else _referral(row)

    def add(self, referral: Referral) -> None:
        r = referral
        self._u._execute(
            sa.insert(_R),
            {
                "referral_id": r.referral_id,
                "program_id": r.program_id,
                "program_version": r.program_version,
                "referrer_id": r.referrer_id,
                "referee_id": r.referee_id,
                "code": r.code,
                "channel": r.channel,
                "created_at": _ts(r.created_at),
                "event_id": r.event_id,
                "status": r.status,
                "explanation": codec.dumps(r.explanation),
            },
        )

    def by_referrer(self, program_id: str, referrer_id: str) -> list[Referral]:
        rows = self._u._rows(
            _REFERRALS_BY_REFERRER, {"program_id": program_id, "referrer_id": referrer_id}
        )
        return [_referral(r) for r in rows]

    def update(self, referral: Referral) -> None:
        if self.get(referral.referral_id) is None:
            raise StoreError(f"unknown referral {referral.referral_id!r}")
        self._u._execute(
            _UPDATE_REFERRAL,
            {
                "rid": referral.referral_id,
                "new_referrer": referral.referrer_id,
                "new_code": referral.code,
                "new_status": referral.status,
                "new_explanation": codec.dumps(referral.explanation),
            },
        )


class _Touches(_Repo):
    def add(self, record: TouchRecord) -> None:
        r = record
        self._u._execute(
            sa.insert(_T),
            {
                "program_id": r.program_id,
                "touch_id": r.touch_id,
                "kind": r.kind,
                "at": _ts(r.at),
                "event_id": r.event_id,
                "visitor_id": r.visitor_id,
                "participant_id": r.participant_id,
                "referrer_id": r.referrer_id,
                "code": r.code,
                "channel": r.channel,
                "campaign": r.campaign,
                "data": codec.dumps(dict(r.data)),
            },
        )

    def of_visitor(self, program_id: str, visitor_id: str) -> list[TouchRecord]:
        rows = self._u._rows(_TOUCHES_OF_VISITOR, {"program_id": program_id, "key": visitor_id})
        return [_touch(r) for r in rows]

    def of_participant(self, program_id: str, participant_id: str) -> list[TouchRecord]:
        rows = self._u._rows(
            _TOUCHES_OF_PARTICIPANT, {"program_id": program_id, "key": participant_id}
        )
        return [_touch(r) for r in rows]

    def attach(self, program_id: str, visitor_id: str, participant_id: str) -> None:
        self._u._execute(
            _ATTACH_TOUCHES,
            {"pid": program_id, "vid": visitor_id, "new_participant_id": participant_id},
        )

    def purge(self, program_id: str, before: datetime) -> int:
        result = self._u._execute(_PURGE_TOUCHES, {"program_id": program_id, "before": _ts(before)})
        return int(getattr(result, "rowcount", 0) or 0)

    def forget(self, program_id: str, participant_id: str) -> int:
        result = self._u._execute(_FORGET_TOUCHES, {"pid": program_id, "who": participant_id})
        return int(getattr(result, "rowcount", 0) or 0)


class _Orders(_Repo):
    def get(self, program_id: str, order_id: str) -> OrderRecord | None:
        row = self._u._first(_GET_ORDER, {"program_id": program_id, "order_id": order_id})
        return None if row is None else _order(row)

    def add(self, record: OrderRecord) -> None:
        r = record
        self._u._execute(
            sa.insert(_O),
            {
                "program_id": r.program_id,
                "order_id": r.order_id,
                "participant_id": r.participant_id,
                "amount_minor": r.amount.to_minor(),
                "currency": r.amount.currency,
                "at": _ts(r.at),
                "event_id": r.event_id,
                "referral_id": r.referral_id,
                "converted": int(r.converted),
                "digest": r.digest,
            },
        )

    def update(self, record: OrderRecord) -> None:
        if self.get(record.program_id, record.order_id) is None:
            raise StoreError(f"unknown order {(record.program_id, record.order_id)!r}")
        self._u._execute(
            _UPDATE_ORDER,
            {
                "pid": record.program_id,
                "oid": record.order_id,
                "new_referral": record.referral_id,
                "new_converted": int(record.converted),
            },
        )

    def refund(self, program_id: str, refund_id: str) -> RefundRecord | None:
        row = self._u._first(_GET_REFUND, {"program_id": program_id, "refund_id": refund_id})
        return None if row is None else _refund(row)

    def add_refund(self, record: RefundRecord) -> None:
        r = record
        self._u._execute(
            sa.insert(_RF),
            {
                "program_id": r.program_id,
                "refund_id": r.refund_id,
                "order_id": r.order_id,
                "amount_minor": r.amount.to_minor(),
                "currency": r.amount.currency,
                "at": _ts(r.at),
                "event_id": r.event_id,
                "digest": r.digest,
            },
        )

    def chargeback(self, program_id: str, chargeback_id: str) -> ChargebackRecord | None:
        row = self._u._first(
            _GET_CHARGEBACK, {"program_id": program_id, "chargeback_id": chargeback_id}
        )
        return None if row is None else _chargeback(row)

    def add_chargeback(self, record: ChargebackRecord) -> None:
        r = record
        self._u._execute(
            sa.insert(_CB),
            {
                "program_id": r.program_id,
                "chargeback_id": r.chargeback_id,
                "order_id": r.order_id,
                "at": _ts(r.at),
                "event_id": r.event_id,
                "digest": r.digest,
            },
        )


class _Ledger(_Repo):
    def add_reward(self, reward: Reward, entry: Entry) -> None:
        r = reward
        unit: Unit = r.value.unit
        self._u._execute(
            sa.insert(_RW),
            {
                "reward_id": r.reward_id,
                "program_id": r.program_id,
                "program_version": r.program_version,
                "referral_id": r.referral_id,
                "participant_id": r.participant_id,
                "role": r.role.value,
                "value": codec.dumps(r.value),
                "unit_kind": unit.kind,
                "unit_code": unit.code,
                "policy": r.policy,
                "source_event_id": r.source_event_id,
                "order_id": r.order_id,
                "base_minor": None if r.base_amount is None else r.base_amount.to_minor(),
                "base_currency": None if r.base_amount is None else r.base_amount.currency,
                "created_at": _ts(r.created_at),
                "payable_at": _ts(r.payable_at),
                "state": entry.state_after.value,
                "item": r.item,
            },
        )
        self.append((entry,))

    def append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        ids = sorted({e.reward_id for e in entries})
        exponents: dict[str, int] = {}
        for start in range(0, len(ids), _CHUNK):
            for rid, kind, code in self._u._rows(
                _REWARD_UNITS, {"ids": ids[start : start + _CHUNK]}
            ):
                exponents[rid] = _exponent(rid, kind, code)
        for entry in entries:
            if entry.reward_id not in exponents:
                raise StoreError(
                    f"entry {entry.entry_id!r} names unknown reward {entry.reward_id!r}"
                )
        self._u._execute(
            sa.insert(_EN),
            [
                {
                    "entry_id": e.entry_id,
                    "reward_id": e.reward_id,
                    "program_id": e.program_id,
                    "participant_id": e.participant_id,
                    "kind": e.kind.value,
                    "quantity_minor": _scaled(e.quantity, exponents[e.reward_id], "entry.quantity"),
                    "exponent": exponents[e.reward_id],
                    "at": _ts(e.at),
                    "cause": e.cause,
                    "state_after": e.state_after.value,
                    "actor": e.actor,
                }
                for e in entries
            ],
        )
        latest = {e.reward_id: e.state_after.value for e in entries}
        self._u._execute(
            _SET_REWARD_STATE,
            [{"rid": rid, "new_state": state} for rid, state in sorted(latest.items())],
        )

    def rewards(
        self,
        program_id: str,
        *,
        participant_id: str | None = None,
        order_id: str | None = None,
    ) -> list[Reward]:
        if (participant_id is None) == (order_id is None):
            raise StoreError("give exactly one of participant_id, order_id")
        statement = _REWARDS_OF_PARTICIPANT if participant_id is not None else _REWARDS_OF_ORDER
        key = participant_id if participant_id is not None else order_id
        rows = self._u._rows(statement, {"program_id": program_id, "key": key})
        return [_reward(r) for r in rows]

    def entries(self, reward_ids: Iterable[str]) -> dict[str, list[Entry]]:
        ids = list(reward_ids)
        out: dict[str, list[Entry]] = {i: [] for i in ids}
        unique = sorted(out)
        for start in range(0, len(unique), _CHUNK):
            for r in self._u._rows(_ENTRIES_OF, {"ids": unique[start : start + _CHUNK]}):
                out[r[1]].append(_entry(r))
        return out

    def in_state(
        self, program_id: str, state: RewardState, *, due_by: datetime | None, limit: int
    ) -> list[Reward]:
        if limit < 1:
            return []
        params: dict[str, Any] = {"program_id": program_id, "state": state.value, "limit": limit}
        if due_by is None:
            rows = self._u._rows(_IN_STATE, params)
        else:
            rows = self._u._rows(_IN_STATE_DUE, {**params, "due_by": _ts(due_by)})
        return [_reward(r) for r in rows]


class _Counters(_Repo):
    def get(self, keys: Iterable[CounterKey]) -> dict[CounterKey, Decimal]:
        wanted = list(keys)
        out: dict[CounterKey, Decimal] = dict.fromkeys(wanted, Decimal(0))
        unique = sorted({(k[0], str(k[1]), k[2]) for k in wanted})
        found: dict[tuple[str, str, str], Decimal] = {}
        for start in range(0, len(unique), _CHUNK):
            for program_id, name, subject, scaled in self._u._rows(
                _GET_COUNTERS, {"keys": unique[start : start + _CHUNK]}
            ):
                found[(program_id, name, subject)] = _unscaled(scaled)
        for key in wanted:
            value = found.get((key[0], str(key[1]), key[2]))
            if value is not None:
                out[key] = value
        return out

    def add(self, key: CounterKey, delta: Decimal) -> None:
        if not delta:
            return
        scaled = _scaled(Decimal(delta), _COUNTER_SCALE, "counter delta")
        self._u._execute(
            self._u._store._upserts.counter,
            {"program_id": key[0], "name": str(key[1]), "subject": key[2], "value_scaled": scaled},
        )


class _Outbox(_Repo):
    def add(self, notifications: Sequence[Notification]) -> None:
        if not notifications:
            return
        self._u._execute(
            sa.insert(_OB),
            [
                {
                    "notification_id": n.notification_id,
                    "program_id": n.program_id,
                    "kind": n.kind,
                    "recipient_id": n.recipient_id,
                    "created_at": _ts(n.created_at),
                    "data": codec.dumps(n.data),
                    "attempts": 0,
                }
                for n in notifications
            ],
        )

    def pending(self, limit: int) -> list[Notification]:
        if limit < 1:
            return []
        return [_notification(r) for r in self._u._rows(_PENDING, {"limit": limit})]

    def due(self, at: datetime, limit: int) -> list[tuple[Notification, int]]:
        if limit < 1:
            return []
        rows = list(self._u._rows(_DUE_RETRIES, {"at": _ts(at), "limit": limit}))
        if len(rows) < limit:
            rows += self._u._rows(_DUE_FRESH, {"limit": limit - len(rows)})
        return [(_notification(r), r[7]) for r in rows]

    def mark_delivered(self, notification_id: str, at: datetime) -> None:
        self._u._execute(_MARK_DELIVERED, {"nid": notification_id, "at": _ts(at)})

    def mark_failed(
        self, notification_id: str, at: datetime, error: str, retry_at: datetime | None = None
    ) -> None:
        params = {"nid": notification_id, "error": error, "retry_at": _ts(retry_at or at)}
        self._u._execute(_MARK_FAILED, params)

    def mark_dead(self, notification_id: str, at: datetime, error: str) -> None:
        self._u._execute(_MARK_DEAD, {"nid": notification_id, "error": error, "at": _ts(at)})

    def dead(self, limit: int) -> list[DeadLetter]:
        if limit < 1:
            return []
        return [_dead_letter(r) for r in self._u._rows(_DEAD, {"limit": limit})]

    def revive(self, notification_ids: Sequence[str]) -> int:
        revived = 0
        for nid in dict.fromkeys(notification_ids):
            revived += self._u._execute(_REVIVE, {"nid": nid}).rowcount
        return revived


class _Payouts(_Repo):
    def add(self, payout: Payout) -> None:
        self._u._execute(
            sa.insert(_PO),
            {
                "payout_id": payout.payout_id,
                "program_id": payout.program_id,
                "participant_id": payout.participant_id,
                "kind": payout.kind,
                "currency": payout.amount.currency,
                "amount_minor": payout.amount.to_minor(),
                "netted_minor": payout.netted.to_minor(),
                "reward_ids": ",".join(payout.reward_ids),
                "created_at": _ts(payout.created_at),
                "status": payout.status.value,
                "attempts": payout.attempts,
                "error": payout.error,
                "updated_at": _opt_ts(payout.updated_at),
            },
        )

    def get(self, program_id: str, payout_id: str) -> Payout | None:
        row = self._u._first(_GET_PAYOUT, {"program_id": program_id, "payout_id": payout_id})
        return None if row is None else _payout(row)

    def update(self, payout: Payout) -> None:
        result = self._u._execute(
            _UPDATE_PAYOUT,
            {
                "pid": payout.payout_id,
                "new_status": payout.status.value,
                "new_attempts": payout.attempts,
                "new_error": payout.error,
                "new_updated_at": _opt_ts(payout.updated_at),
            },
        )
        if result.rowcount != 1:
            raise StoreError(f"payout {payout.payout_id!r} is not recorded")

    def open(self, program_id: str, participant_id: str | None, limit: int) -> list[Payout]:
        if limit < 1:
            return []
        if participant_id is None:
            rows = self._u._rows(_OPEN_PAYOUTS, {"program_id": program_id, "limit": limit})
        else:
            rows = self._u._rows(
                _OPEN_PAYOUTS_OF,
                {"program_id": program_id, "participant_id": participant_id, "limit": limit},
            )
        return [_payout(r) for r in rows]
