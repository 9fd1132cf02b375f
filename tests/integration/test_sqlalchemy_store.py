"""SQLAlchemyStore on a SQLite file, PostgreSQL and MariaDB: the store contract, the schema
version, corrupt rows, and an engine run that agrees with InMemoryStore and SQLiteStore.

The server tests read ``REFERRALKIT_TEST_POSTGRES_URL`` and ``REFERRALKIT_TEST_MARIADB_URL``
(``.ci/run`` points them at the local servers) and are skipped without them. They use the
``rk_*`` tables of the database they are given: dropped at the start and end of the session,
emptied after every test.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit.testing.contract import StoreContract

sa = pytest.importorskip("sqlalchemy")

from referralkit import sql  # noqa: E402
from referralkit._adapters.sqlalchemy import SQLAlchemyStore  # noqa: E402

POSTGRES_URL = os.environ.get("REFERRALKIT_TEST_POSTGRES_URL", "")
MARIADB_URL = os.environ.get("REFERRALKIT_TEST_MARIADB_URL", "")

needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL,
    reason="set REFERRALKIT_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)",
)
needs_mariadb = pytest.mark.skipif(
    not MARIADB_URL,
    reason="set REFERRALKIT_TEST_MARIADB_URL (e.g. mysql+pymysql://root@127.0.0.1:3306/test)",
)


# -- databases ------------------------------------------------------------------------------
def _server_engine(url: str) -> Iterator[Any]:
    engine = sa.create_engine(url)
    sql.metadata.drop_all(engine)
    try:
        yield engine
    finally:
        sql.metadata.drop_all(engine)
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Any]:
    """A PostgreSQL engine whose rk_* tables are dropped before and after the session."""
    yield from _server_engine(POSTGRES_URL)


@pytest.fixture(scope="session")
def mariadb_engine() -> Iterator[Any]:
    """A MariaDB engine whose rk_* tables are dropped before and after the session."""
    yield from _server_engine(MARIADB_URL)


def _empty(engine: Any) -> None:
    """Delete every row of every rk_* table that exists (children first)."""
    with engine.begin() as conn:
        existing = set(sa.inspect(conn).get_table_names())
        for table in reversed(sql.metadata.sorted_tables):
            if table.name in existing:
                conn.execute(table.delete())


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=needs_postgres),
        pytest.param("mariadb", marks=needs_mariadb),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """(name, engine) for each backend, its rk_* tables empty at the start and end."""
    if request.param == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.sqlite3'}")
        yield "sqlite", engine
        engine.dispose()
        return
    engine = request.getfixturevalue(f"{request.param}_engine")
    _empty(engine)
    try:
        yield request.param, engine
    finally:
        _empty(engine)


def _url(engine: Any) -> str:
    return str(engine.url.render_as_string(hide_password=False))


# -- the store contract, once per backend ---------------------------------------------------
class TestSQLAlchemyOnSQLiteFile(StoreContract):
    """SQLAlchemyStore from a SQLite file URL passes the store contract."""

    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self._db_url = f"sqlite:///{tmp_path / 'contract.sqlite3'}"

    def make_store(self) -> rk.Store:
        return SQLAlchemyStore(self._db_url)


class _ServerContract(StoreContract):
    """The contract on a server: one engine per session, tables emptied after each test."""

    __test__ = False
    engine_fixture = ""

    @pytest.fixture(autouse=True)
    def _database(self, request: pytest.FixtureRequest) -> Iterator[None]:
        self._engine = request.getfixturevalue(self.engine_fixture)
        _empty(self._engine)
        yield
        _empty(self._engine)

    def make_store(self) -> rk.Store:
        return SQLAlchemyStore(self._engine)


@needs_postgres
class TestSQLAlchemyOnPostgres(_ServerContract):
    """SQLAlchemyStore on PostgreSQL passes the store contract."""

    engine_fixture = "postgres_engine"


@needs_mariadb
class TestSQLAlchemyOnMariaDB(_ServerContract):
    """SQLAlchemyStore on MariaDB passes the store contract."""

    engine_fixture = "mariadb_engine"


# -- store-specific behaviour ---------------------------------------------------------------
def test_the_store_creates_its_tables_and_records_the_schema_version(
    backend: tuple[str, Any],
) -> None:
    """A first store creates every rk_* table and one rk_schema row with SCHEMA_VERSION."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    with engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        version = conn.execute(sa.select(sql.schema.c.version)).scalars().all()
    assert {t.name for t in sql.metadata.sorted_tables} <= names
    assert version == [sql.SCHEMA_VERSION]
    SQLAlchemyStore(engine)  # a second store on the same tables is fine
    store.close()


