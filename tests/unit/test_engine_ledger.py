"""The reward lifecycle through the engine: holds, decisions, veto, clawbacks, payouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk

T0 = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=31)
CASH = rk.Unit("cash", "USD")
CREDIT = rk.Unit("credit", "USD")


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def program(**changes: Any) -> rk.Program:
    terms: dict[str, Any] = {
        "id": "friends",
        "effective_at": T0 - timedelta(days=1),
        "currency": "USD",
        "policies": [rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
        "hold": relativedelta(days=30),
    }
    terms.update(changes)
    return rk.Program(**terms)


class Fulfiller:
    """Records payouts; fails while ``fail`` is set."""

    def __init__(self) -> None:
        self.calls: list[rk.Payout] = []
        self.paid: dict[str, rk.Payout] = {}
        self.fail = False

    def fulfil(self, payout: rk.Payout) -> None:
        self.calls.append(payout)
        if self.fail:
            raise ConnectionError("bank down")
        self.paid.setdefault(payout.payout_id, payout)


STORES: dict[str, Any] = {"memory": rk.InMemoryStore, "sqlite": rk.SQLiteStore}
_store_factory: list[Any] = [rk.InMemoryStore]


@pytest.fixture(autouse=True, params=sorted(STORES))
def each_store(request: pytest.FixtureRequest) -> None:
    """Every test runs on the reference store and on SQLite."""
    _store_factory[0] = STORES[request.param]


def make(prog: rk.Program | None = None, **kwargs: Any) -> rk.Engine:
    kwargs.setdefault("clock", rk.ManualClock(T0))
    kwargs.setdefault("fulfiller", Fulfiller())
    store = kwargs.pop("store", None) or _store_factory[0]()
    return rk.Engine(prog or program(), store, **kwargs)


def refer(engine: rk.Engine, who: str = "bob", order: str = "o1", amount: str = "80.00") -> str:
    engine.handle(
        rk.Signup(event_id=f"s-{who}", participant_id=who, code=engine.issue_code("alice"), at=T0)
    )
    outcome = engine.handle(
        rk.Purchase(
            event_id=f"p-{order}", participant_id=who, order_id=order, amount=usd(amount), at=T0
        )
    )
    return outcome.reward_ids[0]  # the referrer's cash reward


def kinds(engine: rk.Engine) -> list[str]:
    return [n.kind for n in engine.store.dump()["outbox"]]


# -- holds and decisions ------------------------------------------------------------------


def test_a_held_reward_is_not_approved_by_settle_until_released() -> None:
    engine = make()
    rid = refer(engine)
    view = engine.hold(rid, reason="review", actor="ops@shop")
    assert view.state is rk.RewardState.HELD
    assert view.entries[-1].actor == "ops@shop"
    assert view.hold_reason == "review"
    engine.settle(LATER)
    assert engine.reward(rid).state is rk.RewardState.HELD
    assert engine.release(rid, actor="ops@shop").state is rk.RewardState.PENDING
    engine.settle(LATER)
    assert engine.reward(rid).state is rk.RewardState.APPROVED
    assert {"reward_held", "reward_released"} <= set(kinds(engine))


def test_releasing_an_approved_reward_returns_it_to_approved() -> None:
    engine = make()
    rid = refer(engine)
    engine.settle(LATER)
    engine.hold(rid, reason="fraud.suspected", actor="fraud-check")
    assert engine.balance("alice")[CASH].held == Decimal("20.00")
    assert engine.balance("alice")[CASH].available == 0
    assert engine.release(rid, actor="ops").state is rk.RewardState.APPROVED


def test_holding_a_held_reward_again_changes_nothing() -> None:
    engine = make()
    rid = refer(engine)
    first = engine.hold(rid, reason="review", actor="ops")
    again = engine.hold(rid, reason="review", actor="ops")
    assert again.entries == first.entries


def test_a_hold_with_until_is_released_by_settle_once_it_passes() -> None:
    engine = make()
    rid = refer(engine)
    engine.hold(rid, reason="cooling-off", actor="ops", until=T0 + timedelta(days=40))
    assert engine.reward(rid).held_until == T0 + timedelta(days=40)
    engine.settle(LATER)
    assert engine.reward(rid).state is rk.RewardState.HELD
    engine.settle(T0 + timedelta(days=41))
    view = engine.reward(rid)
    assert view.state is rk.RewardState.APPROVED
    assert [e.kind for e in view.entries][-2:] == [rk.EntryKind.RELEASED, rk.EntryKind.APPROVED]


def test_releasing_a_reward_that_is_not_held_is_an_illegal_transition() -> None:
    engine = make()
    rid = refer(engine)
    before = engine.store.dump()
    with pytest.raises(rk.IllegalTransitionError, match="cannot release a reward that is pending"):
        engine.release(rid, actor="ops")
    assert engine.store.dump() == before


def test_approving_a_rejected_reward_is_an_illegal_transition() -> None:
    engine = make()
    rid = refer(engine)
    engine.reject(rid, actor="ops")
    with pytest.raises(rk.IllegalTransitionError) as info:
        engine.approve(rid, actor="ops")
    assert info.value.field == "reward_id"
    assert info.value.value == rid
    assert info.value.state == "rejected"
    with pytest.raises(rk.IllegalTransitionError):
        engine.hold(rid, reason="review", actor="ops")
    with pytest.raises(rk.IllegalTransitionError):
        engine.release(rid, actor="ops")


def test_an_unknown_reward_id_is_named_in_the_error() -> None:
    engine = make()
    refer(engine)
    for op in (
        lambda: engine.hold("rwd_nope", reason="r", actor="ops"),
        lambda: engine.release("rwd_nope", actor="ops"),
        lambda: engine.reject("rwd_nope", actor="ops"),
        lambda: engine.approve("rwd_nope", actor="ops"),
        lambda: engine.reward("rwd_nope"),
    ):
        with pytest.raises(rk.UnknownRewardError, match="reward_id='rwd_nope'"):
            op()


def test_bad_arguments_name_the_field() -> None:
    engine = make()
    rid = refer(engine)
    with pytest.raises(rk.InvalidInputError, match="actor"):
        engine.hold(rid, reason="review", actor="")
    with pytest.raises(rk.InvalidInputError, match="reason"):
        engine.hold(rid, reason="", actor="ops")
    with pytest.raises(rk.NaiveDatetimeError, match="until"):
        engine.hold(rid, reason="r", actor="ops", until=datetime(2026, 5, 1))
    with pytest.raises(rk.UnknownReferralError, match="ref_nope"):
        engine.hold_referral("ref_nope", reason="r", actor="ops")


def test_a_rejected_reward_leaves_every_balance_and_is_final() -> None:
    engine = make()
    rid = refer(engine)
    view = engine.reject(rid, actor="ops", fraud=True)
    assert view.state is rk.RewardState.FRAUD
    line = engine.balance("alice")[CASH]
    assert (line.pending, line.available, line.lifetime, line.held) == (0, 0, 0, 0)
    assert engine.reject(rid, actor="ops").entries == view.entries  # idempotent
    engine.handle(
        rk.Chargeback(event_id="cb", chargeback_id="cb1", order_id="o1", at=T0)
    )  # nothing left to reverse on it
    assert engine.reward(rid).entries == view.entries


def test_an_operator_can_approve_a_held_reward() -> None:
    engine = make()
    rid = refer(engine)
    engine.hold(rid, reason="review", actor="ops")
    view = engine.approve(rid, actor="boss")
    assert view.state is rk.RewardState.APPROVED
    assert view.entries[-1].actor == "boss"


def test_referral_operations_apply_to_both_sides() -> None:
    engine = make()
    refer(engine)
    referral = engine.referral_of("bob")
    assert referral is not None
    held = engine.hold_referral(referral.referral_id, reason="fraud.velocity", actor="fraud")
    assert {v.reward.participant_id for v in held} == {"alice", "bob"}
    assert all(v.state is rk.RewardState.HELD for v in held)
    released = engine.release_referral(referral.referral_id, actor="ops")
    assert all(v.state is rk.RewardState.PENDING for v in released)
    rejected = engine.reject_referral(referral.referral_id, actor="ops", fraud=True)
    assert all(v.state is rk.RewardState.FRAUD for v in rejected)
    notes = [n for n in engine.store.dump()["outbox"] if n.kind == "reward_rejected"]
    assert {n.data["reason"] for n in notes} == {"fraud"}


# -- review reminders, veto and per-policy holds ----------------------------------------


def test_settle_writes_one_review_due_notification_per_overdue_hold() -> None:
    engine = make(program(review_after=relativedelta(days=7)))
    rid = refer(engine)
    engine.hold(rid, reason="review", actor="ops")
    engine.settle(T0 + timedelta(days=6))
    assert "review_due" not in kinds(engine)
    engine.settle(T0 + timedelta(days=8))
    engine.settle(T0 + timedelta(days=9))
    assert kinds(engine).count("review_due") == 1
    assert engine.reward(rid).state is rk.RewardState.HELD


def test_the_host_veto_refuses_a_reward_at_settle() -> None:
    def veto(view: rk.RewardView) -> str | None:
        return "employee" if view.reward.participant_id == "alice" else None

    engine = make(veto=veto)
    rid = refer(engine)
    approved = engine.settle(LATER)
    assert approved == 1  # bob's credit
    view = engine.reward(rid)
    assert view.state is rk.RewardState.REJECTED
    assert view.entries[-1].cause == "veto"
    notes = [n for n in engine.store.dump()["outbox"] if n.kind == "reward_rejected"]
    assert [n.data["reason"] for n in notes] == ["employee"]


def test_a_policy_hold_overrides_the_program_hold() -> None:
    prog = program(
        policies=[
            rk.SingleSided(referrer=rk.Cash(usd(20)), name="quick"),
            rk.SingleSided(referrer=rk.Cash(usd(5)), name="slow"),
        ],
        policy_holds={"quick": relativedelta(days=1)},
    )
    engine = make(prog)
    refer(engine)
    views = {v.reward.policy: v.reward.payable_at for v in engine.rewards_for("alice")}
    assert views == {"quick": T0 + timedelta(days=1), "slow": T0 + timedelta(days=30)}
    assert rk.Program.from_dict(prog.to_dict()) == prog


def test_a_policy_hold_for_an_unknown_policy_is_refused() -> None:
    with pytest.raises(rk.InvalidProgramError, match="policy_holds"):
        program(policy_holds={"nope": relativedelta(days=1)})


# -- refunds of line items and clawbacks ----------------------------------------------------


def per_item_engine() -> rk.Engine:
    prog = program(policies=[rk.PerItem(referrer=rk.Cash(usd(5)))])
    engine = make(prog)
    engine.handle(
        rk.Signup(event_id="s", participant_id="bob", code=engine.issue_code("alice"), at=T0)
    )
    engine.handle(
        rk.Purchase(
            event_id="p",
            participant_id="bob",
            order_id="o1",
            amount=usd(60),
            at=T0,
            items=(
                rk.LineItem(sku="hat", quantity=2, unit_price=usd(10)),
                rk.LineItem(sku="coat", unit_price=usd(40)),
            ),
        )
    )
    return engine


def test_a_refund_naming_items_reverses_only_their_per_item_rewards() -> None:
    engine = per_item_engine()
    by_item = {v.reward.item: v.reward.reward_id for v in engine.rewards_for("alice")}
    assert set(by_item) == {"hat", "coat"}
    engine.handle(
        rk.Refund(
            event_id="r", refund_id="r1", order_id="o1", amount=usd(40), at=T0, items=("coat",)
        )
    )
    assert engine.reward(by_item["coat"]).state is rk.RewardState.REVERSED
    assert engine.reward(by_item["hat"]).reversed == 0


def test_a_refund_naming_an_item_not_in_the_order_is_refused() -> None:
    engine = per_item_engine()
    before = engine.store.dump()
    with pytest.raises(rk.InvalidEventError, match=r"refund.items\[0\]='scarf'"):
        engine.handle(
            rk.Refund(
                event_id="r", refund_id="r1", order_id="o1", amount=usd(5), at=T0, items=("scarf",)
            )
        )
    assert engine.store.dump() == before


def pay(engine: rk.Engine) -> rk.PayoutResult:
    engine.settle(LATER)
    return engine.payout(now=LATER)


def test_a_refund_after_payout_is_clawed_back_and_netted_against_the_next_payout() -> None:
    fulfiller = Fulfiller()
    engine = make(fulfiller=fulfiller)
    rid = refer(engine)
    result = pay(engine)
    assert [p.amount for p in result.paid if p.participant_id == "alice"] == [usd(20)]
    engine.handle(rk.Refund(event_id="r", refund_id="r1", order_id="o1", amount=usd(40), at=LATER))
    line = engine.balance("alice")[CASH]
    assert line.owed == Decimal("10.00")
    assert line.paid == Decimal("10.00")
    assert engine.reward(rid).state is rk.RewardState.PAID
    assert "reward_clawed_back" in kinds(engine)
    # a second referral earns 20; the payout nets the 10 owed
    refer(engine, who="carol", order="o2")
    engine.settle(LATER + timedelta(days=31))
    second = engine.payout(now=LATER + timedelta(days=31))
    alice = [p for p in second.paid if p.participant_id == "alice"]
    assert [(p.amount, p.netted) for p in alice] == [(usd(10), usd(10))]
    assert engine.balance("alice")[CASH].owed == 0


def test_a_negative_balance_program_shows_the_debt_in_available() -> None:
    engine = make(program(negative_balance=True))
    refer(engine)
    pay(engine)
    engine.handle(rk.Chargeback(event_id="cb", chargeback_id="cb1", order_id="o1", at=LATER))
    line = engine.balance("alice")[CASH]
    assert line.available == Decimal("-20.00")
    assert line.owed == Decimal("20.00")
    assert engine.write_off("alice", CASH, actor="ops", reason="goodwill") == Decimal("20.00")
    line = engine.balance("alice")[CASH]
    assert (line.available, line.owed) == (0, 0)
    audit = engine.reward(engine.rewards_for("alice")[0].reward.reward_id).entries[-1]
    assert (audit.kind, audit.actor, audit.cause) == (rk.EntryKind.WRITTEN_OFF, "ops", "goodwill")


# -- payouts ----------------------------------------------------------------------------------


def test_payout_pays_approved_money_rewards_once() -> None:
    fulfiller = Fulfiller()
    engine = make(fulfiller=fulfiller)
    refer(engine)
    result = pay(engine)
    assert sorted((p.participant_id, p.kind, p.amount) for p in result.paid) == [
        ("alice", "cash", usd(20)),
        ("bob", "credit", usd(10)),
    ]
    line = engine.balance("alice")[CASH]
    assert (line.available, line.paid, line.lifetime) == (0, Decimal("20.00"), Decimal("20.00"))
    assert engine.payout(now=LATER) == rk.PayoutResult()
    assert len(fulfiller.calls) == 2
    notes = [n for n in engine.store.dump()["outbox"] if n.kind == "reward_paid"]
    assert {n.data["payout_id"] for n in notes} == {p.payout_id for p in result.paid}


def test_a_failed_payout_is_retried_under_the_same_id() -> None:
    fulfiller = Fulfiller()
    engine = make(fulfiller=fulfiller)
    refer(engine)
    fulfiller.fail = True
    failed = pay(engine).failed
    assert len(failed) == 2
    assert all(p.status is rk.PayoutStatus.FAILED and p.attempts == 1 for p in failed)
    assert engine.balance("alice")[CASH].available == Decimal("20.00")
    fulfiller.fail = False
    paid = engine.payout(now=LATER).paid
    assert {p.payout_id for p in paid} == {p.payout_id for p in failed}
    assert engine.balance("alice")[CASH].paid == Decimal("20.00")


def test_payout_skips_balances_below_the_minimum_and_blocked_ones() -> None:
    engine = make(payout_check=lambda who, amount: "no tax form" if who == "bob" else None)
    refer(engine)
    engine.settle(LATER)
    result = engine.payout(now=LATER, min_amount=usd(15))
    assert [p.participant_id for p in result.paid] == ["alice"]
    assert [(s.participant_id, s.reason) for s in result.skipped] == [("bob", "below_minimum")]
    result = engine.payout(now=LATER)
    assert [(s.participant_id, s.reason, s.detail) for s in result.skipped] == [
        ("bob", "payout_check", "no tax form")
    ]


def test_payout_without_a_fulfiller_is_refused() -> None:
    engine = make(fulfiller=None)
    with pytest.raises(rk.InvalidInputError, match="fulfiller"):
        engine.payout()
    with pytest.raises(rk.CurrencyMismatchError, match="min_amount"):
        make().payout(min_amount=rk.Money(1, "EUR"))


def test_payable_says_why_money_is_not_payable() -> None:
    engine = make(payout_check=lambda who, amount: "no tax form")
    rid = refer(engine)
    reasons = engine.payable("alice", now=T0)
    assert [(r.code, r.until) for r in reasons] == [("on_hold_until", T0 + timedelta(days=30))]
    assert str(reasons[0]) == "20.00 cash USD on hold until 2026-03-04"
    engine.hold(rid, reason="review", actor="ops")
    assert [r.code for r in engine.payable("alice", now=T0)] == ["held_for_review"]
    engine.release(rid, actor="ops")
    engine.settle(LATER)
    assert [(r.code, r.detail) for r in engine.payable("alice", now=LATER)] == [
        ("payout_check", "no tax form")
    ]
    below = engine.payable("alice", now=LATER, min_amount=usd(50))
    assert [(r.code, r.detail) for r in below] == [("below_minimum", "50.00 USD")]
    assert "below the minimum payout of 50.00 USD" in str(below[0])


def test_a_long_hold_reason_is_refused() -> None:
    engine = make()
    rid = refer(engine)
    with pytest.raises(rk.InvalidInputError, match="160"):
        engine.hold(rid, reason="x" * 161, actor="ops")


def test_a_reward_held_while_its_payout_is_with_the_fulfiller_is_marked_paid() -> None:
    """The money has left: leaving it held would let a later payout pay it again."""

    class HoldingFulfiller(Fulfiller):
        def fulfil(self, payout: rk.Payout) -> None:
            super().fulfil(payout)
            for rid in payout.reward_ids:
                engine.hold(rid, reason="late fraud signal", actor="fraud", now=LATER)

    fulfiller = HoldingFulfiller()
    engine = make(fulfiller=fulfiller)
    rid = refer(engine)
    pay(engine)
    assert engine.reward(rid).state is rk.RewardState.PAID
    assert engine.payout(now=LATER) == rk.PayoutResult()
    assert len(fulfiller.paid) == 2


def test_a_failed_payout_whose_rewards_changed_is_cancelled_and_paid_anew() -> None:
    fulfiller = Fulfiller()
    engine = make(fulfiller=fulfiller)
    refer(engine)
    fulfiller.fail = True
    (failed,) = [p for p in pay(engine).failed if p.participant_id == "alice"]
    engine.handle(rk.Refund(event_id="r", refund_id="r1", order_id="o1", amount=usd(8), at=LATER))
    fulfiller.fail = False
    (paid,) = [p for p in engine.payout(now=LATER).paid if p.participant_id == "alice"]
    assert paid.payout_id != failed.payout_id
    assert paid.amount == usd("18.00")
    statuses = {p.payout_id: p.status for p in engine.store.dump()["payouts"]}
    assert statuses[failed.payout_id] is rk.PayoutStatus.CANCELLED
    assert engine.balance("alice")[CASH].paid == Decimal("18.00")


def test_points_are_not_paid_out_and_payable_says_so() -> None:
    prog = program(policies=[rk.SingleSided(referrer=rk.Points(50))])
    engine = make(prog)
    refer(engine)
    assert pay(engine) == rk.PayoutResult()
    reasons = engine.payable("alice", now=LATER)
    assert [(r.code, r.quantity) for r in reasons] == [("not_paid_out", Decimal(50))]


def test_program_ledger_terms_round_trip_and_change_the_digest() -> None:
    plain = program()
    terms = program(
        review_after=relativedelta(days=3),
        negative_balance=True,
        policy_holds={"double_sided": relativedelta(months=1)},
    )
    assert terms.digest != plain.digest
    assert rk.Program.from_dict(terms.to_dict()) == terms
    assert "policy_holds" not in plain.to_dict()
    with pytest.raises(rk.InvalidProgramError, match="negative_balance"):
        program(negative_balance="yes")
    with pytest.raises(rk.InvalidProgramError, match="review_after"):
        program(review_after=relativedelta(days=-1))
    with pytest.raises(rk.InvalidProgramError, match="review_after"):
        rk.Program.from_dict({**plain.to_dict(), "review_after": {"weeks": 1}})
