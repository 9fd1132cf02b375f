"""RevenueShare: a percentage of every purchase of the referee, for a while or for life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit.policies import RevenueShare

USD = "USD"
START = datetime(2026, 1, 5, tzinfo=UTC)


def shares(policy: RevenueShare, make_ctx, amount: str, **kw) -> list[str]:
    return [str(g.value) for g in policy.evaluate(make_ctx(amount, **kw)).grants]


def test_the_share_is_rounded_half_up_by_default(make_ctx):
    policy = RevenueShare(Decimal("15"))
    assert shares(policy, make_ctx, "99.90") == ["14.99 USD cash"]  # 14.985
    assert shares(policy, make_ctx, "99.90", rounding=ROUND_HALF_EVEN) == ["14.98 USD cash"]


def test_it_pays_within_the_duration_and_not_after(make_ctx):
    policy = RevenueShare("10", duration=relativedelta(days=30))
    assert shares(policy, make_ctx, "50.00", days=29) == ["5.00 USD cash"]
    result = policy.evaluate(make_ctx("50.00", days=30))
    assert result.grants == ()
    assert [d.code for d in result.decisions] == ["revenue_share.ended"]


def test_lifetime_shares_never_end(make_ctx):
    policy = RevenueShare("10", duration=None)
    assert shares(policy, make_ctx, "50.00", days=365 * 30) == ["5.00 USD cash"]


def test_it_can_pay_credit(make_ctx):
    policy = RevenueShare("10", as_=rk.Credit)
    assert shares(policy, make_ctx, "50.00") == ["5.00 USD credit"]


def test_a_share_that_rounds_to_zero_is_not_granted(make_ctx):
    result = RevenueShare("1").evaluate(make_ctx("0.49"))
    assert result.grants == ()
    assert [d.code for d in result.decisions] == ["revenue_share.too_small"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"percent": 0}, "revenue_share.percent"),
        ({"percent": "100.01"}, "revenue_share.percent"),
        ({"percent": -5}, "revenue_share.percent"),
        ({"percent": 15.0}, "revenue_share.percent"),
        ({"percent": "x"}, "revenue_share.percent"),
        ({"percent": 5, "duration": relativedelta()}, "revenue_share.duration"),
        ({"percent": 5, "duration": relativedelta(months=-1)}, "revenue_share.duration"),
        ({"percent": 5, "duration": 12}, "revenue_share.duration"),
        ({"percent": 5, "as_": rk.Points}, "revenue_share.as"),
    ],
)
def test_bad_parameters_are_refused_with_the_field(kwargs, field):
    with pytest.raises(rk.InvalidProgramError) as info:
        RevenueShare(**kwargs)
    assert info.value.field == field


def test_a_partial_refund_reverses_the_share_proportionally_through_the_engine():
    program = rk.Program(
        id="p", effective_at=START, currency=USD, policies=[RevenueShare(Decimal("15"))]
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=START))
    for n, amount in enumerate(["200.00", "80.00"]):
        engine.handle(
            rk.Purchase(
                event_id=f"p{n}",
                participant_id="bob",
                order_id=f"o{n}",
                amount=rk.Money(amount, USD),
                at=START + timedelta(days=n),
            )
        )
    cash = rk.Unit("cash", USD)
    assert engine.balance("alice")[cash].pending == Decimal("42.00")  # 30 + 12
    at = START + timedelta(days=2)
    engine.handle(
        rk.Refund(event_id="r1", refund_id="r1", order_id="o0", amount=rk.Money(50, USD), at=at)
    )
    assert engine.balance("alice")[cash].pending == Decimal("34.50")  # 15 % of 150 + 12
    engine.handle(
        rk.Refund(event_id="r2", refund_id="r2", order_id="o0", amount=rk.Money(150, USD), at=at)
    )
    assert engine.balance("alice")[cash].pending == Decimal("12.00")


# -- the commissionable base ---------------------------------------------------------------------
def _shared(base: str = "net", **parts: str) -> list[str]:
    from datetime import UTC, datetime

    at = datetime(2026, 1, 5, tzinfo=UTC)
    program = rk.Program(
        id="base",
        effective_at=at,
        currency="USD",
        policies=[RevenueShare(Decimal("10"))],
        commissionable_base=base,
    )
    engine = rk.Engine(program, rk.InMemoryStore())
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=at))
    outcome = engine.handle(
        rk.Purchase(
            event_id="p",
            participant_id="bob",
            order_id="o",
            amount=rk.Money("121.00", "USD"),
            at=at,
            **{k: rk.Money(v, "USD") for k, v in parts.items()},
        )
    )
    return [str(g.value) for g in outcome.grants]


def test_the_share_is_computed_on_the_order_net_of_tax_and_shipping():
    assert _shared(tax="16.00", shipping="5.00") == ["10.00 USD cash"]
    assert _shared(subtotal="120.00", discount="20.00", tax="21.00") == ["10.00 USD cash"]
    assert _shared() == ["12.10 USD cash"]  # no parts: the amount paid
    assert _shared("total", tax="16.00", shipping="5.00") == ["12.10 USD cash"]


def test_purchase_parts_are_checked():
    from datetime import UTC, datetime

    at = datetime(2026, 1, 5, tzinfo=UTC)
    with pytest.raises(rk.InvalidInputError, match=r"purchase\.tax"):
        rk.Purchase(
            event_id="p",
            participant_id="b",
            order_id="o",
            amount=rk.Money(10, "USD"),
            at=at,
            tax=rk.Money(-1, "USD"),
        )
    with pytest.raises(rk.InvalidInputError, match=r"purchase\.shipping"):
        rk.Purchase(
            event_id="p",
            participant_id="b",
            order_id="o",
            amount=rk.Money(10, "USD"),
            at=at,
            shipping=rk.Money(1, "EUR"),
        )
    with pytest.raises(rk.InvalidProgramError, match="commissionable_base"):
        rk.Program(
            id="x",
            effective_at=at,
            currency="USD",
            policies=[RevenueShare(Decimal("10"))],
            commissionable_base="gross",
        )