def test_a_newer_schema_version_is_refused(backend: tuple[str, Any]) -> None:
    """A database whose rk_schema row is newer than SCHEMA_VERSION raises SchemaVersionError."""
    _, engine = backend
    SQLAlchemyStore(engine)
    with engine.begin() as conn:
        conn.execute(sql.schema.update().values(version=sql.SCHEMA_VERSION + 1))
    with pytest.raises(rk.SchemaVersionError, match=f"schema version {sql.SCHEMA_VERSION + 1}"):
        SQLAlchemyStore(engine)
    with pytest.raises(rk.SchemaVersionError):
        SQLAlchemyStore(_url(engine))


def test_an_older_schema_version_is_refused(backend: tuple[str, Any]) -> None:
    """A database written by a schema version older than 2 (the one migrated in place) is
    refused: no silent half-migration."""
    _, engine = backend
    SQLAlchemyStore(engine)
    with engine.begin() as conn:
        conn.execute(sql.schema.update().values(version=1))
    with pytest.raises(rk.SchemaVersionError, match="older than"):
        SQLAlchemyStore(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sql.schema.c.version)).scalar() == 1


def test_create_false_refuses_a_database_without_the_tables(tmp_path: Path) -> None:
    """With create=False the tables must already exist."""
    with pytest.raises(rk.SchemaVersionError, match="no referralkit tables"):
        SQLAlchemyStore(f"sqlite:///{tmp_path / 'empty.sqlite3'}", create=False)


def test_create_false_uses_tables_made_from_the_metadata(tmp_path: Path) -> None:
    """Tables created from referralkit.sql.metadata (as Alembic would) are used as they are,
    and the version row is written."""
    url = f"sqlite:///{tmp_path / 'alembic.sqlite3'}"
    engine = sa.create_engine(url)
    sql.metadata.create_all(engine)
    store = SQLAlchemyStore(engine, create=False)
    _engine_run(store)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sql.schema.c.version)).scalar() == sql.SCHEMA_VERSION
    engine.dispose()


def test_a_corrupt_row_raises_corrupt_record_error_naming_the_row(
    backend: tuple[str, Any],
) -> None:
    """An order row with an unknown currency raises CorruptRecordError naming table and key."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    order = rk.OrderRecord(
        "p",
        "order-7",
        "bob",
        rk.Money("12.50", "USD"),
        datetime(2026, 1, 5, tzinfo=UTC),
        "evt-7",
        None,
        False,
        "digest",
    )
    with store.unit_of_work() as uow:
        uow.orders.add(order)
        uow.commit()
    with engine.begin() as conn:
        conn.execute(sql.orders.update().values(currency="XYZ"))
    with store.unit_of_work() as uow, pytest.raises(rk.CorruptRecordError) as info:
        uow.orders.get("p", "order-7")
    assert "rk_orders" in str(info.value)
    assert "order-7" in str(info.value)
    with pytest.raises(rk.CorruptRecordError, match="order-7"):
        store.dump()


def test_a_naive_timestamp_written_by_hand_is_a_corrupt_record(
    backend: tuple[str, Any],
) -> None:
    """A participant row whose timestamp lost its offset raises CorruptRecordError."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    with store.unit_of_work() as uow:
        uow.participants.put(
            rk.ParticipantRecord("p", "bob", datetime(2026, 1, 5, tzinfo=UTC), None)
        )
        uow.commit()
    with engine.begin() as conn:
        conn.execute(sql.participants.update().values(first_seen_at="2026-01-05T00:00:00"))
    with store.unit_of_work() as uow, pytest.raises(rk.CorruptRecordError, match="bob"):
        uow.participants.get("p", "bob")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "mysql+pymysql://nobody@127.0.0.1:1/none",
    ],
)
def test_an_unreachable_server_raises_store_unavailable(url: str) -> None:
    """A server that cannot be reached raises StoreUnavailableError, from the driver's."""
    pytest.importorskip("psycopg" if url.startswith("postgresql") else "pymysql")
    with pytest.raises(rk.StoreUnavailableError) as info:
        SQLAlchemyStore(url)
    assert isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)


