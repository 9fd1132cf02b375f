"""The reward state machine and balances, as pure functions over entries."""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit._ledger import (
    approve_entry,
    balance_of,
    decide_approve,
    grant_entry,
    hold_entry,
    pay_entry,
    recover_entry,
    reject_entry,
    release_entry,
    reversal_entry,
    review_due_entry,
    target_reversed,
    write_off_entry,
)

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
HALF_UP = decimal.ROUND_HALF_UP


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def reward(
    value: rk.RewardValue | None = None,
    base: rk.Money | None = None,
    reward_id: str = "rwd_1",
    participant: str = "alice",
) -> rk.Reward:
    return rk.Reward(
        reward_id=reward_id,
        program_id="friends",
        program_version=1,
        referral_id="ref_1",
        participant_id=participant,
        role=rk.Role.REFERRER,
        value=value if value is not None else rk.Cash(usd(20)),
        policy="double_sided",
        source_event_id="evt-1",
        order_id="order-1",
        base_amount=base if base is not None else usd(80),
        created_at=T0,
        payable_at=T0 + timedelta(days=30),
    )


def granted(r: rk.Reward) -> rk.RewardView:
    return rk.RewardView(r, (grant_entry(r),))


def then(view: rk.RewardView, entry: rk.Entry | None) -> rk.RewardView:
    assert entry is not None
    return rk.RewardView(view.reward, (*view.entries, entry))


def refund_up_to(view: rk.RewardView, refunded: str, cause: str) -> rk.RewardView:
    target = target_reversed(view, usd(refunded), view.reward.base_amount or usd(1), HALF_UP)
    entry = reversal_entry(view, target, T0, cause)
    return view if entry is None else then(view, entry)


# -- entries and states -----------------------------------------------------------------


def test_a_grant_is_pending_with_the_rewards_quantity() -> None:
    entry = grant_entry(reward())
    assert (entry.kind, entry.state_after) == (rk.EntryKind.GRANTED, rk.RewardState.PENDING)
    assert entry.quantity == Decimal("20.00")
    assert entry.cause == "evt-1"
    assert entry.entry_id == grant_entry(reward()).entry_id
    assert entry.entry_id != grant_entry(reward(reward_id="rwd_2")).entry_id


def test_approval_approves_what_is_outstanding_and_only_once() -> None:
    view = refund_up_to(granted(reward()), "20.00", "evt-refund")
    entry = approve_entry(view, T0 + timedelta(days=30))
    assert entry is not None
    assert (entry.kind, entry.quantity) == (rk.EntryKind.APPROVED, Decimal("15.00"))
    approved = then(view, entry)
    assert approved.state is rk.RewardState.APPROVED
    assert approve_entry(approved, T0 + timedelta(days=31)) is None


def test_a_wholly_reversed_reward_is_never_approved() -> None:
    view = refund_up_to(granted(reward()), "80.00", "evt-refund")
    assert view.state is rk.RewardState.REVERSED
    assert approve_entry(view, T0 + timedelta(days=30)) is None


def test_a_partial_reversal_keeps_the_state_and_a_full_one_ends_it() -> None:
    view = granted(reward())
    view = then(view, approve_entry(view, T0))
    partial = refund_up_to(view, "40.00", "r1")
    assert partial.state is rk.RewardState.APPROVED
    assert (partial.granted, partial.reversed, partial.outstanding) == (20, 10, 10)
    full = refund_up_to(partial, "80.00", "r2")
    assert full.state is rk.RewardState.REVERSED
    assert full.outstanding == 0
    assert reversal_entry(full, Decimal(20), T0, "r3") is None


def test_reversal_entry_ids_are_derived_from_the_reward_and_the_cause() -> None:
    view = granted(reward())
    a = reversal_entry(view, Decimal(5), T0, "refund-a")
    b = reversal_entry(view, Decimal(5), T0, "refund-b")
    assert a is not None
    assert b is not None
    assert a.entry_id != b.entry_id
    assert a == reversal_entry(view, Decimal(5), T0, "refund-a")


def test_no_reversal_entry_when_the_target_is_already_reached() -> None:
    view = refund_up_to(granted(reward()), "40.00", "r1")
    assert reversal_entry(view, Decimal(10), T0, "r2") is None
    assert reversal_entry(view, Decimal(3), T0, "r2") is None


def test_a_reversal_never_goes_beyond_what_was_granted() -> None:
    entry = reversal_entry(granted(reward()), Decimal(999), T0, "r")
    assert entry is not None
    assert entry.quantity == Decimal("20.00")


# -- target_reversed -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        (decimal.ROUND_HALF_UP, "0.03"),
        (decimal.ROUND_HALF_EVEN, "0.02"),
        (decimal.ROUND_HALF_DOWN, "0.02"),
        (decimal.ROUND_UP, "0.03"),
        (decimal.ROUND_DOWN, "0.02"),
    ],
)
def test_target_reversed_rounds_money_with_the_programs_mode(rounding: str, expected: str) -> None:
    view = granted(reward(rk.Cash(usd("0.05")), base=usd("2.00")))
    assert target_reversed(view, usd("1.00"), usd("2.00"), rounding) == Decimal(expected)


