"""Sliding velocity windows and circular referrals longer than two."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.attribution import (
    CircularCheck,
    FraudAction,
    FraudContext,
    FraudVerdict,
    VelocityCheck,
    check_loop,
    sliding_count,
)

START = datetime(2026, 1, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
BLOCKED = FraudVerdict(FraudAction.BLOCK, ("fraud.circular",))


# -- sliding_count -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "previous", "elapsed", "expected"),
    [
        (1, 0, 0 * MINUTE, 1),
        (1, 10, 0 * MINUTE, 11),  # at the boundary the whole previous hour is in the window
        (1, 10, 30 * MINUTE, 6),
        (1, 10, 54 * MINUTE, 2),  # 10 * 6/60 = 1 exactly
        (1, 10, 55 * MINUTE, 2),  # 10 * 5/60 = 0.83..., rounded up
        (3, 10, HOUR - timedelta(microseconds=1), 4),  # a sliver: still rounded up to 1
        (5, 0, 59 * MINUTE, 5),
    ],
)
def test_sliding_count_weights_the_previous_bucket_by_its_overlap(
    current: int, previous: int, elapsed: timedelta, expected: int
) -> None:
    assert sliding_count(current, previous, elapsed, HOUR) == expected


@given(
    current=st.integers(0, 1000),
    previous=st.integers(0, 1000),
    elapsed=st.integers(0, 3_599_999_999).map(lambda us: timedelta(microseconds=us)),
)
def test_sliding_count_lies_between_the_bucket_and_both_buckets(
    current: int, previous: int, elapsed: timedelta
) -> None:
    count = sliding_count(current, previous, elapsed, HOUR)
    assert current <= count <= current + previous
    later = sliding_count(current, previous, min(elapsed + MINUTE, HOUR - MINUTE / 60), HOUR)
    assert later <= count or elapsed + MINUTE >= HOUR  # the previous bucket fades out


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, 0, MINUTE, HOUR), "current"),
        ((0, -1, MINUTE, HOUR), "previous"),
        ((0, 0, HOUR, HOUR), "elapsed"),
        ((0, 0, -MINUTE, HOUR), "elapsed"),
        ((0, 0, MINUTE, timedelta(0)), "width"),
        ((0, 0, MINUTE, 60), "width"),
    ],
)
def test_bad_sliding_figures_are_refused(args: tuple[object, ...], field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        sliding_count(*args)  # type: ignore[arg-type]
    assert info.value.field == field


# -- check_loop and CircularCheck(depth) ---------------------------------------------------
@pytest.mark.parametrize(
    ("chain", "depth", "expected"),
    [
        ((), 3, FraudVerdict()),
        (("bob",), 2, BLOCKED),  # bob referred the referrer: a loop of 2
        (("carol", "bob"), 2, FraudVerdict()),  # a loop of 3 is not looked for
        (("carol", "bob"), 3, BLOCKED),
        (("carol", "dave", "bob"), 3, FraudVerdict()),
        (("carol", "dave", "bob"), 4, BLOCKED),
    ],
)
def test_check_loop_looks_depth_minus_one_referrers_up(
    chain: tuple[str, ...], depth: int, expected: FraudVerdict
) -> None:
    assert check_loop("bob", chain, depth) == expected


@pytest.mark.parametrize("depth", [1, 0, True, 2.0, "3"])
def test_a_depth_below_two_is_refused(depth: object) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        CircularCheck(depth=depth)  # type: ignore[arg-type]
    assert info.value.field == "depth"
    with pytest.raises(rk.InvalidInputError):
        check_loop("bob", (), depth)  # type: ignore[arg-type]


def test_circular_check_reads_the_chain_only_when_deeper_than_two() -> None:
    context = FraudContext(
        program_id="p",
        referrer_id="alice",
        referee_id="bob",
        at=START,
        referrer_of_referrer="carol",
        referrer_chain=("carol", "bob"),
    )
    assert CircularCheck().check(context) == FraudVerdict()
    assert CircularCheck(depth=3).check(context) == BLOCKED
    assert CircularCheck(depth=3).chain_depth == 2


# -- in the engine ---------------------------------------------------------------------------
def engine(*checks: object) -> rk.Engine:
    program = rk.Program(
        id="friends",
        effective_at=START - timedelta(days=30),
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(rk.Money(10, "USD")))],
    )
    return rk.Engine(
        program,
        rk.InMemoryStore(),
        clock=rk.ManualClock(START),
        fraud_checks=checks,  # type: ignore[arg-type]
    )


def signup(who: str, at: datetime, code: str | None = None) -> rk.Signup:
    return rk.Signup(event_id=f"s-{who}", participant_id=who, at=at, code=code)


@pytest.mark.parametrize(("sliding", "held"), [(False, False), (True, True)])
def test_a_burst_across_the_hour_is_held_with_a_sliding_window(sliding: bool, held: bool) -> None:
    e = engine(VelocityCheck(per_hour=2, sliding=sliding))
    code = e.issue_code("alice")
    e.handle(signup("f1", START + 58 * MINUTE, code))
    e.handle(signup("f2", START + 59 * MINUTE, code))
    outcome = e.handle(signup("f3", START + 61 * MINUTE, code))  # 3 within 3 minutes
    referral = e.referral_of("f3")
    assert referral is not None
    assert (referral.status == "held") is held
    assert ("referral.held" in outcome.reasons()) is held
    # an hour later the window has emptied
    e.handle(signup("f4", START + 3 * HOUR, code))
    later = e.referral_of("f4")
    assert later is not None
    assert later.status == "active"


def test_a_sliding_day_window_counts_yesterdays_evening() -> None:
    e = engine(VelocityCheck(per_day=3, sliding=True))
    code = e.issue_code("alice")
    for n in range(3):
        e.handle(signup(f"f{n}", START + timedelta(hours=23, minutes=n), code))
    e.handle(signup("next", START + timedelta(hours=24, minutes=30), code))
    referral = e.referral_of("next")
    assert referral is not None
    assert referral.status == "held"


class Recorder:
    """Keeps every context it is asked about; allows everything."""

    chain_depth = 3

    def __init__(self) -> None:
        self.contexts: list[FraudContext] = []

    def check(self, context: FraudContext) -> FraudVerdict:
        self.contexts.append(context)
        return FraudVerdict()


def test_a_loop_of_three_is_blocked_with_depth_three() -> None:
    for depth, blocked in ((2, False), (3, True)):
        recorder = Recorder()
        e = engine(CircularCheck(depth=depth), recorder)
        codes = {who: e.issue_code(who) for who in ("alice", "bob", "carol")}
        e.handle(signup("bob", START, codes["alice"]))
        e.handle(signup("carol", START + MINUTE, codes["bob"]))
        outcome = e.handle(signup("alice", START + 2 * MINUTE, codes["carol"]))
        assert (e.referral_of("alice") is None) is blocked
        assert ("referral.blocked" in outcome.reasons()) is blocked
        assert recorder.contexts[-1].referrer_chain == ("bob", "alice")
        assert recorder.contexts[-1].referrer_of_referrer == "bob"


def test_the_operators_choice_is_refused_when_it_closes_a_longer_loop() -> None:
    e = engine(CircularCheck(depth=3))
    codes = {who: e.issue_code(who) for who in ("alice", "bob", "carol")}
    e.handle(signup("bob", START, codes["alice"]))
    e.handle(signup("carol", START + MINUTE, codes["bob"]))
    e.handle(signup("alice", START + 2 * MINUTE))
    before = e.store.dump()
    with pytest.raises(rk.InvalidInputError, match=r"fraud\.circular") as info:
        e.reattribute("alice", "carol", actor="ops", reason="ticket")
    assert info.value.field == "referrer_id"
    assert e.store.dump() == before