def test_bad_arguments_raise_invalid_input() -> None:
    """Something other than a URL or an engine, or an unsupported database, is refused."""
    with pytest.raises(rk.InvalidInputError, match="url_or_engine"):
        SQLAlchemyStore(42)  # type: ignore[arg-type]
    with pytest.raises(rk.InvalidInputError, match="not a database URL"):
        SQLAlchemyStore("not a url")


def test_a_duplicate_key_is_a_concurrency_error_from_the_driver_error(
    backend: tuple[str, Any],
) -> None:
    """A unique-key violation is re-raised as ConcurrencyError ``from`` SQLAlchemy's error."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    code = rk.CodeRecord("p", "ALICE123", "alice", datetime(2026, 1, 5, tzinfo=UTC))
    with store.unit_of_work() as uow:
        uow.participants.add_code(code)
        uow.commit()
    with store.unit_of_work() as uow, pytest.raises(rk.ConcurrencyError) as info:
        uow.participants.add_code(code)
    assert isinstance(info.value.__cause__, sa.exc.IntegrityError)


def test_ids_compare_exactly_case_and_accents_included(backend: tuple[str, Any]) -> None:
    """Ids differing only in case or accents are different keys (a binary collation on
    MariaDB, whose default is case- and accent-insensitive), and sort by code point."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    at = datetime(2026, 1, 5, tzinfo=UTC)
    ids = ["order-a", "order-A", "order-\u00e1", "order-b"]
    with store.unit_of_work() as uow:
        for order_id in ids:
            uow.orders.add(
                rk.OrderRecord("p", order_id, "bob", rk.Money(1, "USD"), at, "e", None, False, "d")
            )
        uow.commit()
    with store.unit_of_work() as uow:
        assert [uow.orders.get("p", i).order_id for i in ids] == ids  # type: ignore[union-attr]
    assert [o.order_id for o in store.dump()["orders"]] == sorted(ids)


def test_event_log_positions_follow_commit_order(backend: tuple[str, Any]) -> None:
    """An event added first but committed last gets the highest log position."""
    name, engine = backend
    if name == "sqlite":
        pytest.skip("SQLite units run one at a time")
    store = SQLAlchemyStore(engine)
    outcome = rk.Outcome("e", "click")
    click = rk.Click(event_id="e", at=datetime(2026, 1, 5, tzinfo=UTC))

    def record(event_id: str) -> rk.EventRecord:
        return rk.EventRecord("p", event_id, "d", click, outcome)

    with store.unit_of_work() as slow:
        slow.events.add(record("first-added"))
        with store.unit_of_work() as fast:
            fast.events.add(record("first-committed"))
            fast.commit()
        slow.commit()
    with store.unit_of_work() as uow:
        log = [(pos, r.event_id) for pos, r in uow.events.since("p", 0, 10)]
    assert [event_id for _, event_id in log] == ["first-committed", "first-added"]
    assert log[0][0] < log[1][0]


def test_a_lost_update_is_a_concurrency_error(backend: tuple[str, Any]) -> None:
    """Two units that read the same counter and both write it: the second one to write after
    the first committed gets ConcurrencyError (it decided on a stale value)."""
    name, engine = backend
    if name == "sqlite":
        pytest.skip("SQLite units run one at a time")
    store = SQLAlchemyStore(engine)
    key = ("p", "spend", "")
    with store.unit_of_work() as uow:
        uow.counters.add(key, rk.Money("1.00", "USD").amount)
        uow.commit()
    with store.unit_of_work() as late:
        assert late.counters.get([key])[key] == 1
        with store.unit_of_work() as early:
            early.counters.get([key])
            early.counters.add(key, rk.Money("5.00", "USD").amount)
            early.commit()

        def write_late() -> None:
            late.counters.add(key, rk.Money("5.00", "USD").amount)
            late.commit()

        with pytest.raises(rk.ConcurrencyError):
            write_late()
    with store.unit_of_work() as uow:
        assert uow.counters.get([key])[key] == 6


