"""referralkit's tables as SQLAlchemy Core objects, for apps that manage their own schema.

[`SQLAlchemyStore`][referralkit.SQLAlchemyStore] creates these tables itself (``create=True``,
the default). Apps that migrate their database with Alembic include them instead::

    # env.py
    from referralkit.sql import metadata as referralkit_metadata

    target_metadata = [app_metadata, referralkit_metadata]

and open the store with ``SQLAlchemyStore(engine, create=False)``; it writes the
``rk_schema`` version row on first use.

The layout is the one [`SQLiteStore`][referralkit.SQLiteStore] writes, table for table and
column for column, so records mean the same everywhere:

- money is an integer count of minor units (``amount_minor``) next to its ISO 4217 currency;
- datetimes are UTC text, ``2026-03-02T09:30:15.123456+00:00`` (always 32 characters, so
  text order is time order);
- counters are integers of 10⁻⁶ units (``value_scaled``);
- events, outcomes, reward values, program definitions and notification data are JSON
  text in referralkit's reversible codec;
- ``rk_rewards.state`` is the ``state_after`` of the reward's latest entry;
- ``seq`` columns number rows in insertion order (``rk_events.seq`` in commit order).

Ids and codes are ``VARCHAR(200)`` (the library limits ids to 200 characters) compared
byte-wise: collation ``"C"`` on PostgreSQL, ``utf8mb4_bin`` tables on MariaDB / MySQL.
Needs the ``sqlalchemy`` extra (``pip install 'referralkit[sqlalchemy]'``).
"""

from __future__ import annotations

from typing import Any, Final

from referralkit._errors import MissingExtraError

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql
except ImportError as exc:
    raise MissingExtraError("referralkit.sql", extra="sqlalchemy") from exc

__all__ = [
    "SCHEMA_VERSION",
    "chargebacks",
    "codes",
    "counters",
    "entries",
    "events",
    "metadata",
    "orders",
    "outbox",
    "participants",
    "payouts",
    "personal_data",
    "programs",
    "referrals",
    "refunds",
    "rewards",
    "schema",
    "touches",
]

#: The schema version this referralkit writes (the ``rk_schema`` row). A database with a
#: newer version is refused; version 2 is migrated in place when a store opens it (the
#: ``rk_events.event_key`` column, filled from the logged events, and its index), older
#: ones are refused. The same number as ``SQLiteStore``'s: the layouts are one.
SCHEMA_VERSION: Final = 3

metadata: Final = sa.MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "ck": "%(table_name)s_%(constraint_name)s_check",
        "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    }
)
"""Every referralkit table (all named ``rk_*``)."""

# MariaDB / MySQL: utf8mb4 with a binary collation, so keys compare and sort by code point
# as they do in Python and SQLite (the server default is often case-insensitive).
_TABLE_OPTIONS: Final[dict[str, Any]] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}


def _id() -> sa.types.TypeEngine[str]:
    """An id, code or other short string: byte-wise comparison on every database."""
    return sa.String(200).with_variant(sa.String(200, collation="C"), "postgresql")


def _short() -> sa.types.TypeEngine[str]:
    """A small enumeration value (state, role, kind, currency)."""
    return sa.String(16)


def _ts() -> sa.types.TypeEngine[str]:
    """A UTC timestamp as sortable text (32 characters)."""
    return sa.String(32).with_variant(sa.String(32, collation="C"), "postgresql")


