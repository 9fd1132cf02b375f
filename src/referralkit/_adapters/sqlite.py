"""The embedded default store: SQLite through the standard library's ``sqlite3``.

One database file (or ``":memory:"``) holds every table. Invariants are enforced by the
database itself (unique keys for event ids, business ids, one referrer per referee, codes,
entry and notification ids), money is kept as integer minor units and datetimes as UTC
text, so sums and orderings are exact in SQL. Each unit of work is one ``BEGIN IMMEDIATE``
transaction: writers queue on SQLite's lock (with a busy timeout) instead of failing
half-way, so several processes can share one file.
"""

from __future__ import annotations

import json
import math
import operator
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
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
    SchemaVersionError,
    StoreError,
    StoreUnavailableError,
)
from referralkit._ports import CounterKey, event_key
from referralkit._values import codec
from referralkit._values._checks import is_text
from referralkit._values.events import Event
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

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

#: The schema this version of referralkit writes; a newer database is refused.
SCHEMA_VERSION: Final = 3

#: The oldest schema this version of referralkit migrates in place (to ``SCHEMA_VERSION``).
_MIGRATES_FROM: Final = 2


T = TypeVar("T")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS rk_schema (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rk_programs (
    program_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest TEXT NOT NULL,
    effective_at TEXT NOT NULL,
    published_at TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (program_id, version)
);
CREATE TABLE IF NOT EXISTS rk_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    program_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT NOT NULL,
    event_key TEXT,
    UNIQUE (program_id, event_id)
);
-- The log read in order, page by page (Engine.event_log).
CREATE INDEX IF NOT EXISTS rk_events_log ON rk_events (program_id, seq);
-- A participant's events by key (KeyedEventLog.about), in seq order: seq is the rowid.
CREATE INDEX IF NOT EXISTS rk_events_key ON rk_events (program_id, event_key)
    WHERE event_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS rk_participants (
    program_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    first_seen_at TEXT NOT NULL,
    signed_up_at TEXT,
    country TEXT,
    PRIMARY KEY (program_id, participant_id)
);
CREATE TABLE IF NOT EXISTS rk_codes (
    program_id TEXT NOT NULL,
    code TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    max_uses INTEGER,
    expires_at TEXT,
    PRIMARY KEY (program_id, code),
    UNIQUE (program_id, participant_id)
);
CREATE TABLE IF NOT EXISTS rk_personal_data (
    program_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    email TEXT NOT NULL,
    PRIMARY KEY (program_id, participant_id)
);
CREATE TABLE IF NOT EXISTS rk_referrals (
    referral_id TEXT PRIMARY KEY,
    program_id TEXT NOT NULL,
    program_version INTEGER NOT NULL,
    referrer_id TEXT NOT NULL,
    referee_id TEXT NOT NULL,
    code TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at TEXT NOT NULL,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL,
    explanation TEXT NOT NULL,
    UNIQUE (program_id, referee_id)
);
CREATE INDEX IF NOT EXISTS rk_referrals_referrer ON rk_referrals (program_id, referrer_id);
CREATE TABLE IF NOT EXISTS rk_orders (
    program_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    at TEXT NOT NULL,
    event_id TEXT NOT NULL,
    referral_id TEXT,
    converted INTEGER NOT NULL,
    digest TEXT NOT NULL,
    exchange_rate TEXT,
    rate_on TEXT,
    PRIMARY KEY (program_id, order_id)
);
CREATE TABLE IF NOT EXISTS rk_refunds (
    program_id TEXT NOT NULL,
    refund_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    at TEXT NOT NULL,
    event_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (program_id, refund_id)
);
CREATE TABLE IF NOT EXISTS rk_chargebacks (
    program_id TEXT NOT NULL,
    chargeback_id TEXT NOT NULL,
    order_id TEXT NOT NULL,
    at TEXT NOT NULL,
    event_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (program_id, chargeback_id)
);
CREATE TABLE IF NOT EXISTS rk_rewards (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    reward_id TEXT NOT NULL UNIQUE,
    program_id TEXT NOT NULL,
    program_version INTEGER NOT NULL,
    referral_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    role TEXT NOT NULL,
    value TEXT NOT NULL,
    unit_kind TEXT NOT NULL,
    unit_code TEXT NOT NULL,
    policy TEXT NOT NULL,
    source_event_id TEXT NOT NULL,
    order_id TEXT,
    base_minor INTEGER,
    base_currency TEXT,
    created_at TEXT NOT NULL,
    payable_at TEXT NOT NULL,
    state TEXT NOT NULL,
    item TEXT,
    exchange_rate TEXT,
    rate_on TEXT
);
CREATE INDEX IF NOT EXISTS rk_rewards_participant ON rk_rewards (program_id, participant_id, seq);
CREATE INDEX IF NOT EXISTS rk_rewards_order ON rk_rewards (program_id, order_id, seq);
CREATE INDEX IF NOT EXISTS rk_rewards_state
    ON rk_rewards (program_id, state, payable_at, reward_id);
CREATE INDEX IF NOT EXISTS rk_rewards_kind
    ON rk_rewards (program_id, unit_kind, created_at, reward_id);
CREATE TABLE IF NOT EXISTS rk_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_id TEXT NOT NULL UNIQUE,
    reward_id TEXT NOT NULL REFERENCES rk_rewards (reward_id),
    program_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    quantity_minor INTEGER NOT NULL,
    exponent INTEGER NOT NULL,
    at TEXT NOT NULL,
    cause TEXT NOT NULL,
    state_after TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT 'engine'
);
CREATE INDEX IF NOT EXISTS rk_entries_reward ON rk_entries (reward_id, seq);
CREATE TABLE IF NOT EXISTS rk_counters (
    program_id TEXT NOT NULL,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    value_scaled INTEGER NOT NULL,
    PRIMARY KEY (program_id, name, subject)
);
-- A batch loads every counter of its subjects (participants, referrals, orders, codes).
CREATE INDEX IF NOT EXISTS rk_counters_subject ON rk_counters (program_id, subject);
CREATE TABLE IF NOT EXISTS rk_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT NOT NULL UNIQUE,
    program_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL,
    delivered_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TEXT,
    dead_at TEXT
);
CREATE TABLE IF NOT EXISTS rk_payouts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payout_id TEXT NOT NULL UNIQUE,
    program_id TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    netted_minor INTEGER NOT NULL,
    reward_ids TEXT NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT,
    updated_at TEXT
);
CREATE INDEX IF NOT EXISTS rk_payouts_open ON rk_payouts (program_id, status, participant_id);
CREATE INDEX IF NOT EXISTS rk_outbox_fresh ON rk_outbox (seq)
    WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at IS NULL;