# -- the same engine run on every store -----------------------------------------------------
def _engine_run(store: rk.Store) -> rk.Engine:
    """Double-sided: sign-ups with a code, purchases, settle, a partial refund, a
    chargeback, then dispatch."""
    start = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    program = rk.Program(
        id="sqlalchemy-e2e",
        effective_at=start - timedelta(days=1),
        currency="USD",
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money("20.00", "USD")),
                referee=rk.Credit(rk.Money("10.00", "USD")),
            )
        ],
        hold=relativedelta(days=30),
    )
    codes = iter(["ABCD2345", "BCDE3456", "CDEF4567"])
    engine = rk.Engine(
        program,
        store,
        notifier=rk.RecordingNotifier(),
        clock=rk.ManualClock(start),
        code_factory=lambda: next(codes),
    )
    code = engine.issue_code("alice")
    usd = "USD"
    events: list[rk.Event] = [
        rk.Signup(
            event_id="s-bob", participant_id="bob", at=start, code=code, email="Bob@Example.com"
        ),
        rk.Signup(event_id="s-carol", participant_id="carol", at=start, code=code.lower()),
        rk.Signup(event_id="s-dave", participant_id="dave", at=start, code="NOPE2345"),
        rk.Purchase(
            event_id="p-bob",
            participant_id="bob",
            order_id="o-bob",
            amount=rk.Money("80.00", usd),
            at=start + timedelta(hours=2),
            items=(rk.LineItem(sku="plan", unit_price=rk.Money("80.00", usd)),),
        ),
        rk.Purchase(
            event_id="p-carol",
            participant_id="carol",
            order_id="o-carol",
            amount=rk.Money("40.00", usd),
            at=start + timedelta(days=20),
        ),
        rk.Purchase(
            event_id="p-dave",
            participant_id="dave",
            order_id="o-dave",
            amount=rk.Money("15.00", usd),
            at=start + timedelta(days=21),
        ),
    ]
    for event in events:
        engine.handle(event)
    engine.settle(now=start + timedelta(days=31))
    engine.handle(
        rk.Refund(
            event_id="r-bob",
            refund_id="refund-1",
            order_id="o-bob",
            amount=rk.Money("20.00", usd),
            at=start + timedelta(days=32),
        )
    )
    engine.handle(
        rk.Chargeback(
            event_id="c-carol",
            chargeback_id="cb-1",
            order_id="o-carol",
            at=start + timedelta(days=33),
        )
    )
    engine.handle(events[3])  # a redelivery is a duplicate
    engine.dispatch()
    return engine


def test_an_engine_run_dumps_the_same_as_in_memory_and_sqlite(backend: tuple[str, Any]) -> None:
    """The full run gives a dump equal, table by table, to InMemoryStore's and SQLiteStore's."""
    _, engine = backend
    mine = _engine_run(SQLAlchemyStore(engine)).store.dump()
    memory = _engine_run(rk.InMemoryStore()).store.dump()
    lite = _engine_run(rk.SQLiteStore(":memory:")).store.dump()
    assert list(mine) == list(memory) == list(lite)
    for table in memory:
        assert mine[table] == memory[table], table
        assert mine[table] == lite[table], table
    for table in ("rewards", "entries", "refunds", "chargebacks", "outbox"):
        assert mine[table], f"the run wrote no {table}"
    assert all(s.delivered_at is not None for _, s in mine["outbox_status"])


def test_a_sqlite_file_written_by_sqlalchemystore_opens_in_sqlitestore(tmp_path: Path) -> None:
    """The layout is SQLiteStore's: a file written by one store reads the same in the other."""
    path = tmp_path / "shared.sqlite3"
    store = SQLAlchemyStore(f"sqlite:///{path}")
    _engine_run(store)
    mine = store.dump()
    store.close()
    lite = rk.SQLiteStore(path)
    assert lite.dump() == mine
    lite.close()


def test_with_closes_both_sql_stores_on_leaving_the_block(tmp_path: Path) -> None:
    path = tmp_path / "with.sqlite3"
    with SQLAlchemyStore(f"sqlite:///{path}") as store:
        _engine_run(store)
        mine = store.dump()
        pool = store.engine.pool
    assert pool.checkedin() == 0  # disposed: no pooled connection is left open
    with rk.SQLiteStore(path) as lite:
        assert lite.dump() == mine
    with pytest.raises(sqlite3.ProgrammingError):  # the connection is closed
        lite._conn.execute("SELECT 1")


