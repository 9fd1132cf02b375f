"""Importing a shop's referral history into a SQLite file, interrupted and resumed.

A shop launching referralkit has a year of sign-ups, orders and refunds to load. The history
is a generator, read lazily; ``Engine.handle_stream`` handles it in batches of 500, commits
each batch before yielding its results and keeps only one batch in memory, so the import
counts outcomes on the fly instead of holding a list of them all.

The first run stops after 2,000 results (a deploy, a crash). The second run opens the same
file and sends the whole history again: the events committed before the stop come back as
duplicates, with nothing written twice, and the rest is handled. One refund names an order
that never existed; it is reported in its place and the import goes on. Run it with
``python examples/import_history.py``.
"""

from __future__ import annotations

import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import referralkit as rk

START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
REFERRERS = 40
CUSTOMERS = 1_500


def program() -> rk.Program:
    """20 USD cash to the referrer and 10 USD credit to the friend, on a first order of 25+."""
    return rk.Program(
        id="shop",
        effective_at=START - timedelta(days=1),
        currency="USD",
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money(20, "USD")), referee=rk.Credit(rk.Money(10, "USD"))
            )
        ],
        min_order=rk.Money(25, "USD"),
        first_purchase_only=True,
    )


def history(codes: list[str]) -> Iterator[rk.Event]:
    """A year of events, in time order: each customer signs up (three in four with a code),
    buys one to three times, and one order in ten is refunded in full."""
    rng = random.Random(3)
    for n in range(CUSTOMERS):
        who = f"customer{n}"
        at = START + timedelta(hours=5 * n)
        code = rng.choice(codes) if rng.random() < 0.75 else None
        yield rk.Signup(event_id=f"signup-{who}", participant_id=who, code=code, at=at)
        for k in range(rng.randint(1, 3)):
            order = f"order-{who}-{k}"
            amount = rk.Money(rng.randint(10, 150), "USD")
            at += timedelta(days=rng.randint(1, 20))
            yield rk.Purchase(
                event_id=f"paid-{order}",
                participant_id=who,
                order_id=order,
                amount=amount,
                at=at,
            )
            if rng.random() < 0.1:
                yield rk.Refund(
                    event_id=f"refund-{order}",
                    refund_id=f"refund-{order}",
                    order_id=order,
                    amount=amount,
                    at=at + timedelta(days=2),
                )
        if n == 700:  # a line of the export that points at an order nobody recorded
            yield rk.Refund(
                event_id="refund-ghost",
                refund_id="refund-ghost",
                order_id="order-never-paid",
                amount=rk.Money(30, "USD"),
                at=at,
            )


def tally(results: Iterator[rk.Outcome | rk.ReferralKitError]) -> Counter[str]:
    """Count the results as they come: duplicates, errors by type, and decisions."""
    seen: Counter[str] = Counter()
    for result in results:
        seen["results"] += 1
        if isinstance(result, rk.ReferralKitError):
            seen[f"error: {type(result).__name__}"] += 1
        elif result.duplicate:
            seen["duplicate"] += 1
        else:
            seen["handled"] += 1
            seen["rewards granted"] += len(result.grants)
            seen["rewards reversed"] += len(result.reversals)
    return seen


def main() -> None:
    """Import, stop part-way, resume, and print what each run did."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "referrals.db"
        with rk.SQLiteStore(path) as store:
            engine = rk.Engine(program(), store)
            codes = [engine.issue_code(f"referrer{i}") for i in range(REFERRERS)]
            first = engine.handle_stream(history(codes), batch_size=500)
            stopped = tally(islice(first, 2_000))
            first.close()  # the process stops here: later events are never read
            logged = len(engine.event_log(limit=10_000))

        with rk.SQLiteStore(path) as store:  # the next deploy, on the same file
            engine = rk.Engine(program(), store)
            codes = [engine.issue_code(f"referrer{i}") for i in range(REFERRERS)]  # the same
            resumed = tally(engine.handle_stream(history(codes), batch_size=500))
            total = len(engine.event_log(limit=10_000))
            cash = rk.Unit("cash", "USD")
            paid = sum(engine.balance(f"referrer{i}")[cash].lifetime for i in range(REFERRERS))

    print(f"first run:  {stopped['results']:,} results, then stopped")
    print(f"            {logged:,} events committed (whole batches of 500)")
    print(f"second run: {resumed['results']:,} results for the whole history")
    for key in sorted(resumed):
        if key != "results":
            print(f"            {key:<32} {resumed[key]:>6,}")
    print(f"event log:  {total:,} events, each once")
    print(f"referrers:  {paid} USD cash earned, after refunds")

    assert logged == 2_000  # the batches of the first 2,000 results, all committed
    assert resumed["duplicate"] == logged
    assert resumed["handled"] + resumed["duplicate"] + 1 == resumed["results"]
    assert resumed["error: UnknownOrderError"] == 1
    assert total == resumed["results"] - 1


if __name__ == "__main__":
    main()
