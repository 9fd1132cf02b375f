"""Store throughput: the engine benchmark's workload on SQL stores, against a raw floor.

Runs the same double-sided workload (30 % clicks, 25 % sign-ups, 35 % purchases, 10 %
refunds) on:

- SQLiteStore, one transaction per event (``Engine.handle``);
- SQLiteStore, batched (``Engine.handle_many``, ``--batch`` events per transaction);
- SQLAlchemyStore on PostgreSQL, batched, when ``--postgres URL`` or
  ``REFERRALKIT_TEST_POSTGRES_URL`` is set and the ``postgres`` extra is installed;
- SQLAlchemyStore on MariaDB, batched, when ``--mariadb URL`` or
  ``REFERRALKIT_TEST_MARIADB_URL`` is set and the ``mariadb`` extra is installed (the
  SQLAlchemy rows also print the SQL statements sent per event: each is a round trip);
- the floor: the rows the batched SQLite run wrote, inserted into an empty database with the
  same schema by raw ``sqlite3`` ``executemany`` in one transaction; and again in as many
  transactions as the batched run committed, which shows what committing in batches costs
  by itself (each commit writes the index pages it changed to the WAL, and syncs it);
- the SQL replay: every statement the batched SQLite run sent (its reads, writes and
  commits, with the same parameters), replayed by raw ``sqlite3`` on a copy of the database
  as it was before the run. No Python of referralkit's runs in it, so it is the rate the
  batched run could reach if the engine took no time at all.

Each SQLite store gets a new file in a temporary directory; referralkit's tables in a server
database are dropped and created again first. Run it with::

    .venv/bin/python benchmarks/store_bench.py [--events N] [--batch N] [--synchronous FULL]
        [--postgres URL] [--mariadb URL]
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import contextlib

import engine_bench

import referralkit as rk
from referralkit._adapters.sqlite import _SCHEMA

TABLES = (
    "rk_programs",
    "rk_participants",
    "rk_codes",
    "rk_personal_data",
    "rk_referrals",
    "rk_orders",
    "rk_refunds",
    "rk_chargebacks",
    "rk_rewards",
    "rk_entries",
    "rk_counters",
    "rk_outbox",
    "rk_touches",
    "rk_events",
)


def run(
    label: str, make_store: Callable[[], rk.Store], events_n: int, batch: int | None
) -> tuple[str, float, rk.Store]:
    """Time the workload on a fresh store; returns (label, events/s, store)."""
    label, rate, store, _ = run_counted(label, make_store, events_n, batch)
    return label, rate, store


def run_counted(
    label: str, make_store: Callable[[], rk.Store], events_n: int, batch: int | None
) -> tuple[str, float, rk.Store, float | None]:
    """``run``, also returning the SQL statements per event a ``SQLAlchemyStore`` sent
    (None for other stores); an ``executemany`` counts as one statement."""
    store = make_store()
    engine = rk.Engine(engine_bench.program(), store, clock=rk.ManualClock(engine_bench.START))
    codes = [engine.issue_code(f"referrer{i}") for i in range(500)]
    events = engine_bench.make_events(events_n, codes, random.Random(7))
    statements = _count_statements(store)
    gc.collect()
    gc.freeze()
    statements[0] = 0
    t0 = time.perf_counter()
    if batch is None:
        for event in events:
            with contextlib.suppress(rk.ReferralKitError):
                engine.handle(event)
    else:
        engine.handle_many(events, batch_size=batch)
    elapsed = time.perf_counter() - t0
    sent = statements[0]
    gc.unfreeze()
    per_event = None if sent < 0 else sent / len(events)
    return label, len(events) / elapsed, store, per_event


class _Recorder:
    """Stands in for a ``sqlite3.Connection``, recording each ``execute`` and
    ``executemany`` (with its rows) that it passes on."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.calls: list[tuple[bool, str, Sequence[Any]]] = []  # (many, sql, parameters)
        self.recording = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        if self.recording:
            self.calls.append((False, sql, tuple(params)))
        return self._conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        rows = [tuple(row) for row in rows]
        if self.recording:
            self.calls.append((True, sql, rows))
        return self._conn.executemany(sql, rows)


def run_recorded(
    label: str, path: Path, synchronous: str, events_n: int, batch: int, snapshot: Path
) -> tuple[str, float, list[tuple[bool, str, Sequence[Any]]]]:
    """``run`` on a SQLiteStore at ``path``, also copying the database to ``snapshot`` just
    before the timed part and returning the SQL calls the timed part sent."""
    store = rk.SQLiteStore(path, synchronous=synchronous)
    recorder = _Recorder(store._conn)
    store._conn = recorder  # type: ignore[assignment]
    engine = rk.Engine(engine_bench.program(), store, clock=rk.ManualClock(engine_bench.START))
    codes = [engine.issue_code(f"referrer{i}") for i in range(500)]
    events = engine_bench.make_events(events_n, codes, random.Random(7))
    copy = sqlite3.connect(snapshot)
    recorder._conn.backup(copy)
    copy.close()
    gc.collect()
    gc.freeze()
    recorder.recording = True
    t0 = time.perf_counter()
    engine.handle_many(events, batch_size=batch)
    elapsed = time.perf_counter() - t0
    recorder.recording = False
    gc.unfreeze()
    store._conn = recorder._conn
    store.close()
    return label, len(events) / elapsed, recorder.calls