@needs_postgres
def test_on_postgresql_a_batch_lookup_sends_its_ids_as_one_array(postgres_engine: Any) -> None:
    """``IN (...)`` becomes ``= ANY(:ids)``: one parameter, one statement text whatever the
    number of ids (so it is rendered and prepared once), and the same rows."""
    _empty(postgres_engine)
    store = SQLAlchemyStore(postgres_engine)
    _engine_run(store)
    sent: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: Any) -> None:
        sent.append((statement, params))

    sa.event.listen(postgres_engine, "before_cursor_execute", record)
    try:
        texts = set()
        for ids in (["bob"], ["bob", "carol", "nobody", "dave"]):
            sent.clear()
            with store.unit_of_work() as uow:
                uow.prefetch("sqlalchemy-e2e", participant_ids=ids)
                found = {i for i in ids if uow.participants.get("sqlalchemy-e2e", i)}
            lookups = [(s, p) for s, p in sent if "FROM rk_participants" in s]
            assert len(lookups) == 1
            statement, params = lookups[0]
            assert "participant_id = ANY (" in statement
            assert sorted(params["ids"]) == sorted(ids)
            texts.add(statement)
            assert found == set(ids) - {"nobody"}  # bob, carol and dave signed up
        assert len(texts) == 1
    finally:
        sa.event.remove(postgres_engine, "before_cursor_execute", record)
        _empty(postgres_engine)


@needs_postgres
def test_a_store_made_from_a_url_plans_each_postgresql_query_with_its_parameters(
    postgres_engine: Any,
) -> None:
    """Its own connections run with ``plan_cache_mode = force_custom_plan``; the
    connections of an engine the application passed in are left as they are."""
    store = SQLAlchemyStore(POSTGRES_URL)
    try:
        with store.engine.connect() as conn:
            mode = conn.exec_driver_sql("SHOW plan_cache_mode").scalar()
        assert mode == "force_custom_plan"
    finally:
        store.close()
    passed_in = SQLAlchemyStore(postgres_engine)
    with passed_in.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"


# -- the extra ------------------------------------------------------------------------------
def test_referralkit_sql_without_sqlalchemy_names_the_extra() -> None:
    """Importing referralkit.sql (or the store) without SQLAlchemy raises MissingExtraError
    with the pip command."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["sqlalchemy"] = None
        import referralkit as rk
        for name in ("referralkit.sql", "referralkit._adapters.sqlalchemy"):
            try:
                __import__(name)
            except rk.MissingExtraError as exc:
                assert isinstance(exc, ImportError)
                assert exc.extra == "sqlalchemy", exc.extra
                assert isinstance(exc.__cause__, ImportError)
                print(exc.feature, "|", exc)
            else:
                raise SystemExit(f"{name} imported without sqlalchemy")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("referralkit.sql | ")
    assert "pip install 'referralkit[sqlalchemy]'" in lines[0]
    assert lines[1].startswith("SQLAlchemyStore | ")


def test_a_database_without_the_ledger_columns_gains_them_on_open(
    backend: tuple[str, Any],
) -> None:
    """Tables created before rewards had ``item`` and entries ``actor`` gain them when the
    store opens with create=True; existing entries read as the engine's."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    program = rk.Program(
        id="columns",
        effective_at=start,
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(rk.Money(20, "USD")))],
    )
    rk_engine = rk.Engine(program, store, clock=rk.ManualClock(start))
    code = rk_engine.issue_code("alice")
    rk_engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=start))
    outcome = rk_engine.handle(
        rk.Purchase(
            event_id="p", participant_id="bob", order_id="o", amount=rk.Money(50, "USD"), at=start
        )
    )
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE rk_entries DROP COLUMN actor"))
        conn.execute(sa.text("ALTER TABLE rk_rewards DROP COLUMN item"))
    again = rk.Engine(program, SQLAlchemyStore(engine), clock=rk.ManualClock(start))
    rid = outcome.reward_ids[0]
    assert again.reward(rid).entries[0].actor == "engine"
    assert again.hold(rid, reason="review", actor="ops").entries[-1].actor == "ops"


