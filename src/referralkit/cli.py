"""The ``referralkit`` command line.

``referralkit demo`` runs a double-sided program over a small generated event stream and
prints what the engine made of it: the referrals, the reward ledger, the balances and a
summary. The stream is generated from ``--seed`` with ``random.Random``, so the same seed
gives the same events, referrals and rewards (referral codes are random on every run).

The demo logic lives here rather than in its own module so that the top layer of the
import contract (``cli | testing``) covers it.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import attrs
from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit.attribution import generate_code

__all__ = ["DemoRun", "demo_program", "main", "make_store", "render_demo", "run_demo"]

#: When the demo program starts and its referrers get their codes.
DEMO_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
#: When the demo settles: it approves every reward payable on or before 16 February
#: (earned up to 16 January, 30 days earlier); later ones stay pending.
DEMO_SETTLE_AT = datetime(2026, 2, 17, 0, 0, tzinfo=UTC)

_NAMES = (
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "karim", "lena", "mallory", "niaj", "olivia", "peggy", "quentin", "rupert", "sybil",
    "trent", "uma", "victor", "walter", "xena", "yusuf", "zoe", "amir", "bea", "chen",
    "dina", "emil", "fatima", "goran", "hana", "igor", "jana", "kofi", "mateo", "nora",
    "priya",
)  # fmt: skip
_CHANNELS = ("email", "social", "sms", "in_app", "link")
# Codes a referrer never holds: issued codes are 8 Crockford characters, which exclude U.
_UNKNOWN_CODES = ("SUMMER-25", "WELCOME10", "FRIENDS")
_MIN_PARTICIPANTS = 10
_MAX_PARTICIPANTS = 10_000


def usd(amount: str | int) -> rk.Money:
    """``amount`` US dollars."""
    return rk.Money(amount, "USD")


def make_store(path: str = ":memory:") -> rk.Store:
    """The store the demo runs on: the embedded SQLite store, in a file or in memory."""
    return rk.SQLiteStore(path, synchronous="NORMAL")


def demo_program() -> rk.Program:
    """20 USD cash to the referrer and 10 USD credit to the referee on the referee's first
    purchase, if it is at least 25 USD; rewards are held for 30 days."""
    return rk.Program(
        id="demo-friends",
        effective_at=DEMO_START,
        currency="USD",
        policies=[rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
        hold=relativedelta(days=30),
        min_order=usd(25),
        first_purchase_only=True,
    )


@attrs.frozen
class DemoRun:
    """What the demo did: the engine (to query), the people and every outcome.

    Attributes:
        people: Every participant, referrers first.
        referrers: The participants who were issued a code.
        outcomes: One per delivered event, in delivery order (duplicates included).
        approved: How many rewards ``settle`` approved at ``settled_at``.
    """

    seed: int
    engine: rk.Engine
    people: tuple[str, ...]
    referrers: tuple[str, ...]
    outcomes: tuple[rk.Outcome, ...]
    settled_at: datetime
    approved: int


class _Stream:
    """Collects events with their delivery time; ``events()`` sorts them by it."""

    def __init__(self) -> None:
        self._items: list[tuple[datetime, int, rk.Event]] = []
        self._ids = 0

    def next_id(self, kind: str) -> str:
        self._ids += 1
        return f"{kind}-{self._ids:04d}"

    def add(self, event: rk.Event, deliver_at: datetime | None = None) -> None:
        self._items.append((deliver_at or event.at, len(self._items), event))

    def events(self) -> list[tuple[datetime, rk.Event]]:
        return [(at, ev) for at, _, ev in sorted(self._items, key=lambda item: item[:2])]


def _names(count: int) -> list[str]:
    return [
        _NAMES[i % len(_NAMES)] + (str(i // len(_NAMES) + 1) if i >= len(_NAMES) else "")
        for i in range(count)
    ]


def _generate(
    rng: random.Random, referrers: Sequence[str], friends: Sequence[str], codes: dict[str, str]
) -> list[tuple[datetime, rk.Event]]:
    """The demo's event stream: sign-ups (with and without codes), clicks, purchases, one
    partial and one full refund, and one purchase delivered twice."""
    stream = _Stream()

    def purchase(who: str, at: datetime, cents: int) -> rk.Purchase:
        event = rk.Purchase(
            event_id=stream.next_id("purchase"),
            participant_id=who,
            order_id=f"order-{who}-{at:%m%d%H%M}",
            amount=rk.Money.from_minor(cents, "USD"),
            at=at,
        )
        stream.add(event)
        return event

    # Referrers sign up in the first hours; one of them tries their own code.
    self_referrer = rng.choice(referrers)
    for who in referrers:
        at = DEMO_START + timedelta(minutes=rng.randint(5, 600))
        stream.add(
            rk.Signup(
                event_id=stream.next_id("signup"),
                participant_id=who,
                at=at,
                code=codes[who] if who == self_referrer else None,
                email=f"{who}@example.com",
            )
        )
        if rng.random() < 0.4:
            purchase(who, at + timedelta(days=rng.randint(1, 20)), rng.randint(1500, 9000))

    # Friends: a few type a code nobody holds, about half use a referrer's code (often after
    # clicking their link), the rest sign up on their own.
    qualifying: list[rk.Purchase] = []
    n_unknown = max(2, len(friends) // 16)
    for i, who in enumerate(friends):
        at = DEMO_START + timedelta(days=rng.randint(1, 16), minutes=rng.randint(0, 600))
        if i < n_unknown:
            code: str | None = _UNKNOWN_CODES[i % len(_UNKNOWN_CODES)]
            channel = "code"
        elif rng.random() < 0.55:
            code = codes[rng.choice(referrers)]
            channel = rng.choice(_CHANNELS)
            if rng.random() < 0.6:
                stream.add(
                    rk.Click(
                        event_id=stream.next_id("click"),
                        at=at - timedelta(minutes=rng.randint(5, 180)),
                        code=code,
                        visitor_id=f"visitor-{who}",
                        channel=channel,
                    )
                )
        else:
            code, channel = None, "code"
        stream.add(
            rk.Signup(
                event_id=stream.next_id("signup"),
                participant_id=who,
                at=at,
                code=code,
                email=f"{who}@example.com",
                channel=channel,
            )
        )
        referred = code is not None and i >= n_unknown
        if rng.random() >= (0.8 if referred else 0.5):
            continue
        # One first order in five is below the 25 USD minimum.
        cents = rng.randint(1000, 2499) if rng.random() < 0.2 else rng.randint(2500, 15000)
        first = purchase(who, at + timedelta(hours=rng.randint(1, 96)), cents)
        if referred and cents >= 2500:
            qualifying.append(first)
        if rng.random() < 0.3:
            purchase(who, first.at + timedelta(days=rng.randint(2, 10)), rng.randint(1500, 9000))

    # One partial refund, one full refund, and one purchase webhook delivered twice.
    picks = rng.sample(qualifying, min(3, len(qualifying)))
    for n, order in enumerate(picks[:2]):
        full = n == 1
        cents = order.amount.to_minor() if full else order.amount.to_minor() // 2
        stream.add(
            rk.Refund(
                event_id=stream.next_id("refund"),
                refund_id=f"refund-{order.order_id}",
                order_id=order.order_id,
                amount=rk.Money.from_minor(cents, "USD"),
                at=order.at + timedelta(days=8 if full else 5),
            )
        )
    if len(picks) == 3:
        stream.add(picks[2], deliver_at=picks[2].at + timedelta(minutes=90))
    return stream.events()


def run_demo(seed: int = 7, participants: int = 40, db: str = ":memory:") -> DemoRun:
    """Run the demo program over a stream generated from ``seed``, then settle.

    Args:
        seed: Seeds ``random.Random``; the same seed gives the same stream and codes.
        participants: How many people take part; a fifth of them (at least two) refer.
        db: The SQLite database file (``":memory:"`` keeps nothing).
    """
    if participants < _MIN_PARTICIPANTS:
        raise ValueError(f"participants={participants!r}: must be at least {_MIN_PARTICIPANTS}")
    rng = random.Random(seed)
    clock = rk.ManualClock(DEMO_START)
    engine = rk.Engine(
        demo_program(),
        make_store(db),
        clock=clock,
        code_factory=lambda: generate_code(token_bytes=rng.randbytes),
    )
    people = _names(participants)
    rng.shuffle(people)
    referrers = people[: max(2, participants // 5)]
    friends = people[len(referrers) :]
    codes = {who: engine.issue_code(who) for who in referrers}
    outcomes = []
    for deliver_at, event in _generate(rng, referrers, friends, codes):
        clock.set(deliver_at)
        outcomes.append(engine.handle(event))
    clock.set(DEMO_SETTLE_AT)
    approved = engine.settle()
    return DemoRun(
        seed=seed,
        engine=engine,
        people=tuple(people),
        referrers=tuple(referrers),
        outcomes=tuple(outcomes),
        settled_at=DEMO_SETTLE_AT,
        approved=approved,
    )


# -- rendering ---------------------------------------------------------------------------


def format_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> list[str]:
    """A plain-text table: a title, a header, a rule and aligned rows, indented by two.

    Args:
        right: Indexes of the columns to right-align (numbers).
    """
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return ("  " + "  ".join(parts)).rstrip()

    body = [line(row) for row in rows] if rows else ["  (none)"]
    return [title, line(headers), line(["-" * w for w in widths]), *body]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _amount(quantity: Decimal) -> str:
    return f"{quantity:,.2f}"


def _referral_rows(run: DemoRun) -> list[list[str]]:
    engine = run.engine
    referrals = [r for r in map(engine.referral_of, run.people) if r is not None]
    referrals.sort(key=lambda r: (r.created_at, r.referee_id))
    return [
        [r.referrer_id, r.referee_id, r.code, r.channel, f"{r.created_at:%Y-%m-%d %H:%M}"]
        for r in referrals
    ]


def _ledger(run: DemoRun) -> list[rk.RewardView]:
    views = [view for who in run.people for view in run.engine.rewards_for(who)]
    views.sort(key=lambda v: (v.reward.created_at, v.reward.role != rk.Role.REFERRER))
    return views


def _ledger_rows(views: Sequence[rk.RewardView]) -> list[list[str]]:
    return [
        [
            v.reward.reward_id[:10],
            v.reward.participant_id,
            v.reward.role.value,
            str(v.reward.value),
            v.state.value,
            f"{v.reward.payable_at:%Y-%m-%d}",
            _amount(v.reversed) if v.reversed else "-",
        ]
        for v in views
    ]


def _balance_rows(run: DemoRun) -> list[list[str]]:
    rows = []
    for who in sorted(run.people):
        for line in run.engine.balance(who):
            rows.append(
                [
                    who,
                    str(line.unit),
                    _amount(line.pending),
                    _amount(line.available),
                    _amount(line.lifetime),
                ]
            )
    return rows


def _summary(run: DemoRun, views: Sequence[rk.RewardView]) -> list[str]:
    fresh = [o for o in run.outcomes if not o.duplicate]
    kinds = Counter(o.event_type for o in fresh)
    by_kind = ", ".join(
        _count(kinds[k], "sign-up" if k == "signup" else k)
        for k in ("click", "signup", "purchase", "refund", "chargeback")
        if kinds[k]
    )
    duplicates = len(run.outcomes) - len(fresh)
    created = sum(o.referral_id is not None and o.event_type == "signup" for o in fresh)
    refused = Counter(
        d.code.removeprefix("referral.")
        for o in fresh
        for d in o.decisions
        if d.verdict is rk.Verdict.REFUSED
    )
    refused_text = ", ".join(f"{code} {n}" for code, n in sorted(refused.items()))
    granted = sum(len(o.grants) for o in fresh)
    reversed_ = sum(1 for v in views if v.reversed)
    lines = [
        f"Summary (seed {run.seed}: {len(run.people)} participants, "
        f"{len(run.referrers)} of them with a code)",
        f"  store       {type(run.engine.store).__name__}, one transaction per event",
        f"  events      {len(fresh)} handled ({by_kind})",
        f"  duplicates  {duplicates} delivered again: stored outcome returned, nothing written",
        f"  referrals   {created} created, {sum(refused.values())} refused"
        + (f" ({refused_text})" if refused else ""),
        f"  rewards     {granted} granted, {reversed_} reversed in part or in full by refunds, "
        f"{run.approved} approved by settle",
    ]
    totals: dict[rk.Unit, list[Decimal]] = {}
    for v in views:
        total = totals.setdefault(v.reward.unit, [Decimal(0)] * 4)
        total[0] += v.granted
        total[1] += v.outstanding
        if v.state is rk.RewardState.APPROVED:
            total[2] += v.outstanding
        elif v.state is rk.RewardState.PENDING:
            total[3] += v.outstanding
    for unit in sorted(totals):
        g, net, available, pending = (_amount(q) for q in totals[unit])
        lines.append(
            f"  {unit!s:<11} {g} granted, {net} after reversals "
            f"({available} available, {pending} pending)"
        )
    return lines


def render_demo(run: DemoRun) -> str:
    """The demo's report: referrals, ledger, balances and a summary, as plain text."""
    referrals = _referral_rows(run)
    views = _ledger(run)
    balances = _balance_rows(run)
    sections = [
        format_table(
            f"Referrals ({len(referrals)})",
            ["referrer", "referee", "code", "channel", "created (UTC)"],
            referrals,
        ),
        format_table(
            f"Ledger ({len(views)} rewards; settled at {run.settled_at:%Y-%m-%d %H:%M} UTC)",
            ["reward", "participant", "role", "value", "state", "payable on", "reversed"],
            _ledger_rows(views),
            right=(6,),
        ),
        format_table(
            "Balances",
            ["participant", "unit", "pending", "available", "lifetime"],
            balances,
            right=(2, 3, 4),
        ),
        _summary(run, views),
    ]
    return "\n\n".join("\n".join(section) for section in sections)


