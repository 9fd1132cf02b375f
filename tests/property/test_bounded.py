"""Invariant 4: no reward is negative and reversals never exceed what was granted."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing import (
    check_ledger,
    check_outbox,
    check_playback,
    check_reversals,
)
from referralkit.testing.strategies import event_streams, programs

SIDES = ["single", "double"]
PURCHASE_TRIGGERS = (rk.Trigger.FIRST_PURCHASE, rk.Trigger.EVERY_PURCHASE)


@pytest.mark.parametrize("sided", SIDES)
@given(data=st.data())
def test_rewards_and_reversals_stay_within_what_was_granted(sided, data):
    """Over any stream, every reward is positive, reversals never exceed the grant, partial
    refunds reverse pro rata, and no balance goes negative."""
    scenario = data.draw(event_streams(programs(sided=sided)), label="scenario")
    engine = scenario.new_engine()
    check_playback(scenario.play(engine))
    check_ledger(engine.store, engine)
    check_reversals(engine.store)
    check_outbox(engine.store)
    for participant in scenario.participants:
        for line in engine.balance(participant):
            assert min(line.pending, line.available, line.lifetime) >= 0, line


@pytest.mark.parametrize("sided", SIDES)
@given(data=st.data())
def test_refunding_every_order_in_full_returns_every_balance_to_zero(sided, data):
    """When every order is fully refunded or charged back (after or before settlement),
    every reward is reversed and every balance is zero."""
    program = programs(sided=sided, triggers=PURCHASE_TRIGGERS)
    scenario = data.draw(event_streams(program), label="scenario")
    engine = scenario.new_engine()
    scenario.play(engine)
    if data.draw(st.booleans(), label="settle everything first"):
        last = max((s.event.at for s in scenario.events), default=scenario.start)
        engine.settle(scenario.program.payable_at(last) + timedelta(days=1))
    dump = engine.store.dump()
    refunded: dict[str, int] = {}
    for refund in dump["refunds"]:
        refunded[refund.order_id] = refunded.get(refund.order_id, 0) + refund.amount.to_minor()
    charged = {c.order_id for c in dump["chargebacks"]}
    for n, order in enumerate(dump["orders"]):
        remaining = order.amount.to_minor() - refunded.get(order.order_id, 0)
        if order.order_id in charged:
            continue
        at = order.at
        if remaining > 0 and data.draw(st.booleans(), label=f"refund {order.order_id}"):
            engine.handle(
                rk.Refund(
                    event_id=f"close-{n}",
                    refund_id=f"close-r{n}",
                    order_id=order.order_id,
                    amount=rk.Money.from_minor(remaining, order.amount.currency),
                    at=at,
                )
            )
        else:
            engine.handle(
                rk.Chargeback(
                    event_id=f"close-{n}",
                    chargeback_id=f"close-c{n}",
                    order_id=order.order_id,
                    at=at,
                )
            )
    check_ledger(engine.store, engine)
    check_reversals(engine.store)
    for participant in scenario.participants:
        balance = engine.balance(participant)
        assert balance.is_zero(), balance
        for view in engine.rewards_for(participant):
            assert view.state is rk.RewardState.REVERSED
            assert view.reversed == view.granted
