"""Bounded (invariant 4) for caps and budgets; milestones at most once; points never negative."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import event, given, settings
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing import check_all
from referralkit.testing.strategies import (
    caps,
    catalogue_programs,
    event_streams,
    milestones_policies,
    points_policies,
    rolling_status_levels,
)

_ZERO = Decimal(0)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _period(name: str, view: rk.RewardView, program: rk.Program) -> str:
    local = view.reward.created_at.astimezone(program.zone)
    if name == "per_referrer_day":
        return local.date().isoformat()
    if name == "per_referrer_week":
        year, week, _ = local.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return f"{local.year}-{local.month:02d}"


@st.composite
def capped_programs(draw: st.DrawFn) -> rk.Program:
    program = draw(catalogue_programs(currency=st.sampled_from(["USD", "JPY"])))
    limits = draw(caps(program.currency))
    budget = draw(st.none() | st.just(rk.Money(60, program.currency)))
    return rk.Program(
        id=program.id,
        effective_at=program.effective_at,
        currency=program.currency,
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money(20, program.currency)),
                referee=rk.Credit(rk.Money(10, program.currency)),
                trigger=draw(st.sampled_from(list(rk.Trigger))),
                name="base",
            ),
            *program.policies,
        ],
        timezone=program.timezone,
        hold=program.hold,
        caps=limits,
        budget=budget,
    )


@settings(max_examples=60)
@given(event_streams(capped_programs(), max_participants=7))
def test_no_cap_and_no_budget_is_ever_exceeded(scenario):
    """Under any event stream (duplicates, retries, reordering, refunds), the money held
    per referral, referrer (all time and per calendar period) and referee stays within its
    cap, the program stays within its budget, and the ledger invariants hold."""
    engine = scenario.new_engine()
    scenario.play(engine)
    program = scenario.program
    dump = engine.store.dump()
    views = [
        v
        for who in sorted({r.participant_id for r in dump["rewards"]})
        for v in engine.rewards_for(who)
    ]
    sums: dict[tuple[str, str], Decimal] = defaultdict(lambda: _ZERO)
    total = _ZERO
    for view in views:
        if not view.reward.unit.is_money:
            continue
        held = view.outstanding
        total += held
        reward = view.reward
        sums[("per_referral", reward.referral_id)] += held
        if reward.role is rk.Role.REFEREE:
            sums[("per_referee", reward.participant_id)] += held
        else:
            sums[("per_referrer", reward.participant_id)] += held
            for name in ("per_referrer_day", "per_referrer_week", "per_referrer_month"):
                sums[(name, f"{reward.participant_id}/{_period(name, view, program)}")] += held
    limits = program.caps.declared()
    for (name, subject), held in sums.items():
        if name in limits:
            assert held <= limits[name].amount, (name, subject, held)
    if program.budget is not None:
        assert total <= program.budget.amount
        if total == program.budget.amount:
            event("budget reached")
    decisions = {
        d.code
        for outcome in (engine.outcome_of(e.event_id) for _, e in engine.event_log())
        if outcome is not None
        for d in outcome.decisions
    }
    for code in ("cap.clamped", "cap.reached", "budget.clamped", "budget.exhausted"):
        if code in decisions:
            event(code)
    exhausted = [n for n in dump["outbox"] if n.kind == "budget_exhausted"]
    assert len(exhausted) <= 1
    check_all(engine.store, engine)


@st.composite
def milestone_programs(draw: st.DrawFn) -> rk.Program:
    return rk.Program(
        id="m",
        effective_at=EPOCH,
        currency="USD",
        policies=[
            rk.SingleSided(referrer=rk.Cash(rk.Money(5, "USD")), name="per_conversion"),
            draw(milestones_policies("USD", "ms", max_threshold=3)),
        ],
    )


@settings(max_examples=60)
@given(event_streams(milestone_programs(), max_participants=8))
def test_each_milestone_is_granted_at_most_once(scenario):
    """Retried events, re-deliveries, refunds that lower the count and later referrals
    that raise it again never grant a milestone twice."""
    engine = scenario.new_engine()
    scenario.play(engine)
    dump = engine.store.dump()
    granted: dict[tuple[str, str], int] = defaultdict(int)
    for note in dump["outbox"]:
        if note.kind == "milestone_reached":
            granted[(note.recipient_id, note.data["milestone"])] += 1
    assert all(n == 1 for n in granted.values()), granted
    policy = scenario.program.policies[1]
    per_referrer: dict[str, int] = defaultdict(int)
    for reward in dump["rewards"]:
        if reward.policy == policy.name:
            per_referrer[reward.participant_id] += 1
    assert all(n <= len(policy.milestones) for n in per_referrer.values())
    assert sum(per_referrer.values()) == sum(granted.values())
    if granted:
        event("a milestone was reached")


@st.composite
def points_cases(draw: st.DrawFn):
    program = rk.Program(
        id="pts",
        effective_at=EPOCH,
        currency="USD",
        policies=[draw(points_policies("USD", "points"))],
    )
    scenario = draw(event_streams(program, max_participants=6))
    redemptions = draw(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 130)), max_size=8))
    return scenario, redemptions


@settings(max_examples=60)
@given(points_cases())
def test_a_points_balance_is_never_negative(case):
    """Redeeming any amounts at any time, before or after refunds, never leaves a
    negative balance or lot; a refused redemption writes nothing."""
    scenario, redemptions = case
    engine = scenario.new_engine()
    scenario.play(engine)
    policy = scenario.program.policies[0]
    people = sorted({r.participant_id for r in engine.store.dump()["rewards"]})
    at = EPOCH + timedelta(days=60)
    engine.settle(at)
    for i, (who, percent) in enumerate(redemptions):
        if not people:
            break
        person = people[who % len(people)]
        before = engine.points(person, at=at + timedelta(minutes=i))
        assert before.available >= 0
        # A share of what is available: up to all of it, or more (refused).
        points = max(1, before.available * percent // 100)
        if policy.redeem_rate is None:
            with pytest.raises(rk.InvalidProgramError):
                engine.redeem(person, points, at=at + timedelta(minutes=i))
            continue
        if points > before.available:
            with pytest.raises(rk.InsufficientPointsError) as info:
                engine.redeem(person, points, at=at + timedelta(minutes=i))
            assert info.value.available == before.available
            event("redemption refused")
        else:
            engine.redeem(person, points, at=at + timedelta(minutes=i))
            after = engine.points(person, at=at + timedelta(minutes=i))
            assert after.available == before.available - points
            event("redeemed")
    for person in people:
        for view in engine.rewards_for(person):
            assert view.outstanding >= 0
        assert engine.points(person, at=at + timedelta(days=1)).available >= 0
    check_all(engine.store, engine)


_SLOT_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), st.integers(1, 50)),
        st.tuples(st.just("refund"), st.integers(0, 9), st.sampled_from(["full", "part"])),
        st.tuples(st.just("chargeback"), st.integers(0, 9)),
    ),
    max_size=25,
)


@given(limit=st.integers(1, 3), steps=_SLOT_STEPS)
def test_a_referee_holds_at_most_n_purchase_slots_and_full_reversals_give_them_back(limit, steps):
    """Under Caps(max_referee_purchases=N) a purchase earns exactly when fewer than N of the
    referee's rewarded orders are still live (not wholly refunded or charged back)."""
    program = rk.Program(
        id="slots",
        effective_at=EPOCH,
        currency="USD",
        policies=[
            rk.SingleSided(referrer=rk.Cash(rk.Money(1, "USD")), trigger=rk.Trigger.EVERY_PURCHASE)
        ],
        caps=rk.Caps(max_referee_purchases=limit),
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(EPOCH))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=EPOCH))
    orders: list[tuple[str, int]] = []  # (order id, amount)
    refunded: dict[str, int] = {}
    live: set[str] = set()  # rewarded orders not wholly reversed
    at = EPOCH
    for n, step in enumerate(steps):
        at += timedelta(minutes=1)
        if step[0] == "buy":
            order = f"o{n}"
            outcome = engine.handle(
                rk.Purchase(
                    event_id=f"p{n}",
                    participant_id="bob",
                    order_id=order,
                    amount=rk.Money(step[1], "USD"),
                    at=at,
                )
            )
            assert bool(outcome.grants) == (len(live) < limit)
            if outcome.grants:
                live.add(order)
            orders.append((order, step[1]))
            continue
        if not orders:
            continue
        order, amount = orders[step[1] % len(orders)]
        left = amount - refunded.get(order, 0)
        if step[0] == "chargeback":
            engine.handle(
                rk.Chargeback(event_id=f"c{n}", chargeback_id=f"c{n}", order_id=order, at=at)
            )
            live.discard(order)
            refunded[order] = amount
            continue
        if left <= 0:
            continue
        part = left if step[2] == "full" or left == 1 else left // 2
        engine.handle(
            rk.Refund(
                event_id=f"r{n}",
                refund_id=f"r{n}",
                order_id=order,
                amount=rk.Money(part, "USD"),
                at=at,
            )
        )
        refunded[order] = refunded.get(order, 0) + part
        if refunded[order] >= amount:
            live.discard(order)
    check_all(engine.store, engine)