# -- command line ------------------------------------------------------------------------


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="referralkit", description="referralkit: referral programs inside your app."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {rk.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a double-sided program over a generated event stream and print the results",
        description="Run a double-sided program (20 USD cash to the referrer, 10 USD credit to "
        "the referee, first purchase of at least 25 USD, 30-day hold) over a generated event "
        "stream and print the referrals, the ledger and the balances.",
    )
    demo.add_argument(
        "--seed", type=int, default=7, help="seed of the generated stream (default: 7)"
    )
    demo.add_argument(
        "--db",
        metavar="PATH",
        help="keep the SQLite database in this new file (default: a temporary file, removed)",
    )
    demo.add_argument(
        "--participants",
        type=_bounded_int(_MIN_PARTICIPANTS, _MAX_PARTICIPANTS),
        default=40,
        metavar="N",
        help=f"people taking part, {_MIN_PARTICIPANTS} to {_MAX_PARTICIPANTS} (default: 40)",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Entry point of the ``referralkit`` console script.

    Returns:
        The exit status: 0 on success, 2 for a usage error (no or an unknown command).
    """
    try:
        return _main(argv, out)
    except BrokenPipeError:
        # The reader went away (``referralkit demo | head``): not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: Sequence[str] | None, out: TextIO | None) -> int:
    stdout = sys.stdout if out is None else out
    parser = _parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else list(argv))
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("referralkit: error: a command is required (try 'referralkit demo')", file=sys.stderr)
        return 2
    if args.db is not None:
        if Path(args.db).exists():
            print(f"referralkit: error: --db {args.db!r} exists; give a new file", file=sys.stderr)
            return 2
        run = run_demo(seed=args.seed, participants=args.participants, db=args.db)
        print(render_demo(run), file=stdout)
        print(f"\nThe SQLite database is in {args.db}", file=stdout)
        return 0
    with tempfile.TemporaryDirectory(prefix="referralkit-demo-") as tmp:
        db = str(Path(tmp) / "demo.sqlite3")
        run = run_demo(seed=args.seed, participants=args.participants, db=db)
        print(render_demo(run), file=stdout)
        if isinstance(run.engine.store, rk.SQLiteStore):
            run.engine.store.close()
    return 0