def test_target_reversed_is_pro_rata_on_the_cumulative_refund() -> None:
    view = granted(reward(rk.Credit(usd(10)), base=usd(80)))
    assert target_reversed(view, usd(20), usd(80), HALF_UP) == Decimal("2.50")
    assert target_reversed(view, usd(60), usd(80), HALF_UP) == Decimal("7.50")
    assert target_reversed(view, usd(80), usd(80), HALF_UP) == Decimal("10.00")


def test_a_zero_base_is_reversed_wholly() -> None:
    view = granted(reward(base=usd(0)))
    assert target_reversed(view, usd("0.00"), usd(0), HALF_UP) == Decimal("20.00")


def test_points_are_reversed_in_whole_points_rounding_down() -> None:
    view = granted(reward(rk.Points(10), base=usd(3)))
    assert target_reversed(view, usd(2), usd(3), decimal.ROUND_HALF_UP) == 6
    assert target_reversed(view, usd(2), usd(3), decimal.ROUND_UP) == 6


@pytest.mark.parametrize(
    "value", [rk.Badge("gold"), rk.FreePeriod(months=1), rk.Discount(percent=Decimal(10))]
)
def test_units_that_cannot_split_are_reversed_only_by_a_full_refund(
    value: rk.RewardValue,
) -> None:
    view = granted(reward(value))
    assert target_reversed(view, usd("79.99"), usd(80), HALF_UP) == 0
    assert target_reversed(view, usd(80), usd(80), HALF_UP) == value.quantity


def test_three_thirds_reverse_exactly_what_was_granted() -> None:
    view = granted(reward(rk.Cash(usd(10)), base=usd(3)))
    quantities = []
    for i, refunded in enumerate(["1.00", "2.00", "3.00"]):
        before = view.reversed
        view = refund_up_to(view, refunded, f"r{i}")
        quantities.append(view.reversed - before)
    assert quantities == [Decimal("3.33"), Decimal("3.34"), Decimal("3.33")]
    assert view.reversed == view.granted
    assert view.state is rk.RewardState.REVERSED


MODES = st.sampled_from(
    [
        decimal.ROUND_HALF_UP,
        decimal.ROUND_HALF_EVEN,
        decimal.ROUND_HALF_DOWN,
        decimal.ROUND_UP,
        decimal.ROUND_DOWN,
        decimal.ROUND_CEILING,
        decimal.ROUND_FLOOR,
    ]
)


@given(
    granted_cents=st.integers(1, 100_000),
    parts=st.lists(st.integers(1, 10_000), min_size=1, max_size=8),
    rounding=MODES,
    full=st.booleans(),
)
def test_cumulative_partial_refunds_never_exceed_what_was_granted(
    granted_cents: int, parts: list[int], rounding: str, full: bool
) -> None:
    base_cents = sum(parts) + (0 if full else 1)
    base = rk.Money.from_minor(base_cents, "USD")
    view = granted(reward(rk.Cash(rk.Money.from_minor(granted_cents, "USD")), base=base))
    refunded = 0
    for i, part in enumerate(parts):
        refunded += part
        target = target_reversed(view, rk.Money.from_minor(refunded, "USD"), base, rounding)
        entry = reversal_entry(view, target, T0, f"refund-{i}")
        if entry is not None:
            assert entry.quantity > 0
            view = then(view, entry)
        assert 0 <= view.reversed <= view.granted
    if full:
        assert view.reversed == view.granted
    # Rounding may reverse a tiny reward wholly before the order is (0.01 at half of it).
    assert (view.state is rk.RewardState.REVERSED) == (view.reversed == view.granted)


# -- balances -----------------------------------------------------------------------------


def test_balance_of_sums_pending_available_and_lifetime_per_unit() -> None:
    pending = granted(reward(rk.Cash(usd(20)), reward_id="r1"))
    approved_view = granted(reward(rk.Cash(usd(5)), reward_id="r2"))
    approved = then(approved_view, approve_entry(approved_view, T0))
    reversed_ = refund_up_to(granted(reward(rk.Cash(usd(7)), reward_id="r3")), "80.00", "x")
    credit = refund_up_to(granted(reward(rk.Credit(usd(10)), reward_id="r4")), "20.00", "y")

    balance = balance_of("alice", [pending, approved, reversed_, credit])

    cash, credit_unit = rk.Unit("cash", "USD"), rk.Unit("credit", "USD")
    assert [line.unit for line in balance] == [cash, credit_unit]
    assert balance[cash] == rk.BalanceLine(cash, Decimal(20), Decimal(5), Decimal(25))
    assert balance[credit_unit] == rk.BalanceLine(
        credit_unit, Decimal("7.50"), Decimal(0), Decimal("7.50")
    )
    assert balance[cash].as_money("pending") == usd(20)
    assert balance[cash].as_money() == usd(5)
    assert balance[cash].as_money("lifetime") == usd(25)
    assert not balance.is_zero()