@given(levels=rolling_status_levels(), months=st.lists(st.integers(0, 30), max_size=12))
def test_a_rolling_level_is_the_level_of_the_conversions_inside_its_window(levels, months):
    """The level shown at any month is the level of the referrals converted in that month and
    the window's earlier months, never of older ones; the lifetime count is all of them."""
    program = rk.Program(
        id="roll",
        effective_at=EPOCH,
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Points(100), name="points"), levels],
    )
    clock = rk.ManualClock(EPOCH)
    engine = rk.Engine(program, rk.InMemoryStore(), clock=clock)
    code = engine.issue_code("alice")
    for n, month in enumerate(sorted(months)):
        at = EPOCH + relativedelta(months=month, days=3)
        engine.handle(rk.Signup(event_id=f"s{n}", participant_id=f"f{n}", code=code, at=at))
        engine.handle(
            rk.Purchase(
                event_id=f"p{n}",
                participant_id=f"f{n}",
                order_id=f"o{n}",
                amount=rk.Money(5, "USD"),
                at=at,
            )
        )
    for month in range(0, 34):
        clock.set(EPOCH + relativedelta(months=month, days=20))
        inside = sum(1 for m in months if month - levels.months < m <= month)
        count = inside * (100 if levels.basis is rk.StatusBasis.POINTS else 1)
        held = levels.level_for(count)
        assert engine.status_of("alice") == (None if held is None else held.name)
    assert engine.progress("alice").successful_referrals == len(months)
