"""Calendar terms are the program's, and an instant means the same whatever its ``tzinfo``.

Each test gives the same instant in two zones (UTC and another one) and checks that the
engine answers alike, in the program's time zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk
from referralkit.policies import Attr

LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
PLUS_9 = timezone(timedelta(hours=9))
MINUS_8 = timezone(timedelta(hours=-8))
START = datetime(2025, 12, 1, tzinfo=UTC)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def make_engine(clock_at: datetime = START, **terms: Any) -> rk.Engine:
    terms.setdefault("policies", [rk.SingleSided(referrer=rk.Cash(usd(20)))])
    program = rk.Program(id="tz", effective_at=START, currency="USD", **terms)
    return rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(clock_at))


def convert(
    engine: rk.Engine, who: str, signed_up: datetime, bought: datetime, **purchase: Any
) -> rk.Outcome:
    code = engine.code_of("alice") or engine.issue_code("alice")
    engine.handle(rk.Signup(event_id=f"s-{who}", participant_id=who, code=code, at=signed_up))
    purchase.setdefault("amount", usd(100))
    return engine.handle(
        rk.Purchase(
            event_id=f"p-{who}", participant_id=who, order_id=f"o-{who}", at=bought, **purchase
        )
    )


# -- holds --------------------------------------------------------------------------------
def test_a_day_hold_ends_at_the_same_instant_whatever_zone_the_event_was_given_in() -> None:
    """A 30-day hold from 2026-02-21 07:30 UTC (02:30 in New York, 23:30 the evening
    before in Los Angeles) crosses the start of daylight saving time: given in New York's
    zone the hold used to be counted in New York wall-clock days, one hour shorter, which
    moved ``payable_on`` to the day before in Los Angeles."""
    instant = datetime(2026, 2, 21, 7, 30, tzinfo=UTC)
    program = rk.Program(
        id="tz",
        effective_at=START,
        currency="USD",
        timezone="America/Los_Angeles",
        policies=[rk.SingleSided(referrer=rk.Cash(usd(20)))],
        hold=relativedelta(days=30),
    )
    assert program.payable_at(instant.astimezone(NEW_YORK)) == program.payable_at(instant)
    assert program.payable_at(instant) == instant + timedelta(days=30)

    payable_on = set()
    for zone in (UTC, NEW_YORK):
        engine = make_engine(timezone="America/Los_Angeles", hold=relativedelta(days=30))
        convert(engine, "bob", instant.astimezone(zone), instant.astimezone(zone))
        notes = [n for n in engine.store.dump()["outbox"] if n.kind == "reward_earned"]
        payable_on |= {n.data["payable_on"] for n in notes}
    assert payable_on == {"2026-03-23"}


# -- points expiry ------------------------------------------------------------------------
@pytest.mark.parametrize("zone", [UTC, PLUS_9, MINUS_8])
def test_points_expire_a_calendar_month_later_in_the_programs_time_zone(zone: Any) -> None:
    """Points earned on 2026-01-30 16:00 UTC, January 31st 01:00 in Tokyo, expire a month
    later in Tokyo: February 28th 01:00 there (February 27th 16:00 UTC). They used to
    expire a month later in the zone of the event's time (February 28th 16:00 UTC)."""
    earned = datetime(2026, 1, 30, 16, 0, tzinfo=UTC)
    policy = rk.PointsPolicy(
        per_referral=100, trigger=rk.Trigger.EVERY_PURCHASE, expires_after=relativedelta(months=1)
    )
    engine = make_engine(timezone="Asia/Tokyo", policies=[policy])
    convert(engine, "bob", earned.astimezone(zone), earned.astimezone(zone))
    engine.settle(earned + timedelta(days=1))
    expiry = datetime(2026, 2, 27, 16, 0, tzinfo=UTC)
    assert engine.points("alice", at=expiry - timedelta(seconds=1)).expired == 0
    assert engine.points("alice", at=expiry).expired == 100


# -- revenue share duration ---------------------------------------------------------------
@pytest.mark.parametrize("zone", [UTC, PLUS_9, MINUS_8])
def test_a_revenue_share_duration_ends_a_calendar_month_later_in_the_programs_zone(
    zone: Any,
) -> None:
    """A referral made on January 31st 01:00 in Tokyo (2026-01-30 16:00 UTC) earns a
    one-month share until February 28th 01:00 in Tokyo; a purchase on February 28th 00:00
    UTC (09:00 in Tokyo) is after it, whatever zone the sign-up's time was given in."""
    referred = datetime(2026, 1, 30, 16, 0, tzinfo=UTC)
    share = rk.RevenueShare(Decimal("10"), duration=relativedelta(months=1))
    engine = make_engine(timezone="Asia/Tokyo", policies=[share])
    code = engine.issue_code("alice")
    engine.handle(
        rk.Signup(event_id="s", participant_id="bob", code=code, at=referred.astimezone(zone))
    )
    inside = engine.handle(
        rk.Purchase(
            event_id="p1",
            participant_id="bob",
            order_id="o1",
            amount=usd(100),
            at=datetime(2026, 2, 27, 15, 59, tzinfo=UTC).astimezone(zone),
        )
    )
    after = engine.handle(
        rk.Purchase(
            event_id="p2",
            participant_id="bob",
            order_id="o2",
            amount=usd(100),
            at=datetime(2026, 2, 28, 0, 0, tzinfo=UTC).astimezone(zone),
        )
    )
    assert [str(g.value) for g in inside.grants] == ["10.00 USD cash"]
    assert after.grants == ()
    assert [d.code for d in after.decisions if d.code.startswith("revenue_share")] == [
        "revenue_share.ended"
    ]


