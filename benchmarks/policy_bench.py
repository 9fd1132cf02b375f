"""Policy cost: microseconds per ``evaluate()`` call for each policy type of the catalogue.

Each policy is evaluated on one prepared ``PolicyContext`` (a purchase with three line
items and the counters the policies read); only ``evaluate`` is timed.

    .venv/bin/python benchmarks/policy_bench.py [--number N] [--repeat R]
"""

from __future__ import annotations

import argparse
import timeit
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit._values.rates import convert_purchase
from referralkit.policies import (
    All,
    Attr,
    Escalating,
    FirstMatch,
    Hybrid,
    PerItem,
    RevenueShare,
    Stack,
    Tier,
    Tiered,
    when,
)
from referralkit.policies._limits import apply_limits, spend_keys

START = datetime(2026, 1, 5, tzinfo=UTC)


def _spend_keys(caps: rk.Caps, ctx: rk.PolicyContext) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    for role, who in ((rk.Role.REFERRER, "alice"), (rk.Role.REFEREE, "bob")):
        keys.update(spend_keys(caps, role, who, "ref", ctx.event.at, UTC).values())
    return keys


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def context() -> rk.PolicyContext:
    """A purchase 10 days after the referral, with counters for every policy."""
    won = rk.Decision(
        "attribution",
        rk.Verdict.NOTED,
        "touch.won",
        (("kind", "click"), ("channel", "email"), ("campaign", "spring")),
    )
    referral = rk.Referral(
        "ref", "p", 1, "alice", "bob", "ABCD1234", "email", START, "s1", explanation=(won,)
    )
    items = (
        rk.LineItem(sku="tv", quantity=2, unit_price=usd(400), category="video"),
        rk.LineItem(sku="cable", quantity=3, unit_price=usd(5), category="accessories"),
        rk.LineItem(sku="bar", quantity=1, unit_price=usd(185), category="audio"),
    )
    purchase = rk.Purchase(
        event_id="p1",
        participant_id="bob",
        order_id="o1",
        amount=usd(1000),
        at=START + timedelta(days=10),
        items=items,
        metadata={"campaign": "spring"},
    )
    counters = {c: Decimal(4) for c in rk.Counter}
    return rk.PolicyContext(
        "p",
        1,
        "USD",
        "ROUND_HALF_UP",
        referral,
        purchase,
        rk.Trigger.FIRST_PURCHASE,
        counters,
        referee_country="DE",
    )


