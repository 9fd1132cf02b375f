"""Every file of examples/programs/ loads and pays exactly what its comment states.

Each file states its scenario as ``# step:`` lines and the expected pending balances as
``# expect:`` lines (participant, unit kind, amount and, for units other than USD money,
the unit's code); the referrer is always alice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import referralkit as rk

PROGRAMS = Path(__file__).resolve().parents[2] / "examples" / "programs"
FILES = sorted(PROGRAMS.glob("*.toml"))
SIGNED_UP = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STYLES = {
    "double_sided",
    "tiered",
    "escalating",
    "per_item",
    "revenue_share",
    "hybrid",
    "conditional",
    "capped",
    "milestones",
    "points",
}


def lines(path: Path, tag: str) -> list[list[str]]:
    prefix = f"# {tag}:"
    return [
        line[len(prefix) :].split()
        for line in path.read_text("utf-8").splitlines()
        if line.startswith(prefix)
    ]


def play(engine: rk.Engine, steps: list[list[str]]) -> None:
    code = engine.issue_code("alice")
    orders: list[str] = []
    for n, (kind, *args) in enumerate(steps):
        if kind == "signup":
            who, *opts = args
            channel = dict(o.split("=") for o in opts).get("channel", "code")
            engine.handle(
                rk.Signup(
                    event_id=f"e{n}", participant_id=who, code=code, at=SIGNED_UP, channel=channel
                )
            )
        elif kind == "purchase":
            who, amount, *opts = args
            at = SIGNED_UP + timedelta(minutes=n)
            items = []
            for opt in opts:
                if opt.startswith("+") and opt.endswith("d"):
                    at += timedelta(days=int(opt[1:-1]))
                elif opt.startswith("item="):
                    sku, qty, price, category = opt[5:].split(":")
                    items.append(
                        rk.LineItem(
                            sku=sku,
                            quantity=int(qty),
                            unit_price=rk.Money(price, "USD"),
                            category=category,
                        )
                    )
            orders.append(f"o{n}")
            engine.handle(
                rk.Purchase(
                    event_id=f"e{n}",
                    participant_id=who,
                    order_id=f"o{n}",
                    amount=rk.Money(amount, "USD"),
                    at=at,
                    items=items,
                )
            )
        elif kind == "refund":
            number, amount = args
            engine.handle(
                rk.Refund(
                    event_id=f"e{n}",
                    refund_id=f"r{n}",
                    order_id=orders[int(number) - 1],
                    amount=rk.Money(amount, "USD"),
                    at=SIGNED_UP + timedelta(days=500),
                )
            )
        else:  # pragma: no cover - a typo in an example file
            raise AssertionError(f"unknown step {kind!r}")


def test_there_is_one_file_per_program_style():
    assert {f.stem for f in FILES} == STYLES


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_example_pays_what_its_comment_states(path: Path) -> None:
    program = rk.load_program(path)
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(SIGNED_UP))
    steps = lines(path, "step")
    expected = lines(path, "expect")
    assert steps
    assert expected
    play(engine, steps)
    for who, kind, amount, *code in expected:  # the unit's code: USD unless given
        line = engine.balance(who)[rk.Unit(kind, code[0] if code else "USD")]
        assert line.pending == Decimal(amount), f"{path.name}: {who} {kind}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_example_round_trips_through_to_dict(path: Path) -> None:
    program = rk.load_program(path)
    assert rk.Program.from_dict(program.to_dict()) == program
