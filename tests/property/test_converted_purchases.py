"""Purchases in another currency: grants are the policy applied to the converted amount, and
a full refund takes back exactly what the purchase gave, at the order's recorded rate."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit._values.money import ROUNDING_MODES
from referralkit.policies import RevenueShare
from referralkit.testing import check_all
from referralkit.testing.strategies import Deliver, catalogue_programs, event_streams, rates

START = datetime(2026, 3, 2, tzinfo=UTC)
PAIRS = [("EUR", "USD"), ("JPY", "USD"), ("USD", "JPY"), ("BHD", "EUR"), ("EUR", "BHD")]


class _Table:
    def __init__(self, rate: rk.Rate) -> None:
        self.value = rate
        self.calls = 0

    def rate(self, base: str, quote: str, on: datetime) -> rk.Rate:
        self.calls += 1
        return self.value


@st.composite
def _refund_splits(draw: st.DrawFn, total: int) -> list[int]:
    """Whole-minor-unit refunds that add up to ``total``."""
    cuts = sorted(draw(st.lists(st.integers(1, max(total - 1, 1)), max_size=4, unique=True)))
    points = [0, *(c for c in cuts if 0 < c < total), total]
    return [b - a for a, b in itertools.pairwise(points) if b > a]


@given(
    pair=st.sampled_from(PAIRS),
    rate=rates(max_places=6),
    minor=st.integers(1, 10**9),
    percent=st.integers(1, 100),
    rounding=st.sampled_from(sorted(ROUNDING_MODES)),
    data=st.data(),
)
def test_a_converted_purchase_then_a_full_refund_nets_to_zero(
    pair, rate, minor, percent, rounding, data
):
    """The grant is the share of the converted amount to the minor unit; refunds in any
    parts reverse it exactly, and the referrer's revenue counter returns to zero."""
    source, program_currency = pair
    program = rk.Program(
        id="fx",
        effective_at=START,
        currency=program_currency,
        policies=[RevenueShare(Decimal(percent))],
        rounding=rounding,
    )
    port = _Table(rate)
    engine = rk.Engine(
        program, rk.InMemoryStore(), clock=rk.ManualClock(START), exchange_rates=port
    )
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=START))
    amount = rk.Money.from_minor(minor, source)
    at = START + timedelta(days=1)
    outcome = engine.handle(
        rk.Purchase(event_id="p", participant_id="bob", order_id="o", amount=amount, at=at)
    )
    converted = rk.Money.rounded(amount.amount * rate.value, program_currency, rounding)
    expected = converted.percent_of(Decimal(percent), rounding)
    unit = rk.Unit("cash", program_currency)
    if expected.is_zero():
        assert outcome.grants == ()
    else:
        assert [g.value for g in outcome.grants] == [rk.Cash(expected)]
        assert engine.rewards_for("alice")[0].reward.exchange_rate == rate
    key = ("fx", "referrer.revenue_referred", "alice")
    with engine.store.unit_of_work() as uow:
        assert uow.counters.get([key])[key] == converted.amount
    for n, part in enumerate(data.draw(_refund_splits(minor), label="refunds")):
        engine.handle(
            rk.Refund(
                event_id=f"r{n}",
                refund_id=f"r{n}",
                order_id="o",
                amount=rk.Money.from_minor(part, source),
                at=at + timedelta(hours=n + 1),
            )
        )
        left = engine.balance("alice")[unit].pending
        assert 0 <= left <= expected.amount
    assert engine.balance("alice")[unit].pending == 0
    assert port.calls == 1
    with engine.store.unit_of_work() as uow:
        assert uow.counters.get([key])[key] == 0


def _in_dollars(money: rk.Money) -> rk.Money:
    """A yen amount as the dollar amount that converts back to it exactly at 100 JPY/USD."""
    return rk.Money(money.amount / 100, "USD")


def _dollar_event(event: rk.Event) -> rk.Event:
    if isinstance(event, rk.Purchase):
        parts = {
            name: _in_dollars(getattr(event, name))
            for name in ("subtotal", "discount", "tax", "shipping")
            if getattr(event, name) is not None
        }
        items = tuple(
            attrs.evolve(item, unit_price=_in_dollars(item.unit_price)) for item in event.items
        )
        return attrs.evolve(event, amount=_in_dollars(event.amount), items=items, **parts)
    if isinstance(event, rk.Refund):
        return attrs.evolve(event, amount=_in_dollars(event.amount))
    return event


@given(event_streams(catalogue_programs(currency="JPY")))
def test_a_converted_stream_earns_what_the_same_stream_in_the_program_currency_earns(scenario):
    """Every catalogue program, fed an event stream in dollars converted at an exact rate,
    grants and reverses exactly what it does fed the same stream in its own currency (yen):
    policies, conditions, caps, the minimum order and refunds all see the converted
    amounts, and only the recorded rate tells the two ledgers apart."""

    def engine(rates: rk.ExchangeRates | None) -> rk.Engine:
        numbers = itertools.count(1)
        return rk.Engine(
            scenario.program,
            rk.InMemoryStore(),
            clock=rk.ManualClock(scenario.start),
            code_factory=lambda: f"K{next(numbers):07d}",
            exchange_rates=rates,
        )

    native = engine(None)
    scenario.play(native)
    steps = tuple(
        attrs.evolve(step, event=_dollar_event(step.event)) if isinstance(step, Deliver) else step
        for step in scenario.steps
    )
    dollars = attrs.evolve(scenario, steps=steps)
    converted = engine(rk.FixedRates({("USD", "JPY"): "100"}))
    dollars.play(converted)
    mine, theirs = converted.store.dump(), native.store.dump()

    def facts(reward: rk.Reward) -> tuple[object, ...]:
        return (reward.reward_id, reward.participant_id, reward.value, reward.policy)

    assert [facts(r) for r in mine["rewards"]] == [facts(r) for r in theirs["rewards"]]
    assert mine["entries"] == theirs["entries"]
    # Every counter agrees, except how much of each order was refunded: that one is kept in
    # the order's own currency (dollars here).
    refunded = {k: v * 100 for k, v in mine["counters"] if k[1] == "order.reversed"}
    others = [(k, v) for k, v in mine["counters"] if k[1] != "order.reversed"]
    assert others == [(k, v) for k, v in theirs["counters"] if k[1] != "order.reversed"]
    assert refunded == {k: v for k, v in theirs["counters"] if k[1] == "order.reversed"}
    check_all(converted.store, converted)
    for reward in mine["rewards"]:
        if reward.order_id is not None:
            assert reward.exchange_rate is not None
            assert reward.exchange_rate.value == 100