CREATE INDEX IF NOT EXISTS rk_outbox_retry ON rk_outbox (next_attempt_at, seq)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS rk_outbox_dead ON rk_outbox (dead_at, seq) WHERE dead_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS rk_touches (
    program_id TEXT NOT NULL,
    touch_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    event_id TEXT NOT NULL,
    visitor_id TEXT,
    participant_id TEXT,
    referrer_id TEXT,
    code TEXT,
    channel TEXT NOT NULL,
    campaign TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (program_id, touch_id)
);
CREATE INDEX IF NOT EXISTS rk_touches_visitor ON rk_touches (program_id, visitor_id, at);
CREATE INDEX IF NOT EXISTS rk_touches_participant ON rk_touches (program_id, participant_id, at);
CREATE INDEX IF NOT EXISTS rk_touches_at ON rk_touches (program_id, at);
"""

_SYNCHRONOUS: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


#: Columns added after a table first shipped: (table, column, definition). A database
#: created before them gains them on open (existing rows take the default).
_ADDED_COLUMNS: Final = (
    ("rk_rewards", "item", "TEXT"),
    ("rk_entries", "actor", "TEXT NOT NULL DEFAULT 'engine'"),
    ("rk_participants", "country", "TEXT"),
    ("rk_orders", "exchange_rate", "TEXT"),
    ("rk_orders", "rate_on", "TEXT"),
    ("rk_rewards", "exchange_rate", "TEXT"),
    ("rk_rewards", "rate_on", "TEXT"),
)


def _has_json_each(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite has ``json_each`` (built in since 3.38, and in most builds before)."""
    try:
        conn.execute("SELECT value FROM json_each('[]')").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    for table, column, definition in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def _migrate_to_3(conn: sqlite3.Connection) -> None:
    """Schema 2 -> 3, in the caller's transaction: ``rk_events.event_key``, filled for every
    logged event by decoding it, a page at a time (the index is made after, by ``_SCHEMA``)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(rk_events)")}
    if "event_key" not in present:
        conn.execute("ALTER TABLE rk_events ADD COLUMN event_key TEXT")
    after = 0
    while True:
        rows = conn.execute(
            "SELECT seq, event FROM rk_events WHERE seq > ? ORDER BY seq LIMIT 1000", (after,)
        ).fetchall()
        if not rows:
            return
        after = rows[-1][0]
        keys = []
        for seq, text in rows:
            try:
                key = _sqlformat.stored_event_key(text)
            except _DECODE_ERRORS as exc:
                raise _corrupt("rk_events", seq, exc) from exc
            keys.append((key, seq))
        conn.executemany("UPDATE rk_events SET event_key = ? WHERE seq = ?", keys)


def _finite_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    try:
        return math.isfinite(value)
    except ValueError:  # a signaling NaN
        return False


class SQLiteStore:
    """A [`Store`][referralkit.Store] in one SQLite database, the embedded default.

    Args:
        path: A file path, or ``":memory:"`` for a private in-memory database.
        synchronous: SQLite's ``synchronous`` setting: ``"FULL"`` (the default, durable at
            every commit) or ``"NORMAL"`` (faster in WAL mode; the last commits may be lost
            on power failure, never corrupted).
        busy_timeout: Seconds a unit of work waits for another process's write lock.

    Raises:
        InvalidInputError: an unknown ``synchronous`` value, a ``path`` that is not a path
            (or holds a NUL character), a ``busy_timeout`` that is not a finite number.
        SchemaVersionError: the database was written by a newer referralkit.
        StoreUnavailableError: the file cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        synchronous: str = "FULL",
        busy_timeout: float = 30.0,
    ) -> None:
        mode = str(synchronous).upper()
        if mode not in _SYNCHRONOUS:
            raise InvalidInputError(
                "synchronous", synchronous, f"must be one of {sorted(_SYNCHRONOUS)}"
            )
        if not isinstance(path, str | os.PathLike):
            raise InvalidInputError("path", path, "must be a str or os.PathLike file path")
        self._path = os.fspath(path)
        if not isinstance(self._path, str) or "\0" in self._path or not is_text(self._path):
            raise InvalidInputError("path", path, "must be a str file path without NUL characters")
        if not _finite_number(busy_timeout):
            raise InvalidInputError(
                "busy_timeout", busy_timeout, "must be a finite number of seconds"
            )
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreUnavailableError(
                f"cannot open SQLite database {self._path!r}: {exc}"
            ) from exc
        self._conn = conn
        try:
            if self._path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={mode}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            self._migrate()
            self._json_ids = _has_json_each(conn)
            # Records decoded by batch prefetches, by table and by the row they were read
            # from: a batch reads many of the codes and referrals the batches before it
            # read, and a record is a frozen value, so an equal row gives it again.
            self._decoded: dict[str, dict[Any, Any]] = {}
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailableError(
                f"cannot use SQLite database {self._path!r}: {exc}"
            ) from exc
        except StoreError:
            conn.close()
            raise

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='rk_schema'"
            ).fetchone()
            if exists:
                row = conn.execute("SELECT version FROM rk_schema WHERE id = 1").fetchone()
                version = row[0] if row else None
                if version is not None and version > SCHEMA_VERSION:
                    raise SchemaVersionError(
                        f"database {self._path!r} has schema version {version}, newer than "
                        f"{SCHEMA_VERSION} which this referralkit writes; upgrade referralkit"
                    )
                if version is not None and version < _MIGRATES_FROM:
                    raise SchemaVersionError(
                        f"database {self._path!r} has schema version {version}, older than "
                        f"{SCHEMA_VERSION} which this referralkit writes; this pre-1.0 release "
                        f"migrates only version {_MIGRATES_FROM}: replay Engine.event_log() "
                        "into a new store"
                    )
                if version is not None and version < SCHEMA_VERSION:
                    _migrate_to_3(conn)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            _add_missing_columns(conn)
            conn.execute(
                "INSERT INTO rk_schema (id, version) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (SCHEMA_VERSION,),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def path(self) -> str:
        """The database path (``":memory:"`` for an in-memory database)."""
        return self._path

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        """``with`` the store closes it on leaving the block."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def unit_of_work(self) -> _SQLiteUnitOfWork:
        """Begin a unit of work (use it in a ``with`` block)."""
        return _SQLiteUnitOfWork(self)

    # -- reading everything ------------------------------------------------------------
    def dump(self) -> Mapping[str, list[Any]]:
        """Every record, by table, in the same shapes and order as ``InMemoryStore.dump``."""
        with self._lock, self._translate():
            conn = self._conn
            conn.execute("BEGIN")
            try:
                return self._dump(conn)
            finally:
                conn.execute("COMMIT")

    def _dump(self, conn: sqlite3.Connection) -> dict[str, list[Any]]:
        def rows(sql: str) -> list[sqlite3.Row]:
            return conn.execute(sql).fetchall()

        rewards = {r[1]: _reward(r) for r in rows(f"SELECT {_REWARD_COLUMNS} FROM rk_rewards")}
        entries = [
            _entry(r)
            for r in rows(f"SELECT {_ENTRY_COLUMNS} FROM rk_entries ORDER BY reward_id, seq")
        ]
        counters = []
        for program_id, name, subject, scaled in rows(
            "SELECT program_id, name, subject, value_scaled FROM rk_counters "
            "WHERE value_scaled != 0 ORDER BY program_id, name, subject"
        ):
            counters.append(((program_id, name, subject), Decimal(scaled).scaleb(-_COUNTER_SCALE)))
        outbox = rows(f"SELECT {_OUTBOX_COLUMNS} FROM rk_outbox ORDER BY notification_id")
        return {
            "events": [
                _event_record(r)
                for r in rows(
                    "SELECT program_id, event_id, digest, schema_version, event, outcome "
                    "FROM rk_events ORDER BY program_id, event_id"
                )
            ],
            "programs": [
                _program(r)
                for r in rows(
                    "SELECT program_id, version, digest, effective_at, published_at, definition "
                    "FROM rk_programs ORDER BY program_id, version"
                )
            ],
            "participants": [
                _participant(r)
                for r in rows(
                    f"SELECT {_PARTICIPANT_COLUMNS} "
                    "FROM rk_participants ORDER BY program_id, participant_id"
                )
            ],
            "codes": [
                _code(r)
                for r in rows(f"SELECT {_CODE_COLUMNS} FROM rk_codes ORDER BY program_id, code")
            ],
            "personal_data": [
                ((r[0], r[1]), r[2])
                for r in rows(
                    "SELECT program_id, participant_id, email FROM rk_personal_data "
                    "ORDER BY program_id, participant_id"
                )
            ],
            "referrals": [
                _referral(r)
                for r in rows(f"SELECT {_REFERRAL_COLUMNS} FROM rk_referrals ORDER BY referral_id")
            ],
            "orders": [
                _order(r)
                for r in rows(
                    f"SELECT {_ORDER_COLUMNS} FROM rk_orders ORDER BY program_id, order_id"
                )
            ],
            "refunds": [
                _refund(r)
                for r in rows(
                    f"SELECT {_REFUND_COLUMNS} FROM rk_refunds ORDER BY program_id, refund_id"
                )
            ],
            "chargebacks": [
                _chargeback(r)
                for r in rows(
                    f"SELECT {_CHARGEBACK_COLUMNS} FROM rk_chargebacks "
                    "ORDER BY program_id, chargeback_id"
                )
            ],
            "rewards": [rewards[k] for k in sorted(rewards)],
            "entries": entries,
            "counters": counters,
            "outbox": [_notification(r) for r in outbox],
            "outbox_status": [(r[0], _outbox_status(r)) for r in outbox],
            "payouts": [
                _payout(r)
                for r in rows(f"SELECT {_PAYOUT_COLUMNS} FROM rk_payouts ORDER BY payout_id")
            ],
            "touches": [
                _touch(r)
                for r in rows(
                    f"SELECT {_TOUCH_COLUMNS} FROM rk_touches ORDER BY program_id, touch_id"
                )
            ],
        }

    @contextmanager
    def _translate(self) -> Iterator[None]:
        """Re-raise driver errors as the library's own tree."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _translated(exc) from exc

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r})"