def replay(
    snapshot: Path,
    calls: Sequence[tuple[bool, str, Sequence[Any]]],
    synchronous: str,
    events_n: int,
) -> float:
    """Events/s equivalent of sending ``calls`` by raw sqlite3 to the database at
    ``snapshot`` (a query's rows are all fetched, as the store fetches them)."""
    conn = sqlite3.connect(snapshot, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    t0 = time.perf_counter()
    for many, sql, params in calls:
        if many:
            conn.executemany(sql, params)
        else:
            conn.execute(sql, params).fetchall()
    elapsed = time.perf_counter() - t0
    conn.close()
    return events_n / elapsed


def same_rows(a: Path, b: Path) -> bool:
    """Whether the databases at ``a`` and ``b`` hold the same rows in referralkit's tables."""
    rows = []
    for path in (a, b):
        conn = sqlite3.connect(path)
        rows.append({t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES})
        conn.close()
    return rows[0] == rows[1]


def _count_statements(store: rk.Store) -> list[int]:
    """A one-item list counting the statements ``store`` sends (-1: not a SQLAlchemyStore)."""
    counter = [-1]
    sa_engine = getattr(store, "engine", None)
    if sa_engine is None:
        return counter
    from sqlalchemy import event

    def count(*_args: object) -> None:
        counter[0] += 1

    event.listen(sa_engine, "before_cursor_execute", count)
    return counter


def floor(
    source: Path, target: Path, synchronous: str, events_n: int, transactions: int = 1
) -> float:
    """Events/s equivalent of inserting the rows ``source`` holds with raw executemany, in
    ``transactions`` transactions (each takes its share of every table's rows, in order)."""
    src = sqlite3.connect(source)
    rows = {t: src.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
    src.close()
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    t0 = time.perf_counter()
    for part in range(transactions):
        conn.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            n = len(rows[table])
            share = rows[table][part * n // transactions : (part + 1) * n // transactions]
            if share:
                marks = ", ".join("?" * len(share[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", share)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return events_n / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500, help="events per transaction")
    parser.add_argument("--synchronous", default="FULL", choices=["FULL", "NORMAL", "OFF"])
    parser.add_argument("--postgres", default=os.environ.get("REFERRALKIT_TEST_POSTGRES_URL"))
    parser.add_argument("--mariadb", default=os.environ.get("REFERRALKIT_TEST_MARIADB_URL"))
    parser.add_argument(
        "--only-servers",
        action="store_true",
        help="skip the SQLite runs and the floor (compare server stores quickly)",
    )
    args = parser.parse_args(argv)

    results: list[tuple[str, float, float | None]] = []
    raw: float | None = None
    per_event_n = max(args.events // 4, 10)
    with tempfile.TemporaryDirectory(prefix="rk-store-bench-") as tmp:
        directory = Path(tmp)

        def sqlite(name: str) -> Callable[[], rk.Store]:
            return lambda: rk.SQLiteStore(directory / name, synchronous=args.synchronous)

        if not args.only_servers:
            label, rate, _ = run(
                "SQLite, one transaction per event", sqlite("one.db"), per_event_n, None
            )
            results.append((label, rate, None))
            label, rate, calls = run_recorded(
                f"SQLite, batched ({args.batch} per transaction)",
                directory / "batched.db",
                args.synchronous,
                args.events,
                args.batch,
                directory / "before.db",
            )
            results.append((label, rate, None))
            batched_rate = rate
        for name, url in (("PostgreSQL", args.postgres), ("MariaDB", args.mariadb)):
            if not url:
                continue
            try:
                label, rate, server, per_event = run_counted(
                    f"{name}, batched ({args.batch} per transaction)",
                    functools.partial(_fresh_server, url),
                    args.events,
                    args.batch,
                )
                server.close()  # type: ignore[attr-defined]
                results.append((label, rate, per_event))
            except (ImportError, rk.StoreError) as exc:
                print(f"store_bench: {name} skipped: {exc}", file=sys.stderr)
        if not args.only_servers:
            raw = floor(
                directory / "batched.db", directory / "floor.db", args.synchronous, args.events
            )
            results.append(("raw sqlite3 executemany floor (same rows)", raw, None))
            batches = -(-args.events // args.batch)
            split = floor(
                directory / "batched.db",
                directory / "floor-split.db",
                args.synchronous,
                args.events,
                batches,
            )
            results.append((f"the same rows in {batches} transactions", split, None))
            sent = replay(directory / "before.db", calls, args.synchronous, args.events)
            if not same_rows(directory / "before.db", directory / "batched.db"):
                raise SystemExit("store_bench: the SQL replay did not give the batched run's rows")
            results.append(("its SQL replayed raw (no engine)", sent, None))

    print(
        f"store_bench: {args.events} events ({per_event_n} for one transaction per event), "
        f"synchronous={args.synchronous}"
    )
    width = max((len(label) for label, _, _ in results), default=0)
    for label, rate, per_event in results:
        line = f"  {label:<{width}}  {rate:>10,.0f} events/s"
        if raw is not None:
            line += f"  floor is {raw / rate:5.1f}x faster"
        if per_event is not None:
            line += f"  {per_event:5.2f} statements/event"
        print(line)
    if not args.only_servers:
        print(
            f"  the batched run spent {100 * (1 - batched_rate / sent):.0f} % of its time "
            "outside the SQL it sent (in referralkit's Python)"
        )
    return 0


def _fresh_server(url: str) -> rk.Store:
    """A SQLAlchemyStore on ``url`` with referralkit's tables dropped first."""
    import sqlalchemy as sa

    from referralkit.sql import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    return rk.SQLAlchemyStore(url)  # type: ignore[attr-defined,no-any-return]


if __name__ == "__main__":
    raise SystemExit(main())