def policies() -> dict[str, rk.RewardPolicy]:
    """One representative of each policy type."""
    ten = rk.Cash(usd(10))
    return {
        "SingleSided": rk.SingleSided(referrer=ten),
        "DoubleSided": rk.DoubleSided(referrer=ten, referee=rk.Credit(usd(5))),
        "Tiered": Tiered([Tier(1, ten), Tier(3, rk.Cash(usd(30))), Tier(10, rk.Cash(usd(50)))]),
        "Escalating (step)": Escalating(first=ten, step=usd(5), ceiling=usd(50)),
        "Escalating (factor)": Escalating(first=ten, factor=Decimal("1.5"), ceiling=usd(500)),
        "PerItem": PerItem(referrer=rk.Credit(usd(25)), categories=["video"], cap_per_referral=5),
        "RevenueShare": RevenueShare(Decimal("15")),
        "Hybrid": Hybrid(fixed=rk.Cash(usd(20)), percent=Decimal("10")),
        "when (1 clause)": when(Attr("sale.amount") >= usd(50), rk.SingleSided(referrer=ten)),
        "when (All of 3)": when(
            All(
                [
                    Attr("sale.amount") >= usd(50),
                    Attr("referral.channel").in_(["email", "sms"]),
                    Attr("sale.metadata.campaign") == "spring",
                ]
            ),
            rk.SingleSided(referrer=ten),
        ),
        "when (campaign, country)": when(
            All(
                [
                    Attr("referral.campaign") == "spring",
                    Attr("referee.country").in_(["DE", "AT", "CH"]),
                ]
            ),
            rk.SingleSided(referrer=ten),
        ),
        "Stack (3)": Stack(
            [rk.SingleSided(referrer=ten, name=f"s{i}") for i in range(3)], name="stack"
        ),
        "Milestones (reached)": rk.Milestones(
            [rk.Milestone(1, rk.Badge("first")), rk.Milestone(5, rk.Cash(usd(25)))]
        ),
        "PointsPolicy": rk.PointsPolicy(per_referral=100, per_unit=Decimal("1")),
        "StatusLevels": rk.StatusLevels([rk.Level("bronze", 1), rk.Level("gold", 10)]),
        "RollingStatusLevels": rk.RollingStatusLevels(
            [rk.Level("bronze", 1), rk.Level("gold", 10)], window=relativedelta(months=12)
        ),
        "FirstMatch (3, last)": FirstMatch(
            [
                when(Attr("sale.amount") >= usd(5000), rk.SingleSided(referrer=ten, name="a")),
                when(Attr("referral.channel") == "sms", rk.SingleSided(referrer=ten, name="b")),
                rk.SingleSided(referrer=ten, name="c"),
            ]
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing")
    parser.add_argument("--repeat", type=int, default=5, help="timings; the best is shown")
    args = parser.parse_args(argv)
    ctx = context()
    rows = []
    for name, policy in policies().items():
        best = min(
            timeit.repeat(lambda p=policy: p.evaluate(ctx), number=args.number, repeat=args.repeat)
        )
        grants = len(policy.evaluate(ctx).grants)
        rows.append((name, best / args.number * 1e6, grants))
    # The engine's caps and budget step on a double-sided purchase (every cap declared).
    grants = rk.DoubleSided(referrer=rk.Cash(usd(30)), referee=rk.Credit(usd(10))).evaluate(ctx)
    caps = rk.Caps(
        per_referral=usd(100),
        per_referrer=usd(200),
        per_referrer_day=usd(40),
        per_referrer_week=usd(100),
        per_referrer_month=usd(150),
        per_referee=usd(50),
    )
    spent = {key: Decimal(20) for key in _spend_keys(caps, ctx)}

    def limit() -> object:
        return apply_limits(
            grants.grants,
            caps=caps,
            budget=usd(10_000),
            referral_id="ref",
            at=ctx.event.at,
            zone=UTC,
            spent=spent,
            program_spent=Decimal(500),
        )

    best = min(timeit.repeat(limit, number=args.number, repeat=args.repeat))
    plan = apply_limits(
        grants.grants,
        caps=caps,
        budget=usd(10_000),
        referral_id="ref",
        at=ctx.event.at,
        zone=UTC,
        spent=spent,
        program_spent=Decimal(500),
    )
    rows.append(("caps + budget (apply_limits)", best / args.number * 1e6, len(plan.grants)))
    # The engine's conversion of a purchase in another currency (3 line items), done once
    # per such purchase before the policies run; a purchase in the program currency skips it.
    purchase = ctx.event
    assert isinstance(purchase, rk.Purchase)
    rate = rk.Rate(Decimal("0.9212"), START)

    def conversion() -> object:
        return convert_purchase(purchase, rate, "EUR", "ROUND_HALF_UP")

    best = min(timeit.repeat(conversion, number=args.number, repeat=args.repeat))
    rows.append(("convert_purchase (3 items)", best / args.number * 1e6, 0))
    width = max(len(r[0]) for r in rows)
    print(f"{'policy':<{width}}  {'us/evaluate':>11}  {'grants':>6}")
    print(f"{'-' * width}  {'-' * 11}  {'-' * 6}")
    for name, micros, grants in rows:
        print(f"{name:<{width}}  {micros:>11.2f}  {grants:>6}")


if __name__ == "__main__":
    main()
