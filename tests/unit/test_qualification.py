"""Which purchases qualify: the program's defaults (``min_order``, ``first_purchase_only``)
and a policy's own trigger, which overrides ``first_purchase_only``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import referralkit as rk

START = datetime(2026, 5, 4, tzinfo=UTC)


def usd(amount: int | str) -> rk.Money:
    return rk.Money(amount, "USD")


def engine_with(store: rk.Store, **terms: object) -> tuple[rk.Engine, str]:
    program = rk.Program(
        id="q",
        effective_at=START,
        currency="USD",
        policies=[
            rk.SingleSided(referrer=rk.Cash(usd(20)), name="welcome_bonus"),
            rk.SingleSided(
                referrer=rk.Cash(usd(2)), trigger=rk.Trigger.EVERY_PURCHASE, name="loyalty"
            ),
        ],
        **terms,  # type: ignore[arg-type]
    )
    engine = rk.Engine(program, store, clock=rk.ManualClock(START))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=START))
    return engine, code


def buy(engine: rk.Engine, n: int, amount: int) -> rk.Outcome:
    return engine.handle(
        rk.Purchase(
            event_id=f"p{n}",
            participant_id="bob",
            order_id=f"o{n}",
            amount=usd(amount),
            at=START + timedelta(days=n),
        )
    )


def paid(outcome: rk.Outcome) -> list[tuple[str, str]]:
    return [(g.policy, str(g.value)) for g in outcome.grants]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_policy_paying_on_every_purchase_overrides_first_purchase_only(store: str) -> None:
    engine, _ = engine_with(
        rk.InMemoryStore() if store == "memory" else rk.SQLiteStore(),
        first_purchase_only=True,
    )
    assert paid(buy(engine, 1, 50)) == [
        ("welcome_bonus", "20.00 USD cash"),
        ("loyalty", "2.00 USD cash"),
    ]
    second = buy(engine, 2, 50)
    assert paid(second) == [("loyalty", "2.00 USD cash")]
    assert "qualify.not_first_purchase" in [d.code for d in second.decisions]


def test_min_order_still_applies_to_every_purchase_policy() -> None:
    engine, _ = engine_with(rk.InMemoryStore(), first_purchase_only=True, min_order=usd(30))
    first = buy(engine, 1, 10)  # below the minimum: the first purchase forfeits both
    assert paid(first) == []
    assert "qualify.below_minimum" in [d.code for d in first.decisions]
    assert paid(buy(engine, 2, 40)) == [("loyalty", "2.00 USD cash")]
    assert paid(buy(engine, 3, 20)) == []


def test_without_an_every_purchase_policy_a_later_purchase_earns_nothing() -> None:
    program = rk.Program(
        id="q",
        effective_at=START,
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(usd(20)))],
        first_purchase_only=True,
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=START))
    buy(engine, 1, 10)
    second = buy(engine, 2, 50)
    assert paid(second) == []
    assert [d.code for d in second.decisions] == ["qualify.not_first_purchase"]


def test_a_backfilled_referral_qualifies_its_purchases_as_handle_does() -> None:
    """Re-attribution backfills under the same rule: the later purchases pay the
    every-purchase policy only."""
    referred, _ = engine_with(rk.InMemoryStore(), first_purchase_only=True)
    for n in (1, 2, 3):
        buy(referred, n, 50)
    program = referred.program
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", at=START))
    for n in (1, 2, 3):
        buy(engine, n, 50)
    engine.reattribute("bob", "alice", actor="ops", reason="ticket 1", now=START)
    totals = [engine.balance("alice"), referred.balance("alice")]
    cash = rk.Unit("cash", "USD")
    assert totals[0][cash].lifetime == totals[1][cash].lifetime == usd("26.00").amount


def test_a_backfill_converts_the_referral_only_where_handle_would() -> None:
    """A later purchase paid by an every-purchase policy alone does not make the referral
    successful (the first purchase, below the minimum, forfeited it), backfilled or not."""
    terms = {"first_purchase_only": True, "min_order": usd(30)}
    referred, _ = engine_with(rk.InMemoryStore(), **terms)
    for n, amount in ((1, 10), (2, 50), (3, 50)):
        buy(referred, n, amount)
    engine = rk.Engine(referred.program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", at=START))
    for n, amount in ((1, 10), (2, 50), (3, 50)):
        buy(engine, n, amount)
    engine.reattribute("bob", "alice", actor="ops", reason="ticket 2", now=START)
    cash = rk.Unit("cash", "USD")
    assert engine.balance("alice")[cash].lifetime == referred.balance("alice")[cash].lifetime
    assert referred.progress("alice").successful_referrals == 0
    assert engine.progress("alice").successful_referrals == 0
