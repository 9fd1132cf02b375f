"""Milestones (once ever per referrer) and status levels (with change notifications)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

import referralkit as rk

START = datetime(2026, 1, 5, 12, tzinfo=UTC)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


MILESTONES = rk.Milestones(
    [
        rk.Milestone(1, rk.Badge("first friend"), name="first"),
        rk.Milestone(3, rk.Cash(usd(25))),
    ]
)
LEVELS = rk.StatusLevels([rk.Level("bronze", 1), rk.Level("silver", 2), rk.Level("gold", 4)])


def make(*policies: rk.RewardPolicy, store: rk.Store | None = None) -> rk.Engine:
    program = rk.Program(
        id="m",
        effective_at=START - timedelta(days=30),
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(usd(10))), *policies],
    )
    return rk.Engine(
        program,
        store or rk.InMemoryStore(),
        clock=rk.ManualClock(START),
        code_factory=iter([f"CODE{i:04d}" for i in range(10)]).__next__,
    )


def refer(engine: rk.Engine, n: int, *, amount: str = "50") -> rk.Outcome:
    code = engine.issue_code("alice")
    at = START + timedelta(minutes=n)
    engine.handle(rk.Signup(event_id=f"s{n}", participant_id=f"f{n}", code=code, at=at))
    return engine.handle(
        rk.Purchase(
            event_id=f"p{n}", participant_id=f"f{n}", order_id=f"o{n}", amount=usd(amount), at=at
        )
    )


def refund(engine: rk.Engine, n: int) -> rk.Outcome:
    return engine.handle(
        rk.Refund(
            event_id=f"r{n}",
            refund_id=f"r{n}",
            order_id=f"o{n}",
            amount=usd(50),
            at=START + timedelta(hours=1, minutes=n),
        )
    )


def outbox(engine: rk.Engine, kind: str) -> list[dict[str, str]]:
    return [dict(n.data) for n in engine.store.dump()["outbox"] if n.kind == kind]


def test_milestones_pay_at_their_thresholds_with_a_notification():
    engine = make(MILESTONES)
    got = [[(g.policy, g.value) for g in refer(engine, n).grants] for n in range(4)]
    assert got == [
        [("single_sided", rk.Cash(usd(10))), ("milestones", rk.Badge("first friend"))],
        [("single_sided", rk.Cash(usd(10)))],
        [("single_sided", rk.Cash(usd(10))), ("milestones", rk.Cash(usd(25)))],
        [("single_sided", rk.Cash(usd(10)))],
    ]
    assert sorted(outbox(engine, "milestone_reached"), key=lambda d: d["threshold"]) == [
        {"milestone": "first", "threshold": "1", "count": "1", "value": "badge 'first friend'"},
        {"milestone": "3", "threshold": "3", "count": "3", "value": "25.00 USD cash"},
    ]
    second = engine.outcome_of("p1")
    assert second is not None
    assert "milestone.none" in second.reasons()


def test_a_milestone_is_granted_once_even_after_a_refund_drops_the_count():
    engine = make(MILESTONES)
    assert any(g.policy == "milestones" for g in refer(engine, 0).grants)
    reversed_ = refund(engine, 0)
    assert [r.unit for r in reversed_.reversals] == [rk.Unit("cash", "USD")], (
        "the milestone badge belongs to the count, not the order"
    )
    again = refer(engine, 1)  # the count is back at 1
    assert [g.policy for g in again.grants] == ["single_sided"]
    assert "milestone.already_granted" in again.reasons()
    badges = [v for v in engine.rewards_for("alice") if v.reward.unit.kind == "badge"]
    assert len(badges) == 1
    assert len(outbox(engine, "milestone_reached")) == 1


def test_a_milestone_reward_id_derives_from_the_referrer_and_milestone():
    a, b = make(MILESTONES), make(MILESTONES)
    a_id = refer(a, 0).reward_ids[1]
    refer(b, 7)  # another event id reaches the same milestone
    b_ids = [v.reward.reward_id for v in b.rewards_for("alice") if v.reward.policy == "milestones"]
    assert b_ids == [a_id]


def test_a_retried_event_and_a_replay_grant_the_milestone_once():
    engine = make(MILESTONES)
    refer(engine, 0)
    assert refer(engine, 0).duplicate
    replayed = make(MILESTONES)
    replayed.issue_code("alice")
    for _, event in engine.event_log():
        replayed.handle(event)
        replayed.handle(event)
    assert replayed.store.dump()["rewards"] == engine.store.dump()["rewards"]


def test_status_levels_go_up_and_down_with_notifications():
    engine = make(LEVELS)
    assert engine.status_of("alice") is None
    for n in range(4):
        refer(engine, n)
    assert engine.status_of("alice") == "gold"
    refund(engine, 3)
    assert engine.status_of("alice") == "silver"
    changes = [(d["old"], d["new"]) for d in outbox(engine, "status_changed")]
    assert sorted(changes) == sorted(
        [("", "bronze"), ("bronze", "silver"), ("silver", "gold"), ("gold", "silver")]
    )


def test_a_level_change_never_alters_what_earlier_referrals_earned():
    engine = make(LEVELS)
    for n in range(4):
        refer(engine, n)
    before = [v.reward.value for v in engine.rewards_for("alice")]
    refund(engine, 3)
    after = [v.reward.value for v in engine.rewards_for("alice")]
    assert before == after


def test_progress_says_how_many_more_friends_to_the_next_level_and_milestone():
    engine = make(LEVELS, MILESTONES)
    progress = engine.progress("alice")
    assert progress == rk.Progress(
        "alice", 0, None, "bronze", 1, next_milestone="first", to_next_milestone=1
    )
    refer(engine, 0)
    refer(engine, 1)
    progress = engine.progress("alice")
    assert (progress.level, progress.next_level, progress.to_next_level) == ("silver", "gold", 2)
    assert (progress.next_milestone, progress.to_next_milestone) == ("3", 1)
    assert f"{progress.to_next_level} more friends to {progress.next_level.title()}" == (  # type: ignore[union-attr]
        "2 more friends to Gold"
    )


def test_levels_on_points_follow_points_earned():
    engine = make(
        rk.SingleSided(referrer=rk.Points(150), name="points"),
        rk.StatusLevels([rk.Level("silver", 300)], basis="points"),
    )
    refer(engine, 0)
    assert engine.progress("alice").to_next_level == 150
    refer(engine, 1)
    assert engine.status_of("alice") == "silver"
    assert outbox(engine, "status_changed") == [{"old": "", "new": "silver"}]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_two_points_rewards_of_one_event_may_change_a_level_twice(store: str) -> None:
    """Two points policies into one account, one purchase crossing two levels: both
    changes are notified, each under its own id (they once shared one, and the event
    failed with ConcurrencyError on every retry)."""
    engine = make(
        rk.SingleSided(referrer=rk.Points(150), name="points_a"),
        rk.SingleSided(referrer=rk.Points(150), name="points_b"),
        rk.StatusLevels([rk.Level("silver", 100), rk.Level("gold", 300)], basis="points"),
        store=rk.InMemoryStore() if store == "memory" else rk.SQLiteStore(":memory:"),
    )
    outcome = refer(engine, 0)

    assert len(outcome.grants) == 3  # the cash and both points rewards
    assert engine.status_of("alice") == "gold"
    changes = outbox(engine, "status_changed")
    assert sorted(map(tuple, (c.values() for c in changes))) == [("", "silver"), ("silver", "gold")]
    ids = [n.notification_id for n in engine.store.dump()["outbox"] if n.kind == "status_changed"]
    assert len(set(ids)) == 2


# -- config ---------------------------------------------------------------------------------
def config(*policies: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "c",
        "effective_at": "2026-01-05T00:00:00+00:00",
        "currency": "USD",
        "policies": list(policies),
    }


def test_milestones_and_levels_round_trip_through_config():
    p = rk.Program.from_dict(
        config(
            {
                "type": "milestones",
                "milestones": [
                    {"threshold": 1, "reward": {"kind": "badge", "name": "starter"}},
                    {"threshold": 5, "reward": {"kind": "cash", "amount": "50"}, "name": "five"},
                ],
            },
            {
                "type": "status_levels",
                "levels": [{"name": "bronze", "minimum": 1}, {"name": "gold", "minimum": 10}],
            },
        )
    )
    milestones, levels = p.policies
    assert milestones == rk.Milestones(
        [rk.Milestone(1, rk.Badge("starter")), rk.Milestone(5, rk.Cash(usd(50)), name="five")]
    )
    assert levels == rk.StatusLevels([rk.Level("bronze", 1), rk.Level("gold", 10)])
    assert rk.Program.from_dict(p.to_dict()) == p


@pytest.mark.parametrize(
    ("policy", "field", "problem"),
    [
        (
            {
                "type": "milestones",
                "milestones": [
                    {"threshold": 5, "reward": {"kind": "badge", "name": "a"}},
                    {"threshold": 5, "reward": {"kind": "badge", "name": "b"}},
                ],
            },
            "policies[0].milestones[1].threshold",
            "must be sorted",
        ),
        (
            {
                "type": "milestones",
                "milestones": [{"threshold": 0, "reward": {"kind": "badge", "name": "a"}}],
            },
            "policies[0].milestones[0].threshold",
            ">= 1",
        ),
        (
            {
                "type": "milestones",
                "milestones": [{"threshold": 1, "reward": {"kind": "cash", "amount": "-5"}}],
            },
            "policies[0].milestones[0].reward.amount",
            "must be > 0",
        ),
        (
            {"type": "status_levels", "levels": [{"name": "gold", "minimum": "ten"}]},
            "policies[0].levels[0].minimum",
            "whole number",
        ),
        (
            {"type": "status_levels", "levels": [{"name": "gold", "minimum": 1}], "basis": "vip"},
            "policies[0].basis",
            "must be one of",
        ),
    ],
)
def test_bad_milestone_and_level_config_names_the_key_path(
    policy: dict[str, Any], field: str, problem: str
):
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program.from_dict(config(policy))
    assert info.value.field == field
    assert problem in str(info.value)


def test_milestones_count_referrals_capped_to_nothing():
    program = rk.Program(
        id="m",
        effective_at=START - timedelta(days=30),
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(usd(10))), MILESTONES],
        caps=rk.Caps(per_referrer=usd(10)),
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    for n in range(3):
        refer(engine, n)
    milestone_values = [
        v.reward.value for v in engine.rewards_for("alice") if v.reward.policy == "milestones"
    ]
    assert milestone_values == [rk.Badge("first friend")], "the 25 USD bonus is capped away"
    assert engine.progress("alice").successful_referrals == 3
    assert engine.balance("alice")[rk.Unit("cash", "USD")].lifetime == Decimal("10.00")


def test_a_stored_outcome_keeps_the_milestone_of_its_grants():
    engine = make(MILESTONES, store=rk.SQLiteStore(":memory:"))
    first = refer(engine, 0)
    again = refer(engine, 0)
    assert again.duplicate
    assert again.grants == first.grants
    assert first.grants[1].milestone == rk.MilestoneReached("first", 1, 1)


# -- rolling status levels -----------------------------------------------------------------------
def _rolling_engine(*extra: rk.RewardPolicy, basis: str = "successful_referrals") -> rk.Engine:
    from dateutil.relativedelta import relativedelta

    levels = rk.RollingStatusLevels(
        [rk.Level("silver", 2), rk.Level("gold", 3)],
        window=relativedelta(months=3),
        basis=basis,
    )
    program = rk.Program(
        id="roll",
        effective_at=datetime(2025, 12, 1, tzinfo=UTC),
        currency="USD",
        timezone="Europe/Berlin",
        policies=[rk.SingleSided(referrer=rk.Cash(usd(10))), *extra, levels],
    )
    return rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))


def _convert(engine: rk.Engine, n: int, at: datetime) -> None:
    code = engine.code_of("alice") or engine.issue_code("alice")
    engine.handle(rk.Signup(event_id=f"s{n}", participant_id=f"f{n}", code=code, at=at))
    engine.handle(
        rk.Purchase(
            event_id=f"p{n}", participant_id=f"f{n}", order_id=f"o{n}", amount=usd(50), at=at
        )
    )


def test_rolling_levels_count_the_last_months_only_and_go_down_with_time():
    engine = _rolling_engine()
    clock = engine._clock  # the ManualClock given above
    assert isinstance(clock, rk.ManualClock)
    # January 31st 23:30 UTC is February 1st in Berlin: the months are the program's.
    _convert(engine, 0, datetime(2026, 1, 10, tzinfo=UTC))
    _convert(engine, 1, datetime(2026, 1, 31, 23, 30, tzinfo=UTC))
    _convert(engine, 2, datetime(2026, 3, 5, tzinfo=UTC))
    clock.set(datetime(2026, 3, 6, tzinfo=UTC))  # January, February, March: 3
    assert engine.status_of("alice") == "gold"
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))  # February to April: 2
    progress = engine.progress("alice")
    assert (progress.level, progress.next_level, progress.to_next_level) == ("silver", "gold", 1)
    assert progress.successful_referrals == 3  # the lifetime count is unchanged
    clock.set(datetime(2026, 6, 1, tzinfo=UTC))  # April to June: 0
    assert engine.status_of("alice") is None
    # The drop is notified at the next conversion, which counts in June.
    _convert(engine, 3, datetime(2026, 6, 2, tzinfo=UTC))
    changes = [(d["old"], d["new"]) for d in outbox(engine, "status_changed")]
    assert sorted(changes) == sorted([("", "silver"), ("silver", "gold"), ("gold", "")])


def test_a_full_refund_takes_a_referral_out_of_the_month_it_converted_in():
    engine = _rolling_engine()
    _convert(engine, 0, datetime(2026, 1, 10, tzinfo=UTC))
    _convert(engine, 1, datetime(2026, 2, 10, tzinfo=UTC))
    assert engine.status_of("alice") is None  # the clock is still on January 5th
    engine._clock.set(datetime(2026, 2, 20, tzinfo=UTC))  # type: ignore[attr-defined]
    assert engine.status_of("alice") == "silver"
    engine.handle(
        rk.Refund(
            event_id="r0",
            refund_id="r0",
            order_id="o0",
            amount=usd(50),
            at=datetime(2026, 2, 15, tzinfo=UTC),
        )
    )
    assert engine.status_of("alice") is None
    with engine.store.unit_of_work() as uow:
        key = ("roll", "status.month", "alice/referrals/2026-01")
        assert uow.counters.get([key])[key] == 0


def test_rolling_levels_on_points_count_points_earned_in_the_window():
    engine = _rolling_engine(rk.SingleSided(referrer=rk.Points(1), name="points"), basis="points")
    for n, month in enumerate((1, 2, 3)):
        _convert(engine, n, datetime(2026, month, 10, tzinfo=UTC))
    engine._clock.set(datetime(2026, 3, 11, tzinfo=UTC))  # type: ignore[attr-defined]
    assert engine.status_of("alice") == "gold"
    engine._clock.set(datetime(2026, 4, 11, tzinfo=UTC))  # type: ignore[attr-defined]
    assert engine.status_of("alice") == "silver"


def test_rolling_levels_round_trip_through_config_and_refuse_a_bad_window():
    from dateutil.relativedelta import relativedelta

    p = rk.Program.from_dict(
        config(
            {
                "type": "rolling_status_levels",
                "levels": [{"name": "vip", "minimum": 5}],
                "window": {"years": 1},
            }
        )
    )
    (levels,) = p.policies
    assert isinstance(levels, rk.RollingStatusLevels)
    assert levels.months == 12
    assert rk.Program.from_dict(p.to_dict()) == p
    for bad in (relativedelta(days=30), relativedelta(), relativedelta(months=-1), 12):
        with pytest.raises(rk.InvalidProgramError) as info:
            rk.RollingStatusLevels([rk.Level("vip", 5)], window=bad)  # type: ignore[arg-type]
        assert info.value.field == "status_levels.window"
    with pytest.raises(rk.InvalidProgramError) as info:
        rk.Program.from_dict(
            config(
                {
                    "type": "rolling_status_levels",
                    "levels": [{"name": "vip", "minimum": 5}],
                    "window": {"days": 30},
                }
            )
        )
    assert info.value.field.startswith("policies[0]")


def test_plain_status_levels_keep_their_program_digest():
    """Rolling levels are their own type, so programs with plain levels keep their digest."""
    program = rk.Program(
        id="d",
        effective_at=START,
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(usd(1))), LEVELS],
    )
    assert "window" not in json.dumps(program.definition(), default=str)


def test_a_moved_referral_leaves_the_old_referrers_months_and_counts_in_the_new_ones():
    """Re-attribution moves a conversion's monthly count (rolling status levels) from the
    old referrer to the new one, in the month it converted in."""
    engine = _rolling_engine()
    clock = engine._clock
    assert isinstance(clock, rk.ManualClock)
    engine.issue_code("zoe")
    for n, day in enumerate((10, 20, 25)):
        _convert(engine, n, datetime(2026, 1, day, tzinfo=UTC))
    clock.set(datetime(2026, 2, 1, tzinfo=UTC))
    assert (engine.status_of("alice"), engine.status_of("zoe")) == ("gold", None)
    engine.reattribute("f0", "zoe", actor="ops", reason="ticket 3")
    engine.reattribute("f1", "zoe", actor="ops", reason="ticket 3")
    assert (engine.status_of("alice"), engine.status_of("zoe")) == (None, "silver")
    clock.set(datetime(2026, 4, 1, tzinfo=UTC))  # February to April: January left the window
    assert (engine.status_of("alice"), engine.status_of("zoe")) == (None, None)
