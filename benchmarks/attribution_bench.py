"""Attribution throughput: sign-ups attributed per second with many prior clicks stored.

Loads ``--clicks`` touches (1,000,000 by default) into a fresh SQLiteStore file, spread over
``--clicks // 3`` visitors and 1,000 referrers, then times ``--signups`` sign-ups, each by a
visitor with earlier clicks (last touch, 30-day window, no code typed), handled one
transaction per event and in batches (``handle_many``). Each sign-up reads its visitor's
touches through the ``(program_id, visitor_id, at)`` index, so the rate should not depend
on how many clicks the store holds. Run it with::

    .venv/bin/python benchmarks/attribution_bench.py [--clicks N] [--signups N] [--batch N]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import referralkit as rk
from referralkit.attribution import AttributionRules

START = datetime(2026, 1, 1, tzinfo=UTC)
REFERRERS = 1000


def build(path: Path, clicks: int, seed: int) -> tuple[rk.Engine, int]:
    """A store holding ``clicks`` touches; returns the engine and the number of visitors."""
    program = rk.Program(
        id="bench",
        effective_at=START - timedelta(days=365),
        currency="USD",
        policies=[rk.DoubleSided(rk.Cash(rk.Money(10, "USD")), rk.Credit(rk.Money(5, "USD")))],
        attribution=AttributionRules(window=timedelta(days=30)),
    )
    store = rk.SQLiteStore(str(path), synchronous="NORMAL")
    numbers = iter(range(10**9))
    engine = rk.Engine(
        program,
        store,
        clock=rk.ManualClock(START),
        code_factory=lambda: f"B{next(numbers):07d}",
    )
    codes = [engine.issue_code(f"referrer-{n}") for n in range(REFERRERS)]
    rng = random.Random(seed)
    visitors = max(clicks // 3, 1)
    chunk = 50_000
    for first in range(0, clicks, chunk):
        with store.unit_of_work() as uow:
            for n in range(first, min(first + chunk, clicks)):
                referrer = rng.randrange(REFERRERS)
                uow.touches.add(
                    rk.TouchRecord(
                        "bench",
                        f"tch-{n}",
                        "click",
                        START + timedelta(minutes=rng.randrange(30 * 24 * 60)),
                        f"click-{n}",
                        visitor_id=f"v-{n % visitors}",
                        referrer_id=f"referrer-{referrer}",
                        code=codes[referrer],
                        channel="social",
                    )
                )
            uow.commit()
    return engine, visitors


def main() -> None:
    """Parse the options, run both timings, print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--signups", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    at = START + timedelta(days=31)
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        engine, visitors = build(Path(folder) / "bench.db", args.clicks, args.seed)
        loaded = time.perf_counter() - began
        half = args.signups // 2
        signups = [
            rk.Signup(
                event_id=f"s-{n}", participant_id=f"p-{n}", at=at, visitor_id=f"v-{n % visitors}"
            )
            for n in range(args.signups)
        ]
        began = time.perf_counter()
        outcomes = [engine.handle(s) for s in signups[:half]]
        single = half / (time.perf_counter() - began)
        began = time.perf_counter()
        batched_outcomes = engine.handle_many(signups[half:], batch_size=args.batch)
        batched = (args.signups - half) / (time.perf_counter() - began)
        referred = sum(1 for o in outcomes if o.referral_id) + sum(
            1 for o in batched_outcomes if isinstance(o, rk.Outcome) and o.referral_id
        )
    print(
        f"attribution_bench: {args.clicks} clicks loaded in {loaded:.1f} s; "
        f"{args.signups} sign-ups ({referred} referred): "
        f"{single:,.0f} signups/s one per transaction, "
        f"{batched:,.0f} signups/s in batches of {args.batch}"
    )


if __name__ == "__main__":
    main()
