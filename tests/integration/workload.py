"""A deterministic referral workload for the concurrency and crash-safety tests.

Everything here is importable by worker processes: the program, the codes, the event stream
and the comparison of two stores' records.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta

import referralkit as rk

START = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)
REFERRERS = 40


def program() -> rk.Program:
    """Double-sided: 20 USD cash / 10 USD credit on a first purchase of at least 25 USD."""
    return rk.Program(
        id="workload",
        effective_at=START - timedelta(days=1),
        currency="USD",
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money(20, "USD")), referee=rk.Credit(rk.Money(10, "USD"))
            )
        ],
        hold=relativedelta(days=30),
        min_order=rk.Money(25, "USD"),
    )


CAPS = rk.Caps(
    per_referrer=rk.Money(60, "USD"),
    per_referrer_day=rk.Money(45, "USD"),
    per_referee=rk.Money(10, "USD"),
)
BUDGET = rk.Money(1500, "USD")


def capped_program() -> rk.Program:
    """The same terms with caps per referrer (all time and per day), per referee, a
    program budget that the stream exhausts, and milestones at 1 and 3 successful
    referrals (each granted once ever per referrer)."""
    milestones = rk.Milestones(
        [rk.Milestone(1, rk.Badge("first friend")), rk.Milestone(3, rk.Badge("three friends"))]
    )
    base = program()
    return attrs.evolve(base, policies=[*base.policies, milestones], caps=CAPS, budget=BUDGET)


def codes() -> Iterator[str]:
    """The codes ``issue_code`` hands out, in order (the same in every process)."""
    for i in range(100_000):
        yield f"W{i:07d}"


def engine(store: rk.Store, capped: bool = False) -> rk.Engine:
    """An engine over ``store`` with the workload's program (or the capped one), clock and
    code factory."""
    it = codes()
    terms = capped_program() if capped else program()
    return rk.Engine(terms, store, clock=rk.ManualClock(START), code_factory=lambda: next(it))


def issue_codes(target: rk.Engine) -> list[str]:
    """Issue every referrer's code, in a fixed order."""
    return [target.issue_code(f"ref{i}") for i in range(REFERRERS)]


def events(total: int, seed: int, referrer_codes: Sequence[str]) -> list[rk.Event]:
    """About ``total`` events in causal order: sign-ups (most with a code, some unknown),
    purchases, partial refunds and chargebacks."""
    rng = random.Random(seed)
    out: list[rk.Event] = []
    people: list[str] = []
    orders: list[tuple[str, int]] = []
    refunded: dict[str, int] = {}
    n = 0
    while len(out) < total:
        n += 1
        at = START + timedelta(seconds=n)
        roll = rng.random()
        if roll < 0.3 or not people:
            who = f"user{len(people)}"
            people.append(who)
            code = rng.choice(referrer_codes) if rng.random() < 0.85 else "NOPE0000"
            out.append(rk.Signup(event_id=f"s{n}", participant_id=who, code=code, at=at))
        elif roll < 0.75:
            who = rng.choice(people)
            cents = rng.randint(1_000, 20_000)
            order = f"o{n}"
            orders.append((order, cents))
            out.append(
                rk.Purchase(
                    event_id=f"p{n}",
                    participant_id=who,
                    order_id=order,
                    amount=rk.Money.from_minor(cents, "USD"),
                    at=at,
                )
            )
        elif roll < 0.95 and orders:
            order, cents = rng.choice(orders)
            left = cents - refunded.get(order, 0)
            if left <= 0:
                continue
            part = rng.randint(1, left)
            refunded[order] = refunded.get(order, 0) + part
            out.append(
                rk.Refund(
                    event_id=f"r{n}",
                    refund_id=f"r{n}",
                    order_id=order,
                    amount=rk.Money.from_minor(part, "USD"),
                    at=at,
                )
            )
        elif orders:
            order, cents = rng.choice(orders)
            refunded[order] = cents
            out.append(
                rk.Chargeback(event_id=f"c{n}", chargeback_id=f"c{n}", order_id=order, at=at)
            )
    return out


def deliveries(stream: Sequence[rk.Event], workers: int, seed: int) -> list[list[rk.Event]]:
    """Each event delivered 1 to 3 times, each copy to a random worker, in stream order."""
    rng = random.Random(seed + 1)
    queues: list[list[rk.Event]] = [[] for _ in range(workers)]
    for event in stream:
        for _ in range(rng.randint(1, 3)):
            queues[rng.randrange(workers)].append(event)
    return queues


def work(
    make_store: Callable[[], rk.Store],
    queue: Sequence[rk.Event],
    batch_size: int = 20,
    capped: bool = False,
) -> tuple[int, list[str]]:
    """Handle ``queue`` in batches; events that need one not yet seen are retried later.

    Returns:
        How many events were still waiting when the worker gave up (0 normally), and the
        ids of events refused for good (a refund that a chargeback handled first left
        nothing to refund, say).
    """
    target = engine(make_store(), capped)
    pending = list(queue)
    refused: list[str] = []
    for _attempt in range(200):
        if not pending:
            break
        retry: list[rk.Event] = []
        for start in range(0, len(pending), batch_size):
            chunk = pending[start : start + batch_size]
            results = target.handle_many(chunk, batch_size=batch_size)
            for event, result in zip(chunk, results, strict=True):
                if isinstance(result, rk.RetryLaterError | rk.ConcurrencyError):
                    retry.append(event)
                elif isinstance(result, rk.InvalidEventError):
                    refused.append(event.event_id)
                elif isinstance(result, rk.ReferralKitError):
                    raise result
        pending = retry
        if pending:
            time.sleep(0.01)
    return len(pending), refused


LEDGER_TABLES = (
    "events",
    "participants",
    "codes",
    "personal_data",
    "referrals",
    "orders",
    "refunds",
    "chargebacks",
    "rewards",
    "entries",
    "counters",
    "outbox",
)


def differences(a: Mapping[str, list[Any]], b: Mapping[str, list[Any]]) -> list[str]:
    """The ledger tables whose records differ between two dumps, with a first difference."""
    out = []
    for table in LEDGER_TABLES:
        if a[table] != b[table]:
            pairs = [(x, y) for x, y in zip(a[table], b[table], strict=False) if x != y]
            first = pairs[0] if pairs else (len(a[table]), len(b[table]))
            out.append(f"{table}: {first!r}")
    return out


def replay(source: rk.Engine, capped: bool = False) -> rk.Engine:
    """A fresh in-memory engine fed ``source``'s event log in commit order."""
    target = engine(rk.InMemoryStore(), capped)
    issue_codes(target)
    after = 0
    while page := source.event_log(after=after, limit=500):
        for position, event in page:
            target.handle(event)
            after = position
    return target