def _translated(exc: sqlite3.Error) -> StoreError:
    if isinstance(exc, sqlite3.IntegrityError):
        return ConcurrencyError(f"conflicting write: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        return ConcurrencyError(f"database is busy: {exc}")
    return StoreError(f"SQLite error: {exc}")


# -- row decoding ---------------------------------------------------------------------------

_REFERRAL_COLUMNS: Final = (
    "referral_id, program_id, program_version, referrer_id, referee_id, code, channel, "
    "created_at, event_id, status, explanation"
)
_TOUCH_COLUMNS: Final = (
    "program_id, touch_id, kind, at, event_id, visitor_id, participant_id, referrer_id, code, "
    "channel, campaign, data"
)
_ORDER_COLUMNS: Final = (
    "program_id, order_id, participant_id, amount_minor, currency, at, event_id, referral_id, "
    "converted, digest, exchange_rate, rate_on"
)
_REFUND_COLUMNS: Final = (
    "program_id, refund_id, order_id, amount_minor, currency, at, event_id, digest"
)
_CHARGEBACK_COLUMNS: Final = "program_id, chargeback_id, order_id, at, event_id, digest"
_REWARD_COLUMNS: Final = (
    "seq, reward_id, program_id, program_version, referral_id, participant_id, role, value, "
    "policy, source_event_id, order_id, base_minor, base_currency, created_at, payable_at, item, "
    "exchange_rate, rate_on"
)
_ENTRY_COLUMNS: Final = (
    "entry_id, reward_id, program_id, participant_id, kind, quantity_minor, exponent, at, "
    "cause, state_after, actor"
)
_OUTBOX_COLUMNS: Final = (
    "notification_id, program_id, kind, recipient_id, created_at, data, delivered_at, "
    "attempts, last_error, next_attempt_at, dead_at"
)


def _corrupt(table: str, key: object, exc: Exception) -> CorruptRecordError:
    return CorruptRecordError(f"{table} row {key!r} cannot be read: {exc}")


_DECODE_ERRORS: Final = (
    codec.CodecError,
    InvalidInputError,
    ValueError,
    TypeError,
    KeyError,
    ArithmeticError,
    AttributeError,
)


def _decoder(
    table: str, key: Callable[[Sequence[Any]], object], decode: Callable[[Sequence[Any]], T]
) -> Callable[[Sequence[Any]], T]:
    """``decode`` (one of the decoders both SQL stores share), raising a
    ``CorruptRecordError`` that names the row it could not read."""

    def read(r: Sequence[Any]) -> T:
        try:
            return decode(r)
        except _DECODE_ERRORS as exc:
            raise _corrupt(table, key(r), exc) from exc

    return read


def _pair(r: Sequence[Any]) -> object:
    return (r[0], r[1])


def _first(r: Sequence[Any]) -> object:
    return r[0]


def _first_int(r: Sequence[Any]) -> int:
    value: int = r[0]
    return value


_event_record = _decoder("rk_events", _pair, _sqlformat.event_record)
_program = _decoder("rk_programs", _pair, _sqlformat.program)
_participant = _decoder("rk_participants", _pair, _sqlformat.participant)
_code = _decoder("rk_codes", _pair, _sqlformat.code)
_referral = _decoder("rk_referrals", _first, _sqlformat.referral)
_touch = _decoder("rk_touches", _pair, _sqlformat.touch)
_order = _decoder("rk_orders", _pair, _sqlformat.order)
_refund = _decoder("rk_refunds", _pair, _sqlformat.refund)
_chargeback = _decoder("rk_chargebacks", _pair, _sqlformat.chargeback)
# SQLiteStore reads rewards with their log position first (``seq``).
_reward = _decoder("rk_rewards", lambda r: r[1], lambda r: _sqlformat.reward(r[1:]))
_entry = _decoder("rk_entries", _first, _sqlformat.entry)
_notification = _decoder("rk_outbox", _first, _sqlformat.notification)
_outbox_status = _decoder("rk_outbox", _first, _sqlformat.outbox_status)
_payout = _decoder("rk_payouts", _first, _sqlformat.payout)
_PAYOUT_COLUMNS: Final = ", ".join(_sqlformat.PAYOUT_COLUMNS)


def _touch_row(r: TouchRecord) -> tuple[Any, ...]:
    return (
        r.program_id,
        r.touch_id,
        r.kind,
        _ts(r.at),
        r.event_id,
        r.visitor_id,
        r.participant_id,
        r.referrer_id,
        r.code,
        r.channel,
        r.campaign,
        codec.dumps(dict(r.data)) if r.data else _EMPTY_DATA,
    )


#: A touch's empty data as ``codec.dumps`` writes it (a click's touch has none).
_EMPTY_DATA: Final = codec.dumps({})


def _touch_order(r: TouchRecord) -> tuple[datetime, str]:
    return (r.at, r.touch_id)


def _dead_letter(r: Sequence[Any]) -> DeadLetter:
    return DeadLetter(_notification(r), r[7], r[8], _dt(r[10]))


# -- the unit of work -------------------------------------------------------------------------


# -- the unit of work -------------------------------------------------------------------------

#: Records kept per table by ``_SQLiteUnitOfWork._load`` for the next batches (then cleared).
_DECODED_ROWS: Final = 2048
_EVENT_COLUMNS: Final = "program_id, event_id, digest, schema_version, event, outcome"
_PARTICIPANT_COLUMNS: Final = "program_id, participant_id, first_seen_at, signed_up_at, country"
_CODE_COLUMNS: Final = "program_id, code, participant_id, created_at, max_uses, expires_at"


def _chunks(items: Sequence[Any], size: int = 400) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _json_array(ids: list[str]) -> str | None:
    """``ids`` as a JSON array for ``json_each``; None if JSON cannot carry one of them to
    SQLite as it is (a NUL, which SQLite's JSON functions take as the string's end, or an
    id that is not text), so that they are bound one by one."""
    try:
        plain = "".join(ids)
    except TypeError:
        return None
    if plain.isprintable() and '"' not in plain and "\\" not in plain:
        return '["' + '","'.join(ids) + '"]'  # nothing to escape: json.dumps's text, faster
    array = json.dumps(ids, ensure_ascii=False)
    return None if "\\u0000" in array else array


class _Lookup:
    """A batch prefetch's query: the rows of ``table`` (its ``columns``) whose ``column``
    is one of some ids, in one program unless ``by_program`` is False, sorted by ``order``.
    """

    __slots__ = ("by_program", "joined", "listed")

    def __init__(
        self, table: str, columns: str, column: str, *, by_program: bool = True, order: str = ""
    ) -> None:
        qualified = ", ".join(f"t.{name.strip()}" for name in columns.split(","))
        in_program = "program_id = ? AND " if by_program else ""
        #: The ids as one JSON array that drives the loop: one index search per id (CROSS
        #: JOIN fixes the order), and the same text for any number of ids, prepared once.
        self.joined = (
            f"SELECT {qualified} FROM json_each(?) AS j CROSS JOIN {table} AS t "
            f"ON {in_program and 't.' + in_program}t.{column} = j.value"
            + (f" ORDER BY t.{order}" if order else "")
        )
        #: The ids bound one ``?`` each (``{}``: the marks), where ``joined`` cannot serve.
        self.listed = f"SELECT {columns} FROM {table} WHERE {in_program}{column} IN ({{}})" + (
            f" ORDER BY {order}" if order else ""
        )
        self.by_program = by_program


_EVENTS_IN: Final = _Lookup("rk_events", _EVENT_COLUMNS, "event_id")
_EVENTS_OF_KEYS: Final = _Lookup("rk_events", f"seq, {_EVENT_COLUMNS}", "event_key")
_PARTICIPANTS_IN: Final = _Lookup("rk_participants", _PARTICIPANT_COLUMNS, "participant_id")
_REFEREES_IN: Final = _Lookup("rk_referrals", _REFERRAL_COLUMNS, "referee_id")
_REFERRALS_IN: Final = _Lookup("rk_referrals", _REFERRAL_COLUMNS, "referral_id", by_program=False)
_ORDERS_IN: Final = _Lookup("rk_orders", _ORDER_COLUMNS, "order_id")
_CODES_IN: Final = _Lookup("rk_codes", _CODE_COLUMNS, "code")
_REFUNDS_IN: Final = _Lookup("rk_refunds", _REFUND_COLUMNS, "refund_id")
_COUNTERS_IN: Final = _Lookup("rk_counters", "program_id, name, subject, value_scaled", "subject")
#: A counter row's key (program_id, name, subject), and its stored value.
_COUNTER_KEY: Final = operator.itemgetter(0, 1, 2)
_COUNTER_VALUE: Final = operator.itemgetter(3)
_TOUCHES_IN: Final = _Lookup("rk_touches", _TOUCH_COLUMNS, "visitor_id")
_REWARDS_IN: Final = _Lookup("rk_rewards", _REWARD_COLUMNS, "order_id", order="seq")
_ENTRIES_IN: Final = _Lookup(
    "rk_entries", _ENTRY_COLUMNS, "reward_id", by_program=False, order="seq"
)


class _SQLiteUnitOfWork:
    """One ``BEGIN IMMEDIATE`` transaction; the store's connection is held for its length.

    The unit holds SQLite's write lock, so nothing else changes the database while it runs:
    rows it reads are cached for its length, and its writes are buffered and flushed with
    ``executemany`` at ``commit()`` (or before a query the buffers cannot answer). After
    ``commit()`` the unit stays usable: the next statement begins a new transaction, which
    is rolled back on leaving the block unless committed too. A conflicting write rolls the
    whole unit back, as the protocol says, and a later ``commit()`` refuses.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._conn = store._conn
        self._open = False
        self._failed = False
        self._reset()

    def _reset(self) -> None:
        # Read caches (a key mapped to None: known to have no row) that also hold this
        # unit's own writes, and the rows waiting to be flushed.
        self._events: dict[tuple[str, str], EventRecord | None] = {}
        self._participants: dict[tuple[str, str], ParticipantRecord | None] = {}
        self._emails: dict[tuple[str, str], str | None] = {}
        self._code_owner: dict[tuple[str, str], CodeRecord | None] = {}
        self._referral_of: dict[tuple[str, str], Referral | None] = {}
        self._referrals: dict[str, Referral | None] = {}
        self._orders: dict[tuple[str, str], OrderRecord | None] = {}
        self._refunds: dict[tuple[str, str], RefundRecord | None] = {}
        self._chargebacks: dict[tuple[str, str], ChargebackRecord | None] = {}
        # By (cache, program): the ids a prefetch loaded. One without a record in its
        # cache has no row (a set of ids costs less than a None per id in the cache).
        self._prefetched: dict[tuple[str, str], set[str]] = {}
        self._counters: dict[CounterKey, Decimal] = {}
        # Counters a prefetch loaded and nothing has read or changed yet: the stored
        # value, scaled (a Decimal is made when one is first read or changed).
        self._stored: dict[CounterKey, int] = {}
        self._exponents: dict[str, int] = {}
        self._new_rewards: dict[str, Reward] = {}
        self._new_of_order: dict[tuple[str, str], list[Reward]] = {}  # the same, by order
        self._new_entries: dict[str, list[Entry]] = {}
        self._state: dict[str, RewardState] = {}
        self._pending: dict[str, list[Sequence[Any]]] = {}
        self._upserts: dict[str, dict[Any, Sequence[Any]]] = {}
        self._deltas: dict[CounterKey, int] = {}
        # By program: the subjects whose counters are all loaded (a counter of theirs with
        # no row is 0), and those whose counters load with the first read of one of them.
        self._subjects: dict[str, set[str]] = {}
        self._deferred: dict[str, set[str]] = {}
        self._new_touches: dict[tuple[str, str], TouchRecord] = {}  # inserted at flush
        self._new_of_visitor: dict[tuple[str, str], list[tuple[str, str]]] = {}  # their keys
        # Rows prefetched for a batch, valid until the next flush (which inserts new rows).
        self._visitor_touches: dict[tuple[str, str], Sequence[TouchRecord]] = {}
        self._order_rewards: dict[tuple[str, str], Sequence[Reward]] = {}
        self._stored_entries: dict[str, list[Entry]] = {}

    # -- transaction -----------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._open:
            raise StoreError("this unit of work is already open")
        self._store._lock.acquire()
        try:
            self._begin()
        except BaseException:
            self._store._lock.release()
            raise
        self._open = True
        self._failed = False
        self._reset()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        finally:
            self._reset()
            self._open = False
            self._store._lock.release()

    def _begin(self) -> None:
        with self._store._translate():
            self._conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._require_open()
        if self._failed:
            raise StoreError("this unit of work was rolled back after a conflict")
        self.flush()
        if self._conn.in_transaction:
            with self._store._translate():
                self._conn.execute("COMMIT")

    def rollback(self) -> None:
        self._require_open()
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._reset()

    def _require_open(self) -> None:
        if not self._open:
            raise StoreError("unit of work used outside its 'with' block")

    def _x(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        if not self._open:
            self._require_open()
        conn = self._conn
        if not conn.in_transaction:
            self._begin()
        try:
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _xm(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        if not self._open:
            self._require_open()
        conn = self._conn
        if not conn.in_transaction:
            self._begin()
        try:
            conn.executemany(sql, params)
        except sqlite3.Error as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: sqlite3.Error) -> StoreError:
        """The library's error for a driver error; a conflict rolls the unit back."""
        error = _translated(exc)
        if isinstance(error, ConcurrencyError):
            self._abort()
        return error

    def _conflict(self, message: str) -> ConcurrencyError:
        self._abort()
        return ConcurrencyError(message)

    def _abort(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._reset()
        self._failed = True

    def _one(self, sql: str, params: Sequence[Any]) -> Any:
        return self._x(sql, params).fetchone()

    # -- buffered writes -------------------------------------------------------------------
    def _buffer(self, sql: str, row: Sequence[Any]) -> None:
        if not self._open:
            self._require_open()
        rows = self._pending.get(sql)
        if rows is None:
            rows = self._pending[sql] = []
        rows.append(row)

    def _buffer_upsert(self, sql: str, key: Any, row: Sequence[Any]) -> None:
        if not self._open:
            self._require_open()
        rows = self._upserts.get(sql)
        if rows is None:
            rows = self._upserts[sql] = {}
        rows[key] = row

    def flush(self) -> None:
        """Write the buffered rows (in the order the tables depend on each other)."""
        self._visitor_touches = {}
        self._order_rewards = {}
        self._stored_entries = {}
        if self._new_touches:
            self._xm(_INSERT_TOUCH, [_touch_row(r) for r in self._new_touches.values()])
            self._new_touches = {}
            self._new_of_visitor = {}
        if self._upserts:
            for sql, rows in self._upserts.items():
                self._xm(sql, list(rows.values()))
            self._upserts = {}
        if self._new_rewards:
            new = self._new_rewards
            inserts = [_reward_row(r, self._state[r.reward_id]) for r in new.values()]
            self._xm(_INSERT_REWARD, inserts)
            self._new_rewards = {}
            self._new_of_order = {}
            # New rewards went in with their latest state; older ones still need updating.
            self._state = {k: v for k, v in self._state.items() if k not in new}
        if self._pending:
            for sql, pending in self._pending.items():
                self._xm(sql, pending)
            self._pending = {}
        self._new_entries = {}
        if self._state:
            self._xm(_UPDATE_STATE, [(state.value, rid) for rid, state in self._state.items()])
            self._state = {}
        if self._deltas:
            self._xm(_UPSERT_COUNTER, [(*key, delta) for key, delta in self._deltas.items()])
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
        """Load the rows a batch of events will look up, a few queries for the batch.

        ``counter_subjects``: every counter of these subjects is loaded, so a counter of
        theirs that has no row reads as 0 without a query. The counters of the referrers
        of the referrals found (by referee, or by the orders' referral ids) and of the
        codes' owners are loaded too, in one query at the first read of one of them: many
        batches only add to them (which needs no read), and then they are not loaded.
        ``visitor_ids``: their touches. ``refunded_orders``: the rewards those orders
        earned.
        """
        self._load(self._events, "events", event_ids, _EVENTS_IN, program_id, _event_record, 0, 1)
        self._load(
            self._participants,
            "participants",
            participant_ids,
            _PARTICIPANTS_IN,
            program_id,
            _participant,
            0,
            1,
        )
        self._load(
            self._referral_of,
            "referral_of",
            participant_ids,
            _REFEREES_IN,
            program_id,
            _referral,
            1,
            4,
            "rk_referrals",
        )
        self._load(self._orders, "orders", order_ids, _ORDERS_IN, program_id, _order, 0, 1)
        self._load(self._code_owner, "codes", codes, _CODES_IN, program_id, _code, 0, 1, "rk_codes")
        self._load(self._refunds, "refunds", refund_ids, _REFUNDS_IN, program_id, _refund, 0, 1)
        referrals = self._referrals
        for referral in self._referral_of.values():
            if referral is not None and referral.referral_id not in referrals:
                referrals[referral.referral_id] = referral
        by_id = dict.fromkeys(
            o.referral_id
            for o in self._orders.values()
            if o is not None and o.referral_id is not None and o.referral_id not in referrals
        )
        if by_id:
            referrals.update(by_id)  # no row, until one is found
            decoded = self._decoded("rk_referrals")
            for row in self._rows_in(_REFERRALS_IN, program_id, list(by_id)):
                referral = decoded.get(row)
                if referral is None:
                    referral = decoded[row] = _referral(row)
                referrals[row[0]] = referral
        self._prefetch_counters(program_id, counter_subjects)
        loaded = self._subjects[program_id]  # made by _prefetch_counters
        people = {
            r.referrer_id
            for r in referrals.values()
            if r is not None and r.referrer_id not in loaded
        }
        people.update(
            c.participant_id
            for c in self._code_owner.values()
            if c is not None and c.participant_id not in loaded
        )
        if people:
            self._deferred.setdefault(program_id, set()).update(people)
        self._prefetch_touches(program_id, visitor_ids)
        self._prefetch_rewards(program_id, refunded_orders)

    def _rows_in(self, lookup: _Lookup, program_id: str, ids: list[str]) -> Iterable[Sequence[Any]]:
        """The rows ``lookup`` finds for ``ids`` (distinct) in ``program_id``.

        Where SQLite has ``json_each`` the ids go as one JSON array, in one statement.
        Otherwise (or for an id with a NUL, which JSON text cannot carry to SQLite) they
        are bound in chunks of ``?`` marks.
        """
        if not ids:
            return ()
        if self._store._json_ids:
            array = _json_array(ids)
            if array is not None:
                params = (array, program_id) if lookup.by_program else (array,)
                return self._x(lookup.joined, params)
        lead = (program_id,) if lookup.by_program else ()
        rows: list[Sequence[Any]] = []
        for chunk in _chunks(ids):
            sql = lookup.listed.format(", ".join("?" * len(chunk)))
            rows.extend(self._x(sql, (*lead, *chunk)))
        return rows

    def _load(
        self,
        cache: dict[tuple[str, str], T | None],
        name: str,
        ids: Iterable[str],
        lookup: _Lookup,
        program_id: str,
        decode: Callable[[Sequence[Any]], T],
        k0: int,
        k1: int,
        table: str | None = None,
    ) -> None:
        """Load the rows of ``ids`` that no prefetch loaded yet into ``cache``, keyed by the
        row's columns ``k0`` and ``k1``, and note the ids as loaded under ``name`` (see
        ``_absent``). A record the cache holds already stays: this unit's own, or read
        since. With ``table``, a row read again (equal in every column) gives the record
        its first read decoded."""
        loaded = self._prefetched.get((name, program_id))
        if loaded is None:
            loaded = self._prefetched[(name, program_id)] = set()
        wanted = [i for i in dict.fromkeys(ids) if i not in loaded]
        if not wanted:
            return
        loaded.update(wanted)
        rows = self._rows_in(lookup, program_id, wanted)
        if table is None:
            for row in rows:
                key = (row[k0], row[k1])
                if key not in cache:
                    cache[key] = decode(row)
            return
        decoded = self._decoded(table)
        for row in rows:
            key = (row[k0], row[k1])
            if key not in cache:
                record = decoded.get(row)
                if record is None:
                    record = decoded[row] = decode(row)
                cache[key] = record

    def _absent(self, name: str, program_id: str, key: str) -> bool:
        """Whether a prefetch found no row for ``key`` (the caller's cache has no record)."""
        loaded = self._prefetched.get((name, program_id))
        return loaded is not None and key in loaded

    def _decoded(self, table: str) -> dict[Any, Any]:
        """The records prefetches decoded from ``table``, by row (emptied when full)."""
        decoded = self._store._decoded.get(table)
        if decoded is None or len(decoded) >= _DECODED_ROWS:
            decoded = self._store._decoded[table] = {}
        return decoded

    def _prefetch_counters(self, program_id: str, counter_subjects: Iterable[str]) -> None:
        loaded = self._subjects.get(program_id)
        if loaded is None:
            loaded = self._subjects[program_id] = set()
        wanted = [s for s in dict.fromkeys(counter_subjects) if s not in loaded]
        if not wanted:
            return
        counters, stored, deltas = self._counters, self._stored, self._deltas
        rows = self._rows_in(_COUNTERS_IN, program_id, wanted)
        if not counters and not deltas:  # the usual start of a batch
            # Made a Decimal when first read (a batch reads about half of them). The
            # rows' first three columns are the key.
            rows = rows if isinstance(rows, list) else list(rows)
            stored.update(zip(map(_COUNTER_KEY, rows), map(_COUNTER_VALUE, rows), strict=True))
        else:
            for row in rows:
                key, scaled = _COUNTER_KEY(row), row[3]
                if key in counters:
                    continue
                if key in deltas:  # changed by this unit before it was loaded
                    counters[key] = Decimal(scaled + deltas[key]).scaleb(-_COUNTER_SCALE)
                else:
                    stored[key] = scaled
        loaded.update(wanted)

    def _load_deferred(self) -> None:
        """Load the counters of the subjects whose load a prefetch deferred."""
        deferred, self._deferred = self._deferred, {}
        for program_id, subjects in deferred.items():
            self._prefetch_counters(program_id, subjects)

    def _prefetch_touches(self, program_id: str, visitor_ids: Sequence[str]) -> None:
        self._load_groups(self._visitor_touches, visitor_ids, _TOUCHES_IN, program_id, _touch, 0, 5)

    def _prefetch_rewards(self, program_id: str, order_ids: Sequence[str]) -> None:
        found = self._load_groups(
            self._order_rewards, order_ids, _REWARDS_IN, program_id, _reward, 2, 10
        )
        if not found:
            return
        entries = self._stored_entries
        for reward in found:
            self._exponents[reward.reward_id] = _sqlformat.reward_value_exponent(reward.value)
            entries[reward.reward_id] = []
        for row in self._rows_in(_ENTRIES_IN, program_id, [r.reward_id for r in found]):
            entries[row[1]].append(_entry(row))

    def _load_groups(
        self,
        cache: dict[tuple[str, str], Sequence[T]],
        ids: Iterable[str],
        lookup: _Lookup,
        program_id: str,
        decode: Callable[[Sequence[Any]], T],
        k0: int,
        k1: int,
    ) -> list[T]:
        """Load the rows of each of ``ids`` (several per id, keyed by the row's columns
        ``k0`` and ``k1``) into ``cache``; returns them."""
        wanted: list[str] = []
        for i in ids:
            key = (program_id, i)
            if key not in cache:
                cache[key] = ()  # until its rows are found
                wanted.append(i)
        if not wanted:
            return []
        found: list[T] = []
        for row in self._rows_in(lookup, program_id, wanted):
            record = decode(row)
            key = (row[k0], row[k1])
            group = cache[key]
            if isinstance(group, list):
                group.append(record)
            else:
                cache[key] = [record]
            found.append(record)
        return found

    # -- event log (the unit is its own EventLog) ----------------------------------------
    def get(self, program_id: str, event_id: str) -> EventRecord | None:
        key = (program_id, event_id)
        if key in self._events:
            return self._events[key]
        if self._prefetched and self._absent("events", program_id, event_id):
            return None
        row = self._one(
            f"SELECT {_EVENT_COLUMNS} FROM rk_events WHERE program_id = ? AND event_id = ?", key
        )
        record = None if row is None else _event_record(row)
        self._events[key] = record
        return record

    def add(self, record: EventRecord) -> None:
        key = (record.program_id, record.event_id)
        if self._events.get(key) is not None:
            raise self._conflict(f"event {key!r} already exists")
        self._events[key] = record
        self._buffer(
            _INSERT_EVENT,
            (
                record.program_id,
                record.event_id,
                record.digest,
                record.schema_version,
                codec.dumps(record.event),
                codec.dumps(record.outcome),
                event_key(record.event),
            ),
        )

    def redact(self, program_id: str, event_id: str, event: Event) -> None:
        old = self.get(program_id, event_id)
        if old is None:
            raise StoreError(f"unknown event {(program_id, event_id)!r}")
        self.flush()
        self._x(
            "UPDATE rk_events SET event = ?, event_key = ? WHERE program_id = ? AND event_id = ?",
            (codec.dumps(event), event_key(event), program_id, event_id),
        )
        self._events[(program_id, event_id)] = attrs.evolve(old, event=event)

    def about(self, program_id: str, keys: Sequence[str]) -> list[tuple[int, EventRecord]]:
        """The events with these keys: one search of ``rk_events_key`` per key."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return []
        self.flush()
        rows = sorted(self._rows_in(_EVENTS_OF_KEYS, program_id, wanted), key=_first_int)
        return [(r[0], _event_record(r[1:])) for r in rows]

    def since(self, program_id: str, after: int, limit: int) -> list[tuple[int, EventRecord]]:
        self.flush()
        rows = self._x(
            f"SELECT seq, {_EVENT_COLUMNS} FROM rk_events WHERE program_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (program_id, after, limit),
        ).fetchall()
        return [(r[0], _event_record(r[1:])) for r in rows]

    @property
    def events(self) -> _SQLiteUnitOfWork:
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


_INSERT_EVENT: Final = (
    f"INSERT INTO rk_events ({_EVENT_COLUMNS}, event_key) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_PARTICIPANT: Final = (
    f"INSERT INTO rk_participants ({_PARTICIPANT_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (program_id, participant_id) DO UPDATE SET "
    "first_seen_at = excluded.first_seen_at, signed_up_at = excluded.signed_up_at, "
    "country = excluded.country"
)
_UPSERT_EMAIL: Final = (
    "INSERT INTO rk_personal_data (program_id, participant_id, email) VALUES (?, ?, ?) "
    "ON CONFLICT (program_id, participant_id) DO UPDATE SET email = excluded.email"
)
_INSERT_ORDER: Final = (
    f"INSERT INTO rk_orders ({_ORDER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_REFUND: Final = (
    f"INSERT INTO rk_refunds ({_REFUND_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CHARGEBACK: Final = (
    f"INSERT INTO rk_chargebacks ({_CHARGEBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_TOUCH: Final = (
    f"INSERT INTO rk_touches ({_TOUCH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_REFERRAL: Final = (
    f"INSERT INTO rk_referrals ({_REFERRAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_INSERT_REWARD: Final = (
    "INSERT INTO rk_rewards (reward_id, program_id, program_version, referral_id, "
    "participant_id, role, value, unit_kind, unit_code, policy, source_event_id, "
    "order_id, base_minor, base_currency, created_at, payable_at, state, item, "
    "exchange_rate, rate_on) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_ENTRY: Final = (
    f"INSERT INTO rk_entries ({_ENTRY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: A counter's change this unit made (a change that nets to 0 leaves a row as it is, and
#: its page unwritten).
_UPSERT_COUNTER: Final = (
    "INSERT INTO rk_counters (program_id, name, subject, value_scaled) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (program_id, name, subject) DO UPDATE "
    "SET value_scaled = value_scaled + excluded.value_scaled WHERE excluded.value_scaled != 0"
)
#: A reward's latest state, for a reward inserted before this flush. About half of them are
#: the state it has (a partial refund leaves a pending reward pending): those rows, and their
#: pages, are left unwritten.
_UPDATE_STATE: Final = "UPDATE rk_rewards SET state = ?1 WHERE reward_id = ?2 AND state != ?1"


def _reward_row(r: Reward, state: RewardState) -> tuple[Any, ...]:
    unit = _sqlformat.reward_value_unit(r.value)
    return (
        r.reward_id,
        r.program_id,
        r.program_version,
        r.referral_id,
        r.participant_id,
        r.role.value,
        _sqlformat.reward_value_text(r.value),
        unit.kind,
        unit.code,
        r.policy,
        r.source_event_id,
        r.order_id,
        None if r.base_amount is None else r.base_amount.to_minor(),
        None if r.base_amount is None else r.base_amount.currency,
        _ts(r.created_at),
        _ts(r.payable_at),
        state.value,
        r.item,
        *_sqlformat.rate_columns(r.exchange_rate),
    )


class _Repo:
    def __init__(self, uow: _SQLiteUnitOfWork) -> None:
        self._u = uow


class _Programs(_Repo):
    _COLUMNS = "program_id, version, digest, effective_at, published_at, definition"

    def get(self, program_id: str, version: int) -> ProgramRecord | None:
        row = self._u._one(
            f"SELECT {self._COLUMNS} FROM rk_programs WHERE program_id = ? AND version = ?",
            (program_id, version),
        )
        return None if row is None else _program(row)

    def add(self, record: ProgramRecord) -> None:
        self._u._x(
            f"INSERT INTO rk_programs ({self._COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.program_id,
                record.version,
                record.digest,
                _ts(record.effective_at),
                _ts(record.published_at),
                codec.dumps(record.definition),
            ),
        )

    def versions(self, program_id: str) -> list[ProgramRecord]:
        rows = self._u._x(
            f"SELECT {self._COLUMNS} FROM rk_programs WHERE program_id = ? ORDER BY version",
            (program_id,),
        ).fetchall()
        return [_program(r) for r in rows]


class _Participants(_Repo):
    def get(self, program_id: str, participant_id: str) -> ParticipantRecord | None:
        key = (program_id, participant_id)
        cache = self._u._participants
        if key in cache:
            return cache[key]
        loaded = self._u._prefetched.get(("participants", program_id))  # see _absent
        if loaded is not None and participant_id in loaded:
            return None
        row = self._u._one(
            f"SELECT {_PARTICIPANT_COLUMNS} FROM rk_participants "
            "WHERE program_id = ? AND participant_id = ?",
            key,
        )
        record = cache[key] = None if row is None else _participant(row)
        return record

    def put(self, record: ParticipantRecord) -> None:
        key = (record.program_id, record.participant_id)
        self._u._participants[key] = record
        self._u._buffer_upsert(
            _UPSERT_PARTICIPANT,
            key,
            (*key, _ts(record.first_seen_at), _opt_ts(record.signed_up_at), record.country),
        )

    def code_owner(self, program_id: str, code: str) -> CodeRecord | None:
        key = (program_id, code)
        cache = self._u._code_owner
        if key in cache:
            return cache[key]
        loaded = self._u._prefetched.get(("codes", program_id))  # see _absent
        if loaded is not None and code in loaded:
            return None
        row = self._u._one(
            f"SELECT {_CODE_COLUMNS} FROM rk_codes WHERE program_id = ? AND code = ?", key
        )
        record = cache[key] = None if row is None else _code(row)
        return record

    def code_of(self, program_id: str, participant_id: str) -> CodeRecord | None:
        row = self._u._one(
            f"SELECT {_CODE_COLUMNS} FROM rk_codes WHERE program_id = ? AND participant_id = ?",
            (program_id, participant_id),
        )
        return None if row is None else _code(row)

    def add_code(self, record: CodeRecord) -> None:
        self._u._x(
            f"INSERT INTO rk_codes ({_CODE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.program_id,
                record.code,
                record.participant_id,
                _ts(record.created_at),
                record.max_uses,
                _opt_ts(record.expires_at),
            ),
        )
        self._u._code_owner[(record.program_id, record.code)] = record

    def email_of(self, program_id: str, participant_id: str) -> str | None:
        key = (program_id, participant_id)
        cache = self._u._emails
        if key in cache:
            return cache[key]
        row = self._u._one(
            "SELECT email FROM rk_personal_data WHERE program_id = ? AND participant_id = ?",
            key,
        )
        email = cache[key] = None if row is None else str(row[0])
        return email

    def set_email(self, program_id: str, participant_id: str, email: str) -> None:
        key = (program_id, participant_id)
        self._u._emails[key] = email
        self._u._buffer_upsert(
            _UPSERT_EMAIL,
            key,
            (*key, email),
        )


class _Referrals(_Repo):
    def by_referee(self, program_id: str, referee_id: str) -> Referral | None:
        key = (program_id, referee_id)
        cache = self._u._referral_of
        if key in cache:
            return cache[key]
        loaded = self._u._prefetched.get(("referral_of", program_id))  # see _absent
        if loaded is not None and referee_id in loaded:
            return None
        row = self._u._one(
            f"SELECT {_REFERRAL_COLUMNS} FROM rk_referrals WHERE program_id = ? AND referee_id = ?",
            key,
        )
        record = cache[key] = None if row is None else _referral(row)
        return record

    def get(self, referral_id: str) -> Referral | None:
        cache = self._u._referrals
        if referral_id in cache:
            return cache[referral_id]
        row = self._u._one(
            f"SELECT {_REFERRAL_COLUMNS} FROM rk_referrals WHERE referral_id = ?", (referral_id,)
        )
        record = cache[referral_id] = None if row is None else _referral(row)
        return record

    def add(self, referral: Referral) -> None:
        r = referral
        key = (r.program_id, r.referee_id)
        if self._u._referral_of.get(key) is not None or self._u._referrals.get(r.referral_id):
            raise self._u._conflict(f"referee {key!r} already has a referral")
        self._u._referral_of[key] = r
        self._u._referrals[r.referral_id] = r
        self._u._buffer(
            _INSERT_REFERRAL,
            (
                r.referral_id,
                r.program_id,
                r.program_version,
                r.referrer_id,
                r.referee_id,
                r.code,
                r.channel,
                _ts(r.created_at),
                r.event_id,
                r.status,
                codec.dumps(r.explanation),
            ),
        )

    def by_referrer(self, program_id: str, referrer_id: str) -> list[Referral]:
        if _INSERT_REFERRAL in self._u._pending:
            self._u.flush()
        rows = self._u._x(
            f"SELECT {_REFERRAL_COLUMNS} FROM rk_referrals "
            "WHERE program_id = ? AND referrer_id = ? ORDER BY referral_id",
            (program_id, referrer_id),
        ).fetchall()
        return [_referral(r) for r in rows]

    def update(self, referral: Referral) -> None:
        old = self.get(referral.referral_id)
        if old is None:
            raise StoreError(f"unknown referral {referral.referral_id!r}")
        new = attrs.evolve(
            old,
            referrer_id=referral.referrer_id,
            code=referral.code,
            status=referral.status,
            explanation=referral.explanation,
        )
        self._u.flush()
        self._u._x(
            "UPDATE rk_referrals SET referrer_id = ?, code = ?, status = ?, explanation = ? "
            "WHERE referral_id = ?",
            (new.referrer_id, new.code, new.status, codec.dumps(new.explanation), new.referral_id),
        )
        self._u._referrals[new.referral_id] = new
        self._u._referral_of[(new.program_id, new.referee_id)] = new


class _Touches(_Repo):
    """New touches wait in the unit (its reads see them) and are inserted at flush, so a
    batch of sign-ups reads touches without flushing every other buffered write."""

    def add(self, record: TouchRecord) -> None:
        key = (record.program_id, record.touch_id)
        if key in self._u._new_touches:
            raise self._u._conflict(f"touch {key!r} already exists")
        if not self._u._open:
            self._u._require_open()
        self._u._new_touches[key] = record
        if record.visitor_id is not None:
            self._u._new_of_visitor.setdefault((record.program_id, record.visitor_id), []).append(
                key
            )

    def _query(self, field: str, program_id: str, value: str) -> list[TouchRecord]:
        cached = (
            self._u._visitor_touches.get((program_id, value)) if field == "visitor_id" else None
        )
        if cached is not None:
            found = list(cached)
        else:
            rows = self._u._x(
                f"SELECT {_TOUCH_COLUMNS} FROM rk_touches WHERE program_id = ? AND {field} = ?",
                (program_id, value),
            ).fetchall()
            found = [_touch(r) for r in rows]
        new = self._u._new_touches
        if field == "visitor_id":
            found.extend(new[key] for key in self._u._new_of_visitor.get((program_id, value), ()))
        else:
            found.extend(
                r for r in new.values() if r.program_id == program_id and getattr(r, field) == value
            )
        if len(found) < 2:  # a new list already, in order
            return found
        return sorted(found, key=_touch_order)

    def of_visitor(self, program_id: str, visitor_id: str) -> list[TouchRecord]:
        return self._query("visitor_id", program_id, visitor_id)

    def of_participant(self, program_id: str, participant_id: str) -> list[TouchRecord]:
        return self._query("participant_id", program_id, participant_id)

    def attach(self, program_id: str, visitor_id: str, participant_id: str) -> None:
        self._u._x(
            "UPDATE rk_touches SET participant_id = ? "
            "WHERE program_id = ? AND visitor_id = ? AND participant_id IS NULL",
            (participant_id, program_id, visitor_id),
        )
        cached = self._u._visitor_touches.get((program_id, visitor_id))
        if cached is not None:
            self._u._visitor_touches[(program_id, visitor_id)] = [
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
        cursor = self._u._x(
            "DELETE FROM rk_touches WHERE program_id = ? AND at < ?", (program_id, _ts(before))
        )
        return int(cursor.rowcount)

    def forget(self, program_id: str, participant_id: str) -> int:
        self._u.flush()
        cursor = self._u._x(
            "DELETE FROM rk_touches WHERE program_id = ? AND participant_id = ?",
            (program_id, participant_id),
        )
        return int(cursor.rowcount)


class _Orders(_Repo):
    def get(self, program_id: str, order_id: str) -> OrderRecord | None:
        key = (program_id, order_id)
        cache = self._u._orders
        if key in cache:
            return cache[key]
        loaded = self._u._prefetched.get(("orders", program_id))  # see _absent
        if loaded is not None and order_id in loaded:
            return None
        row = self._u._one(
            f"SELECT {_ORDER_COLUMNS} FROM rk_orders WHERE program_id = ? AND order_id = ?", key
        )
        record = cache[key] = None if row is None else _order(row)
        return record

    def add(self, record: OrderRecord) -> None:
        r = record
        key = (r.program_id, r.order_id)
        if self._u._orders.get(key) is not None:
            raise self._u._conflict(f"order {key!r} already exists")
        self._u._orders[key] = r
        self._u._buffer(
            _INSERT_ORDER,
            (
                r.program_id,
                r.order_id,
                r.participant_id,
                r.amount.to_minor(),
                r.amount.currency,
                _ts(r.at),
                r.event_id,
                r.referral_id,
                int(r.converted),
                r.digest,
                *_sqlformat.rate_columns(r.exchange_rate),
            ),
        )

    def update(self, record: OrderRecord) -> None:
        key = (record.program_id, record.order_id)
        old = self.get(*key)
        if old is None:
            raise StoreError(f"unknown order {key!r}")
        new = attrs.evolve(old, referral_id=record.referral_id, converted=record.converted)
        self._u.flush()
        self._u._x(
            "UPDATE rk_orders SET referral_id = ?, converted = ? "
            "WHERE program_id = ? AND order_id = ?",
            (new.referral_id, int(new.converted), *key),
        )
        self._u._orders[key] = new

    def refund(self, program_id: str, refund_id: str) -> RefundRecord | None:
        key = (program_id, refund_id)
        cache = self._u._refunds
        if key in cache:
            return cache[key]
        loaded = self._u._prefetched.get(("refunds", program_id))  # see _absent
        if loaded is not None and refund_id in loaded:
            return None
        row = self._u._one(
            f"SELECT {_REFUND_COLUMNS} FROM rk_refunds WHERE program_id = ? AND refund_id = ?", key
        )
        record = cache[key] = None if row is None else _refund(row)
        return record

    def add_refund(self, record: RefundRecord) -> None:
        r = record
        key = (r.program_id, r.refund_id)
        if self._u._refunds.get(key) is not None:
            raise self._u._conflict(f"refund {key!r} already exists")
        self._u._refunds[key] = r
        self._u._buffer(
            _INSERT_REFUND,
            (
                r.program_id,
                r.refund_id,
                r.order_id,
                r.amount.to_minor(),
                r.amount.currency,
                _ts(r.at),
                r.event_id,
                r.digest,
            ),
        )

    def chargeback(self, program_id: str, chargeback_id: str) -> ChargebackRecord | None:
        key = (program_id, chargeback_id)
        cache = self._u._chargebacks
        if key in cache:
            return cache[key]
        row = self._u._one(
            f"SELECT {_CHARGEBACK_COLUMNS} FROM rk_chargebacks "
            "WHERE program_id = ? AND chargeback_id = ?",
            key,
        )
        record = cache[key] = None if row is None else _chargeback(row)
        return record

    def add_chargeback(self, record: ChargebackRecord) -> None:
        r = record
        key = (r.program_id, r.chargeback_id)
        if self._u._chargebacks.get(key) is not None:
            raise self._u._conflict(f"chargeback {key!r} already exists")
        self._u._chargebacks[key] = r
        self._u._buffer(
            _INSERT_CHARGEBACK,
            (r.program_id, r.chargeback_id, r.order_id, _ts(r.at), r.event_id, r.digest),
        )


class _Ledger(_Repo):
    def add_reward(self, reward: Reward, entry: Entry) -> None:
        u = self._u
        if reward.reward_id in u._new_rewards:
            raise u._conflict(f"reward {reward.reward_id!r} already exists")
        u._new_rewards[reward.reward_id] = reward
        if reward.order_id is not None:
            of_order = u._new_of_order.get((reward.program_id, reward.order_id))
            if of_order is None:
                u._new_of_order[(reward.program_id, reward.order_id)] = [reward]
            else:
                of_order.append(reward)
        u._exponents[reward.reward_id] = _sqlformat.reward_value_exponent(reward.value)
        u._state[reward.reward_id] = entry.state_after
        self.append((entry,))

    def append(self, entries: Sequence[Entry]) -> None:
        u = self._u
        if not u._open:
            u._require_open()
        exponents = u._exponents
        unknown = [e.reward_id for e in entries if e.reward_id not in exponents]
        for chunk in _chunks(sorted(set(unknown)) if unknown else ()):
            marks = ", ".join("?" * len(chunk))
            for rid, kind, code in u._x(
                "SELECT reward_id, unit_kind, unit_code FROM rk_rewards "
                f"WHERE reward_id IN ({marks})",
                chunk,
            ).fetchall():
                u._exponents[rid] = Unit(kind, code).exponent
        for e in entries:
            exponent = u._exponents.get(e.reward_id)
            if exponent is None:
                raise StoreError(f"entry {e.entry_id!r} names unknown reward {e.reward_id!r}")
            u._buffer(
                _INSERT_ENTRY,
                (
                    e.entry_id,
                    e.reward_id,
                    e.program_id,
                    e.participant_id,
                    e.kind.value,
                    _scaled(e.quantity, exponent, "entry.quantity"),
                    exponent,
                    _ts(e.at),
                    e.cause,
                    e.state_after.value,
                    e.actor,
                ),
            )
            added = u._new_entries.get(e.reward_id)
            if added is None:
                u._new_entries[e.reward_id] = [e]
            else:
                added.append(e)
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
        column, key = (
            ("participant_id", participant_id)
            if participant_id is not None
            else ("order_id", order_id or "")
        )
        cached = self._u._order_rewards.get((program_id, key)) if order_id is not None else None
        if cached is not None:
            found = list(cached)
        else:
            rows = self._u._x(
                f"SELECT {_REWARD_COLUMNS} FROM rk_rewards WHERE program_id = ? AND {column} = ? "
                "ORDER BY seq",
                (program_id, key),
            ).fetchall()
            found = [_reward(r) for r in rows]
        if order_id is not None:  # this unit's, in the order they were added
            found.extend(self._u._new_of_order.get((program_id, order_id), ()))
        else:
            found.extend(
                r
                for r in self._u._new_rewards.values()
                if r.program_id == program_id and r.participant_id == key
            )
        return found

    def entries(self, reward_ids: Iterable[str]) -> dict[str, list[Entry]]:
        ids = list(dict.fromkeys(reward_ids))
        out: dict[str, list[Entry]] = {i: [] for i in ids}
        new = self._u._new_entries
        cached = self._u._stored_entries
        stored = []
        for i in ids:
            if i in cached:
                out[i].extend(cached[i])
            elif i not in self._u._new_rewards:
                stored.append(i)
        for chunk in _chunks(stored):
            marks = ", ".join("?" * len(chunk))
            rows = self._u._x(
                f"SELECT {_ENTRY_COLUMNS} FROM rk_entries WHERE reward_id IN ({marks}) "
                "ORDER BY seq",
                chunk,
            ).fetchall()
            for r in rows:
                out[r[1]].append(_entry(r))
        for i in ids:
            if i in new:
                out[i].extend(new[i])
        return out

    def in_state(
        self, program_id: str, state: RewardState, *, due_by: datetime | None, limit: int
    ) -> list[Reward]:
        if limit < 1:
            return []
        self._u.flush()
        if due_by is None:
            rows = self._u._x(
                f"SELECT {_REWARD_COLUMNS} FROM rk_rewards WHERE program_id = ? AND state = ? "
                "ORDER BY payable_at, reward_id LIMIT ?",
                (program_id, state.value, limit),
            ).fetchall()
        else:
            rows = self._u._x(
                f"SELECT {_REWARD_COLUMNS} FROM rk_rewards WHERE program_id = ? AND state = ? "
                "AND payable_at <= ? ORDER BY payable_at, reward_id LIMIT ?",
                (program_id, state.value, _ts(due_by), limit),
            ).fetchall()
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
        start = ("", "") if after is None else (_ts(after[0]), after[1])
        rows = self._u._x(
            f"SELECT {_REWARD_COLUMNS} FROM rk_rewards WHERE program_id = ? AND unit_kind = ? "
            "AND created_at <= ? AND (created_at > ? OR (created_at = ? AND reward_id > ?)) "
            "ORDER BY created_at, reward_id LIMIT ?",
            (program_id, kind, _ts(created_by), start[0], start[0], start[1], limit),
        ).fetchall()
        return [_reward(r) for r in rows]


#: Counter deltas scaled lately, by the delta object's ``id`` (the engine adds its own
#: constant 1 most of the time): the delta itself (kept, so no other object has its id
#: while the entry is kept), the scaled int, and that as a Decimal of the counters'
#: exponent, which a read of the counter adds. Keyed by value, each new amount would cost
#: a hash of a Decimal, dearer than scaling it.
_SCALED_DELTAS: dict[int, tuple[Any, int, Decimal]] = {}


#: A counter with no row, read with the counters' exponent (a Decimal is immutable).
_NO_COUNT: Final = Decimal(0).scaleb(-_COUNTER_SCALE)


class _Counters(_Repo):
    def get(self, keys: Iterable[CounterKey]) -> dict[CounterKey, Decimal]:
        u = self._u
        counters = u._counters
        wanted = keys if isinstance(keys, list) else list(keys)
        missing: dict[CounterKey, None] | None = None
        found: dict[CounterKey, Decimal] = {}  # in the order of ``wanted``, while none is missing
        for key in wanted:
            value = counters.get(key)
            if value is not None:
                found[key] = value
                continue
            scaled = u._stored.pop(key, None)
            if scaled is None and u._deferred and key[2] in u._deferred.get(key[0], ()):
                u._load_deferred()
                if key in counters:  # changed before it was loaded
                    found[key] = counters[key]
                    continue
                scaled = u._stored.pop(key, None)
            if scaled is not None:  # prefetched, not read or changed since
                value = counters[key] = Decimal(scaled).scaleb(-_COUNTER_SCALE)
                found[key] = value
            elif key[2] in u._subjects.get(key[0], ()):  # loaded with its subject: no row, so 0
                if type(key) is not tuple or len(key) != 3 or type(key[1]) is not str:
                    delta = u._deltas.get((key[0], str(key[1]), key[2]), 0)
                else:
                    delta = u._deltas.get(key, 0)
                value = counters[key] = (
                    Decimal(delta).scaleb(-_COUNTER_SCALE) if delta else _NO_COUNT
                )
                found[key] = value
            elif missing is None:
                missing = {key: None}
            else:
                missing[key] = None
        if missing is None:
            return found
        for chunk in _chunks(list(missing), 300):
            for key in chunk:
                counters[key] = Decimal(0)
            where = " OR ".join(["(program_id = ? AND name = ? AND subject = ?)"] * len(chunk))
            params = [part for key in chunk for part in (key[0], str(key[1]), key[2])]
            for program_id, name, subject, scaled in u._x(
                f"SELECT program_id, name, subject, value_scaled FROM rk_counters WHERE {where}",
                params,
            ).fetchall():
                counters[(program_id, name, subject)] = Decimal(scaled).scaleb(-_COUNTER_SCALE)
            for key in chunk:  # this unit's own updates made before the first read
                if key in u._deltas:
                    counters[key] += Decimal(u._deltas[key]).scaleb(-_COUNTER_SCALE)
        return {k: counters[k] for k in wanted}

    def add(self, key: CounterKey, delta: Decimal) -> None:
        if not delta:
            return
        u = self._u
        if not u._open:
            u._require_open()
        known = _SCALED_DELTAS.get(id(delta))
        if known is not None and known[0] is delta:
            scaled, step = known[1], known[2]
        else:
            scaled = _scaled(Decimal(delta), _COUNTER_SCALE, "counter delta")
            step = Decimal(scaled).scaleb(-_COUNTER_SCALE)
            if len(_SCALED_DELTAS) >= 64:
                _SCALED_DELTAS.clear()
            _SCALED_DELTAS[id(delta)] = (delta, scaled, step)
        if type(key) is not tuple or len(key) != 3 or type(key[1]) is not str:
            key = (key[0], str(key[1]), key[2])
        deltas = u._deltas
        total = deltas[key] = deltas.get(key, 0) + scaled
        counters = u._counters
        value = counters.get(key)
        if value is not None:
            counters[key] = value + step
            return
        stored = u._stored.pop(key, None)
        if stored is not None:
            # Prefetched and not read yet: no change of this unit's was made before it
            # was loaded (those are added at the load), so ``total`` is this one alone.
            counters[key] = Decimal(stored + total).scaleb(-_COUNTER_SCALE)
        elif key[2] in u._subjects.get(key[0], ()):
            # Loaded with its subject and no row: this unit's changes are the value. Kept
            # now, as a flush moves the changes to the table without re-reading it.
            counters[key] = Decimal(total).scaleb(-_COUNTER_SCALE)


class _Outbox(_Repo):
    def add(self, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            self._u._buffer(
                "INSERT INTO rk_outbox (notification_id, program_id, kind, recipient_id, "
                "created_at, data) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    n.notification_id,
                    n.program_id,
                    n.kind,
                    n.recipient_id,
                    _ts(n.created_at),
                    codec.dumps(n.data),
                ),
            )

    def pending(self, limit: int) -> list[Notification]:
        if limit < 1:
            return []
        self._u.flush()
        rows = self._u._x(
            f"SELECT {_OUTBOX_COLUMNS} FROM rk_outbox "
            "WHERE delivered_at IS NULL AND dead_at IS NULL ORDER BY seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [_notification(r) for r in rows]

    def due(self, at: datetime, limit: int) -> list[tuple[Notification, int]]:
        if limit < 1:
            return []
        self._u.flush()
        rows = self._u._x(
            f"SELECT {_OUTBOX_COLUMNS} FROM rk_outbox "
            "WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ? "
            "AND delivered_at IS NULL AND dead_at IS NULL "
            "ORDER BY next_attempt_at, seq LIMIT ?",
            (_ts(at), limit),
        ).fetchall()
        if len(rows) < limit:
            rows += self._u._x(
                f"SELECT {_OUTBOX_COLUMNS} FROM rk_outbox "
                "WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at IS NULL "
                "ORDER BY seq LIMIT ?",
                (limit - len(rows),),
            ).fetchall()
        return [(_notification(r), r[7]) for r in rows]

    def mark_delivered(self, notification_id: str, at: datetime) -> None:
        self._u.flush()
        self._u._x(
            "UPDATE rk_outbox SET delivered_at = ?, attempts = attempts + 1, "
            "next_attempt_at = NULL, dead_at = NULL "
            "WHERE notification_id = ? AND delivered_at IS NULL",
            (_ts(at), notification_id),
        )

    def mark_failed(
        self, notification_id: str, at: datetime, error: str, retry_at: datetime | None = None
    ) -> None:
        self._u.flush()
        self._u._x(
            "UPDATE rk_outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
            "WHERE notification_id = ? AND delivered_at IS NULL AND dead_at IS NULL",
            (error, _ts(at if retry_at is None else retry_at), notification_id),
        )

    def mark_dead(self, notification_id: str, at: datetime, error: str) -> None:
        self._u.flush()
        self._u._x(
            "UPDATE rk_outbox SET attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = NULL, dead_at = ? "
            "WHERE notification_id = ? AND delivered_at IS NULL AND dead_at IS NULL",
            (error, _ts(at), notification_id),
        )

    def dead(self, limit: int) -> list[DeadLetter]:
        if limit < 1:
            return []
        self._u.flush()
        rows = self._u._x(
            f"SELECT {_OUTBOX_COLUMNS} FROM rk_outbox WHERE dead_at IS NOT NULL "
            "ORDER BY dead_at, seq LIMIT ?",
            (limit,),
        ).fetchall()
        return [_dead_letter(r) for r in rows]

    def revive(self, notification_ids: Sequence[str]) -> int:
        self._u.flush()
        revived = 0
        for nid in dict.fromkeys(notification_ids):
            revived += self._u._x(
                "UPDATE rk_outbox SET attempts = 0, next_attempt_at = NULL, dead_at = NULL "
                "WHERE notification_id = ? AND dead_at IS NOT NULL",
                (nid,),
            ).rowcount
        return revived


class _Payouts(_Repo):
    def add(self, payout: Payout) -> None:
        u = self._u
        u.flush()
        u._x(
            f"INSERT INTO rk_payouts ({_PAYOUT_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                payout.payout_id,
                payout.program_id,
                payout.participant_id,
                payout.kind,
                payout.amount.currency,
                payout.amount.to_minor(),
                payout.netted.to_minor(),
                ",".join(payout.reward_ids),
                _ts(payout.created_at),
                payout.status.value,
                payout.attempts,
                payout.error,
                _opt_ts(payout.updated_at),
            ),
        )

    def get(self, program_id: str, payout_id: str) -> Payout | None:
        row = self._u._one(
            f"SELECT {_PAYOUT_COLUMNS} FROM rk_payouts WHERE program_id = ? AND payout_id = ?",
            (program_id, payout_id),
        )
        return None if row is None else _payout(row)

    def update(self, payout: Payout) -> None:
        cursor = self._u._x(
            "UPDATE rk_payouts SET status = ?, attempts = ?, error = ?, updated_at = ? "
            "WHERE payout_id = ?",
            (
                payout.status.value,
                payout.attempts,
                payout.error,
                _opt_ts(payout.updated_at),
                payout.payout_id,
            ),
        )
        if cursor.rowcount != 1:
            raise StoreError(f"payout {payout.payout_id!r} is not recorded")

    def open(self, program_id: str, participant_id: str | None, limit: int) -> list[Payout]:
        if limit < 1:
            return []
        if participant_id is None:
            rows = self._u._x(
                f"SELECT {_PAYOUT_COLUMNS} FROM rk_payouts WHERE program_id = ? "
                "AND status IN ('pending', 'failed') ORDER BY created_at, payout_id LIMIT ?",
                (program_id, limit),
            ).fetchall()
        else:
            rows = self._u._x(
                f"SELECT {_PAYOUT_COLUMNS} FROM rk_payouts WHERE program_id = ? "
                "AND participant_id = ? AND status IN ('pending', 'failed') "
                "ORDER BY created_at, payout_id LIMIT ?",
                (program_id, participant_id, limit),
            ).fetchall()
        return [_payout(r) for r in rows]
