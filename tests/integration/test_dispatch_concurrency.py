"""Several dispatcher processes on one database: every notification is delivered at least
once, none is lost, a late failure never undoes a delivery.

Runs on a SQLite file, and on PostgreSQL and MariaDB when ``REFERRALKIT_TEST_POSTGRES_URL``
and ``REFERRALKIT_TEST_MARIADB_URL`` are set.
"""

from __future__ import annotations

import multiprocessing
import os
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import referralkit as rk

NOTIFICATIONS = 300
WORKERS = 3
ROUNDS = 40
T0 = datetime(2026, 6, 1, tzinfo=UTC)
FORK = multiprocessing.get_context("fork")
PROGRAM = rk.Program(
    id="dispatch",
    effective_at=T0,
    currency="USD",
    policies=[rk.SingleSided(referrer=rk.Cash(rk.Money(1, "USD")))],
)
SCHEDULE = rk.RetrySchedule(max_attempts=60, first_delay=timedelta(seconds=1), factor=1)


class SQLiteFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> rk.Store:
        return rk.SQLiteStore(self.path, synchronous="NORMAL")


class ServerURL:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self) -> rk.Store:
        return rk.SQLAlchemyStore(self.url)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], rk.Store]:
    """A factory each process calls to open the one shared database (emptied first)."""
    if request.param == "sqlite":
        return SQLiteFile(tmp_path / "outbox.sqlite3")
    variable = f"REFERRALKIT_TEST_{request.param.upper()}_URL"
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"set {variable} to run the dispatch concurrency test on that server")
    sa = pytest.importorskip("sqlalchemy", reason="needs the 'sqlalchemy' extra")
    from referralkit.sql import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
    return ServerURL(url)


def _close(store: rk.Store) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


class Flaky:
    """Fails a third of the sends; records every send that reached the receiver."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.received: list[str] = []

    def send(self, note: rk.Notification) -> None:
        if self.rng.randrange(3) == 0:
            if self.rng.randrange(2) == 0:
                self.received.append(note.notification_id)  # the answer was lost
            raise ConnectionError("flaky endpoint")
        self.received.append(note.notification_id)


def _dispatcher(make_store: Callable[[], rk.Store], seed: int, out: object) -> None:
    notifier = Flaky(seed)
    try:
        store = make_store()
        engine = rk.Engine(PROGRAM, store, notifier=notifier, retry=SCHEDULE)
        for n in range(ROUNDS):
            engine.dispatch(limit=25, now=T0 + timedelta(seconds=2 * n))
        _close(store)
    except Exception as exc:  # reported to the parent, which fails the test
        out.put(repr(exc))  # type: ignore[attr-defined]
        return
    out.put(notifier.received)  # type: ignore[attr-defined]


def test_concurrent_dispatchers_deliver_every_notification_at_least_once(
    shared_store: Callable[[], rk.Store],
) -> None:
    """3 processes dispatch one outbox through flaky endpoints; afterwards every
    notification is delivered, none is dead, and each reached the receiver at least once."""
    store = shared_store()
    setup = rk.Engine(PROGRAM, store)
    ids = [f"ntf-{i:04}" for i in range(NOTIFICATIONS)]
    with store.unit_of_work() as uow:
        uow.outbox.add([rk.Notification(nid, "dispatch", "x", "alice", T0, {}) for nid in ids])
        uow.commit()
    del setup
    _close(store)

    results = FORK.Queue()
    procs = [
        FORK.Process(target=_dispatcher, args=(shared_store, seed, results))
        for seed in range(WORKERS)
    ]
    for p in procs:
        p.start()
    received = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0, f"dispatcher exited with {p.exitcode}"
    errors = [r for r in received if isinstance(r, str)]
    assert not errors, f"a dispatcher raised: {errors}"

    store = shared_store()
    statuses = dict(store.dump()["outbox_status"])
    undelivered = sorted(nid for nid, s in statuses.items() if s.delivered_at is None)
    assert not undelivered, f"{len(undelivered)} notifications never delivered"
    assert all(s.dead_at is None and s.next_attempt_at is None for s in statuses.values())
    got = [nid for sent in received for nid in sent]
    assert set(got) == set(ids), "a notification never reached the receiver"
    assert len(got) >= len(ids)  # repeats allowed (at least once); the receiver dedups
    _close(store)
