"""Purchases in another currency, converted through the ExchangeRates port."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

import referralkit as rk
from referralkit.policies import PerItem, RevenueShare
from referralkit.testing import check_all

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
USD = rk.Unit("cash", "USD")
REVENUE = ("fx", "referrer.revenue_referred", "alice")


class CountingRates:
    """A port that answers from a table and counts its calls; the table may change."""

    def __init__(self, rates: dict[tuple[str, str], str], on: date | None = None) -> None:
        self.rates = rates
        self.on = on
        self.calls: list[tuple[str, str, datetime]] = []

    def rate(self, base: str, quote: str, on: datetime) -> rk.Rate | None:
        self.calls.append((base, quote, on))
        value = self.rates.get((base, quote))
        return None if value is None else rk.Rate(Decimal(value), self.on or on.date())


def _engine(
    policies: list[object] | None = None,
    *,
    rates: object = None,
    store: rk.Store | None = None,
    **program: object,
) -> rk.Engine:
    definition = rk.Program(
        id="fx",
        effective_at=START,
        currency="USD",
        policies=policies if policies is not None else [RevenueShare(Decimal("15"))],
        **program,  # type: ignore[arg-type]
    )
    engine = rk.Engine(
        definition,
        store if store is not None else rk.InMemoryStore(),
        clock=rk.ManualClock(START),
        exchange_rates=rates,  # type: ignore[arg-type]
    )
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=START))
    return engine


def _buy(engine: rk.Engine, amount: str, currency: str = "EUR", n: int = 1, **kw) -> rk.Outcome:
    return engine.handle(
        rk.Purchase(
            event_id=f"p{n}",
            participant_id="bob",
            order_id=f"o{n}",
            amount=rk.Money(amount, currency),
            at=START + timedelta(days=n),
            **kw,
        )
    )


def _refund(engine: rk.Engine, amount: str, n: int, order: int = 1, currency: str = "EUR"):
    return engine.handle(
        rk.Refund(
            event_id=f"r{n}",
            refund_id=f"r{n}",
            order_id=f"o{order}",
            amount=rk.Money(amount, currency),
            at=START + timedelta(days=10 + n),
        )
    )


def _counter(engine: rk.Engine, key: tuple[str, str, str]) -> Decimal:
    with engine.store.unit_of_work() as uow:
        return uow.counters.get([key])[key]


def test_without_a_port_a_purchase_in_another_currency_is_still_a_currency_mismatch():
    engine = _engine()
    before = engine.store.dump()
    with pytest.raises(rk.CurrencyMismatchError) as info:
        _buy(engine, "100.00")
    assert type(info.value) is rk.CurrencyMismatchError
    assert info.value.field == "purchase.amount"
    assert "exchange_rates" in str(info.value)
    assert engine.store.dump() == before


def test_a_converted_purchase_earns_the_policy_on_the_converted_amount():
    engine = _engine(rates=rk.FixedRates({("EUR", "USD"): "1.0850"}))
    outcome = _buy(engine, "100.00")
    # 100.00 EUR x 1.0850 = 108.50 USD; 15 % = 16.275 -> 16.28 (half up)
    assert [str(g.value) for g in outcome.grants] == ["16.28 USD cash"]
    converted = [d for d in outcome.decisions if d.code == "purchase.converted"]
    assert len(converted) == 1
    assert dict(converted[0].params) == {
        "amount": "100.00 EUR",
        "converted": "108.50 USD",
        "rate": "1.0850",
        "rate_on": "2026-03-03",
    }


def test_the_rate_and_its_date_are_recorded_on_the_grant_and_the_order():
    rates = rk.FixedRates({("EUR", "USD"): "1.0850"}, on=date(2026, 2, 27))
    engine = _engine(rates=rates)
    _buy(engine, "100.00")
    (view,) = engine.rewards_for("alice")
    assert view.reward.exchange_rate == rk.Rate(Decimal("1.0850"), date(2026, 2, 27))
    assert view.reward.base_amount == rk.Money("100.00", "EUR")  # the order's own currency
    with engine.store.unit_of_work() as uow:
        order = uow.orders.get("fx", "o1")
    assert order is not None
    assert order.amount == rk.Money("100.00", "EUR")
    assert order.exchange_rate == view.reward.exchange_rate
    assert _counter(engine, REVENUE) == Decimal("108.50")


def test_a_purchase_in_the_program_currency_never_asks_the_port():
    rates = CountingRates({("EUR", "USD"): "1.1"})
    engine = _engine(rates=rates)
    outcome = _buy(engine, "100.00", "USD")
    assert [str(g.value) for g in outcome.grants] == ["15.00 USD cash"]
    assert rates.calls == []
    (view,) = engine.rewards_for("alice")
    assert view.reward.exchange_rate is None


def test_refunds_are_converted_at_the_orders_rate_and_reverse_the_grant_exactly():
    rates = CountingRates({("EUR", "USD"): "1.0850"})
    engine = _engine(rates=rates)
    _buy(engine, "99.99")  # 108.489... -> 108.49 USD; 15 % -> 16.27
    assert rates.calls
    assert len(rates.calls) == 1
    rates.rates[("EUR", "USD")] = "2.0000"  # today's rate no longer matters
    cash = engine.balance("alice")[USD]
    assert cash.pending == Decimal("16.27")
    _refund(engine, "33.33", 1)
    _refund(engine, "33.33", 2)
    # reversed: 16.27 x 66.66 / 99.99 = 10.846... -> 10.85; left 5.42
    assert engine.balance("alice")[USD].pending == Decimal("5.42")
    _refund(engine, "33.33", 3)
    assert engine.balance("alice")[USD].pending == Decimal("0.00")
    assert len(rates.calls) == 1  # refunds never ask the port
    assert _counter(engine, REVENUE) == Decimal(0)


def test_a_refund_must_be_in_the_orders_currency():
    engine = _engine(rates=rk.FixedRates({("EUR", "USD"): "1.0850"}))
    _buy(engine, "100.00")
    before = engine.store.dump()
    with pytest.raises(rk.CurrencyMismatchError) as info:
        _refund(engine, "10.00", 1, currency="USD")
    assert info.value.field == "refund.amount"
    assert engine.store.dump() == before


def test_a_missing_pair_is_an_exchange_rate_error_and_writes_nothing():
    engine = _engine(rates=rk.FixedRates({("GBP", "USD"): "1.27"}))
    before = engine.store.dump()
    with pytest.raises(rk.ExchangeRateError) as info:
        _buy(engine, "100.00")
    assert "EUR" in info.value.field
    assert "USD" in info.value.field
    assert isinstance(info.value, rk.CurrencyMismatchError)
    assert engine.store.dump() == before


class _Returns:
    def __init__(self, value: object) -> None:
        self.value = value

    def rate(self, base: str, quote: str, on: datetime) -> object:
        return self.value


class _Builds:
    def __init__(self, value: object) -> None:
        self.value = value

    def rate(self, base: str, quote: str, on: datetime) -> rk.Rate:
        return rk.Rate(self.value, on.date())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "port",
    [
        _Returns(Decimal("1.1")),  # not a Rate
        _Returns("1.1"),
        _Builds(Decimal(0)),
        _Builds(Decimal("-1.1")),
        _Builds("NaN"),
        _Builds(1.1),  # a float
    ],
)
def test_a_bad_rate_is_an_exchange_rate_error_and_writes_nothing(port):
    engine = _engine(rates=port)
    before = engine.store.dump()
    with pytest.raises(rk.ExchangeRateError):
        _buy(engine, "100.00")
    assert engine.store.dump() == before


def test_an_engine_refuses_an_exchange_rates_without_a_rate_method():
    program = rk.Program(
        id="fx", effective_at=START, currency="USD", policies=[RevenueShare(Decimal("1"))]
    )
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Engine(program, rk.InMemoryStore(), exchange_rates=object())  # type: ignore[arg-type]
    assert info.value.field == "exchange_rates"


def test_conversion_rounds_with_the_programs_mode():
    # 0.125 EUR... as an amount of 1.25 x 0.5 = 0.625 USD: half up 0.63, half even 0.62
    up = _engine(rates=rk.FixedRates({("EUR", "USD"): "0.5"}), min_order=None)
    even = _engine(rates=rk.FixedRates({("EUR", "USD"): "0.5"}), rounding=ROUND_HALF_EVEN)
    for engine in (up, even):
        _buy(engine, "1.25")
    assert _counter(up, REVENUE) == Decimal("0.63")
    assert _counter(even, REVENUE) == Decimal("0.62")


def test_the_minimum_order_is_compared_with_the_converted_amount():
    rates = rk.FixedRates({("JPY", "USD"): "0.0067"})
    engine = _engine(rates=rates, min_order=rk.Money(50, "USD"))
    small = _buy(engine, "7000", "JPY", n=1)  # 46.90 USD
    assert "qualify.below_minimum" in small.reasons()
    big = _buy(engine, "8000", "JPY", n=2)  # 53.60 USD -> 15 % = 8.04
    assert [str(g.value) for g in big.grants] == ["8.04 USD cash"]


def test_line_items_and_parts_are_converted_for_per_item_and_net_base_policies():
    rates = rk.FixedRates({("EUR", "USD"): "1.10"})
    per_item = PerItem(referrer=rk.Cash(rk.Money(5, "USD")), skus={"hat"})
    engine = _engine([per_item, RevenueShare(Decimal("10"), name="share")], rates=rates)
    outcome = _buy(
        engine,
        "60.00",
        items=(
            rk.LineItem(sku="hat", quantity=2, unit_price=rk.Money("20.00", "EUR")),
            rk.LineItem(sku="scarf", unit_price=rk.Money("15.00", "EUR")),
        ),
        tax=rk.Money("5.00", "EUR"),
    )
    values = sorted(str(g.value) for g in outcome.grants)
    # two hats (5 USD each, one grant); 10 % of (60 - 5) EUR x 1.10 = 60.50 USD -> 6.05
    assert values == ["10.00 USD cash", "6.05 USD cash"]


def test_convert_purchase_converts_every_amount_and_line_item():
    from referralkit._values.rates import convert_purchase

    purchase = rk.Purchase(
        event_id="p",
        participant_id="bob",
        order_id="o",
        amount=rk.Money("60.00", "EUR"),
        at=START,
        items=(rk.LineItem(sku="hat", quantity=2, unit_price=rk.Money("20.01", "EUR")),),
        subtotal=rk.Money("58.00", "EUR"),
        discount=rk.Money("3.00", "EUR"),
        tax=rk.Money("5.00", "EUR"),
    )
    out = convert_purchase(purchase, rk.Rate("110", START), "JPY", "ROUND_HALF_UP")
    assert out.amount == rk.Money(6600, "JPY")
    assert out.items[0].unit_price == rk.Money(2201, "JPY")  # 2201.1
    assert (out.subtotal, out.discount, out.tax, out.shipping) == (
        rk.Money(6380, "JPY"),
        rk.Money(330, "JPY"),
        rk.Money(550, "JPY"),
        None,
    )
    assert (out.event_id, out.order_id, out.at) == (purchase.event_id, purchase.order_id, START)


def test_quote_converts_without_writing():
    engine = _engine(rates=rk.FixedRates({("EUR", "USD"): "1.0850"}))
    before = engine.store.dump()
    outcome = engine.quote(
        rk.Purchase(
            event_id="q",
            participant_id="bob",
            order_id="oq",
            amount=rk.Money("100.00", "EUR"),
            at=START,
        )
    )
    assert [str(g.value) for g in outcome.grants] == ["16.28 USD cash"]
    assert engine.store.dump() == before


def test_a_backfilled_converted_order_earns_at_its_recorded_rate():
    rates = CountingRates({("EUR", "USD"): "1.0850"})
    program = rk.Program(
        id="fx", effective_at=START, currency="USD", policies=[RevenueShare(Decimal("15"))]
    )
    engine = rk.Engine(
        program, rk.InMemoryStore(), clock=rk.ManualClock(START), exchange_rates=rates
    )
    engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", at=START))
    _buy(engine, "100.00")  # not referred: recorded with its rate
    rates.rates[("EUR", "USD")] = "3"
    engine.reattribute(
        "bob", "alice", actor="ops", reason="ticket 7", now=START + timedelta(days=3)
    )
    (view,) = engine.rewards_for("alice")
    assert str(view.reward.value) == "16.28 USD cash"
    assert view.reward.exchange_rate is not None
    assert view.reward.exchange_rate.value == Decimal("1.0850")
    assert _counter(engine, REVENUE) == Decimal("108.50")


def test_sqlite_records_the_same_ledger_as_memory():
    def run(store: rk.Store) -> list[rk.Reward]:
        engine = _engine(rates=rk.FixedRates({("EUR", "USD"): "1.0850"}), store=store)
        _buy(engine, "99.99")
        _refund(engine, "10.00", 1)
        return [v.reward for v in engine.rewards_for("alice")]

    memory, sqlite = run(rk.InMemoryStore()), run(rk.SQLiteStore(":memory:"))
    assert memory == sqlite
    assert sqlite[0].exchange_rate == rk.Rate(Decimal("1.0850"), date(2026, 3, 3))


# -- FixedRates and Rate -------------------------------------------------------------------------
def test_fixed_rates_answer_only_the_pairs_given():
    rates = rk.FixedRates({("EUR", "USD"): "1.0850"})
    at = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)
    assert rates.rate("EUR", "USD", at) == rk.Rate(Decimal("1.0850"), date(2026, 5, 1))
    assert rates.rate("USD", "EUR", at) is None  # never inverted
    assert rates.rate("GBP", "USD", at) is None
    assert isinstance(rates, rk.ExchangeRates)


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ({("EUR", "USD"): "-1"}, rk.ExchangeRateError),
        ({("EUR", "USD"): 0}, rk.ExchangeRateError),
        ({("EUR", "USD"): 1.08}, rk.ExchangeRateError),
        ({("EUR", "USD"): "0.0000000000001"}, rk.ExchangeRateError),  # 13 places
        ({("EUR", "USD"): "1000000000000"}, rk.ExchangeRateError),
        ({("EUR", "EUR"): "1"}, rk.InvalidInputError),
        ({("EUR", "XYZ"): "1"}, rk.InvalidInputError),
        ({"EURUSD": "1"}, rk.InvalidInputError),
        ([("EUR", "USD", "1")], rk.InvalidInputError),
    ],
)
def test_fixed_rates_refuse_a_bad_table(table, error):
    with pytest.raises(error):
        rk.FixedRates(table)


def test_a_rate_takes_an_aware_datetime_as_its_date_and_refuses_a_naive_one():
    assert rk.Rate("1.5", datetime(2026, 1, 2, 12, tzinfo=UTC)).on == date(2026, 1, 2)
    with pytest.raises(rk.ExchangeRateError):
        rk.Rate("1.5", datetime(2026, 1, 2, 12))
    with pytest.raises(rk.ExchangeRateError):
        rk.Rate("1.5", "2026-01-02")


def test_a_repeated_order_id_is_a_no_op_without_asking_the_port_again():
    rates = CountingRates({("EUR", "USD"): "1.0850"})
    engine = _engine(rates=rates)
    _buy(engine, "100.00")
    del rates.rates[("EUR", "USD")]  # the rate is gone: a repeat must not need it
    repeat = engine.handle(
        rk.Purchase(
            event_id="p1-again",
            participant_id="bob",
            order_id="o1",
            amount=rk.Money("100.00", "EUR"),
            at=START + timedelta(days=1),
        )
    )
    assert repeat.reasons() == ("order.repeated",)
    assert len(rates.calls) == 1


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_moving_a_converted_referral_earns_again_at_the_orders_recorded_rate(store: str):
    """Re-attribution of an existing referral prices its converted orders at the rate they
    were recorded with (not today's), and a refund after the move reverses exactly; the
    revenue referred moves from the old referrer to the new one in program currency."""
    rates = CountingRates({("EUR", "USD"): "1.0850"})
    engine = _engine(
        rates=rates, store=rk.InMemoryStore() if store == "memory" else rk.SQLiteStore()
    )
    engine.issue_code("carol")
    _buy(engine, "100.00")  # bob is alice's: 16.28 USD
    _refund(engine, "40.00", 1)  # before the move: 40 % of the order back
    rates.rates[("EUR", "USD")] = "3"  # today's rate must not be used
    engine.reattribute(
        "bob", "carol", actor="ops", reason="ticket 8", now=START + timedelta(days=20)
    )
    carol = [v for v in engine.rewards_for("carol") if v.reward.order_id == "o1"]
    assert [str(v.reward.value) for v in carol] == ["16.28 USD cash"]
    assert carol[0].reward.exchange_rate is not None
    assert carol[0].reward.exchange_rate.value == Decimal("1.0850")
    alice_revenue = REVENUE
    carol_revenue = ("fx", "referrer.revenue_referred", "carol")
    # 108.50 USD paid, 40.00 EUR = 43.40 USD refunded
    assert _counter(engine, alice_revenue) == 0
    assert _counter(engine, carol_revenue) == Decimal("65.10")
    _refund(engine, "60.00", 2)  # the rest, after the move
    assert _counter(engine, carol_revenue) == 0
    assert engine.balance("carol")[USD].lifetime == 0
    assert engine.balance("alice")[USD].lifetime == 0
    check_all(engine.store, engine)
