"""Several worker processes on one database end with the ledger of a replay in commit order.

CI runs a shortened stream; the full size (10,000 events, each delivered 1 to 3 times
across 4 processes) runs with::

    REFERRALKIT_CONCURRENCY_EVENTS=10000 \\
        .venv/bin/python -m pytest tests/integration -k "concurrent or killed"
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import referralkit as rk

sys.path.insert(0, str(Path(__file__).parent))
import workload

EVENTS = int(os.environ.get("REFERRALKIT_CONCURRENCY_EVENTS", "1200"))
WORKERS = 4
FORK = multiprocessing.get_context("fork")


class SQLiteFile:
    """Opens the same SQLite file in every process."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self) -> rk.Store:
        return rk.SQLiteStore(self.path, synchronous="NORMAL")


class ServerURL:
    """Opens a SQLAlchemyStore on one server database in every process."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self) -> rk.Store:
        return rk.SQLAlchemyStore(self.url)


def _server(variable: str) -> ServerURL:
    url = os.environ.get(variable)
    if not url:
        pytest.skip(f"set {variable} to run the concurrency test on that server")
    pytest.importorskip("sqlalchemy", reason="needs the 'sqlalchemy' extra")
    import sqlalchemy as sa

    from referralkit.sql import metadata

    engine = sa.create_engine(url)
    metadata.drop_all(engine)  # start from empty tables
    engine.dispose()
    return ServerURL(url)


@pytest.fixture(
    params=["sqlite", "postgres", "mariadb"],
)
def shared_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], rk.Store]:
    """A factory each worker process calls to open the one shared database."""
    if request.param == "sqlite":
        return SQLiteFile(tmp_path / "shared.sqlite3")
    return _server(f"REFERRALKIT_TEST_{request.param.upper()}_URL")


def _close(store: rk.Store) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _worker(
    make_store: Callable[[], rk.Store], queue: list[rk.Event], out: object, capped: bool
) -> None:
    out.put(workload.work(make_store, queue, capped=capped))  # type: ignore[attr-defined]


def run_concurrently(
    make_store: Callable[[], rk.Store], seed: int, capped: bool = False
) -> rk.Engine:
    """Issue codes, then let WORKERS processes handle overlapping deliveries."""
    setup = workload.engine(make_store(), capped)
    codes = workload.issue_codes(setup)
    _close(setup.store)  # no connection is shared with the forked workers
    stream = workload.events(EVENTS, seed, codes)
    queues = workload.deliveries(stream, WORKERS, seed)
    results = FORK.Queue()
    procs = [FORK.Process(target=_worker, args=(make_store, q, results, capped)) for q in queues]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0, f"worker exited with {p.exitcode}"
    reports = [results.get(timeout=5) for _ in procs]
    left = [n for n, _ in reports]
    assert left == [0] * WORKERS, f"events still waiting after retries: {left}"
    refused = {event_id for _, ids in reports for event_id in ids}
    delivered = {e.event_id for e in stream}
    main = workload.engine(make_store(), capped)
    log = [e.event_id for _, e in main.event_log(limit=10 * EVENTS)]
    assert len(log) == len(set(log)), "no event is accepted twice"
    assert not set(log) & refused, "an event refused by one worker was accepted by another"
    assert set(log) | refused == delivered, "no event is lost"
    return main


def assert_same_ledger(concurrent: rk.Engine, replayed: rk.Engine) -> None:
    a, b = concurrent.store.dump(), replayed.store.dump()
    assert not workload.differences(a, b), workload.differences(a, b)
    people = {r.participant_id for r in a["rewards"]}
    for who in sorted(people):
        assert concurrent.balance(who) == replayed.balance(who), who
    ids = [r.reward_id for r in a["rewards"]]
    assert len(ids) == len(set(ids)), "no reward is granted twice"


def test_concurrent_workers_end_with_the_ledger_of_a_replay(
    shared_store: Callable[[], rk.Store],
) -> None:
    """4 processes, every event delivered 1-3 times: the ledger equals a replay of the
    event log in commit order, and settling both gives the same balances."""
    concurrent = run_concurrently(shared_store, seed=11)
    replayed = workload.replay(concurrent)
    assert_same_ledger(concurrent, replayed)
    later = workload.START + timedelta(days=60)
    assert concurrent.settle(later) == replayed.settle(later) > 0
    assert_same_ledger(concurrent, replayed)
    _close(concurrent.store)


def test_concurrent_workers_never_exceed_a_cap_or_the_budget(
    shared_store: Callable[[], rk.Store],
) -> None:
    """4 processes on a program with caps per referrer (all time and per day), per referee
    and a budget the stream exhausts: no referrer or referee holds more than its cap, the
    program never spends more than its budget, the spend counters equal the ledger, one
    budget-exhausted notification is written, and the ledger equals a replay."""
    concurrent = run_concurrently(shared_store, seed=23, capped=True)
    dump = concurrent.store.dump()
    views = [
        v
        for who in sorted({r.participant_id for r in dump["rewards"]})
        for v in concurrent.rewards_for(who)
    ]
    by_referrer: dict[str, Decimal] = {}
    by_referee: dict[str, Decimal] = {}
    for view in views:
        if not view.reward.unit.is_money:
            continue
        side = by_referrer if view.reward.role is rk.Role.REFERRER else by_referee
        who = view.reward.participant_id
        side[who] = side.get(who, Decimal(0)) + view.outstanding
    total = sum(by_referrer.values(), Decimal(0)) + sum(by_referee.values(), Decimal(0))
    day_cap, referee_cap = workload.CAPS.per_referrer_day, workload.CAPS.per_referee
    assert day_cap is not None
    assert referee_cap is not None
    assert by_referrer, "referrers earned"
    # The stream spans minutes of one day: the day cap bounds each referrer's total.
    assert max(by_referrer.values()) <= day_cap.amount
    assert max(by_referee.values()) <= referee_cap.amount
    assert total <= workload.BUDGET.amount
    counters = dict(dump["counters"])
    assert counters[("workload", "program.spend", "")] == total
    for who, amount in by_referrer.items():
        assert counters.get(("workload", "cap.referrer", who), Decimal(0)) == amount, who
    reached: dict[tuple[str, str], int] = {}
    for note in dump["outbox"]:
        if note.kind == "milestone_reached":
            key = (note.recipient_id, note.data["milestone"])
            reached[key] = reached.get(key, 0) + 1
    assert reached, "milestones were reached"
    assert set(reached.values()) == {1}, "each milestone is granted once per referrer"
    badges = [r for r in dump["rewards"] if r.policy == "milestones"]
    assert len(badges) == len(reached)
    exhausted = [n for n in dump["outbox"] if n.kind == "budget_exhausted"]
    assert len(exhausted) == 1, "the budget-exhausted notification is written once"
    assert exhausted[0].data["budget"] == str(workload.BUDGET)
    clamped = [
        d.code
        for _, event in concurrent.event_log(limit=10 * EVENTS)
        for d in (concurrent.outcome_of(event.event_id) or rk.Outcome("", "")).decisions
    ]
    assert "cap.clamped" in clamped or "cap.reached" in clamped, "the caps were reached"
    assert "budget.exhausted" in clamped, "the budget was reached"
    replayed = workload.replay(concurrent, capped=True)
    assert_same_ledger(concurrent, replayed)
    _close(concurrent.store)


def _crash_victim(make_store: Callable[[], rk.Store], progress: object) -> None:
    target = workload.engine(make_store())
    codes = workload.issue_codes(target)
    stream = workload.events(EVENTS, 5, codes)
    for start in range(0, len(stream), 25):
        target.handle_many(stream[start : start + 25], batch_size=25)
        progress.put(start)  # type: ignore[attr-defined]


def test_a_worker_killed_mid_stream_leaves_a_store_that_resending_repairs(
    shared_store: Callable[[], rk.Store],
) -> None:
    """SIGKILL in the middle of handle_many; re-sending the whole stream gives the ledger
    of a clean run. On a server, the killed worker's open transaction is rolled back and
    its locks (PostgreSQL's advisory lock, MariaDB's named lock) are freed when its
    connection drops, so the survivor is not blocked."""
    progress = FORK.Queue()
    victim = FORK.Process(target=_crash_victim, args=(shared_store, progress))
    victim.start()
    deadline = time.monotonic() + 60
    seen = 0
    while seen < EVENTS // 4 and time.monotonic() < deadline:
        seen = progress.get(timeout=60)
    assert victim.pid is not None
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    assert victim.exitcode == -signal.SIGKILL

    survivor = workload.engine(shared_store())
    codes = workload.issue_codes(survivor)
    stream = workload.events(EVENTS, 5, codes)
    partial = len(survivor.event_log(limit=10 * EVENTS))
    assert 0 < partial < len(stream), "the kill landed mid-stream"
    results = survivor.handle_many(stream, batch_size=25)
    assert not [r for r in results if isinstance(r, rk.ReferralKitError)]

    clean = workload.engine(rk.InMemoryStore())
    workload.issue_codes(clean)
    clean.handle_many(stream, batch_size=25)
    assert_same_ledger(survivor, clean)
    _close(survivor.store)