# -- batching -------------------------------------------------------------------------------
def _batch_run(store: rk.Store) -> tuple[rk.Engine, list[rk.Event]]:
    """An engine on ``store`` with one code issued, and a batch of 60 sign-ups with it, their
    purchases, a redelivered sign-up and a refund of an order bought earlier in the batch."""
    start = datetime(2026, 4, 6, 9, tzinfo=UTC)
    program = rk.Program(
        id="batched",
        effective_at=start - timedelta(days=1),
        currency="USD",
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money("20.00", "USD")),
                referee=rk.Credit(rk.Money("10.00", "USD")),
            )
        ],
    )
    engine = rk.Engine(program, store, clock=rk.ManualClock(start), code_factory=lambda: "ALICE234")
    code = engine.issue_code("alice")
    signups: list[rk.Event] = [
        rk.Signup(event_id=f"s{i}", participant_id=f"p{i}", code=code, at=start) for i in range(60)
    ]
    purchases: list[rk.Event] = [
        rk.Purchase(
            event_id=f"b{i}",
            participant_id=f"p{i}",
            order_id=f"o{i}",
            amount=rk.Money(50, "USD"),
            at=start + timedelta(hours=1),
        )
        for i in range(60)
    ]
    refund = rk.Refund(
        event_id="r0",
        refund_id="r0",
        order_id="o0",
        amount=rk.Money(50, "USD"),
        at=start + timedelta(hours=2),
    )
    return engine, [*signups, *purchases, signups[0], refund]


def test_a_batch_sends_one_insert_per_table_and_reads_with_a_few_queries(
    backend: tuple[str, Any],
) -> None:
    """handle_many buffers a batch's writes (each table's rows in one INSERT at commit) and
    reads what its events look up with a few IN (...) queries, not queries per event; the
    store ends as InMemoryStore does."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    rk_engine, events = _batch_run(store)
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(" ".join(statement.split()))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        results = rk_engine.handle_many(events, batch_size=len(events))
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    assert all(isinstance(r, rk.Outcome) for r in results), results
    inserts = [s.split()[2] for s in sent if s.startswith("INSERT")]
    assert sorted(inserts) == sorted(set(inserts)), inserts
    assert {"rk_events", "rk_referrals", "rk_rewards", "rk_entries", "rk_counters"} <= set(inserts)
    assert len(sent) <= 30, "\n".join(sent)  # was 8 statements per event
    memory_engine, _ = _batch_run(rk.InMemoryStore())
    memory_engine.handle_many(events, batch_size=len(events))
    mine, memory = store.dump(), memory_engine.store.dump()
    for table in memory:
        assert mine[table] == memory[table], table
    assert mine["rewards"]
    assert mine["refunds"]


def test_a_counter_added_after_its_subject_was_prefetched_reads_right_after_a_flush(
    backend: tuple[str, Any],
) -> None:
    """A counter without a row, loaded with its subject and then added to, reads its value
    after a query flushed the unit's buffers (the delta is no longer pending)."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    key = ("p", "n", "alice")
    with store.unit_of_work() as uow:
        uow.prefetch("p", counter_subjects=["alice"])
        uow.counters.add(key, rk.Money("2.50", "USD").amount)
        uow.outbox.pending(1)  # flushes
        assert uow.counters.get([key]) == {key: rk.Money("2.50", "USD").amount}
        uow.counters.add(key, rk.Money("1.00", "USD").amount)
        assert uow.counters.get([key]) == {key: rk.Money("3.50", "USD").amount}
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.counters.get([key]) == {key: rk.Money("3.50", "USD").amount}


def test_a_database_without_the_counter_subject_index_gains_it_on_open(
    backend: tuple[str, Any],
) -> None:
    """Tables created before ``rk_counters_subject`` (the batch prefetch's index) gain it
    when the store opens with create=True."""
    _, engine = backend
    SQLAlchemyStore(engine)
    (index,) = [i for i in sql.counters.indexes if i.name == "rk_counters_subject"]
    with engine.begin() as conn:
        conn.execute(sa.schema.DropIndex(index))
        names = {i["name"] for i in sa.inspect(conn).get_indexes("rk_counters")}
    assert "rk_counters_subject" not in names
    SQLAlchemyStore(engine)
    with engine.connect() as conn:
        names = {i["name"] for i in sa.inspect(conn).get_indexes("rk_counters")}
    assert "rk_counters_subject" in names


