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

Batching. A unit of work caches the rows it reads for its transaction (one snapshot, so
the cache cannot go stale), ``prefetch`` loads a ``handle_many`` batch's rows with one
``IN (...)`` query per table (on PostgreSQL ``= ANY(:ids)``, one array parameter, planned
with its ids: see ``_for_dialect`` and ``_plan_each_query``), and writes wait in the unit
and are flushed before the events at ``commit()`` with one statement per table: on
PostgreSQL an ``INSERT ... SELECT FROM json_to_recordset`` of all the rows, on MariaDB a
multi-row ``INSERT`` (PyMySQL's ``executemany``); counters as one upsert of each
counter's summed delta, in key order. A unique-key violation or serialization failure
at the flush is a ``ConcurrencyError`` like any other.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from decimal import Decimal
from functools import partial
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import attrs

from referralkit._adapters import _sqlformat
from referralkit._adapters._lazy import _lazy
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
    from sqlalchemy.sql import operators as sa_operators
    from sqlalchemy.sql import visitors as sa_visitors
except ImportError as exc:
    raise MissingExtraError("SQLAlchemyStore", extra="sqlalchemy") from exc

from referralkit import sql as _sql
from referralkit._adapters.memory import OutboxStatus
from referralkit._ports import CounterKey, event_key
from referralkit._values import codec
from referralkit._values.events import Event
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
#: The oldest schema version a store migrates in place (to ``referralkit.sql.SCHEMA_VERSION``).
_MIGRATES_FROM: Final = 2


# -- encodings (exactly SQLiteStore's) ------------------------------------------------------


def _dt(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {text!r}")
    return value


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
_PR = _sql.programs
_PA = _sql.participants
_C = _sql.codes
_PD = _sql.personal_data
_R = _sql.referrals
_T = _sql.touches
_O = _sql.orders
_RF = _sql.refunds
_CB = _sql.chargebacks
_RW = _sql.rewards
_EN = _sql.entries
_CT = _sql.counters
_OB = _sql.outbox
_PO = _sql.payouts


def _columns(table: sa.Table, names: Sequence[str]) -> tuple[sa.Column[Any], ...]:
    return tuple(table.c[name] for name in names)


_EVENT_COLUMNS: Final = _columns(_E, _sqlformat.EVENT_COLUMNS)
_PROGRAM_COLUMNS: Final = _columns(_PR, _sqlformat.PROGRAM_COLUMNS)
_PARTICIPANT_COLUMNS: Final = _columns(_PA, _sqlformat.PARTICIPANT_COLUMNS)
_CODE_COLUMNS: Final = _columns(_C, _sqlformat.CODE_COLUMNS)
_REFERRAL_COLUMNS: Final = _columns(_R, _sqlformat.REFERRAL_COLUMNS)
_TOUCH_COLUMNS: Final = _columns(_T, _sqlformat.TOUCH_COLUMNS)
_ORDER_COLUMNS: Final = _columns(_O, _sqlformat.ORDER_COLUMNS)
_REFUND_COLUMNS: Final = _columns(_RF, _sqlformat.REFUND_COLUMNS)
_CHARGEBACK_COLUMNS: Final = _columns(_CB, _sqlformat.CHARGEBACK_COLUMNS)
_REWARD_COLUMNS: Final = _columns(_RW, _sqlformat.REWARD_COLUMNS)
_ENTRY_COLUMNS: Final = _columns(_EN, _sqlformat.ENTRY_COLUMNS)
_OUTBOX_COLUMNS: Final = _columns(_OB, _sqlformat.OUTBOX_COLUMNS)
_PAYOUT_COLUMNS: Final = _columns(_PO, _sqlformat.PAYOUT_COLUMNS)


def _rate_params(rate: Rate | None) -> dict[str, str | None]:
    value, on = _sqlformat.rate_columns(rate)
    return {"exchange_rate": value, "rate_on": on}


def _event_record(r: Sequence[Any]) -> EventRecord:
    return _decode("rk_events", (r[0], r[1]), lambda: _sqlformat.event_record(r))


def _program(r: Sequence[Any]) -> ProgramRecord:
    return _decode("rk_programs", (r[0], r[1]), lambda: _sqlformat.program(r))


def _participant(r: Sequence[Any]) -> ParticipantRecord:
    return _decode("rk_participants", (r[0], r[1]), lambda: _sqlformat.participant(r))


def _code(r: Sequence[Any]) -> CodeRecord:
    return _decode("rk_codes", (r[0], r[1]), lambda: _sqlformat.code(r))


def _referral(r: Sequence[Any]) -> Referral:
    return _decode("rk_referrals", r[0], lambda: _sqlformat.referral(r))


def _touch(r: Sequence[Any]) -> TouchRecord:
    return _decode("rk_touches", (r[0], r[1]), lambda: _sqlformat.touch(r))


def _order(r: Sequence[Any]) -> OrderRecord:
    return _decode("rk_orders", (r[0], r[1]), lambda: _sqlformat.order(r))


def _refund(r: Sequence[Any]) -> RefundRecord:
    return _decode("rk_refunds", (r[0], r[1]), lambda: _sqlformat.refund(r))


def _chargeback(r: Sequence[Any]) -> ChargebackRecord:
    return _decode("rk_chargebacks", (r[0], r[1]), lambda: _sqlformat.chargeback(r))


def _reward(r: Sequence[Any]) -> Reward:
    return _decode("rk_rewards", r[0], lambda: _sqlformat.reward(r))


def _entry(r: Sequence[Any]) -> Entry:
    return _decode("rk_entries", r[0], lambda: _sqlformat.entry(r))


def _notification(r: Sequence[Any]) -> Notification:
    return _decode("rk_outbox", r[0], lambda: _sqlformat.notification(r))


def _payout(r: Sequence[Any]) -> Payout:
    return _decode("rk_payouts", r[0], lambda: _sqlformat.payout(r))


def _exponent(reward_id: str, kind: str, code: str) -> int:
    return _decode("rk_rewards", reward_id, lambda: Unit(kind, code).exponent)


def _outbox_status(r: Sequence[Any]) -> OutboxStatus:
    return _decode("rk_outbox", r[0], lambda: _sqlformat.outbox_status(r))


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
_EVENTS_IN: Final = sa.select(*_EVENT_COLUMNS).where(
    _E.c.program_id == _p("program_id"), _E.c.event_id.in_(sa.bindparam("ids", expanding=True))
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
_PARTICIPANTS_IN: Final = sa.select(*_PARTICIPANT_COLUMNS).where(
    _PA.c.program_id == _p("program_id"),
    _PA.c.participant_id.in_(sa.bindparam("ids", expanding=True)),
)
_CODES_IN: Final = sa.select(*_CODE_COLUMNS).where(
    _C.c.program_id == _p("program_id"), _C.c.code.in_(sa.bindparam("ids", expanding=True))
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
_REFERRALS_OF_REFEREES_IN: Final = sa.select(*_REFERRAL_COLUMNS).where(
    _R.c.program_id == _p("program_id"), _R.c.referee_id.in_(sa.bindparam("ids", expanding=True))
)
_REFERRALS_IN: Final = sa.select(*_REFERRAL_COLUMNS).where(
    _R.c.referral_id.in_(sa.bindparam("ids", expanding=True))
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
    .values(event=_p("new_event"), event_key=_p("new_key"))
)
_EVENTS_OF_KEYS: Final = sa.select(_E.c.seq, *_EVENT_COLUMNS).where(
    _E.c.program_id == _p("program_id"), _E.c.event_key.in_(sa.bindparam("ids", expanding=True))
)
_EVENTS_TO_KEY: Final = (
    sa.select(_E.c.seq, _E.c.event).where(_E.c.seq > _p("after")).order_by(_E.c.seq).limit(_limit())
)
_SET_EVENT_KEY: Final = sa.update(_E).where(_E.c.seq == _p("k_seq")).values(event_key=_p("k_key"))
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
_TOUCHES_OF_VISITORS_IN: Final = sa.select(*_TOUCH_COLUMNS).where(
    _T.c.program_id == _p("program_id"), _T.c.visitor_id.in_(sa.bindparam("ids", expanding=True))
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
_ORDERS_IN: Final = sa.select(*_ORDER_COLUMNS).where(
    _O.c.program_id == _p("program_id"), _O.c.order_id.in_(sa.bindparam("ids", expanding=True))
)
_REFUNDS_IN: Final = sa.select(*_REFUND_COLUMNS).where(
    _RF.c.program_id == _p("program_id"), _RF.c.refund_id.in_(sa.bindparam("ids", expanding=True))
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
_REWARDS_OF_ORDERS_IN: Final = (
    sa.select(*_REWARD_COLUMNS)
    .where(
        _RW.c.program_id == _p("program_id"),
        _RW.c.order_id.in_(sa.bindparam("ids", expanding=True)),
    )
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
_OF_KIND: Final = (
    sa.select(*_REWARD_COLUMNS)
    .where(
        _RW.c.program_id == _p("program_id"),
        _RW.c.unit_kind == _p("kind"),
        _RW.c.created_at <= _p("created_by"),
        sa.or_(
            _RW.c.created_at > _p("after_at"),
            sa.and_(_RW.c.created_at == _p("after_at"), _RW.c.reward_id > _p("after_id")),
        ),
    )
    .order_by(_RW.c.created_at, _RW.c.reward_id)
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
_COUNTERS_OF_SUBJECTS: Final = sa.select(
    _CT.c.program_id, _CT.c.name, _CT.c.subject, _CT.c.value_scaled
).where(
    _CT.c.program_id == _p("program_id"), _CT.c.subject.in_(sa.bindparam("ids", expanding=True))
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
        #: statement -> its updates given the proposed row (for ``_from_json``)
        self.updates: dict[sa.Insert, Callable[[Any], dict[str, Any]]] = {}
        self.participant = self._build(
            kind,
            _PA,
            lambda new: {
                "first_seen_at": new.first_seen_at,
                "signed_up_at": new.signed_up_at,
                "country": new.country,
            },
        )
        self.email = self._build(kind, _PD, lambda new: {"email": new.email})
        self.counter = self._build(
            kind, _CT, lambda new: {"value_scaled": _CT.c.value_scaled + new.value_scaled}
        )

    def _build(
        self, kind: str, table: sa.Table, updates: Callable[[Any], dict[str, Any]]
    ) -> sa.Insert:
        keys = list(table.primary_key.columns)
        statement: sa.Insert
        if kind == _POSTGRESQL:
            pg = sa_postgresql.insert(table)
            statement = pg.on_conflict_do_update(index_elements=keys, set_=updates(pg.excluded))
        elif kind == _MYSQL:
            my = sa_mysql.insert(table)
            statement = my.on_duplicate_key_update(updates(my.inserted))
        else:
            lite = sa_sqlite.insert(table)
            statement = lite.on_conflict_do_update(index_elements=keys, set_=updates(lite.excluded))
        self.updates[statement] = updates
        return statement


def _from_json(
    table: sa.Table, names: tuple[str, ...], updates: Callable[[Any], dict[str, Any]] | None
) -> sa.Executable:
    """PostgreSQL: ``INSERT INTO table (names) SELECT names FROM
    json_to_recordset(CAST(%(rows)s AS JSON)) AS r(name TEXT | BIGINT, ...)`` (with
    ``ON CONFLICT DO UPDATE`` when ``updates`` is given), run with the rows as one JSON
    array. A short statement whatever the row count: psycopg neither splits a long
    multi-row ``VALUES`` text nor escapes every array element, and does not run one
    statement per row as its ``executemany`` does. The record columns are unbounded
    ``TEXT`` and ``BIGINT``, so the insert itself checks each column's length and range as
    a plain ``INSERT`` does."""

    def kind(column: sa.Column[Any]) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger() if isinstance(column.type, sa.Integer) else sa.Text()

    records = (
        sa.func.json_to_recordset(sa.cast(sa.bindparam("rows", type_=sa.Text()), sa.JSON()))
        .table_valued(*(sa.column(name, kind(table.c[name])) for name in names))
        .render_derived(with_types=True)
    )
    insert = sa_postgresql.insert(table).from_select(
        list(names), sa.select(*(records.c[name] for name in names))
    )
    if updates is None:
        return insert
    return insert.on_conflict_do_update(
        index_elements=list(table.primary_key.columns), set_=updates(insert.excluded)
    )


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
_ADDED_COLUMNS: Final = (
    (_sql.rewards, "item"),
    (_sql.entries, "actor"),
    (_sql.participants, "country"),
    (_sql.orders, "exchange_rate"),
    (_sql.orders, "rate_on"),
    (_sql.rewards, "exchange_rate"),
    (_sql.rewards, "rate_on"),
)


def _add_missing_indexes(conn: sa.Connection) -> None:
    """Create the indexes added after their table first shipped (``rk_counters_subject``,
    ``rk_events_log``, ``rk_rewards_kind``, ...): ``create_all`` makes a missing table's
    indexes only."""
    for table in _sql.metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


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
        self._bulk: dict[tuple[sa.Insert, tuple[str, ...]], sa.Executable] = {}
        self._native: dict[sa.Executable, sa.Executable] = {}  # see _for_dialect
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
            engine = sa.create_engine(url, pool_pre_ping=True)
            if backend == _POSTGRESQL:
                sa_event.listen(engine, "connect", _plan_each_query)
            return engine
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
                    if version is not None and version < _MIGRATES_FROM:
                        raise SchemaVersionError(
                            f"database {self._url} has schema version {version}, older than "
                            f"{_sql.SCHEMA_VERSION} which this referralkit writes; this pre-1.0 "
                            f"release migrates only version {_MIGRATES_FROM}: replay "
                            "Engine.event_log() into a new store"
                        )
                    if create:
                        _sql.metadata.create_all(conn)
                        _add_missing_columns(conn)
                    if version is not None and version < _sql.SCHEMA_VERSION:
                        self._migrate_to_3(conn, create)
                    if create:
                        _add_missing_indexes(conn)
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

    def _migrate_to_3(self, conn: sa.Connection, create: bool) -> None:
        """Schema 2 -> 3: ``rk_events.event_key`` (added with ``create``, else it must be
        there already), filled for every logged event by decoding it, a page at a time;
        then the version row says 3. One transaction on PostgreSQL and SQLite; MariaDB
        commits at the ``ALTER TABLE``, and a migration stopped after it is done again
        (the version still says 2) at the next open."""
        present = {c["name"] for c in sa.inspect(conn).get_columns(_E.name)}
        if "event_key" not in present:
            if not create:
                raise SchemaVersionError(
                    f"database {self._url} has schema version 2: add the column "
                    "rk_events.event_key and the index rk_events_key of referralkit.sql."
                    "metadata (or open the store once with create=True), and the store fills "
                    "the column and records version 3"
                )
            ddl = sa.schema.CreateColumn(_E.c.event_key).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {_E.name} ADD COLUMN {ddl}"))
        after = 0
        while True:
            rows = conn.execute(_EVENTS_TO_KEY, {"after": after, "limit": 1000}).all()
            if not rows:
                break
            after = int(rows[-1][0])
            keys = []
            for seq, text in rows:
                key = _decode(_E.name, seq, partial(_sqlformat.stored_event_key, text))
                keys.append({"k_seq": seq, "k_key": key})
            conn.execute(_SET_EVENT_KEY, keys)
        conn.execute(
            sa.update(_sql.schema).where(_sql.schema.c.id == 1).values(version=_sql.SCHEMA_VERSION)
        )

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

    def _for_dialect(self, statement: sa.Executable) -> sa.Executable:
        """``statement`` as this store sends it (made once per statement).

        On PostgreSQL, ``column IN (ids...)`` becomes ``column = ANY(:ids)`` with the ids as
        one array: the SQL text no longer changes with the number of ids, so neither
        SQLAlchemy nor psycopg renders it again for each batch, and psycopg prepares it
        once on the server. Elsewhere the statement is sent as it is.
        """
        native = self._native.get(statement)
        if native is None:
            native = _any_of_array(statement) if self._kind == _POSTGRESQL else statement
            self._native[statement] = native
        return native

    def _many(self, statement: sa.Insert, rows: list[dict[str, Any]]) -> tuple[sa.Executable, Any]:
        """(statement, parameters) that insert ``rows`` (dicts with the same keys) at once.

        On PostgreSQL one ``INSERT ... SELECT FROM json_to_recordset(...)`` with the rows as
        one JSON text (see ``_from_json``); elsewhere an ``executemany``, which PyMySQL
        already sends as one multi-row ``INSERT`` and which costs no round trips on SQLite.
        """
        if self._kind != _POSTGRESQL:
            return statement, rows
        names = tuple(rows[0])
        key = (statement, names)
        bulk = self._bulk.get(key)
        if bulk is None:
            table = statement.table
            assert isinstance(table, sa.Table)  # every insert here names a table
            bulk = _from_json(table, names, self._upserts.updates.get(statement))
            self._bulk[key] = bulk
        return bulk, {"rows": json.dumps(rows, separators=(",", ":"))}

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

    def __enter__(self) -> Self:
        """``with`` the store closes it on leaving the block."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
_Key = tuple[str, str]

_INSERT_EVENT: Final = sa.insert(_E)
_INSERT_PROGRAM: Final = sa.insert(_PR)
_INSERT_CODE: Final = sa.insert(_C)
_INSERT_REFERRAL: Final = sa.insert(_R)
_INSERT_TOUCH: Final = sa.insert(_T)
_INSERT_ORDER: Final = sa.insert(_O)
_INSERT_REFUND: Final = sa.insert(_RF)
_INSERT_CHARGEBACK: Final = sa.insert(_CB)
_INSERT_REWARD: Final = sa.insert(_RW)
_INSERT_ENTRY: Final = sa.insert(_EN)
_INSERT_NOTIFICATION: Final = sa.insert(_OB)
_INSERT_PAYOUT: Final = sa.insert(_PO)


def _plan_each_query(dbapi_connection: Any, _record: Any) -> None:
    """On a PostgreSQL connection the store made: plan every execution of a prepared
    statement with its parameters (PostgreSQL 12+).

    psycopg prepares a statement sent five times, and PostgreSQL may then run it with a
    generic plan. Before autovacuum has analyzed the tables (a new database, a bulk
    import), a generic plan of a batch lookup reads every row of the program and compares
    each with every id of the array; planned with the ids, the array is hashed. The
    setting costs a plan per execution, a fraction of a millisecond per batch query.
    """
    cursor = dbapi_connection.cursor()  # plain DB-API: any PostgreSQL driver
    try:
        cursor.execute("SHOW server_version_num")
        (version,) = cursor.fetchone()
        if int(version) >= 120000:
            cursor.execute("SET plan_cache_mode = force_custom_plan")
    finally:
        cursor.close()
    dbapi_connection.commit()


def _any_of_array(statement: sa.Executable) -> sa.Executable:
    """``statement`` with each ``column IN (expanding :name)`` replaced by
    ``column = ANY(CAST(:name AS VARCHAR[]))`` (PostgreSQL). A tuple ``IN``, and an ``IN``
    of values written into the statement (``status IN ('pending', 'failed')``), stay."""

    def replace(element: Any, **kw: Any) -> Any:
        if not (
            isinstance(element, sa.BinaryExpression) and element.operator is sa_operators.in_op
        ):
            return None
        right, left = element.right, element.left
        if (
            isinstance(left, sa.Column)
            and isinstance(right, sa.BindParameter)
            and right.expanding
            and right.value is None  # a named list given at execution
        ):
            array = sa.bindparam(right.key, type_=sa_postgresql.ARRAY(sa.String()))
            return left == sa.any_(array)
        return None

    traversible: Any = statement  # every statement here is a Select, Update or Delete
    options: dict[str, Any] = {}
    rewritten: sa.Executable = sa_visitors.replacement_traverse(traversible, options, replace)
    return rewritten


def _chunks(items: Sequence[T], size: int = _CHUNK) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (a list: psycopg sends it as one PostgreSQL array)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _touch_row(r: TouchRecord) -> dict[str, Any]:
    return {
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
    }


def _reward_row(r: Reward, state: RewardState) -> dict[str, Any]:
    unit: Unit = r.value.unit
    return {
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
        "state": state.value,
        "item": r.item,
        **_rate_params(r.exchange_rate),
    }


class _SQLAlchemyUnitOfWork:
    """One transaction on one connection, held from ``__enter__`` to ``__exit__``.

    Every read of the transaction sees one snapshot (``REPEATABLE READ``; on SQLite and
    MySQL without snapshot isolation nothing else writes meanwhile), so rows the unit reads
    are cached for the transaction, and ``prefetch`` loads a batch's rows with one
    ``IN (...)`` query per table. Writes are buffered in the unit, where its reads see them,
    and flushed at ``commit()`` with one ``executemany`` per table (multi-row ``INSERT``),
    counters as one upsert of each counter's summed delta; a query the buffers cannot
    answer flushes them first. Added events are inserted last, at ``commit()``, under the
    event-log lock.

    After ``commit()`` the unit stays usable: the next statement begins a new transaction
    (with empty caches), rolled back on leaving the block unless committed too. A database
    error, or a conflict the unit finds in its own buffers, rolls the whole unit back, and
    a later ``commit()`` refuses.
    """

    def __init__(self, store: SQLAlchemyStore) -> None:
        self._store = store
        self._conn: sa.Connection | None = None
        self._failed = False
        self._locked = False
        self._reset()

    def _reset(self) -> None:
        # Read caches of this transaction (a key mapped to None: known to have no row),
        # which also hold the unit's own writes, and the rows waiting to be flushed.
        self._events: dict[_Key, EventRecord] = {}  # added; inserted at commit
        self._seen: dict[_Key, EventRecord | None] = {}
        self._participants: dict[_Key, ParticipantRecord | None] = {}
        self._emails: dict[_Key, str | None] = {}
        self._code_owner: dict[_Key, CodeRecord | None] = {}
        self._referral_of: dict[_Key, Referral | None] = {}
        self._referrals: dict[str, Referral | None] = {}
        self._orders: dict[_Key, OrderRecord | None] = {}
        self._refunds: dict[_Key, RefundRecord | None] = {}
        self._chargebacks: dict[_Key, ChargebackRecord | None] = {}
        self._counters: dict[CounterKey, Decimal] = {}
        self._subjects: set[_Key] = set()  # (program, subject): all its counters loaded
        self._deltas: dict[CounterKey, int] = {}
        self._exponents: dict[str, int] = {}
        self._new_rewards: dict[str, Reward] = {}
        self._new_entries: dict[str, list[Entry]] = {}
        self._state: dict[str, RewardState] = {}
        self._inserts: dict[sa.Insert, list[dict[str, Any]]] = {}
        self._participant_rows: dict[_Key, dict[str, Any]] = {}
        self._email_rows: dict[_Key, dict[str, Any]] = {}
        self._new_touches: dict[_Key, TouchRecord] = {}
        self._new_of_visitor: dict[_Key, list[_Key]] = {}  # their keys, by visitor
        # Rows prefetched for a batch, valid until the next flush (which inserts new rows).
        self._visitor_touches: dict[_Key, list[TouchRecord]] = {}
        self._order_rewards: dict[_Key, list[Reward]] = {}
        self._stored_entries: dict[str, list[Entry]] = {}

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
        self._reset()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        self._reset()
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
        self.flush()  # a failure here has rolled the unit back already
        try:
            with _translated():
                self._flush_events(conn)
                conn.commit()
        except StoreError:
            self._abort()
            raise
        self._reset()  # the next transaction reads a new snapshot
        self._unlock(conn)

    def rollback(self) -> None:
        conn = self._require_open()
        self._reset()
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
        self._reset()
        conn = self._conn
        if conn is None:
            return
        try:
            conn.rollback()
            self._unlock(conn)
        except sa_exc.SQLAlchemyError:
            conn.invalidate()

    def _conflict(self, message: str) -> ConcurrencyError:
        """A conflict found in the unit's own buffers: roll back, as the database would."""
        self._abort()
        return ConcurrencyError(message)

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
        rows = [
            {
                "program_id": r.program_id,
                "event_id": r.event_id,
                "digest": r.digest,
                "schema_version": r.schema_version,
                "event": codec.dumps(r.event),
                "outcome": codec.dumps(r.outcome),
                "event_key": event_key(r.event),
            }
            for r in self._events.values()
        ]
        conn.execute(*self._store._many(_INSERT_EVENT, rows))
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
            return conn.execute(self._store._for_dialect(statement), params)
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

    # -- buffered writes -------------------------------------------------------------------
    def _buffer(self, statement: sa.Insert, row: dict[str, Any]) -> None:
        if self._conn is None:
            self._require_open()
        rows = self._inserts.get(statement)
        if rows is None:
            self._inserts[statement] = [row]
        else:
            rows.append(row)

    def flush(self) -> None:
        """Write the buffered rows, one ``executemany`` per table, in the order the tables
        depend on each other (rewards before their entries); upserts in key order, so two
        units lock shared rows in the same order."""
        store = self._store
        many = store._many
        self._visitor_touches = {}
        self._order_rewards = {}
        self._stored_entries = {}
        if self._new_touches:
            rows = [_touch_row(r) for r in self._new_touches.values()]
            self._execute(*many(_INSERT_TOUCH, rows))
            self._new_touches = {}
            self._new_of_visitor = {}
        if self._participant_rows:
            pending = self._participant_rows
            rows = [pending[k] for k in sorted(pending)]
            self._execute(*many(store._upserts.participant, rows))
            self._participant_rows = {}
        if self._email_rows:
            pending = self._email_rows
            self._execute(*many(store._upserts.email, [pending[k] for k in sorted(pending)]))
            self._email_rows = {}
        if self._new_rewards:
            new = self._new_rewards
            rows = [_reward_row(r, self._state[rid]) for rid, r in new.items()]
            self._execute(*many(_INSERT_REWARD, rows))
            self._new_rewards = {}
            # New rewards went in with their latest state; older ones still need updating.
            self._state = {k: v for k, v in self._state.items() if k not in new}
        if self._inserts:
            for statement, inserts in self._inserts.items():
                self._execute(*many(statement, inserts))
            self._inserts = {}
        self._new_entries = {}
        if self._state:
            self._execute(
                _SET_REWARD_STATE,
                [{"rid": rid, "new_state": s.value} for rid, s in sorted(self._state.items())],
            )
            self._state = {}
        if self._deltas:
            rows = [
                {"program_id": k[0], "name": k[1], "subject": k[2], "value_scaled": delta}
                for k, delta in sorted(self._deltas.items())
            ]
            self._execute(*many(store._upserts.counter, rows))
            self._deltas = {}

    # -- batch prefetch --------------------------------------------------------------------
    def prefetch(
        self,
        program_id: str,
        *,
        event_ids: Sequence[str] = (),
        participant_ids: Sequence[str] = (),
        order_ids: Sequence[str] = (),
        codes: Sequence[str] = (),
        counter_subjects: Sequence[str] = (),
        visitor_ids: Sequence[str] = (),
        refund_ids: Sequence[str] = (),
        refunded_orders: Sequence[str] = (),
    ) -> None:
        """Load the rows a batch of events will look up: one ``IN (...)`` query per table
        (per 500 ids).

        ``counter_subjects``: every counter of these subjects (and of ``codes``: a code's
        use and deactivation counters) is loaded, so a counter of theirs that has no row
        reads as 0 without a query; the counters of the referrers of the referrals found
        (by referee, or by the orders' referral ids) and of the codes' owners are loaded
        too. ``visitor_ids``: their touches. ``refunded_orders``: the rewards those orders
        earned, and their entries.
        """
        self._require_open()
        self._prefetch_counters(program_id, [*counter_subjects, *codes])
        self._load(self._seen, event_ids, _EVENTS_IN, program_id, _event_key)
        self._load(self._participants, participant_ids, _PARTICIPANTS_IN, program_id, _pa_key)
        self._load(
            self._referral_of, participant_ids, _REFERRALS_OF_REFEREES_IN, program_id, _ref_key
        )
        self._load(self._orders, order_ids, _ORDERS_IN, program_id, _order_key)
        self._load(self._code_owner, codes, _CODES_IN, program_id, _code_key)
        self._load(self._refunds, refund_ids, _REFUNDS_IN, program_id, _refund_key)
        for referral in self._referral_of.values():
            if referral is not None:
                self._referrals.setdefault(referral.referral_id, referral)
        by_id = sorted(
            {
                o.referral_id
                for o in self._orders.values()
                if o is not None and o.referral_id is not None
            }
            - self._referrals.keys()
        )
        for chunk in _chunks(by_id):
            rows = self._rows(_REFERRALS_IN, {"ids": chunk})
            for key in chunk:
                self._referrals[key] = None
            for row in rows:
                self._referrals[row[0]] = _referral(row)
        people = {r.referrer_id for r in self._referrals.values() if r is not None}
        people.update(c.participant_id for c in self._code_owner.values() if c is not None)
        self._prefetch_counters(program_id, sorted(people))
        self._load_groups(
            self._visitor_touches,
            visitor_ids,
            _TOUCHES_OF_VISITORS_IN,
            program_id,
            _touch,
            lambda t: (t.program_id, t.visitor_id or ""),
        )
        found = self._load_groups(
            self._order_rewards,
            refunded_orders,
            _REWARDS_OF_ORDERS_IN,
            program_id,
            _reward,
            lambda r: (r.program_id, r.order_id or ""),
        )
        for reward in found:
            self._exponents[reward.reward_id] = reward.value.unit.exponent
            self._stored_entries[reward.reward_id] = []
        for chunk in _chunks([r.reward_id for r in found]):
            for row in self._rows(_ENTRIES_OF, {"ids": chunk}):
                self._stored_entries[row[1]].append(_entry(row))

    def _prefetch_counters(self, program_id: str, counter_subjects: Sequence[str]) -> None:
        subjects = sorted({s for s in counter_subjects if (program_id, s) not in self._subjects})
        for chunk in _chunks(subjects):
            rows = self._rows(_COUNTERS_OF_SUBJECTS, {"program_id": program_id, "ids": chunk})
            for pid, name, subject, scaled in rows:
                key = (pid, name, subject)
                if key not in self._counters:
                    self._counters[key] = _unscaled(scaled + self._deltas.get(key, 0))
            loaded = {(program_id, subject) for subject in chunk}
            self._subjects |= loaded
            # counters this unit added to before they were loaded, and that have no row
            for key, delta in self._deltas.items():
                if (key[0], key[2]) in loaded and key not in self._counters:
                    self._counters[key] = _unscaled(delta)

    def _load_groups(
        self,
        cache: dict[_Key, list[T]],
        ids: Sequence[str],
        statement: sa.Executable,
        program_id: str,
        decode: Callable[[Sequence[Any]], T],
        key: Callable[[T], _Key],
    ) -> list[T]:
        """Load the rows of each of ``ids`` (several per id) into ``cache``; returns them."""
        found: list[T] = []
        wanted = sorted({i for i in ids if (program_id, i) not in cache})
        for chunk in _chunks(wanted):
            rows = self._rows(statement, {"program_id": program_id, "ids": chunk})
            for one in chunk:
                cache[(program_id, one)] = []
            for row in rows:
                record = decode(row)
                cache[key(record)].append(record)
                found.append(record)
        return found

    def _load(
        self,
        cache: dict[Any, Any],
        ids: Sequence[str],
        statement: sa.Executable,
        program_id: str,
        decode: Callable[[Sequence[Any]], tuple[Any, Any]],
    ) -> None:
        wanted = sorted({i for i in ids if (program_id, i) not in cache})
        for chunk in _chunks(wanted):
            rows = self._rows(statement, {"program_id": program_id, "ids": chunk})
            for key in chunk:
                cache[(program_id, key)] = None
            for row in rows:
                key, record = decode(row)
                cache[key] = record

    # -- event log (the unit is its own EventLog) --------------------------------------
    def get(self, program_id: str, event_id: str) -> EventRecord | None:
        key = (program_id, event_id)
        pending = self._events.get(key)
        if pending is not None:
            return pending
        if key in self._seen:
            return self._seen[key]
        row = self._first(_GET_EVENT, {"program_id": program_id, "event_id": event_id})
        record = self._seen[key] = None if row is None else _event_record(row)
        return record

    def redact(self, program_id: str, event_id: str, event: Event) -> None:
        key = (program_id, event_id)
        pending = self._events.get(key)
        if pending is not None:
            self._events[key] = attrs.evolve(pending, event=event)
            return
        old = self.get(program_id, event_id)
        if old is None:
            raise StoreError(f"unknown event {key!r}")
        self._execute(
            _REDACT_EVENT,
            {
                "pid": program_id,
                "eid": event_id,
                "new_event": codec.dumps(event),
                "new_key": event_key(event),
            },
        )
        self._seen[key] = attrs.evolve(old, event=event)

    def _write_through(self, conn: sa.Connection) -> None:
        """Write the buffered rows and events, so a query of the log sees this unit's own."""
        self.flush()
        if self._events:
            try:
                with _translated():
                    self._flush_events(conn)
            except StoreError:
                self._abort()
                raise

    def about(self, program_id: str, keys: Sequence[str]) -> list[tuple[int, EventRecord]]:
        """The events with these keys (``rk_events_key``), the unit's own inserted first
        as ``since`` does."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return []
        self._write_through(self._require_open())
        found: dict[int, EventRecord] = {}
        for chunk in _chunks(wanted):
            for r in self._rows(_EVENTS_OF_KEYS, {"program_id": program_id, "ids": chunk}):
                found[int(r[0])] = _event_record(r[1:])
        return sorted(found.items())

    def add(self, record: EventRecord) -> None:
        self._require_open()
        key = (record.program_id, record.event_id)
        if key in self._events or self._seen.get(key) is not None:
            raise self._conflict(f"event {key!r} already exists")
        self._events[key] = record

    def since(self, program_id: str, after: int, limit: int) -> list[tuple[int, EventRecord]]:
        if limit < 1:
            return []
        self._write_through(self._require_open())
        rows = self._rows(_EVENTS_SINCE, {"program_id": program_id, "after": after, "limit": limit})
        return [(int(r[0]), _event_record(r[1:])) for r in rows]

    @property
    def events(self) -> _SQLAlchemyUnitOfWork:
        return self

    @_lazy
    def programs(self) -> _Programs:
        return _Programs(self)

    @_lazy
    def participants(self) -> _Participants:
        return _Participants(self)

    @_lazy
    def referrals(self) -> _Referrals:
        return _Referrals(self)

    @_lazy
    def orders(self) -> _Orders:
        return _Orders(self)

    @_lazy
    def ledger(self) -> _Ledger:
        return _Ledger(self)

    @_lazy
    def counters(self) -> _Counters:
        return _Counters(self)

    @_lazy
    def outbox(self) -> _Outbox:
        return _Outbox(self)

    @_lazy
    def payouts(self) -> _Payouts:
        return _Payouts(self)

    @_lazy
    def touches(self) -> _Touches:
        return _Touches(self)


def _event_key(r: Sequence[Any]) -> tuple[_Key, EventRecord]:
    return (r[0], r[1]), _event_record(r)


def _pa_key(r: Sequence[Any]) -> tuple[_Key, ParticipantRecord]:
    return (r[0], r[1]), _participant(r)


def _ref_key(r: Sequence[Any]) -> tuple[_Key, Referral]:
    return (r[1], r[4]), _referral(r)


def _order_key(r: Sequence[Any]) -> tuple[_Key, OrderRecord]:
    return (r[0], r[1]), _order(r)


def _code_key(r: Sequence[Any]) -> tuple[_Key, CodeRecord]:
    return (r[0], r[1]), _code(r)


def _refund_key(r: Sequence[Any]) -> tuple[_Key, RefundRecord]:
    return (r[0], r[1]), _refund(r)


class _Repo:
    def __init__(self, uow: _SQLAlchemyUnitOfWork) -> None:
        self._u = uow


class _Programs(_Repo):
    def get(self, program_id: str, version: int) -> ProgramRecord | None:
        row = self._u._first(_GET_PROGRAM, {"program_id": program_id, "version": version})
        return None if row is None else _program(row)

    def add(self, record: ProgramRecord) -> None:
        self._u._execute(
            _INSERT_PROGRAM,
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
        key = (program_id, participant_id)
        cache = self._u._participants
        if key in cache:
            return cache[key]
        row = self._u._first(
            _GET_PARTICIPANT, {"program_id": program_id, "participant_id": participant_id}
        )
        record = cache[key] = None if row is None else _participant(row)
        return record

    def put(self, record: ParticipantRecord) -> None:
        self._u._require_open()
        key = (record.program_id, record.participant_id)
        self._u._participants[key] = record
        self._u._participant_rows[key] = {
            "program_id": record.program_id,
            "participant_id": record.participant_id,
            "first_seen_at": _ts(record.first_seen_at),
            "signed_up_at": _opt_ts(record.signed_up_at),
            "country": record.country,
        }

    def code_owner(self, program_id: str, code: str) -> CodeRecord | None:
        key = (program_id, code)
        cache = self._u._code_owner
        if key in cache:
            return cache[key]
        row = self._u._first(_CODE_OWNER, {"program_id": program_id, "code": code})
        record = cache[key] = None if row is None else _code(row)
        return record

    def code_of(self, program_id: str, participant_id: str) -> CodeRecord | None:
        row = self._u._first(_CODE_OF, {"program_id": program_id, "participant_id": participant_id})
        return None if row is None else _code(row)

    def add_code(self, record: CodeRecord) -> None:
        self._u._execute(
            _INSERT_CODE,
            {
                "program_id": record.program_id,
                "code": record.code,
                "participant_id": record.participant_id,
                "created_at": _ts(record.created_at),
                "max_uses": record.max_uses,
                "expires_at": _opt_ts(record.expires_at),
            },
        )
        self._u._code_owner[(record.program_id, record.code)] = record

    def email_of(self, program_id: str, participant_id: str) -> str | None:
        key = (program_id, participant_id)
        cache = self._u._emails
        if key in cache:
            return cache[key]
        row = self._u._first(
            _EMAIL_OF, {"program_id": program_id, "participant_id": participant_id}
        )
        email = cache[key] = None if row is None else str(row[0])
        return email

    def set_email(self, program_id: str, participant_id: str, email: str) -> None:
        self._u._require_open()
        key = (program_id, participant_id)
        self._u._emails[key] = email
        self._u._email_rows[key] = {
            "program_id": program_id,
            "participant_id": participant_id,
            "email": email,
        }


class _Referrals(_Repo):
    def by_referee(self, program_id: str, referee_id: str) -> Referral | None:
        key = (program_id, referee_id)
        cache = self._u._referral_of
        if key in cache:
            return cache[key]
        row = self._u._first(
            _REFERRAL_BY_REFEREE, {"program_id": program_id, "referee_id": referee_id}
        )
        record = cache[key] = None if row is None else _referral(row)
        if record is not None:
            self._u._referrals.setdefault(record.referral_id, record)
        return record

    def get(self, referral_id: str) -> Referral | None:
        cache = self._u._referrals
        if referral_id in cache:
            return cache[referral_id]
        row = self._u._first(_GET_REFERRAL, {"referral_id": referral_id})
        record = cache[referral_id] = None if row is None else _referral(row)
        return record

    def add(self, referral: Referral) -> None:
        r = referral
        u = self._u
        key = (r.program_id, r.referee_id)
        if u._referral_of.get(key) is not None or u._referrals.get(r.referral_id) is not None:
            raise u._conflict(f"referee {key!r} already has a referral")
        u._buffer(
            _INSERT_REFERRAL,
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
        u._referral_of[key] = r
        u._referrals[r.referral_id] = r

    def by_referrer(self, program_id: str, referrer_id: str) -> list[Referral]:
        if _INSERT_REFERRAL in self._u._inserts:
            self._u.flush()
        rows = self._u._rows(
            _REFERRALS_BY_REFERRER, {"program_id": program_id, "referrer_id": referrer_id}
        )
        return [_referral(r) for r in rows]

    def update(self, referral: Referral) -> None:
        old = self.get(referral.referral_id)
        if old is None:
            raise StoreError(f"unknown referral {referral.referral_id!r}")
        self._u.flush()
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
        new = attrs.evolve(
            old,
            referrer_id=referral.referrer_id,
            code=referral.code,
            status=referral.status,
            explanation=referral.explanation,
        )
        self._u._referrals[new.referral_id] = new
        self._u._referral_of[(new.program_id, new.referee_id)] = new


class _Touches(_Repo):
    """New touches wait in the unit (its reads see them) and are inserted at flush, so a
    batch of clicks reads touches without flushing every other buffered write."""

    def add(self, record: TouchRecord) -> None:
        u = self._u
        u._require_open()
        key = (record.program_id, record.touch_id)
        if key in u._new_touches:
            raise u._conflict(f"touch {key!r} already exists")
        u._new_touches[key] = record
        if record.visitor_id is not None:
            u._new_of_visitor.setdefault((record.program_id, record.visitor_id), []).append(key)

    def _query(
        self, statement: sa.Executable, field: str, program_id: str, value: str
    ) -> list[TouchRecord]:
        u = self._u
        cached = u._visitor_touches.get((program_id, value)) if field == "visitor_id" else None
        if cached is not None:
            found = list(cached)
        else:
            rows = u._rows(statement, {"program_id": program_id, "key": value})
            found = [_touch(r) for r in rows]
        new = u._new_touches
        if field == "visitor_id":
            pending = [new[key] for key in u._new_of_visitor.get((program_id, value), ())]
        else:
            pending = [
                r for r in new.values() if r.program_id == program_id and getattr(r, field) == value
            ]
        if not pending and cached is None:
            return found  # in (at, touch_id) order already
        return sorted([*found, *pending], key=lambda r: (r.at, r.touch_id))

    def of_visitor(self, program_id: str, visitor_id: str) -> list[TouchRecord]:
        return self._query(_TOUCHES_OF_VISITOR, "visitor_id", program_id, visitor_id)

    def of_participant(self, program_id: str, participant_id: str) -> list[TouchRecord]:
        return self._query(_TOUCHES_OF_PARTICIPANT, "participant_id", program_id, participant_id)

    def attach(self, program_id: str, visitor_id: str, participant_id: str) -> None:
        self._u._execute(
            _ATTACH_TOUCHES,
            {"pid": program_id, "vid": visitor_id, "new_participant_id": participant_id},
        )
        cached = self._u._visitor_touches.get((program_id, visitor_id))
        if cached is not None:
            cached[:] = [
                attrs.evolve(r, participant_id=participant_id) if r.participant_id is None else r
                for r in cached
            ]
        pending = self._u._new_touches
        for key, record in pending.items():
            if (
                record.program_id == program_id
                and record.visitor_id == visitor_id
                and record.participant_id is None
            ):
                pending[key] = attrs.evolve(record, participant_id=participant_id)

    def purge(self, program_id: str, before: datetime) -> int:
        self._u.flush()
        result = self._u._execute(_PURGE_TOUCHES, {"program_id": program_id, "before": _ts(before)})
        return int(getattr(result, "rowcount", 0) or 0)

    def forget(self, program_id: str, participant_id: str) -> int:
        self._u.flush()
        result = self._u._execute(_FORGET_TOUCHES, {"pid": program_id, "who": participant_id})
        return int(getattr(result, "rowcount", 0) or 0)


class _Orders(_Repo):
    def get(self, program_id: str, order_id: str) -> OrderRecord | None:
        key = (program_id, order_id)
        cache = self._u._orders
        if key in cache:
            return cache[key]
        row = self._u._first(_GET_ORDER, {"program_id": program_id, "order_id": order_id})
        record = cache[key] = None if row is None else _order(row)
        return record

    def add(self, record: OrderRecord) -> None:
        r = record
        key = (r.program_id, r.order_id)
        if self._u._orders.get(key) is not None:
            raise self._u._conflict(f"order {key!r} already exists")
        self._u._buffer(
            _INSERT_ORDER,
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
                **_rate_params(r.exchange_rate),
            },
        )
        self._u._orders[key] = r

    def update(self, record: OrderRecord) -> None:
        key = (record.program_id, record.order_id)
        old = self.get(*key)
        if old is None:
            raise StoreError(f"unknown order {key!r}")
        self._u.flush()  # the order may still wait in the buffer
        self._u._execute(
            _UPDATE_ORDER,
            {
                "pid": record.program_id,
                "oid": record.order_id,
                "new_referral": record.referral_id,
                "new_converted": int(record.converted),
            },
        )
        self._u._orders[key] = attrs.evolve(
            old, referral_id=record.referral_id, converted=record.converted
        )

    def refund(self, program_id: str, refund_id: str) -> RefundRecord | None:
        key = (program_id, refund_id)
        cache = self._u._refunds
        if key in cache:
            return cache[key]
        row = self._u._first(_GET_REFUND, {"program_id": program_id, "refund_id": refund_id})
        record = cache[key] = None if row is None else _refund(row)
        return record

    def add_refund(self, record: RefundRecord) -> None:
        r = record
        key = (r.program_id, r.refund_id)
        if self._u._refunds.get(key) is not None:
            raise self._u._conflict(f"refund {key!r} already exists")
        self._u._buffer(
            _INSERT_REFUND,
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
        self._u._refunds[key] = r

    def chargeback(self, program_id: str, chargeback_id: str) -> ChargebackRecord | None:
        key = (program_id, chargeback_id)
        cache = self._u._chargebacks
        if key in cache:
            return cache[key]
        row = self._u._first(
            _GET_CHARGEBACK, {"program_id": program_id, "chargeback_id": chargeback_id}
        )
        record = cache[key] = None if row is None else _chargeback(row)
        return record

    def add_chargeback(self, record: ChargebackRecord) -> None:
        r = record
        key = (r.program_id, r.chargeback_id)
        if self._u._chargebacks.get(key) is not None:
            raise self._u._conflict(f"chargeback {key!r} already exists")
        self._u._buffer(
            _INSERT_CHARGEBACK,
            {
                "program_id": r.program_id,
                "chargeback_id": r.chargeback_id,
                "order_id": r.order_id,
                "at": _ts(r.at),
                "event_id": r.event_id,
                "digest": r.digest,
            },
        )
        self._u._chargebacks[key] = r


class _Ledger(_Repo):
    def add_reward(self, reward: Reward, entry: Entry) -> None:
        u = self._u
        u._require_open()
        if reward.reward_id in u._new_rewards:
            raise u._conflict(f"reward {reward.reward_id!r} already exists")
        u._new_rewards[reward.reward_id] = reward
        u._exponents[reward.reward_id] = reward.value.unit.exponent
        u._state[reward.reward_id] = entry.state_after
        self.append((entry,))

    def append(self, entries: Sequence[Entry]) -> None:
        u = self._u
        u._require_open()
        unknown = sorted({e.reward_id for e in entries} - u._exponents.keys())
        for chunk in _chunks(unknown):
            for rid, kind, code in u._rows(_REWARD_UNITS, {"ids": chunk}):
                u._exponents[rid] = _exponent(rid, kind, code)
        for e in entries:
            if e.reward_id not in u._exponents:
                raise StoreError(f"entry {e.entry_id!r} names unknown reward {e.reward_id!r}")
        for e in entries:
            exponent = u._exponents[e.reward_id]
            u._buffer(
                _INSERT_ENTRY,
                {
                    "entry_id": e.entry_id,
                    "reward_id": e.reward_id,
                    "program_id": e.program_id,
                    "participant_id": e.participant_id,
                    "kind": e.kind.value,
                    "quantity_minor": _scaled(e.quantity, exponent, "entry.quantity"),
                    "exponent": exponent,
                    "at": _ts(e.at),
                    "cause": e.cause,
                    "state_after": e.state_after.value,
                    "actor": e.actor,
                },
            )
            u._new_entries.setdefault(e.reward_id, []).append(e)
            u._state[e.reward_id] = e.state_after

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
        field = "participant_id" if participant_id is not None else "order_id"
        key = participant_id if participant_id is not None else order_id
        cached = None if order_id is None else self._u._order_rewards.get((program_id, order_id))
        if cached is not None:
            found = list(cached)
        else:
            rows = self._u._rows(statement, {"program_id": program_id, "key": key})
            found = [_reward(r) for r in rows]
        found.extend(
            r
            for r in self._u._new_rewards.values()
            if r.program_id == program_id and getattr(r, field) == key
        )
        return found

    def entries(self, reward_ids: Iterable[str]) -> dict[str, list[Entry]]:
        ids = list(reward_ids)
        out: dict[str, list[Entry]] = {i: [] for i in ids}
        new = self._u._new_entries
        cached = self._u._stored_entries
        stored = []
        for i, found in out.items():
            if i in cached:
                found.extend(cached[i])
            elif i not in self._u._new_rewards:
                stored.append(i)
        for chunk in _chunks(stored):
            for r in self._u._rows(_ENTRIES_OF, {"ids": chunk}):
                out[r[1]].append(_entry(r))
        for i, found in out.items():
            if i in new:
                found.extend(new[i])
        return out

    def in_state(
        self, program_id: str, state: RewardState, *, due_by: datetime | None, limit: int
    ) -> list[Reward]:
        if limit < 1:
            return []
        self._u.flush()
        params: dict[str, Any] = {"program_id": program_id, "state": state.value, "limit": limit}
        if due_by is None:
            rows = self._u._rows(_IN_STATE, params)
        else:
            rows = self._u._rows(_IN_STATE_DUE, {**params, "due_by": _ts(due_by)})
        return [_reward(r) for r in rows]

    def of_kind(
        self,
        program_id: str,
        kind: str,
        *,
        created_by: datetime,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[Reward]:
        if limit < 1:
            return []
        self._u.flush()
        after_at, after_id = ("", "") if after is None else (_ts(after[0]), after[1])
        rows = self._u._rows(
            _OF_KIND,
            {
                "program_id": program_id,
                "kind": kind,
                "created_by": _ts(created_by),
                "after_at": after_at,
                "after_id": after_id,
                "limit": limit,
            },
        )
        return [_reward(r) for r in rows]


class _Counters(_Repo):
    def get(self, keys: Iterable[CounterKey]) -> dict[CounterKey, Decimal]:
        u = self._u
        cache = u._counters
        wanted = list(keys)
        missing: list[CounterKey] = []
        for key in dict.fromkeys(wanted):
            norm = (key[0], str(key[1]), key[2])
            if norm in cache:
                continue
            if (key[0], key[2]) in u._subjects:  # loaded with its subject: no row, so 0
                cache[norm] = _unscaled(u._deltas.get(norm, 0))
                continue
            missing.append(norm)
        for chunk in _chunks(sorted(set(missing))):
            for key in chunk:
                cache[key] = Decimal(0)
            for program_id, name, subject, scaled in u._rows(_GET_COUNTERS, {"keys": chunk}):
                cache[(program_id, name, subject)] = _unscaled(scaled)
            for key in chunk:  # this unit's own updates made before the first read
                if key in u._deltas:
                    cache[key] += _unscaled(u._deltas[key])
        return {k: cache[(k[0], str(k[1]), k[2])] for k in wanted}

    def add(self, key: CounterKey, delta: Decimal) -> None:
        if not delta:
            return
        u = self._u
        u._require_open()
        scaled = _scaled(Decimal(delta), _COUNTER_SCALE, "counter delta")
        key = (key[0], str(key[1]), key[2])
        u._deltas[key] = u._deltas.get(key, 0) + scaled
        cache = u._counters
        if key in cache:
            cache[key] += _unscaled(scaled)
        elif (key[0], key[2]) in u._subjects:  # no row when its subject was loaded
            cache[key] = _unscaled(scaled)


class _Outbox(_Repo):
    def add(self, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            self._u._buffer(
                _INSERT_NOTIFICATION,
                {
                    "notification_id": n.notification_id,
                    "program_id": n.program_id,
                    "kind": n.kind,
                    "recipient_id": n.recipient_id,
                    "created_at": _ts(n.created_at),
                    "data": codec.dumps(n.data),
                    "attempts": 0,
                },
            )

    def pending(self, limit: int) -> list[Notification]:
        if limit < 1:
            return []
        self._u.flush()
        return [_notification(r) for r in self._u._rows(_PENDING, {"limit": limit})]

    def due(self, at: datetime, limit: int) -> list[tuple[Notification, int]]:
        if limit < 1:
            return []
        self._u.flush()
        rows = list(self._u._rows(_DUE_RETRIES, {"at": _ts(at), "limit": limit}))
        if len(rows) < limit:
            rows += self._u._rows(_DUE_FRESH, {"limit": limit - len(rows)})
        return [(_notification(r), r[7]) for r in rows]

    def mark_delivered(self, notification_id: str, at: datetime) -> None:
        self._u.flush()
        self._u._execute(_MARK_DELIVERED, {"nid": notification_id, "at": _ts(at)})

    def mark_failed(
        self, notification_id: str, at: datetime, error: str, retry_at: datetime | None = None
    ) -> None:
        self._u.flush()
        params = {"nid": notification_id, "error": error, "retry_at": _ts(retry_at or at)}
        self._u._execute(_MARK_FAILED, params)

    def mark_dead(self, notification_id: str, at: datetime, error: str) -> None:
        self._u.flush()
        self._u._execute(_MARK_DEAD, {"nid": notification_id, "error": error, "at": _ts(at)})

    def dead(self, limit: int) -> list[DeadLetter]:
        if limit < 1:
            return []
        self._u.flush()
        return [_dead_letter(r) for r in self._u._rows(_DEAD, {"limit": limit})]

    def revive(self, notification_ids: Sequence[str]) -> int:
        self._u.flush()
        revived = 0
        for nid in dict.fromkeys(notification_ids):
            revived += self._u._execute(_REVIVE, {"nid": nid}).rowcount
        return revived


class _Payouts(_Repo):
    def add(self, payout: Payout) -> None:
        self._u._execute(
            _INSERT_PAYOUT,
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
