"""PointsPolicy: earning, FIFO redemption, expiry, and redeeming more than the balance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit.testing import check_all

START = datetime(2026, 1, 5, 12, tzinfo=UTC)
POINTS = rk.PointsPolicy(
    per_referral=100,
    per_unit=Decimal("1"),
    trigger=rk.Trigger.EVERY_PURCHASE,
    expires_after=relativedelta(months=6),
    redeem_rate=rk.Money("0.01", "USD"),
)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def make(policy: rk.PointsPolicy = POINTS) -> rk.Engine:
    program = rk.Program(
        id="pts", effective_at=START - timedelta(days=30), currency="USD", policies=[policy]
    )
    return rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))


def buy(engine: rk.Engine, n: int, amount: str, at: datetime, who: str = "f0") -> rk.Outcome:
    if engine.referral_of(who) is None:
        code = engine.issue_code("alice")
        engine.handle(rk.Signup(event_id=f"s-{who}", participant_id=who, code=code, at=at))
    return engine.handle(
        rk.Purchase(
            event_id=f"p{n}", participant_id=who, order_id=f"o{n}", amount=usd(amount), at=at
        )
    )


def test_points_are_earned_per_referral_and_per_currency_unit_rounded_down():
    engine = make()
    outcome = buy(engine, 0, "49.99", START)
    assert [g.value for g in outcome.grants] == [rk.Points(149)]
    assert engine.points("alice").pending == 149
    assert engine.points("alice").available == 0


def test_redeeming_takes_the_oldest_points_first_and_gives_the_rate_value():
    engine = make()
    buy(engine, 0, "100", START)  # 200 points
    buy(engine, 1, "50", START + timedelta(days=1))  # 150 points
    engine.settle(START + timedelta(days=2))
    redemption = engine.redeem("alice", 250, at=START + timedelta(days=3))
    assert redemption.value == rk.Credit(usd("2.50"))
    views = engine.rewards_for("alice")
    assert [v.outstanding for v in views] == [Decimal(0), Decimal(100)]
    account = engine.points("alice", at=START + timedelta(days=3))
    assert (account.available, account.redeemed) == (100, 250)
    notes = [n for n in engine.store.dump()["outbox"] if n.kind == "points_redeemed"]
    assert [dict(n.data)["value"] for n in notes] == ["2.50 USD credit"]
    assert engine.balance("alice")[rk.Unit("points", "points")].available == Decimal(100)


def test_redeeming_more_than_the_balance_is_an_error_that_writes_nothing():
    engine = make()
    buy(engine, 0, "10", START)  # 110 points
    engine.settle(START + timedelta(days=1))
    before = engine.store.dump()
    with pytest.raises(rk.InsufficientPointsError) as info:
        engine.redeem("alice", 111, at=START + timedelta(days=1))
    assert (info.value.requested, info.value.available, info.value.account) == (111, 110, "points")
    assert str(info.value) == "points=111: exceeds the 110 available points in account 'points'"
    assert isinstance(info.value, ValueError)
    assert engine.store.dump() == before


def test_pending_points_cannot_be_redeemed():
    engine = make()
    buy(engine, 0, "10", START)
    with pytest.raises(rk.InsufficientPointsError):
        engine.redeem("alice", 1, at=START + timedelta(days=1))


def test_points_expire_after_the_duration_and_expiry_is_written_on_redemption():
    engine = make()
    buy(engine, 0, "100", START)  # 200 points, expire 2026-07-05 12:00
    buy(engine, 1, "0.50", START + timedelta(days=60))  # 100 points
    engine.settle(START + timedelta(days=61))
    later = datetime(2026, 7, 5, 12, tzinfo=UTC)
    assert engine.points("alice", at=later - timedelta(seconds=1)).available == 300
    account = engine.points("alice", at=later)
    assert (account.available, account.expired) == (100, 200)
    assert account.next_expiry == START + timedelta(days=60) + relativedelta(months=6)
    redemption = engine.redeem("alice", 100, at=later)
    assert redemption.expired == 200
    kinds = [e.kind for v in engine.rewards_for("alice") for e in v.entries]
    assert kinds.count(rk.EntryKind.EXPIRED) == 1
    assert kinds.count(rk.EntryKind.REDEEMED) == 1
    assert engine.points("alice", at=later).available == 0


def test_the_same_redemption_asked_twice_spends_once():
    engine = make()
    buy(engine, 0, "100", START)
    engine.settle(START + timedelta(days=1))
    at = START + timedelta(days=2)
    first = engine.redeem("alice", 50, at=at)
    assert engine.redeem("alice", 50, at=at) == first
    assert engine.points("alice", at=at).available == 150


def test_a_refund_after_redemption_reverses_only_the_points_left():
    engine = make()
    buy(engine, 0, "100", START)  # 200 points
    engine.settle(START + timedelta(days=1))
    engine.redeem("alice", 150, at=START + timedelta(days=2))
    outcome = engine.handle(
        rk.Refund(
            event_id="r0", refund_id="r0", order_id="o0", amount=usd(100), at=START + timedelta(3)
        )
    )
    assert [r.quantity for r in outcome.reversals] == [Decimal(50)]
    (view,) = engine.rewards_for("alice")
    assert view.outstanding == 0
    assert view.state is rk.RewardState.REVERSED
    check_all(engine.store, engine)


def test_redeeming_an_account_without_a_rate_is_refused():
    engine = make(rk.PointsPolicy(per_referral=10))
    with pytest.raises(rk.InvalidProgramError, match="redeem_rate"):
        engine.redeem("alice", 1)
    with pytest.raises(rk.InvalidProgramError, match="account"):
        engine.redeem("alice", 1, account="miles")
    with pytest.raises(rk.InvalidInputError, match="points"):
        engine.redeem("alice", 0)


def config(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "c",
        "effective_at": "2026-01-05T00:00:00+00:00",
        "currency": "USD",
        "policies": [policy],
    }


def test_points_policy_round_trips_through_config():
    p = rk.Program.from_dict(
        config(
            {
                "type": "points",
                "per_referral": 100,
                "per_unit": "1",
                "trigger": "every_purchase",
                "expires_after": {"months": 6},
                "redeem_rate": "0.01",
            }
        )
    )
    assert p.policies == (POINTS,)
    assert rk.Program.from_dict(p.to_dict()) == p


@pytest.mark.parametrize(
    ("policy", "field", "problem"),
    [
        ({"type": "points", "per_unit": "-1"}, "policies[0].per_unit", ">= 0"),
        ({"type": "points"}, "policies[0].per_referral", "give per_referral or per_unit"),
        (
            {
                "type": "points",
                "per_referral": 1,
                "redeem_rate": {"amount": "1", "currency": "EUR"},
            },
            "policies[0].redeem_rate.currency",
            "program's currency",
        ),
        (
            {"type": "points", "per_referral": 1, "redeem_as": "gold"},
            "policies[0].redeem_as",
            "must be one of",
        ),
    ],
)
def test_bad_points_config_names_the_key_path(policy: dict[str, Any], field: str, problem: str):
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program.from_dict(config(policy))
    assert info.value.field == field
    assert problem in str(info.value)


# -- batch expiry --------------------------------------------------------------------------------
def _expired_entries(engine: rk.Engine, who: str = "alice") -> list[tuple[str, Decimal, datetime]]:
    return [
        (v.reward.reward_id, e.quantity, e.at)
        for v in engine.rewards_for(who)
        for e in v.entries
        if e.kind is rk.EntryKind.EXPIRED
    ]


def test_expire_points_writes_off_lots_past_their_expiry_without_a_redemption():
    engine = make()
    buy(engine, 0, "100", START)  # 200 points, expire 2026-07-05 12:00
    buy(engine, 1, "0.50", START + timedelta(days=60))  # 100 points
    buy(engine, 2, "10", START, who="f1")  # 110 points (pending: never settled)
    engine.settle(START + timedelta(days=61) - timedelta(hours=1))  # approves f0's two lots
    expiry = datetime(2026, 7, 5, 12, tzinfo=UTC)
    assert engine.expire_points(expiry - timedelta(seconds=1)) == 0
    assert _expired_entries(engine) == []
    assert engine.expire_points(expiry) == 310  # 200 approved + 110 pending, both due
    written = _expired_entries(engine)
    assert sorted((q, at) for _, q, at in written) == [
        (Decimal(110), expiry),
        (Decimal(200), expiry),
    ]
    assert engine.expire_points(expiry) == 0  # idempotent
    notes = [n for n in engine.store.dump()["outbox"] if n.kind == "points_expired"]
    assert [(n.recipient_id, dict(n.data)) for n in notes] == [
        ("alice", {"account": "points", "points": "310"})
    ]
    assert rk.render_message(notes[0]) == "310 of your points expired unused."
    account = engine.points("alice", at=expiry)
    assert (account.available, account.expired, account.redeemed) == (100, 310, 0)
    # A redemption afterwards writes no second expiry entry.
    engine.redeem("alice", 100, at=expiry)
    assert len(_expired_entries(engine)) == 2
    check_all(engine.store, engine)


def test_expire_points_pages_through_many_lots_and_skips_used_ones():
    engine = make()
    for n in range(7):
        buy(engine, n, "1", START + timedelta(hours=n), who=f"f{n}")  # 101 points each
    engine.settle(START + timedelta(days=1))
    engine.redeem("alice", 150, at=START + timedelta(days=1))  # the first lot and 49 of the second
    later = START + timedelta(days=1) + relativedelta(months=6)
    assert engine.expire_points(later, batch_size=2) == 7 * 101 - 150
    assert len(_expired_entries(engine)) == 6  # the first lot had nothing left
    assert engine.points("alice", at=later).available == 0


def test_expire_points_does_nothing_when_no_points_expire():
    never = rk.PointsPolicy(per_referral=10, trigger=rk.Trigger.EVERY_PURCHASE)
    engine = make(never)
    buy(engine, 0, "1", START)
    assert engine.expire_points(START + relativedelta(years=50)) == 0


def test_expire_points_checks_its_arguments():
    engine = make()
    with pytest.raises(rk.InvalidInputError):
        engine.expire_points(START, batch_size=0)
    with pytest.raises(rk.NaiveDatetimeError):
        engine.expire_points(datetime(2026, 1, 1))


def test_expire_points_agrees_on_sqlite():
    def run(store: rk.Store) -> list[tuple[str, Decimal, datetime]]:
        program = rk.Program(
            id="pts", effective_at=START - timedelta(days=30), currency="USD", policies=[POINTS]
        )
        engine = rk.Engine(program, store, clock=rk.ManualClock(START))
        for n in range(3):
            buy(engine, n, "5", START + timedelta(days=n), who=f"f{n}")
        # the lots of days 0 and 1 are due, not the one of day 2
        assert engine.expire_points(START + relativedelta(months=6, days=1), batch_size=2) == 210
        return sorted(_expired_entries(engine))

    assert run(rk.InMemoryStore()) == run(rk.SQLiteStore(":memory:"))