# -- why not payable ----------------------------------------------------------------------
@pytest.mark.parametrize("zone", [UTC, PLUS_9, MINUS_8])
def test_payable_reasons_show_dates_in_the_programs_time_zone(zone: Any) -> None:
    """A purchase on 2026-01-05 03:00 UTC is January 4th 19:00 in Los Angeles; with a
    one-day hold it is on hold until January 5th there (January 6th in UTC and Tokyo)."""
    at = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    engine = make_engine(clock_at=at, timezone="America/Los_Angeles", hold=relativedelta(days=1))
    convert(engine, "bob", at.astimezone(zone), at.astimezone(zone))
    [reason] = engine.payable("alice", now=at)
    assert reason.code == "on_hold_until"
    assert str(reason) == "20.00 cash USD on hold until 2026-01-05"

    [view] = engine.rewards_for("alice")
    until = datetime(2026, 1, 10, 3, 0, tzinfo=UTC).astimezone(zone)
    engine.hold(view.reward.reward_id, reason="check", actor="ops", until=until, now=at)
    [held] = engine.payable("alice", now=at)
    assert str(held) == "20.00 cash USD held for review (check) until 2026-01-09"


# -- exchange rates -----------------------------------------------------------------------
@pytest.mark.parametrize("zone", [UTC, PLUS_9, MINUS_8])
def test_a_fixed_rate_is_dated_on_the_purchase_date_in_the_programs_zone(zone: Any) -> None:
    """A purchase on 2026-01-05 20:00 UTC is January 6th in Tokyo: ``FixedRates``
    records the rate of January 6th, whatever zone the purchase's time was given in."""
    at = datetime(2026, 1, 5, 20, 0, tzinfo=UTC)
    program = rk.Program(
        id="fx",
        effective_at=START,
        currency="USD",
        timezone="Asia/Tokyo",
        policies=[rk.RevenueShare(Decimal("10"))],
    )
    engine = rk.Engine(
        program,
        rk.InMemoryStore(),
        clock=rk.ManualClock(at),
        exchange_rates=rk.FixedRates({("EUR", "USD"): "1.0850"}),
    )
    outcome = convert(
        engine, "bob", at.astimezone(zone), at.astimezone(zone), amount=rk.Money("100", "EUR")
    )
    [converted] = [d for d in outcome.decisions if d.code == "purchase.converted"]
    assert converted.param_map["rate_on"] == "2026-01-06"
    [view] = engine.rewards_for("alice")
    assert view.reward.exchange_rate == rk.Rate("1.0850", date(2026, 1, 6))


# -- rolling status levels ----------------------------------------------------------------
def test_rolling_months_are_read_in_the_zone_in_force_when_a_version_changes_it() -> None:
    """Version 1 counts months in Los Angeles, version 2 (from March 10th) in Tokyo. A
    conversion on March 15th counts in March; on March 20th 05:00 in Tokyo the current
    month is March, whose first day at that hour (February 28th in Los Angeles) used to be
    looked up under version 1's zone: February, so the level was lost."""
    levels = rk.RollingStatusLevels([rk.Level("silver", 1)], window=relativedelta(months=1))
    policies = [rk.SingleSided(referrer=rk.Cash(usd(10))), levels]
    v1 = rk.Program(
        id="roll",
        effective_at=START,
        currency="USD",
        timezone="America/Los_Angeles",
        policies=policies,
    )
    v2 = rk.Program(
        id="roll",
        version=2,
        effective_at=datetime(2026, 3, 10, tzinfo=UTC),
        currency="USD",
        timezone="Asia/Tokyo",
        policies=policies,
    )
    clock = rk.ManualClock(datetime(2026, 3, 15, tzinfo=UTC))
    engine = rk.Engine(v1, rk.InMemoryStore(), clock=clock)
    engine.publish(v2)
    at = datetime(2026, 3, 15, tzinfo=UTC)
    convert(engine, "bob", at, at)
    clock.set(datetime(2026, 3, 20, 5, 0, tzinfo=TOKYO))
    assert engine.status_of("alice") == "silver"


# -- conditions ---------------------------------------------------------------------------
@pytest.mark.parametrize("zone", [UTC, NEW_YORK])
def test_days_since_signup_counts_elapsed_days_whatever_the_zone(zone: Any) -> None:
    """From 2026-03-07 17:00 UTC to 2026-03-09 16:30 UTC is 1 day and 23.5 hours. In New
    York's zone (12:00 EST to 12:30 EDT, across the start of daylight saving time) the
    wall clocks are two days apart: the whole days used to be counted on them."""
    referred = datetime(2026, 3, 7, 17, 0, tzinfo=UTC).astimezone(zone)
    bought = datetime(2026, 3, 9, 16, 30, tzinfo=UTC).astimezone(zone)
    referral = rk.Referral(
        referral_id="ref_1",
        program_id="p",
        program_version=1,
        referrer_id="alice",
        referee_id="bob",
        code="ABCD1234",
        channel="email",
        created_at=referred,
        event_id="s1",
    )
    purchase = rk.Purchase(
        event_id="p1", participant_id="bob", order_id="o1", amount=usd(100), at=bought
    )
    ctx = rk.PolicyContext(
        "p", 1, "USD", "ROUND_HALF_UP", referral, purchase, rk.Trigger.FIRST_PURCHASE
    )
    assert (Attr("referee.days_since_signup") == 1).failure(ctx) is None
