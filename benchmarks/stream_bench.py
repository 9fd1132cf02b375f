"""Memory of a long import: ``Engine.handle_many`` against ``Engine.handle_stream``.

The store_bench workload (the engine benchmark's double-sided program and event mix) is
handled on a SQLite file twice: once with ``handle_many``, which returns every outcome in one
list, and once with ``handle_stream``, whose results are counted and dropped as they come.
For each it prints the peak of the memory Python allocated during the call (``tracemalloc``,
the events themselves made before it starts) and, in a second run without tracing, the
events per second. Run it with::

    .venv/bin/python benchmarks/stream_bench.py [--events N] [--batch N]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import engine_bench

import referralkit as rk


def measure(directory: Path, name: str, events_n: int, batch: int, traced: bool) -> float:
    """Handle the workload on a new SQLite file with ``name`` ("many" or "stream"); returns
    the peak traced MiB when ``traced``, else the events per second."""
    store = rk.SQLiteStore(directory / f"{name}-{traced}.db", synchronous="NORMAL")
    engine = rk.Engine(engine_bench.program(), store, clock=rk.ManualClock(engine_bench.START))
    codes = [engine.issue_code(f"referrer{i}") for i in range(500)]
    events = engine_bench.make_events(events_n, codes, random.Random(7))
    gc.collect()
    if traced:
        tracemalloc.start()
    t0 = time.perf_counter()
    if name == "many":
        handled = len(engine.handle_many(events, batch_size=batch))
    else:
        handled = sum(1 for _ in engine.handle_stream(events, batch_size=batch))
    elapsed = time.perf_counter() - t0
    assert handled == events_n
    if traced:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    store.close()
    return peak / 2**20 if traced else events_n / elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="events per transaction")
    args = parser.parse_args(argv)
    print(f"stream_bench: {args.events} events, batches of {args.batch}, SQLite file")
    peaks: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rk-stream-bench-") as tmp:
        for name in ("many", "stream"):
            peaks[name] = measure(Path(tmp), name, args.events, args.batch, traced=True)
            rate = measure(Path(tmp), name, args.events, args.batch, traced=False)
            label = f"handle_{name}"
            print(f"  {label:<14} peak {peaks[name]:8.1f} MiB  {rate:>8,.0f} events/s")
    print(f"  handle_many's peak is {peaks['many'] / peaks['stream']:.1f}x handle_stream's")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
