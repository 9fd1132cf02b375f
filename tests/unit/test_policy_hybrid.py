"""Hybrid: a fixed amount on the referee's first purchase plus a share of every purchase."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit.policies import Hybrid

USD = "USD"
START = datetime(2026, 1, 5, tzinfo=UTC)
HYBRID = Hybrid(fixed=rk.Cash(rk.Money(20, USD)), percent=Decimal("10"))


def test_the_first_purchase_earns_the_fixed_amount_and_the_share(make_ctx):
    grants = HYBRID.evaluate(make_ctx("80.00")).grants
    assert [str(g.value) for g in grants] == ["20.00 USD cash", "8.00 USD cash"]


def test_later_purchases_earn_the_share_only(make_ctx):
    ctx = make_ctx("80.00", counters={rk.Counter.REFEREE_PURCHASES: 1})
    assert [str(g.value) for g in HYBRID.evaluate(ctx).grants] == ["8.00 USD cash"]


def test_the_share_ends_with_the_duration(make_ctx):
    policy = Hybrid(fixed=rk.Credit(rk.Money(5, USD)), percent=10, duration=relativedelta(days=7))
    ctx = make_ctx("80.00", days=7, counters={rk.Counter.REFEREE_PURCHASES: 1})
    assert policy.evaluate(ctx).grants == ()
    assert policy.trigger is rk.Trigger.EVERY_PURCHASE
    assert policy.needs() == {rk.Counter.REFEREE_PURCHASES}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"fixed": rk.Money(20, USD), "percent": 10}, "hybrid.fixed"),
        ({"fixed": rk.Cash(rk.Money(20, USD)), "percent": 0}, "hybrid.percent"),
        ({"fixed": rk.Cash(rk.Money(20, USD)), "percent": 5, "as_": "points"}, "hybrid.as"),
    ],
)
def test_bad_parameters_are_refused_with_the_field(kwargs, field):
    with pytest.raises(rk.InvalidProgramError) as info:
        Hybrid(**kwargs)
    assert info.value.field == field


def test_through_the_engine_the_fixed_amount_is_paid_once():
    program = rk.Program(id="p", effective_at=START, currency=USD, policies=[HYBRID])
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=START))
    for n in range(2):
        engine.handle(
            rk.Purchase(
                event_id=f"p{n}",
                participant_id="bob",
                order_id=f"o{n}",
                amount=rk.Money(80, USD),
                at=START + timedelta(days=n),
            )
        )
    assert engine.balance("alice")[rk.Unit("cash", USD)].pending == Decimal("36.00")