def test_a_unit_without_rewards_has_a_zero_line() -> None:
    balance = balance_of("nobody", [])
    line = balance[rk.Unit("cash", "EUR")]
    assert (line.pending, line.available, line.lifetime) == (0, 0, 0)
    assert balance.is_zero()
    assert balance.lines == ()


def test_as_money_is_only_for_money_units() -> None:
    balance = balance_of("alice", [granted(reward(rk.Points(100)))])
    line = balance[rk.Unit("points", "points")]
    assert line.pending == 100
    with pytest.raises(TypeError):
        line.as_money("pending")


# -- holds, decisions, payments and clawbacks (pure) -------------------------------------


def test_hold_and_release_return_to_the_state_before_the_hold() -> None:
    view = then(granted(reward()), approve_entry(granted(reward()), T0))
    held = then(view, hold_entry(view, T0, "review", "ops", until=T0 + timedelta(days=3)))
    assert held.state is rk.RewardState.HELD
    assert (held.hold_reason, held.held_until) == ("review", T0 + timedelta(days=3))
    assert hold_entry(held, T0, "review", "ops") is None  # held already
    released = then(held, release_entry(held, T0, "ops"))
    assert released.state is rk.RewardState.APPROVED
    again = hold_entry(released, T0, "review", "ops")
    assert again is not None
    assert again.entry_id != held.entries[-1].entry_id  # a second hold has its own id


def test_entry_ids_are_deterministic() -> None:
    view = granted(reward())
    first = hold_entry(view, T0, "review", "ops")
    second = hold_entry(view, T0 + timedelta(hours=1), "review", "someone else")
    assert first is not None
    assert second is not None
    assert first.entry_id == second.entry_id


def test_rejection_is_final_and_removes_the_outstanding_quantity() -> None:
    view = granted(reward())
    rejected = then(view, reject_entry(view, T0, "ops", "rejected"))
    assert (rejected.state, rejected.outstanding, rejected.rejected) == (
        rk.RewardState.REJECTED,
        0,
        Decimal(20),
    )
    assert reject_entry(rejected, T0, "ops", "rejected") is None
    for action in (
        lambda: hold_entry(rejected, T0, "r", "ops"),
        lambda: release_entry(rejected, T0, "ops"),
        lambda: decide_approve(rejected, T0, "ops"),
        lambda: pay_entry(rejected, T0, "pay_1"),
    ):
        with pytest.raises(rk.IllegalTransitionError, match="rejected"):
            action()
    assert reversal_entry(rejected, Decimal(20), T0, "refund-1") is None
    assert approve_entry(rejected, T0) is None


def test_a_reversal_after_payment_is_a_clawback_that_is_owed() -> None:
    view = then(granted(reward()), approve_entry(granted(reward()), T0))
    paid = then(view, pay_entry(view, T0, "pay_1"))
    clawed = then(paid, reversal_entry(paid, Decimal(5), T0, "refund-1"))
    assert clawed.entries[-1].kind is rk.EntryKind.CLAWED_BACK
    assert (clawed.state, clawed.owed, clawed.outstanding) == (
        rk.RewardState.PAID,
        Decimal(5),
        Decimal(15),
    )
    recovered = then(clawed, recover_entry(clawed, Decimal(2), T0, "pay_2"))
    assert recovered.owed == Decimal(3)
    written = then(recovered, write_off_entry(recovered, T0, "ops", "goodwill"))
    assert written.owed == 0
    assert write_off_entry(written, T0, "ops", "goodwill") is None
    with pytest.raises(rk.IllegalTransitionError, match="paid"):
        reject_entry(written, T0, "ops", "rejected")
    line = balance_of("alice", [written])[rk.Unit("cash", "USD")]
    assert (line.paid, line.owed, line.lifetime) == (Decimal(15), 0, Decimal(15))


def test_review_is_due_once_per_hold() -> None:
    view = granted(reward())
    held = then(view, hold_entry(view, T0, "review", "ops"))
    deadline = T0 + timedelta(days=7)
    assert review_due_entry(held, T0 + timedelta(days=6), deadline) is None
    reminded = then(held, review_due_entry(held, deadline, deadline))
    assert reminded.review_reminded
    assert review_due_entry(reminded, deadline + timedelta(days=1), deadline) is None


def test_negative_balance_subtracts_what_is_owed_from_available() -> None:
    view = then(granted(reward()), approve_entry(granted(reward()), T0))
    paid = then(view, pay_entry(view, T0, "pay_1"))
    clawed = then(paid, reversal_entry(paid, Decimal(20), T0, "chargeback"))
    unit = rk.Unit("cash", "USD")
    assert balance_of("alice", [clawed])[unit].available == 0
    assert balance_of("alice", [clawed], negative_balance=True)[unit].available == Decimal(-20)
