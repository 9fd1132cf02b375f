"""Store throughput: the engine benchmark's workload on SQL stores, against a raw floor.

Runs the same double-sided workload (30 % clicks, 25 % sign-ups, 35 % purchases, 10 %
refunds) on:

- SQLiteStore, one transaction per event (``Engine.handle``);
- SQLiteStore, batched (``Engine.handle_many``, ``--batch`` events per transaction);
- SQLAlchemyStore on PostgreSQL, batched, when ``--postgres URL`` or
  ``REFERRALKIT_TEST_POSTGRES_URL`` is set and the ``postgres`` extra is installed;
- the floor: the rows the batched SQLite run wrote, inserted into an empty database with the
  same schema by raw ``sqlite3`` ``executemany`` in one transaction.

Each store gets a new file in a temporary directory. Run it with::

    .venv/bin/python benchmarks/store_bench.py [--events N] [--batch N] [--synchronous FULL]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

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
    store = make_store()
    engine = rk.Engine(engine_bench.program(), store, clock=rk.ManualClock(engine_bench.START))
    codes = [engine.issue_code(f"referrer{i}") for i in range(500)]
    events = engine_bench.make_events(events_n, codes, random.Random(7))
    gc.collect()
    gc.freeze()
    t0 = time.perf_counter()
    if batch is None:
        for event in events:
            with contextlib.suppress(rk.ReferralKitError):
                engine.handle(event)
    else:
        engine.handle_many(events, batch_size=batch)
    elapsed = time.perf_counter() - t0
    gc.unfreeze()
    return label, len(events) / elapsed, store


def floor(source: Path, target: Path, synchronous: str, events_n: int) -> float:
    """Events/s equivalent of inserting the rows ``source`` holds with raw executemany."""
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
    conn.execute("BEGIN IMMEDIATE")
    for table in TABLES:
        if rows[table]:
            marks = ", ".join("?" * len(rows[table][0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
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
    args = parser.parse_args(argv)

    results: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="rk-store-bench-") as tmp:
        directory = Path(tmp)

        def sqlite(name: str) -> Callable[[], rk.Store]:
            return lambda: rk.SQLiteStore(directory / name, synchronous=args.synchronous)

        per_event_n = max(args.events // 4, 10)
        label, rate, _ = run(
            "SQLite, one transaction per event", sqlite("one.db"), per_event_n, None
        )
        results.append((label, rate))
        label, rate, _ = run(
            f"SQLite, batched ({args.batch} per transaction)",
            sqlite("batched.db"),
            args.events,
            args.batch,
        )
        results.append((label, rate))
        if args.postgres:
            try:
                label, rate, _pg = run(
                    f"PostgreSQL, batched ({args.batch} per transaction)",
                    lambda: _fresh_postgres(args.postgres),
                    args.events,
                    args.batch,
                )
                results.append((label, rate))
            except (ImportError, rk.StoreError) as exc:
                print(f"store_bench: PostgreSQL skipped: {exc}", file=sys.stderr)
        raw = floor(directory / "batched.db", directory / "floor.db", args.synchronous, args.events)
        results.append(("raw sqlite3 executemany floor (same rows)", raw))

    print(
        f"store_bench: {args.events} events ({per_event_n} for one transaction per event), "
        f"synchronous={args.synchronous}"
    )
    width = max(len(label) for label, _ in results)
    for label, rate in results:
        print(f"  {label:<{width}}  {rate:>10,.0f} events/s  floor is {raw / rate:5.1f}x faster")
    return 0


def _fresh_postgres(url: str) -> rk.Store:
    """A SQLAlchemyStore on ``url`` with referralkit's tables emptied first."""
    import sqlalchemy as sa

    from referralkit.sql import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    return rk.SQLAlchemyStore(url)  # type: ignore[attr-defined,no-any-return]


if __name__ == "__main__":
    raise SystemExit(main())
