"""Per-call cost of the stored encoding and the event digest: the generic implementations
(the reference kept in tests/property/test_codec_reference.py) against the per-class ones,
in the same run.

The values come from the engine benchmark's workload played on an InMemoryStore: one
event of each kind with its outcome, the usual outcomes (a click's, a sign-up's, a purchase
below the minimum, a purchase that earns two rewards, a refund that reverses two), and a
referral's explanation. Each figure is the best of several rounds, old and new taking
turns, in µs per call; the last lines are the totals per event over the whole workload
(dumps of the event and of its outcome plus its digest, as a store and the engine spend
them; and loads of both). Run it with::

    .venv/bin/python benchmarks/codec_bench.py [--events N] [--rounds N]
"""

from __future__ import annotations

import argparse
import random
import sys
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "property"))

import engine_bench
import test_codec_reference as reference

import referralkit as rk
from referralkit._values import codec
from referralkit._values.canonical import record_digest


def best(function: Callable[[], Any], number: int, rounds: int) -> float:
    """µs per call: the best of ``rounds`` runs of ``number`` calls."""
    return min(timeit.repeat(function, number=number, repeat=rounds)) / number * 1e6


def compare(label: str, old: Callable[[], Any], new: Callable[[], Any], args: Any) -> None:
    assert old() == new(), label
    number = args.number
    olds, news = [], []
    for _ in range(args.rounds):  # turns, so that a slow patch of the machine hits both
        olds.append(best(old, number, 1))
        news.append(best(new, number, 1))
    o, n = min(olds), min(news)
    print(f"{label:<34} {o:8.2f} {n:8.2f} {o / n:7.2f}x")


def samples(events: int, seed: int) -> tuple[dict[str, Any], list[rk.Event], list[rk.Outcome]]:
    rng = random.Random(seed)
    engine = rk.Engine(
        engine_bench.program(), rk.InMemoryStore(), clock=rk.ManualClock(engine_bench.START)
    )
    codes = [engine.issue_code(f"referrer{i}") for i in range(50)]
    stream = engine_bench.make_events(events, codes, rng)
    outcomes = list(engine.handle_many(stream, batch_size=500))
    picked: dict[str, Any] = {}
    for event, outcome in zip(stream, outcomes, strict=True):
        kind = type(event).__name__
        picked.setdefault(kind, event)
        if isinstance(event, rk.Click):
            picked.setdefault("outcome: click", outcome)
        elif isinstance(event, rk.Signup) and outcome.referral_id:
            picked.setdefault("outcome: referred sign-up", outcome)
        elif isinstance(event, rk.Purchase) and outcome.grants:
            picked.setdefault("outcome: purchase, 2 grants", outcome)
        elif isinstance(event, rk.Purchase) and outcome.decisions:
            picked.setdefault("outcome: purchase, no reward", outcome)
        elif isinstance(event, rk.Refund) and outcome.reversals:
            picked.setdefault("outcome: refund, 2 reversals", outcome)
    picked["explanation"] = engine.store.dump()["referrals"][0].explanation
    return picked, stream, outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000, help="workload size (2000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per figure (7)")
    parser.add_argument("--number", type=int, default=5_000, help="calls per round (5000)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    picked, stream, outcomes = samples(args.events, args.seed)

    print(f"{'µs per call':<34} {'old':>8} {'new':>8} {'ratio':>8}")
    for kind in ("Click", "Signup", "Purchase", "Refund"):
        event = picked[kind]
        text = codec.dumps(event)
        compare(
            f"dumps({kind})",
            lambda e=event: reference.ref_dumps(e),
            lambda e=event: codec.dumps(e),
            args,
        )
        compare(
            f"record_digest({kind})",
            lambda e=event: reference.ref_record_digest(e),
            lambda e=event: record_digest(e),
            args,
        )
        compare(
            f"loads({kind})",
            lambda t=text: reference.ref_loads(t),
            lambda t=text: codec.loads(t),
            args,
        )
    for label, value in picked.items():
        if not label.startswith("outcome") and label != "explanation":
            continue
        text = codec.dumps(value)
        compare(
            f"dumps({label})",
            lambda v=value: reference.ref_dumps(v),
            lambda v=value: codec.dumps(v),
            args,
        )
        compare(
            f"loads({label})",
            lambda t=text: reference.ref_loads(t),
            lambda t=text: codec.loads(t),
            args,
        )

    pairs = list(zip(stream, outcomes, strict=True))
    texts = [(codec.dumps(e), codec.dumps(o)) for e, o in pairs]
    number = max(1, args.number // len(pairs))

    def write(dumps: Callable[[Any], str], digest: Callable[[Any], str]) -> Callable[[], None]:
        def run() -> None:
            for event, outcome in pairs:
                dumps(event)
                dumps(outcome)
                digest(event)

        return run

    def read(loads: Callable[[str], Any]) -> Callable[[], None]:
        def run() -> None:
            for event_text, outcome_text in texts:
                loads(event_text)
                loads(outcome_text)

        return run

    print(f"\nper event of the {len(pairs)}-event workload (µs)")
    for label, old, new in (
        (
            "dumps(event)+dumps(outcome)+digest",
            write(reference.ref_dumps, reference.ref_record_digest),
            write(codec.dumps, record_digest),
        ),
        ("loads(event)+loads(outcome)", read(reference.ref_loads), read(codec.loads)),
    ):
        olds, news = [], []
        for _ in range(args.rounds):
            olds.append(best(old, number, 1) / len(pairs))
            news.append(best(new, number, 1) / len(pairs))
        o, n = min(olds), min(news)
        print(f"{label:<34} {o:8.2f} {n:8.2f} {o / n:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
