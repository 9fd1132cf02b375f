"""Caps and the program budget: worked numbers, calendar periods, reversals, config errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest

import referralkit as rk

START = datetime(2026, 1, 5, 12, tzinfo=UTC)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def make(
    caps: rk.Caps | None = None,
    budget: rk.Money | None = None,
    *,
    referrer: str = "20",
    referee: str | None = "10",
    timezone: str = "UTC",
    trigger: rk.Trigger = rk.Trigger.FIRST_PURCHASE,
) -> rk.Engine:
    policy: rk.RewardPolicy
    if referee is None:
        policy = rk.SingleSided(referrer=rk.Cash(usd(referrer)), trigger=trigger)
    else:
        policy = rk.DoubleSided(
            referrer=rk.Cash(usd(referrer)), referee=rk.Credit(usd(referee)), trigger=trigger
        )
    program = rk.Program(
        id="capped",
        effective_at=START - timedelta(days=30),
        currency="USD",
        policies=[policy],
        timezone=timezone,
        caps=caps or rk.Caps(),
        budget=budget,
    )
    return rk.Engine(
        program, rk.InMemoryStore(), code_factory=iter(["ALICE001", "BOB00001"]).__next__
    )


def refer(
    engine: rk.Engine, n: int, *, at: datetime = START, amount: str = "50", code: str | None = None
) -> rk.Outcome:
    code = code or engine.issue_code("alice")
    engine.handle(rk.Signup(event_id=f"s{n}", participant_id=f"f{n}", code=code, at=at))
    return engine.handle(
        rk.Purchase(
            event_id=f"p{n}", participant_id=f"f{n}", order_id=f"o{n}", amount=usd(amount), at=at
        )
    )


def cash_of(engine: rk.Engine, who: str = "alice") -> Decimal:
    return engine.balance(who)[rk.Unit("cash", "USD")].lifetime


def test_a_per_referrer_cap_clamps_the_grant_that_crosses_it_and_skips_the_rest():
    engine = make(rk.Caps(per_referrer=usd(50)), referee=None)
    granted = [refer(engine, n).grants for n in range(4)]
    assert [g[0].value for g in granted[:3]] == [
        rk.Cash(usd(20)),
        rk.Cash(usd(20)),
        rk.Cash(usd(10)),
    ]
    assert granted[3] == ()
    assert cash_of(engine) == Decimal("50.00")
    third = engine.outcome_of("p2")
    assert third is not None
    clamp = next(d for d in third.decisions if d.code == "cap.clamped")
    assert clamp.verdict is rk.Verdict.CLAMPED
    assert clamp.param_map == {
        "cap": "per_referrer",
        "limit": "50.00 USD",
        "spent": "40.00 USD",
        "role": "referrer",
        "participant": "alice",
        "requested": "20.00 USD cash",
        "granted": "10.00 USD cash",
    }
    fourth = engine.outcome_of("p3")
    assert fourth is not None
    (reached,) = [d for d in fourth.decisions if d.code == "cap.reached"]
    assert reached.verdict is rk.Verdict.SKIPPED
    assert "not granted, the per_referrer cap of 50.00 USD is reached" in reached.message()


def test_a_referral_capped_to_nothing_still_counts_as_successful():
    engine = make(rk.Caps(per_referrer=usd(20)), referee=None)
    for n in range(3):
        refer(engine, n)
    with engine.store.unit_of_work() as uow:
        key = ("capped", "referrer.successful_referrals", "alice")
        assert uow.counters.get([key])[key] == 3


def test_a_per_referral_cap_bounds_both_sides_together():
    engine = make(rk.Caps(per_referral=usd(25)))
    outcome = refer(engine, 0)
    assert [g.value for g in outcome.grants] == [rk.Cash(usd(20)), rk.Credit(usd(5))]


def test_a_per_referee_cap_bounds_the_referee_across_purchases():
    engine = make(rk.Caps(per_referee=usd(25)), trigger=rk.Trigger.EVERY_PURCHASE)
    refer(engine, 0)
    for i in range(1, 4):
        engine.handle(
            rk.Purchase(
                event_id=f"again{i}",
                participant_id="f0",
                order_id=f"again{i}",
                amount=usd(40),
                at=START + timedelta(minutes=i),
            )
        )
    assert engine.balance("f0")[rk.Unit("credit", "USD")].lifetime == Decimal("25.00")
    assert cash_of(engine) == Decimal("80.00"), "the referrer is not capped"


def test_a_monthly_cap_resets_on_the_first_of_the_month_in_the_program_time_zone():
    # 2026-01-31 23:30 UTC is still January in New York, already February in Berlin.
    late = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)
    for zone, expected in (("America/New_York", "30.00"), ("Europe/Berlin", "50.00")):
        engine = make(rk.Caps(per_referrer_month=usd(30)), referee=None, timezone=zone)
        refer(engine, 0, at=datetime(2026, 1, 20, tzinfo=UTC))
        refer(engine, 1, at=datetime(2026, 1, 21, tzinfo=UTC))
        refer(engine, 2, at=late)
        assert cash_of(engine) == Decimal(expected), zone


def test_day_and_week_caps_count_calendar_periods():
    engine = make(rk.Caps(per_referrer_day=usd(20), per_referrer_week=usd(50)), referee=None)
    monday = datetime(2026, 1, 5, 9, tzinfo=UTC)  # a Monday
    got = [
        refer(engine, n, at=monday + timedelta(hours=h)).grants
        for n, h in enumerate((0, 1, 24, 48, 72, 24 * 7))
    ]
    amounts = [g[0].value.quantity if g else Decimal(0) for g in got]
    # Mon 20, Mon again 0 (day cap), Tue 20, Wed 10 (week cap), Thu 0, next Monday 20.
    assert amounts == [Decimal(20), 0, Decimal(20), Decimal(10), 0, Decimal(20)]


def test_a_refund_gives_the_spend_back_to_the_cap():
    engine = make(rk.Caps(per_referrer=usd(40)), referee=None)
    refer(engine, 0)
    refer(engine, 1)
    assert refer(engine, 2).grants == ()
    engine.handle(rk.Refund(event_id="r0", refund_id="r0", order_id="o0", amount=usd(50), at=START))
    assert [g.value for g in refer(engine, 3).grants] == [rk.Cash(usd(20))]
    assert cash_of(engine) == Decimal("40.00")


def test_a_monthly_cap_gets_back_spend_in_the_month_of_the_grant():
    engine = make(rk.Caps(per_referrer_month=usd(20)), referee=None)
    refer(engine, 0, at=datetime(2026, 1, 10, tzinfo=UTC))
    feb = datetime(2026, 2, 10, tzinfo=UTC)
    assert refer(engine, 1, at=feb).grants  # February has its own 20
    # Refunding January's order gives the spend back to January, not February.
    engine.handle(rk.Refund(event_id="r0", refund_id="r0", order_id="o0", amount=usd(50), at=feb))
    assert refer(engine, 2, at=feb + timedelta(days=1)).grants == ()
    with engine.store.unit_of_work() as uow:
        jan, feb_key = (
            ("capped", "cap.referrer_month", "alice/2026-01"),
            (
                "capped",
                "cap.referrer_month",
                "alice/2026-02",
            ),
        )
        assert uow.counters.get([jan, feb_key]) == {jan: 0, feb_key: 20}


def test_the_budget_stops_grants_and_writes_one_notification():
    engine = make(budget=usd(65))
    outcomes = [refer(engine, n) for n in range(5)]
    assert [len(o.grants) for o in outcomes] == [2, 2, 1, 0, 0]
    assert outcomes[2].grants[0].value == rk.Cash(usd(5))
    assert outcomes[2].reasons()[-2:] == ("budget.clamped", "budget.exhausted")
    notes = [n for n in engine.store.dump()["outbox"] if n.kind == "budget_exhausted"]
    assert len(notes) == 1
    assert dict(notes[0].data) == {"budget": "65.00 USD", "spent": "65.00 USD"}
    assert notes[0].recipient_id == "capped"
    # A refund frees budget; reaching it again writes no second notification.
    engine.handle(rk.Refund(event_id="r0", refund_id="r0", order_id="o0", amount=usd(50), at=START))
    assert [g.value for g in refer(engine, 9).grants] == [rk.Cash(usd(20)), rk.Credit(usd(10))]
    assert refer(engine, 10).grants == ()
    assert len([n for n in engine.store.dump()["outbox"] if n.kind == "budget_exhausted"]) == 1


def test_a_spent_budget_stops_non_money_grants_too():
    program = rk.Program(
        id="b",
        effective_at=START - timedelta(days=1),
        currency="USD",
        policies=[
            rk.SingleSided(referrer=rk.Cash(usd(10)), name="cash"),
            rk.SingleSided(referrer=rk.Points(100), name="points"),
        ],
        budget=usd(10),
    )
    engine = rk.Engine(program, rk.InMemoryStore())
    first = refer(engine, 0)
    assert [g.policy for g in first.grants] == ["cash", "points"]
    assert refer(engine, 1).grants == ()


def test_the_budget_spans_program_versions_and_each_version_reads_its_own_limit():
    v1 = rk.Program(
        id="v",
        effective_at=START - timedelta(days=10),
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(usd(20)))],
        budget=usd(30),
    )
    v2 = attrs.evolve(v1, version=2, effective_at=START + timedelta(days=1), budget=usd(100))
    engine = rk.Engine(v2, rk.InMemoryStore(), history=[v1])
    refer(engine, 0)  # v1: 20 of 30
    assert [g.value for g in refer(engine, 1).grants] == [rk.Cash(usd(10))]  # v1: 10 left
    later = START + timedelta(days=2)
    assert [g.value for g in refer(engine, 2, at=later).grants] == [rk.Cash(usd(20))]  # v2
    with engine.store.unit_of_work() as uow:
        key = ("v", "program.spend", "")
        assert uow.counters.get([key])[key] == 50


def test_quote_applies_caps_without_spending():
    engine = make(rk.Caps(per_referrer=usd(30)), referee=None)
    refer(engine, 0)
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s1", participant_id="f1", code=code, at=START))
    purchase = rk.Purchase(
        event_id="p1", participant_id="f1", order_id="o1", amount=usd(50), at=START
    )
    assert [g.value for g in engine.quote(purchase).grants] == [rk.Cash(usd(10))]
    assert [g.value for g in engine.quote(purchase).grants] == [rk.Cash(usd(10))]


# -- config ---------------------------------------------------------------------------------
def config(**extra: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "effective_at": "2026-01-05T00:00:00+00:00",
        "currency": "USD",
        "policies": [{"type": "single_sided", "referrer": {"kind": "cash", "amount": "10"}}],
        **extra,
    }


def test_caps_and_budget_round_trip_through_config():
    p = rk.Program.from_dict(
        config(caps={"per_referrer": "100", "per_referrer_month": "25.50"}, budget="5000")
    )
    assert p.caps == rk.Caps(per_referrer=usd(100), per_referrer_month=usd("25.50"))
    assert p.budget == usd(5000)
    data = p.to_dict()
    assert data["caps"] == {
        "per_referrer": {"amount": "100.00", "currency": "USD"},
        "per_referrer_month": {"amount": "25.50", "currency": "USD"},
    }
    assert rk.Program.from_dict(data) == p


def test_a_program_without_limits_keeps_its_digest_and_config():
    p = rk.Program.from_dict(config())
    assert "caps" not in p.to_dict()
    assert "budget" not in p.definition()
    assert p.digest != rk.Program.from_dict(config(budget="10")).digest


@pytest.mark.parametrize(
    ("extra", "field", "problem"),
    [
        ({"caps": {"per_referrer": "-5"}}, "caps.per_referrer", "must be > 0"),
        ({"caps": {"per_referer": "5"}}, "caps.per_referer", "is not a known key"),
        ({"caps": {"per_referee": "1.234"}}, "caps.per_referee", "decimal places"),
        (
            {"caps": {"per_referral": {"amount": "5", "currency": "EUR"}}},
            "caps.per_referral.currency",
            "program's currency USD",
        ),
        ({"caps": "10"}, "caps", "must be a table"),
        ({"budget": "0"}, "budget", "must be > 0"),
        ({"budget": 10.5}, "budget", "floats are not accepted"),
    ],
)
def test_bad_limits_name_the_key_path(extra: dict[str, Any], field: str, problem: str):
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program.from_dict(config(**extra))
    assert info.value.field == field
    assert problem in str(info.value)


def test_limits_in_code_are_checked():
    with pytest.raises(rk.InvalidProgramError, match=r"program\.caps\.per_referrer_day"):
        rk.Program.from_dict(config()).__class__(
            id="c",
            effective_at=START,
            currency="USD",
            policies=[rk.SingleSided(referrer=rk.Cash(usd(10)))],
            caps=rk.Caps(per_referrer_day=rk.Money(5, "EUR")),
        )
    with pytest.raises(rk.InvalidProgramError, match=r"program\.budget"):
        rk.Program(
            id="c",
            effective_at=START,
            currency="USD",
            policies=[rk.SingleSided(referrer=rk.Cash(usd(10)))],
            budget=Decimal(5),  # type: ignore[arg-type]
        )


# -- per-referee limits -----------------------------------------------------------------------
def test_a_referee_earns_rewards_on_at_most_n_purchases():
    engine = make(rk.Caps(max_referee_purchases=2), trigger=rk.Trigger.EVERY_PURCHASE)
    refer(engine, 0)
    outcomes = [
        engine.handle(
            rk.Purchase(
                event_id=f"again{i}",
                participant_id="f0",
                order_id=f"again{i}",
                amount=usd(40),
                at=START + timedelta(minutes=i + 1),
            )
        )
        for i in range(2)
    ]
    assert len(outcomes[0].grants) == 2
    assert outcomes[1].grants == ()
    assert outcomes[1].reasons()[-1] == "cap.referee_purchases"
    assert cash_of(engine) == Decimal("40.00")


def test_a_referee_earns_rewards_only_within_the_window_of_the_first_reward():
    from dateutil.relativedelta import relativedelta

    engine = make(
        rk.Caps(referee_window=relativedelta(months=1)), trigger=rk.Trigger.EVERY_PURCHASE
    )
    refer(engine, 0)  # first reward on 2026-01-05 12:00 UTC
    paid = []
    for i, at in enumerate(
        [datetime(2026, 2, 5, 11, 59, tzinfo=UTC), datetime(2026, 2, 5, 12, 0, tzinfo=UTC)]
    ):
        outcome = engine.handle(
            rk.Purchase(
                event_id=f"w{i}", participant_id="f0", order_id=f"w{i}", amount=usd(40), at=at
            )
        )
        paid.append(len(outcome.grants))
    assert paid == [2, 0]
    assert engine.outcome_of("w1").reasons()[-1] == "cap.referee_window"  # type: ignore[union-attr]


def test_referee_limits_round_trip_through_config():
    p = rk.Program.from_dict(
        config(caps={"max_referee_purchases": 3, "referee_window": {"months": 12}})
    )
    assert p.caps.max_referee_purchases == 3
    assert rk.Program.from_dict(p.to_dict()) == p
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program.from_dict(config(caps={"max_referee_purchases": 0}))
    assert info.value.field == "caps.max_referee_purchases"
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program.from_dict(config(caps={"referee_window": {"months": "x"}}))
    assert info.value.field == "caps.referee_window.months"


def _buy(engine: rk.Engine, n: int, amount: str = "40.00") -> rk.Outcome:
    return engine.handle(
        rk.Purchase(
            event_id=f"slot{n}",
            participant_id="f0",
            order_id=f"slot{n}",
            amount=usd(amount),
            at=START + timedelta(minutes=n + 1),
        )
    )


def test_a_full_refund_or_chargeback_frees_the_referees_purchase_slot():
    """Slots are taken by rewarded purchases; a full reversal gives its slot back once, a
    partial refund keeps it."""
    engine = make(rk.Caps(max_referee_purchases=2), trigger=rk.Trigger.EVERY_PURCHASE)
    refer(engine, 0)  # the first purchase ("f0"'s order) takes slot 1
    assert _buy(engine, 1).grants != ()  # slot 2
    assert _buy(engine, 2).reasons()[-1] == "cap.referee_purchases"
    at = START + timedelta(hours=1)
    engine.handle(rk.Refund(event_id="r1", refund_id="r1", order_id="slot1", amount=usd(10), at=at))
    assert _buy(engine, 3).reasons()[-1] == "cap.referee_purchases"  # partial: still taken
    engine.handle(rk.Refund(event_id="r2", refund_id="r2", order_id="slot1", amount=usd(30), at=at))
    assert len(_buy(engine, 4).grants) == 2  # the slot came back
    assert _buy(engine, 5).reasons()[-1] == "cap.referee_purchases"
    # A refused purchase never took a slot: reversing it frees nothing.
    engine.handle(rk.Chargeback(event_id="cb5", chargeback_id="cb5", order_id="slot5", at=at))
    assert _buy(engine, 6).reasons()[-1] == "cap.referee_purchases"
    engine.handle(rk.Chargeback(event_id="cb4", chargeback_id="cb4", order_id="slot4", at=at))
    engine.handle(rk.Chargeback(event_id="cb4b", chargeback_id="cb4b", order_id="slot4", at=at))
    assert len(_buy(engine, 7).grants) == 2  # one slot back, however often reversed
    assert _buy(engine, 8).reasons()[-1] == "cap.referee_purchases"
