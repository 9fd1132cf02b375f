"""Sign-up policies in a program that binds referees at their first purchase: they pay when
the referral is made, and no refund of that purchase takes them back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import referralkit as rk
from referralkit.attribution import AttributionRules
from referralkit.testing import check_all

START = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)
CASH = rk.Unit("cash", "USD")
CREDIT = rk.Unit("credit", "USD")
STORES: dict[str, Callable[[], rk.Store]] = {
    "memory": rk.InMemoryStore,
    "sqlite": lambda: rk.SQLiteStore(":memory:"),
}


def usd(amount: int) -> rk.Money:
    return rk.Money(amount, "USD")


def make(store: rk.Store) -> rk.Engine:
    program = rk.Program(
        id="shop",
        effective_at=START - timedelta(days=30),
        currency="USD",
        policies=[
            rk.DoubleSided(rk.Cash(usd(10)), rk.Credit(usd(5))),
            rk.DoubleSided(rk.Cash(usd(1)), rk.Credit(usd(2)), trigger="signup", name="welcome"),
        ],
        attribution=AttributionRules(bind_at="first_purchase"),
    )
    return rk.Engine(program, store, clock=rk.ManualClock(START))


def purchase(who: str, n: int, code: str | None = None) -> rk.Purchase:
    return rk.Purchase(
        event_id=f"p-{who}-{n}",
        participant_id=who,
        order_id=f"o-{who}-{n}",
        amount=usd(40),
        at=START + n * DAY,
        code=code,
    )


@pytest.mark.parametrize("kind", sorted(STORES))
def test_signup_policies_pay_when_the_first_purchase_binds(kind: str) -> None:
    e = make(STORES[kind]())
    code = e.issue_code("alice")
    signup = e.handle(rk.Signup(event_id="s-bob", participant_id="bob", at=START))
    assert signup.reasons() == ("attribution.deferred",)
    outcome = e.handle(purchase("bob", 1, code))
    assert sorted((g.participant_id, str(g.value)) for g in outcome.grants) == [
        ("alice", "1.00 USD cash"),
        ("alice", "10.00 USD cash"),
        ("bob", "2.00 USD credit"),
        ("bob", "5.00 USD credit"),
    ]
    assert len(outcome.reward_ids) == 4
    welcome = [v for v in e.rewards_for("alice") if v.reward.policy == "welcome"]
    assert len(welcome) == 1
    assert welcome[0].reward.order_id is None
    assert welcome[0].reward.source_event_id == "p-bob-1"
    # a full refund of the binding purchase takes back its own rewards only
    e.handle(
        rk.Refund(
            event_id="r-1", refund_id="rf-1", order_id="o-bob-1", amount=usd(40), at=START + 2 * DAY
        )
    )
    assert e.balance("alice")[CASH].lifetime == Decimal(1)
    assert e.balance("bob")[CREDIT].lifetime == Decimal(2)
    # a later purchase does not pay the sign-up policies again
    e.handle(purchase("bob", 3))
    assert len([v for v in e.rewards_for("alice") if v.reward.policy == "welcome"]) == 1
    check_all(e.store, e)


def test_a_buyer_who_never_signed_up_earns_no_signup_reward() -> None:
    e = make(rk.InMemoryStore())
    code = e.issue_code("alice")
    outcome = e.handle(purchase("guest", 1, code))
    assert outcome.referral_id is not None
    assert {g.policy for g in outcome.grants} == {"double_sided"}
    check_all(e.store, e)


def test_a_reattributed_referral_bound_at_purchase_pays_the_signup_policies_again() -> None:
    moved, from_start = make(rk.InMemoryStore()), make(rk.InMemoryStore())
    for e, referrer in ((moved, "alice"), (from_start, "carol")):
        codes = {who: e.issue_code(who) for who in ("alice", "carol")}
        e.handle(rk.Signup(event_id="s-bob", participant_id="bob", at=START))
        e.handle(purchase("bob", 1, codes[referrer]))
    moved.reattribute("bob", "carol", actor="ops", reason="ticket")
    for who in ("alice", "bob", "carol"):
        assert moved.balance(who) == from_start.balance(who) or who == "alice", who
    assert moved.balance("alice")[CASH].lifetime == 0
    check_all(moved.store, moved)
