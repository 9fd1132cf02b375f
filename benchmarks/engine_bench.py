"""Engine throughput: events per second for a double-sided program on the in-memory store.

The event stream (30 % clicks, 25 % sign-ups, 35 % purchases, 10 % refunds by default) and
the referrers' codes are made before the clock starts; only ``Engine.handle`` is timed.

    .venv/bin/python benchmarks/engine_bench.py [--events N] [--seed S] [--profile]

``--profile`` runs the timed loop under cProfile and prints the top functions after the
result line (the figure is then slower than without it).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

import referralkit as rk

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MIX = {"click": 30, "signup": 25, "purchase": 35, "refund": 10}  # percent of the events
CHANNELS = ("email", "social", "sms", "in_app", "link")


def program() -> rk.Program:
    """The demo's program: 20 USD cash / 10 USD credit on a first purchase of >= 25 USD."""
    return rk.Program(
        id="bench",
        effective_at=START,
        currency="USD",
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money(20, "USD")), referee=rk.Credit(rk.Money(10, "USD"))
            )
        ],
        hold=relativedelta(days=30),
        min_order=rk.Money(25, "USD"),
        first_purchase_only=True,
    )


def counts(total: int) -> dict[str, int]:
    """How many events of each kind make ``total``, in the MIX ratios."""
    out = {kind: total * pct // 100 for kind, pct in MIX.items()}
    out["click"] += total - sum(out.values())
    return out


def make_events(total: int, codes: Sequence[str], rng: random.Random) -> list[rk.Event]:
    """A shuffled stream with exactly ``counts(total)`` events, in a causal order: a buyer
    has signed up before buying (else buys as a guest) and a refund follows its order.

    Four sign-ups in five carry a referrer's code; orders are 10 to 200 USD (a fifth below
    the 25 USD minimum); each refund is of a distinct order, half of them full.
    """
    wanted = counts(total)
    kinds = [kind for kind, n in wanted.items() for _ in range(n)]
    rng.shuffle(kinds)
    events: list[rk.Event] = []
    signed_up: list[str] = []
    refundable: list[rk.Purchase] = []
    deferred = 0  # refunds drawn before any order could be refunded

    def at() -> datetime:
        return START + timedelta(seconds=len(events))

    def refund() -> None:
        order = refundable.pop(rng.randrange(len(refundable)))
        cents = order.amount.to_minor()
        if rng.random() < 0.5:
            cents = rng.randint(1, cents - 1)
        n = len(events)
        events.append(
            rk.Refund(
                event_id=f"e{n}",
                refund_id=f"r{n}",
                order_id=order.order_id,
                amount=rk.Money.from_minor(cents, "USD"),
                at=at(),
            )
        )

    for kind in kinds:
        n = len(events)
        if kind == "click":
            events.append(
                rk.Click(
                    event_id=f"e{n}",
                    at=at(),
                    code=rng.choice(codes),
                    visitor_id=f"v{n}",
                    channel=rng.choice(CHANNELS),
                )
            )
        elif kind == "signup":
            who = f"p{n}"
            events.append(
                rk.Signup(
                    event_id=f"e{n}",
                    participant_id=who,
                    at=at(),
                    code=rng.choice(codes) if rng.random() < 0.8 else None,
                    channel=rng.choice(CHANNELS),
                )
            )
            signed_up.append(who)
        elif kind == "purchase":
            who = rng.choice(signed_up) if signed_up else f"guest{n}"
            low = rng.random() < 0.2
            cents = rng.randint(1000, 2499) if low else rng.randint(2500, 20000)
            purchase = rk.Purchase(
                event_id=f"e{n}",
                participant_id=who,
                order_id=f"o{n}",
                amount=rk.Money.from_minor(cents, "USD"),
                at=at(),
            )
            events.append(purchase)
            refundable.append(purchase)
            while deferred and refundable:
                deferred -= 1
                refund()
        elif refundable:
            refund()
        else:
            deferred += 1
    while deferred and refundable:
        deferred -= 1
        refund()
    return events


def timed(args: argparse.Namespace, profiler: cProfile.Profile | None, batch: int | None) -> float:
    """Events per second over a fresh engine and store, one at a time or in batches."""
    rng = random.Random(args.seed)
    engine = rk.Engine(program(), rk.InMemoryStore(), clock=rk.ManualClock(START))
    codes = [engine.issue_code(f"referrer{i}") for i in range(args.referrers)]
    events = make_events(args.events, codes, rng)
    handle = engine.handle
    # The whole input stream is made up front; a service receives events one at a time.
    # Freeze it (and the setup) so the cyclic GC does not rescan the benchmark's own input
    # on every full collection; what the engine allocates while handling is still collected.
    gc.collect()
    gc.freeze()
    if profiler is not None:
        profiler.enable()
    t0 = time.perf_counter()
    if batch is None:
        for event in events:
            handle(event)
    else:
        engine.handle_many(events, batch_size=batch)
    elapsed = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
    gc.unfreeze()
    return len(events) / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events (default 100000)")
    parser.add_argument("--referrers", type=int, default=2_000, help="codes issued beforehand")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="profile the timed loop")
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    parser.add_argument("--batch", type=int, default=500, help="events per unit of work")
    args = parser.parse_args(argv)
    if args.events < 10:
        parser.error("--events must be at least 10")

    profiler = cProfile.Profile() if args.profile else None
    per_event = timed(args, profiler, batch=None)
    batched = timed(args, None, batch=args.batch)

    n = counts(args.events)
    print(
        f"engine_bench: {args.events} events ({n['click']} clicks, {n['signup']} signups, "
        f"{n['purchase']} purchases, {n['refund']} refunds) on InMemoryStore: "
        f"handle() {per_event:,.0f} events/s"
        + (" (under cProfile)" if profiler is not None else "")
        + f"; handle_many(batch_size={args.batch}) {batched:,.0f} events/s"
    )
    if profiler is not None:
        for sort in ("tottime", "cumulative"):
            print(f"\n-- top {args.top} by {sort} --")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