def test_prefetched_rows_and_the_units_own_writes_read_together_after_a_flush(
    backend: tuple[str, Any],
) -> None:
    """Touches of a prefetched visitor and rewards of a prefetched refunded order, with the
    unit's own new ones, read the same before and after a query flushed the buffers."""
    from referralkit.testing import contract

    _, engine = backend
    store = SQLAlchemyStore(engine)
    old_touch = contract._touch("tch-old", minutes=1)
    old_reward = contract._reward("rwd-old")
    with store.unit_of_work() as uow:
        uow.touches.add(old_touch)
        uow.ledger.add_reward(old_reward, contract._granted(old_reward))
        uow.commit()
    new_touch = contract._touch("tch-new", minutes=9)
    new_reward = contract._reward("rwd-new", created_minutes=5)
    with store.unit_of_work() as uow:
        uow.prefetch(contract.P, visitor_ids=["v-1"], refunded_orders=["order-1"])
        uow.touches.add(new_touch)
        uow.ledger.add_reward(new_reward, contract._granted(new_reward))
        for flushed in (False, True):
            if flushed:
                uow.outbox.pending(1)  # flushes
            assert uow.touches.of_visitor(contract.P, "v-1") == [old_touch, new_touch], flushed
            rewards = uow.ledger.rewards(contract.P, order_id="order-1")
            assert rewards == [old_reward, new_reward], flushed
            entries = uow.ledger.entries(["rwd-old", "rwd-new"])
            assert entries == {
                "rwd-old": [contract._granted(old_reward)],
                "rwd-new": [contract._granted(new_reward)],
            }, flushed


def test_updates_of_rows_still_in_the_buffer_read_back_in_the_unit_and_after(
    backend: tuple[str, Any],
) -> None:
    """An order and a referral added and then updated in one unit (their inserts still
    buffered) read as updated in the unit and once committed."""
    import attrs

    from referralkit.testing import contract

    _, engine = backend
    store = SQLAlchemyStore(engine)
    order = attrs.evolve(contract._order(), referral_id=None, converted=False)
    referral = contract._referral()
    moved = attrs.evolve(referral, referrer_id="carol", code="CAROL123", status="held")
    with store.unit_of_work() as uow:
        uow.orders.add(contract._order())
        uow.referrals.add(referral)
        uow.orders.update(order)
        uow.referrals.update(moved)
        assert uow.orders.get(contract.P, "order-1") == order
        assert uow.referrals.get(referral.referral_id) == moved
        assert uow.referrals.by_referrer(contract.P, "carol") == [moved]
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.orders.get(contract.P, "order-1") == order
        assert uow.referrals.by_referee(contract.P, referral.referee_id) == moved


# -- schema 2 -> 3: rk_events.event_key ------------------------------------------------------
_KEY_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _keyed_log() -> list[rk.EventRecord]:
    """Events of every type in two programs, with keys of different kinds that collide."""
    usd = rk.Money("10.00", "USD")
    events: list[rk.Event] = [
        rk.Click(event_id="c-1", at=_KEY_AT, visitor_id="v-bob"),
        rk.Click(event_id="c-2", at=_KEY_AT, visitor_id="bob"),
        rk.Click(event_id="c-3", at=_KEY_AT, code="ABCD2345"),
        rk.Signup(event_id="s-bob", participant_id="bob", at=_KEY_AT, visitor_id="v-bob"),
        rk.Purchase(event_id="p-bob", participant_id="bob", order_id="o-1", amount=usd, at=_KEY_AT),
        rk.Purchase(
            event_id="p-carol", participant_id="carol", order_id="bob", amount=usd, at=_KEY_AT
        ),
        rk.Refund(event_id="r-1", refund_id="rf-1", order_id="o-1", amount=usd, at=_KEY_AT),
        rk.Chargeback(event_id="cb-1", chargeback_id="cb-1", order_id="bob", at=_KEY_AT),
    ]
    return [
        rk.EventRecord(program, e.event_id, f"d-{e.event_id}", e, rk.Outcome(e.event_id, e.kind))
        for program in ("keys", "other")
        for e in events
    ]