def _text() -> sa.types.TypeEngine[str]:
    """JSON or free text of any length (``LONGTEXT`` on MariaDB / MySQL)."""
    return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def _seq() -> sa.types.TypeEngine[int]:
    """An autoincrement row number (SQLite needs INTEGER for its rowid alias)."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


schema: Final = sa.Table(
    "rk_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
    **_TABLE_OPTIONS,
)
"""``rk_schema``: one row, the schema version."""

programs: Final = sa.Table(
    "rk_programs",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("digest", _id(), nullable=False),
    sa.Column("effective_at", _ts(), nullable=False),
    sa.Column("published_at", _ts(), nullable=False),
    sa.Column("definition", _text(), nullable=False),
    **_TABLE_OPTIONS,
)
"""``rk_programs``: published program versions."""

events: Final = sa.Table(
    "rk_events",
    metadata,
    sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
    sa.Column("program_id", _id(), nullable=False),
    sa.Column("event_id", _id(), nullable=False),
    sa.Column("digest", _id(), nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("event", _text(), nullable=False),
    sa.Column("outcome", _text(), nullable=False),
    sa.Column("event_key", _id(), nullable=True),
    sa.UniqueConstraint("program_id", "event_id"),
    sa.Index("rk_events_log", "program_id", "seq"),
    sa.Index(
        "rk_events_key",
        "program_id",
        "event_key",
        postgresql_where=sa.text("event_key IS NOT NULL"),
        sqlite_where=sa.text("event_key IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
    **_TABLE_OPTIONS,
)
"""``rk_events``: the event log; ``seq`` is the log position, in commit order.
``event_key`` is [`referralkit.event_key`][referralkit.event_key] of the event as stored
(the participant, order or visitor id it is found by; NULL for a click without a visitor),
indexed as ``rk_events_key`` (partial where the database has partial indexes)."""

participants: Final = sa.Table(
    "rk_participants",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("participant_id", _id(), primary_key=True),
    sa.Column("first_seen_at", _ts(), nullable=False),
    sa.Column("signed_up_at", _ts(), nullable=True),
    sa.Column("country", _short(), nullable=True),
    **_TABLE_OPTIONS,
)
"""``rk_participants``: everyone the program has seen; ``country`` is the ISO 3166-1 alpha-2
code given at sign-up."""

codes: Final = sa.Table(
    "rk_codes",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("code", _id(), primary_key=True),
    sa.Column("participant_id", _id(), nullable=False),
    sa.Column("created_at", _ts(), nullable=False),
    sa.Column("max_uses", sa.Integer, nullable=True),
    sa.Column("expires_at", _ts(), nullable=True),
    sa.UniqueConstraint("program_id", "participant_id"),
    **_TABLE_OPTIONS,
)
"""``rk_codes``: normalised referral codes, one per participant."""

personal_data: Final = sa.Table(
    "rk_personal_data",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("participant_id", _id(), primary_key=True),
    sa.Column("email", _text(), nullable=False),
    **_TABLE_OPTIONS,
)
"""``rk_personal_data``: normalised emails, kept apart so they can be pseudonymised."""

referrals: Final = sa.Table(
    "rk_referrals",
    metadata,
    sa.Column("referral_id", _id(), primary_key=True),
    sa.Column("program_id", _id(), nullable=False),
    sa.Column("program_version", sa.Integer, nullable=False),
    sa.Column("referrer_id", _id(), nullable=False),
    sa.Column("referee_id", _id(), nullable=False),
    sa.Column("code", _id(), nullable=False),
    sa.Column("channel", _id(), nullable=False),
    sa.Column("created_at", _ts(), nullable=False),
    sa.Column("event_id", _id(), nullable=False),
    sa.Column("status", _short(), nullable=False),
    sa.Column("explanation", _text(), nullable=False),
    sa.UniqueConstraint("program_id", "referee_id"),
    sa.Index("rk_referrals_referrer", "program_id", "referrer_id"),
    **_TABLE_OPTIONS,
)
"""``rk_referrals``: one referral per referee per program; ``explanation`` is the
attribution explanation (a JSON list of decisions)."""

orders: Final = sa.Table(
    "rk_orders",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("order_id", _id(), primary_key=True),
    sa.Column("participant_id", _id(), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", _short(), nullable=False),
    sa.Column("at", _ts(), nullable=False),
    sa.Column("event_id", _id(), nullable=False),
    sa.Column("referral_id", _id(), nullable=True),
    sa.Column("converted", sa.Integer, nullable=False),
    sa.Column("digest", _id(), nullable=False),
    sa.Column("exchange_rate", sa.String(64), nullable=True),
    sa.Column("rate_on", sa.String(10), nullable=True),
    **_TABLE_OPTIONS,
)
"""``rk_orders``: every purchase, referred or not; ``exchange_rate`` (exact decimal text)
and ``rate_on`` (ISO date) for an order converted from another currency."""

refunds: Final = sa.Table(
    "rk_refunds",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("refund_id", _id(), primary_key=True),
    sa.Column("order_id", _id(), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("currency", _short(), nullable=False),
    sa.Column("at", _ts(), nullable=False),
    sa.Column("event_id", _id(), nullable=False),
    sa.Column("digest", _id(), nullable=False),
    **_TABLE_OPTIONS,
)
"""``rk_refunds``."""

chargebacks: Final = sa.Table(
    "rk_chargebacks",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("chargeback_id", _id(), primary_key=True),
    sa.Column("order_id", _id(), nullable=False),
    sa.Column("at", _ts(), nullable=False),
    sa.Column("event_id", _id(), nullable=False),
    sa.Column("digest", _id(), nullable=False),
    **_TABLE_OPTIONS,
)
"""``rk_chargebacks``."""

rewards: Final = sa.Table(
    "rk_rewards",
    metadata,
    sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
    sa.Column("reward_id", _id(), nullable=False, unique=True),
    sa.Column("program_id", _id(), nullable=False),
    sa.Column("program_version", sa.Integer, nullable=False),
    sa.Column("referral_id", _id(), nullable=False),
    sa.Column("participant_id", _id(), nullable=False),
    sa.Column("role", _short(), nullable=False),
    sa.Column("value", _text(), nullable=False),
    sa.Column("unit_kind", _short(), nullable=False),
    sa.Column("unit_code", _id(), nullable=False),
    sa.Column("policy", _id(), nullable=False),
    sa.Column("source_event_id", _id(), nullable=False),
    sa.Column("order_id", _id(), nullable=True),
    sa.Column("base_minor", sa.BigInteger, nullable=True),
    sa.Column("base_currency", _short(), nullable=True),
    sa.Column("created_at", _ts(), nullable=False),
    sa.Column("payable_at", _ts(), nullable=False),
    sa.Column("state", _short(), nullable=False),
    sa.Column("item", _id(), nullable=True),
    sa.Column("exchange_rate", sa.String(64), nullable=True),
    sa.Column("rate_on", sa.String(10), nullable=True),
    sa.Index("rk_rewards_participant", "program_id", "participant_id", "seq"),
    sa.Index("rk_rewards_order", "program_id", "order_id", "seq"),
    sa.Index("rk_rewards_state", "program_id", "state", "payable_at", "reward_id"),
    sa.Index("rk_rewards_kind", "program_id", "unit_kind", "created_at", "reward_id"),
    sqlite_autoincrement=True,
    **_TABLE_OPTIONS,
)
"""``rk_rewards``: the immutable facts of each reward, plus its current ``state``."""

entries: Final = sa.Table(
    "rk_entries",
    metadata,
    sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
    sa.Column("entry_id", _id(), nullable=False, unique=True),
    sa.Column("reward_id", _id(), sa.ForeignKey("rk_rewards.reward_id"), nullable=False),
    sa.Column("program_id", _id(), nullable=False),
    sa.Column("participant_id", _id(), nullable=False),
    sa.Column("kind", _short(), nullable=False),
    sa.Column("quantity_minor", sa.BigInteger, nullable=False),
    sa.Column("exponent", sa.Integer, nullable=False),
    sa.Column("at", _ts(), nullable=False),
    sa.Column("cause", _id(), nullable=False),
    sa.Column("state_after", _short(), nullable=False),
    sa.Column("actor", _id(), nullable=False, server_default=sa.text("'engine'")),
    sa.Index("rk_entries_reward", "reward_id", "seq"),
    sqlite_autoincrement=True,
    **_TABLE_OPTIONS,
)
"""``rk_entries``: the append-only ledger; ``quantity_minor`` * 10**-``exponent`` units."""

counters: Final = sa.Table(
    "rk_counters",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("name", _id(), primary_key=True),
    sa.Column("subject", _id(), primary_key=True),
    sa.Column("value_scaled", sa.BigInteger, nullable=False),
    sa.Index("rk_counters_subject", "program_id", "subject"),
    **_TABLE_OPTIONS,
)
"""``rk_counters``: exact counters in 10⁻⁶ units; updated atomically (``value + delta``).
``rk_counters_subject`` serves the batch prefetch of every counter of a subject."""

_FRESH: Final = "delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at IS NULL"

outbox: Final = sa.Table(
    "rk_outbox",
    metadata,
    sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
    sa.Column("notification_id", _id(), nullable=False, unique=True),
    sa.Column("program_id", _id(), nullable=False),
    sa.Column("kind", _id(), nullable=False),
    sa.Column("recipient_id", _id(), nullable=False),
    sa.Column("created_at", _ts(), nullable=False),
    sa.Column("data", _text(), nullable=False),
    sa.Column("delivered_at", _ts(), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", _text(), nullable=True),
    sa.Column("next_attempt_at", _ts(), nullable=True),
    sa.Column("dead_at", _ts(), nullable=True),
    sa.Index(
        "rk_outbox_fresh",
        "delivered_at",
        "dead_at",
        "next_attempt_at",
        "seq",
        postgresql_where=sa.text(_FRESH),
        sqlite_where=sa.text(_FRESH),
    ),
    sa.Index(
        "rk_outbox_retry",
        "next_attempt_at",
        "seq",
        postgresql_where=sa.text("next_attempt_at IS NOT NULL"),
        sqlite_where=sa.text("next_attempt_at IS NOT NULL"),
    ),
    sa.Index(
        "rk_outbox_dead",
        "dead_at",
        "seq",
        postgresql_where=sa.text("dead_at IS NOT NULL"),
        sqlite_where=sa.text("dead_at IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
    **_TABLE_OPTIONS,
)
"""``rk_outbox``: notifications and their delivery state. A row is pending while
``delivered_at`` and ``dead_at`` are NULL; ``next_attempt_at`` is set only while a failed
notification waits for its retry (NULL: never attempted, delivered or dead)."""

payouts: Final = sa.Table(
    "rk_payouts",
    metadata,
    sa.Column("seq", _seq(), primary_key=True, autoincrement=True),
    sa.Column("payout_id", _id(), nullable=False, unique=True),
    sa.Column("program_id", _id(), nullable=False),
    sa.Column("participant_id", _id(), nullable=False),
    sa.Column("kind", _short(), nullable=False),
    sa.Column("currency", _short(), nullable=False),
    sa.Column("amount_minor", sa.BigInteger, nullable=False),
    sa.Column("netted_minor", sa.BigInteger, nullable=False),
    sa.Column("reward_ids", _text(), nullable=False),
    sa.Column("created_at", _ts(), nullable=False),
    sa.Column("status", _short(), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", _text(), nullable=True),
    sa.Column("updated_at", _ts(), nullable=True),
    sa.Index("rk_payouts_open", "program_id", "status", "participant_id"),
    sqlite_autoincrement=True,
    **_TABLE_OPTIONS,
)
"""``rk_payouts``: payouts by id (unique); ``reward_ids`` is the comma-joined reward ids."""

touches: Final = sa.Table(
    "rk_touches",
    metadata,
    sa.Column("program_id", _id(), primary_key=True),
    sa.Column("touch_id", _id(), primary_key=True),
    sa.Column("kind", _short(), nullable=False),
    sa.Column("at", _ts(), nullable=False),
    sa.Column("event_id", _id(), nullable=False),
    sa.Column("visitor_id", _id(), nullable=True),
    sa.Column("participant_id", _id(), nullable=True),
    sa.Column("referrer_id", _id(), nullable=True),
    sa.Column("code", _id(), nullable=True),
    sa.Column("channel", _short(), nullable=False),
    sa.Column("campaign", _id(), nullable=True),
    sa.Column("data", _text(), nullable=False),
    sa.Index("rk_touches_visitor", "program_id", "visitor_id", "at"),
    sa.Index("rk_touches_participant", "program_id", "participant_id", "at"),
    sa.Index("rk_touches_at", "program_id", "at"),
    **_TABLE_OPTIONS,
)
"""``rk_touches``: would-be referees' clicks and typed codes (raw touch data, purged by
age), and where their attribution was decided."""