_KEY_SETS = [["bob"], ["v-bob", "erased"], ["o-1", "bob"], ["carol"], ["nobody"]]


def _filtered_log(store: SQLAlchemyStore, program: str, keys: list[str]) -> list[Any]:
    with store.unit_of_work() as uow:
        return [
            (n, r) for n, r in uow.events.since(program, 0, 100) if rk.event_key(r.event) in keys
        ]


def _back_to_version_2(engine: Any) -> None:
    """Make the tables what schema 2 was: no event_key column or index, version 2."""
    (index,) = [i for i in sql.events.indexes if i.name == "rk_events_key"]
    with engine.begin() as conn:
        index.drop(conn)
        conn.execute(sa.text("ALTER TABLE rk_events DROP COLUMN event_key"))
        conn.execute(sql.schema.update().values(version=2))


def _event_columns_and_indexes(engine: Any) -> tuple[int, list[str], list[str]]:
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        columns = [c["name"] for c in inspector.get_columns("rk_events")]
        indexes = [i["name"] for i in inspector.get_indexes("rk_events")]
        version = conn.execute(sa.select(sql.schema.c.version)).scalar()
    return int(version), columns, indexes


def test_a_version_2_database_is_migrated_in_place(backend: tuple[str, Any]) -> None:
    """A store opening a version-2 database adds rk_events.event_key, fills it from the
    logged events (a redacted click by its new visitor id), creates rk_events_key and
    records version 3; about() then answers as the filtered whole log does."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    with store.unit_of_work() as uow:
        for record in _keyed_log():
            uow.events.add(record)
        uow.commit()
    with store.unit_of_work() as uow:
        uow.events.redact("keys", "c-1", rk.Click(event_id="c-1", at=_KEY_AT, visitor_id="erased"))
        uow.commit()
    before = {
        (p, tuple(k)): _filtered_log(store, p, k) for p in ("keys", "other") for k in _KEY_SETS
    }
    _back_to_version_2(engine)
    assert "event_key" not in _event_columns_and_indexes(engine)[1]
    migrated = SQLAlchemyStore(engine)
    version, columns, indexes = _event_columns_and_indexes(engine)
    assert version == 3
    assert columns[-1] == "event_key"
    assert "rk_events_key" in indexes
    for (program, keys), want in before.items():
        with migrated.unit_of_work() as uow:
            assert uow.events.about(program, list(keys)) == want, (program, keys)
    assert [r.event_id for _, r in before[("keys", ("v-bob", "erased"))]] == ["c-1"]
    assert [r.event_id for _, r in before[("keys", ("bob",))]] == ["c-2", "s-bob", "p-bob", "cb-1"]
    SQLAlchemyStore(engine)  # a version-3 database opens as it is
    migrated.close()
    store.close()


def test_create_false_migrates_once_the_app_added_the_column(backend: tuple[str, Any]) -> None:
    """With create=False (an app managing the schema) a version-2 database without the
    column is refused, naming it, and left at version 2; once the app added the column and
    index from referralkit.sql.metadata, the store fills the column and records version 3."""
    _, engine = backend
    store = SQLAlchemyStore(engine)
    with store.unit_of_work() as uow:
        for record in _keyed_log():
            uow.events.add(record)
        uow.commit()
    want = _filtered_log(store, "keys", ["bob", "o-1"])
    _back_to_version_2(engine)
    with pytest.raises(rk.SchemaVersionError, match=r"rk_events\.event_key"):
        SQLAlchemyStore(engine, create=False)
    assert _event_columns_and_indexes(engine)[0] == 2
    (index,) = [i for i in sql.events.indexes if i.name == "rk_events_key"]
    with engine.begin() as conn:  # what the app's Alembic migration does
        ddl = sa.schema.CreateColumn(sql.events.c.event_key).compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE rk_events ADD COLUMN {ddl}"))
        index.create(conn)
    migrated = SQLAlchemyStore(engine, create=False)
    assert _event_columns_and_indexes(engine)[0] == 3
    with migrated.unit_of_work() as uow:
        assert uow.events.about("keys", ["bob", "o-1"]) == want
    assert len(want) == 5
    migrated.close()
    store.close()
