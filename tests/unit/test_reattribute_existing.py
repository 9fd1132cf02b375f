"""Manual re-attribution of a referee who already had a referrer: the old referrer's rewards
and counters go back, the new referrer earns what the referral would have earned them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import referralkit as rk
from referralkit.policies import Tier, Tiered
from referralkit.testing import check_all

START = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)
CASH = rk.Unit("cash", "USD")
CREDIT = rk.Unit("credit", "USD")

STORES: dict[str, Callable[[], rk.Store]] = {
    "memory": rk.InMemoryStore,
    "sqlite": lambda: rk.SQLiteStore(":memory:"),
}


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def program(**terms: object) -> rk.Program:
    return rk.Program(
        id="friends",
        effective_at=START - timedelta(days=365),
        currency="USD",
        policies=[
            rk.DoubleSided(rk.Cash(usd(10)), rk.Credit(usd(5))),
            rk.DoubleSided(rk.Cash(usd(1)), rk.Credit(usd(2)), trigger="signup", name="welcome"),
        ],
        **terms,  # type: ignore[arg-type]
    )


def make(store: rk.Store, **kwargs: object) -> rk.Engine:
    return rk.Engine(program(), store, clock=rk.ManualClock(START + 10 * DAY), **kwargs)  # type: ignore[arg-type]


def signup(who: str, at: datetime, code: str | None = None, **more: object) -> rk.Signup:
    return rk.Signup(event_id=f"s-{who}", participant_id=who, at=at, code=code, **more)  # type: ignore[arg-type]


def purchase(who: str, n: int, amount: int, at: datetime) -> rk.Purchase:
    return rk.Purchase(
        event_id=f"p-{who}-{n}",
        participant_id=who,
        order_id=f"o-{who}-{n}",
        amount=usd(amount),
        at=at,
    )


def world(e: rk.Engine) -> tuple[str, str]:
    """carol refers dave (left alone) and bob; alice refers nobody yet."""
    alice = e.issue_code("alice")
    carol = e.issue_code("carol")
    e.handle(signup("alice", START))
    e.handle(signup("carol", START))
    e.handle(signup("dave", START + DAY, code=carol))
    e.handle(purchase("dave", 1, 50, START + 2 * DAY))
    e.handle(signup("bob", START + DAY, code=carol))
    e.handle(purchase("bob", 1, 80, START + 3 * DAY))
    e.handle(purchase("bob", 2, 30, START + 4 * DAY))
    return alice, carol


def counters(store: rk.Store, who: str) -> tuple[Decimal, ...]:
    keys = [
        ("friends", rk.Counter.REFERRER_REFERRALS.value, who),
        ("friends", rk.Counter.REFERRER_SUCCESSFUL_REFERRALS.value, who),
        ("friends", rk.Counter.REFERRER_REVENUE_REFERRED.value, who),
    ]
    with store.unit_of_work() as uow:
        got = uow.counters.get(keys)
    return tuple(got[k] for k in keys)


def lifetime(e: rk.Engine, who: str, unit: rk.Unit = CASH) -> Decimal:
    return e.balance(who)[unit].lifetime


@pytest.mark.parametrize("kind", sorted(STORES))
def test_changing_the_referrer_moves_the_rewards_and_counters(kind: str) -> None:
    store = STORES[kind]()
    e = make(store)
    alice, _ = world(e)
    assert lifetime(e, "carol") == Decimal(22)  # dave's and bob's sign-up and first purchase
    before = e.referral_of("bob")
    assert before is not None
    dave_rewards = e.rewards_for("dave")

    referral = e.reattribute("bob", "alice", actor="ops-1", reason="ticket 7")

    assert referral.referral_id == before.referral_id  # the same referral, a new referrer
    assert (referral.referrer_id, referral.code) == ("alice", alice)
    assert e.referral_of("bob") == referral
    assert lifetime(e, "alice") == Decimal(11)
    assert lifetime(e, "carol") == Decimal(11)  # dave's only
    assert lifetime(e, "bob", CREDIT) == Decimal(7)  # taken back and granted again
    assert e.rewards_for("dave") == dave_rewards
    assert counters(store, "alice") == (1, 1, 110)
    assert counters(store, "carol") == (1, 1, 50)
    with store.unit_of_work() as uow:
        assert [r.referee_id for r in uow.referrals.by_referrer("friends", "carol")] == ["dave"]
        assert [r.referee_id for r in uow.referrals.by_referrer("friends", "alice")] == ["bob"]
        order = uow.orders.get("friends", "o-bob-1")
        assert order is not None
        assert (order.referral_id, order.converted) == (referral.referral_id, True)
    audit = referral.explanation[-1]
    assert audit.code == "referral.reattributed"
    assert audit.param_map == {
        "actor": "ops-1",
        "reason": "ticket 7",
        "old_referrer": "carol",
        "new_referrer": "alice",
    }
    assert referral.explanation[: len(before.explanation)] == before.explanation
    assert e.explain("bob").decisions[-1] == audit
    outbox = store.dump()["outbox"]
    moved = [n for n in outbox if n.kind == "referral_reattributed"]
    assert [(n.recipient_id, n.data["old_referrer"], n.data["referee"]) for n in moved] == [
        ("alice", "carol", "bob")
    ]
    reversed_ = [n for n in outbox if n.kind == "reward_reversed"]
    assert sorted(n.recipient_id for n in reversed_) == ["bob", "bob", "carol", "carol"]
    assert {n.data["cause"] for n in reversed_} == {"reattribution"}
    assert rk.render_message(moved[0]) == "bob now counts as your referral."
    check_all(store, e)

    # later events go to the new referrer; a refund reverses the new rewards
    e.handle(purchase("bob", 3, 40, START + 11 * DAY))
    assert counters(store, "alice") == (1, 1, 150)
    e.handle(
        rk.Refund(
            event_id="r-1",
            refund_id="rf-1",
            order_id="o-bob-1",
            amount=usd(80),
            at=START + 12 * DAY,
        )
    )
    assert lifetime(e, "alice") == Decimal(1)
    assert counters(store, "alice") == (1, 0, 70)
    assert counters(store, "carol") == (1, 1, 50)
    check_all(store, e)


@pytest.mark.parametrize("kind", sorted(STORES))
def test_paid_rewards_are_clawed_back_from_the_old_referrer(kind: str) -> None:
    paid: list[rk.Payout] = []

    class Fulfiller:
        def fulfil(self, payout: rk.Payout) -> None:
            paid.append(payout)

    store = STORES[kind]()
    e = make(store, fulfiller=Fulfiller())
    world(e)
    later = START + 60 * DAY
    e.settle(later)
    e.payout(now=later)
    assert sorted(p.participant_id for p in paid) == ["bob", "carol", "dave"]
    e.reattribute("bob", "alice", actor="ops-1", reason="ticket 7", now=later)
    carol = e.balance("carol")[CASH]
    assert carol.owed == Decimal(11)  # bob's 1 + 10, paid, now owed back
    assert lifetime(e, "alice") == Decimal(11)
    assert e.balance("alice")[CASH].pending == Decimal(11)
    # the referee's paid credit is clawed back and granted again: net, nothing changes
    assert (e.balance("bob")[CREDIT].owed, e.balance("bob")[CREDIT].pending) == (7, 7)
    claws = [n for n in store.dump()["outbox"] if n.kind == "reward_clawed_back"]
    assert sorted(n.recipient_id for n in claws) == ["bob", "bob", "carol", "carol"]
    check_all(store, e)


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_referral_can_move_again_and_back(kind: str) -> None:
    store = STORES[kind]()
    e = make(store)
    world(e)
    e.issue_code("erin")
    e.handle(signup("erin", START))
    e.reattribute("bob", "alice", actor="ops-1", reason="first", operation_id="op-1")
    e.reattribute("bob", "erin", actor="ops-1", reason="second", operation_id="op-2")
    e.reattribute("bob", "carol", actor="ops-2", reason="back", operation_id="op-3")
    assert lifetime(e, "alice") == lifetime(e, "erin") == 0
    assert lifetime(e, "carol") == Decimal(22)
    assert lifetime(e, "bob", CREDIT) == Decimal(7)
    assert counters(store, "alice") == counters(store, "erin") == (0, 0, 0)
    assert counters(store, "carol") == (2, 2, 160)
    # a late retry of an earlier operation changes nothing
    before = store.dump()
    referral = e.reattribute("bob", "alice", actor="ops-1", reason="first", operation_id="op-1")
    assert referral.referrer_id == "carol"
    assert store.dump() == before
    notes = [n for n in before["outbox"] if n.kind == "referral_reattributed"]
    assert [n.recipient_id for n in notes] == ["alice", "erin", "carol"]
    check_all(store, e)


def test_the_same_operation_twice_has_one_effect() -> None:
    store = rk.InMemoryStore()
    e = make(store)
    world(e)
    first = e.reattribute("bob", "alice", actor="ops-1", reason="t", operation_id="req-9")
    before = store.dump()
    assert e.reattribute("bob", "alice", actor="ops-1", reason="t", operation_id="req-9") == first
    assert e.reattribute("bob", "alice", actor="ops-1", reason="t") == first  # no id: a retry
    assert store.dump() == before
    assert first.explanation[-1].param_map["operation"] == "req-9"


class Verdicts:
    """A fraud check that returns one verdict, whatever it is asked."""

    def __init__(self, verdict: rk.attribution.FraudVerdict) -> None:
        self.verdict = verdict
        self.asked: list[rk.attribution.FraudContext] = []

    def check(self, context: rk.attribution.FraudContext) -> rk.attribution.FraudVerdict:
        self.asked.append(context)
        return self.verdict


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_held_or_flagged_pair_is_recorded_and_the_operator_decides(kind: str) -> None:
    store = STORES[kind]()
    check = Verdicts(rk.attribution.FraudVerdict(rk.attribution.FraudAction.ALLOW))
    e = make(store, fraud_checks=[check])
    world(e)
    check.verdict = rk.attribution.FraudVerdict("hold", ("fraud.same_device",))
    referral = e.reattribute("bob", "alice", actor="ops-1", reason="ticket 7")
    assert check.asked[-1].referrer_id == "alice"
    assert check.asked[-1].referee_id == "bob"
    assert referral.status == "active"
    noted = referral.explanation[-2]
    assert (noted.code, noted.param_map) == (
        "referral.check_overridden",
        {"action": "hold", "reasons": "fraud.same_device"},
    )
    assert all(v.state is rk.RewardState.PENDING for v in e.rewards_for("alice"))
    check_all(store, e)


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_held_referral_moved_by_an_operator_becomes_active(kind: str) -> None:
    store = STORES[kind]()
    check = Verdicts(rk.attribution.FraudVerdict("hold", ("fraud.velocity",)))
    e = make(store, fraud_checks=[check])
    world(e)
    held = e.referral_of("bob")
    assert held is not None
    assert held.status == "held"
    check.verdict = rk.attribution.FraudVerdict()
    referral = e.reattribute("bob", "alice", actor="ops-1", reason="ticket 7")
    assert referral.status == "active"
    assert {v.state for v in e.rewards_for("alice")} == {rk.RewardState.PENDING}
    assert all(
        v.state is rk.RewardState.REVERSED
        for v in e.rewards_for("carol")
        if v.reward.referral_id == referral.referral_id
    )
    check_all(store, e)


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_blocked_pair_or_a_self_referral_is_refused_and_writes_nothing(kind: str) -> None:
    store = STORES[kind]()
    check = Verdicts(rk.attribution.FraudVerdict())
    e = make(store, fraud_checks=[check])
    world(e)
    e.issue_code("bob-again")
    e.handle(signup("bob-again", START, email="Bob+x@Example.com"))
    with store.unit_of_work() as uow:
        uow.participants.set_email("friends", "bob", "bob@example.com")
        uow.commit()
    before = store.dump()
    with pytest.raises(rk.InvalidInputError, match="self-referral") as info:
        e.reattribute("bob", "bob-again", actor="ops-1", reason="ticket 7")
    assert (info.value.field, info.value.value) == ("referrer_id", "bob-again")
    check.verdict = rk.attribution.FraudVerdict("block", ("fraud.same_payment",))
    with pytest.raises(rk.InvalidInputError, match=r"fraud\.same_payment") as info:
        e.reattribute("bob", "alice", actor="ops-1", reason="ticket 7")
    assert info.value.field == "referrer_id"
    assert store.dump() == before


def test_the_existing_customer_rule_is_noted_and_overridden() -> None:
    store = rk.InMemoryStore()
    e = make(store)
    e.issue_code("alice")
    e.handle(purchase("zoe", 1, 20, START))  # a customer before she signed up
    e.handle(signup("zoe", START + DAY))
    referral = e.reattribute("zoe", "alice", actor="ops-1", reason="ticket 8")
    assert [d.code for d in referral.explanation] == [
        "referral.existing_customer_overridden",
        "referral.reattributed",
    ]
    check_all(store, e)


def test_a_rejected_referral_is_not_moved() -> None:
    store = rk.InMemoryStore()
    e = make(store)
    world(e)
    before_referral = e.referral_of("bob")
    assert before_referral is not None
    e.reject_referral(before_referral.referral_id, actor="ops-1", fraud=True)
    before = store.dump()
    with pytest.raises(rk.InvalidInputError, match="rejected") as info:
        e.reattribute("bob", "alice", actor="ops-1", reason="ticket 7")
    assert info.value.field == "referee_id"
    assert store.dump() == before


def tiered_program() -> rk.Program:
    return rk.Program(
        id="friends",
        effective_at=START - timedelta(days=365),
        currency="USD",
        policies=[
            Tiered([Tier(1, rk.Cash(usd(10))), Tier(2, rk.Cash(usd(30)))]),
            rk.DoubleSided(rk.Cash(usd(1)), rk.Credit(usd(2)), trigger="signup", name="welcome"),
            rk.DoubleSided(
                rk.Cash(rk.Money("0.50", "USD")),
                rk.Credit(usd(1)),
                trigger="every_purchase",
                name="each",
            ),
        ],
        caps=rk.Caps(per_referrer=usd(60)),
        min_order=usd(20),
    )


def _play(
    e: rk.Engine,
    referrer: str | None,
    others: dict[str, str],
    amounts: list[int],
    refunds: dict[int, int] | None = None,
) -> None:
    """The referrers' other referees first, then bob (with ``referrer``'s code or none):
    his purchases, each followed half a day later by its refund when ``refunds`` names it
    (a percentage of the order; 100 or more is a chargeback)."""
    codes = {who: e.issue_code(who) for who in ("alice", "carol")}
    for who in ("alice", "carol"):
        e.handle(signup(who, START))
    for n, (referee, by) in enumerate(sorted(others.items())):
        e.handle(signup(referee, START + DAY, code=codes[by]))
        e.handle(purchase(referee, 0, 25 + n, START + DAY + timedelta(hours=1 + n)))
    e.handle(signup("bob", START + 2 * DAY, code=None if referrer is None else codes[referrer]))
    for n, amount in enumerate(amounts):
        e.handle(purchase("bob", n, amount, START + (3 + n) * DAY))
        percent = (refunds or {}).get(n)
        at = START + (3 + n) * DAY + timedelta(hours=12)
        if percent is not None and percent >= 100:
            e.handle(
                rk.Chargeback(
                    event_id=f"cb-{n}", chargeback_id=f"cb-{n}", order_id=f"o-bob-{n}", at=at
                )
            )
        elif percent:
            e.handle(
                rk.Refund(
                    event_id=f"rb-{n}",
                    refund_id=f"rfb-{n}",
                    order_id=f"o-bob-{n}",
                    amount=rk.Money(Decimal(amount * percent).scaleb(-2), "USD"),
                    at=at,
                )
            )


@settings(max_examples=60, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=120), max_size=4),
    others=st.dictionaries(
        st.sampled_from(["f1", "f2", "f3"]), st.sampled_from(["alice", "carol"]), max_size=3
    ),
    kind=st.sampled_from(sorted(STORES)),
    refunds=st.dictionaries(st.integers(0, 3), st.sampled_from([10, 50, 99, 100, 120])),
)
def test_reattributing_gives_the_ledger_of_a_referral_made_so_from_the_start(
    amounts: list[int], others: dict[str, str], kind: str, refunds: dict[int, int]
) -> None:
    """carol -> alice: alice and bob end as if bob had used alice's code, carol as if bob
    had never been referred by her (balances, and the counters policies read), with
    refunds and chargebacks before the move applied again to alice's rewards."""

    def engine(store: rk.Store | None = None) -> rk.Engine:
        store = store or rk.InMemoryStore()
        return rk.Engine(tiered_program(), store, clock=rk.ManualClock(START))

    moved, alice_from_start, nobody = engine(STORES[kind]()), engine(), engine()
    _play(moved, "carol", others, amounts, refunds)
    _play(alice_from_start, "alice", others, amounts, refunds)
    _play(nobody, None, others, amounts, refunds)
    moved.reattribute("bob", "alice", actor="ops", reason="property")
    for who in ("alice", "bob"):
        assert moved.balance(who) == alice_from_start.balance(who), who
        assert counters(moved.store, who) == counters(alice_from_start.store, who), who
    got = [line for line in moved.balance("carol") if line.lifetime or line.owed]
    assert got == [line for line in nobody.balance("carol") if line.lifetime or line.owed]
    assert counters(moved.store, "carol") == counters(nobody.store, "carol")
    check_all(moved.store, moved)
    # and the next events agree too: a purchase, a partial refund of the first order
    for e in (moved, alice_from_start):
        e.handle(purchase("bob", 9, 50, START + 20 * DAY))
        if amounts and 0 not in refunds:
            refund = rk.Refund(
                event_id="r-1",
                refund_id="rf-1",
                order_id="o-bob-0",
                amount=usd(max(amounts[0] // 2, 1)),
                at=START + 21 * DAY,
            )
            e.handle(refund)
    for who in ("alice", "bob"):
        assert moved.balance(who) == alice_from_start.balance(who), who
        assert counters(moved.store, who) == counters(alice_from_start.store, who), who
    check_all(moved.store, moved)


def _milestone_engine(*policies: rk.RewardPolicy) -> rk.Engine:
    program = rk.Program(
        id="friends",
        effective_at=START - timedelta(days=30),
        currency="USD",
        policies=[rk.SingleSided(referrer=rk.Cash(usd(10))), *policies],
    )
    return rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))


def test_milestones_and_status_levels_follow_the_referral() -> None:
    e = _milestone_engine(
        rk.Milestones([rk.Milestone(1, rk.Cash(usd(5)), name="first")]),
        rk.StatusLevels([rk.Level("bronze", 1)]),
    )
    code = e.issue_code("alice")
    e.issue_code("carol")
    e.handle(signup("bob", START, code=code))
    e.handle(purchase("bob", 1, 50, START + DAY))
    assert (e.status_of("alice"), lifetime(e, "alice")) == ("bronze", 15)
    e.reattribute("bob", "carol", actor="ops", reason="ticket 3")
    assert (e.status_of("alice"), lifetime(e, "alice")) == (None, 0)
    assert (e.status_of("carol"), lifetime(e, "carol")) == ("bronze", 15)
    changes = [
        (n.recipient_id, n.data["new"])
        for n in e.store.dump()["outbox"]
        if n.kind == "status_changed"
    ]
    assert sorted(changes) == [("alice", ""), ("alice", "bronze"), ("carol", "bronze")]
    check_all(e.store, e)
    # the milestone stays used for alice: granted once ever
    e.handle(signup("dan", START + 2 * DAY, code=code))
    e.handle(purchase("dan", 1, 50, START + 3 * DAY))
    assert lifetime(e, "alice") == 10
    check_all(e.store, e)


def test_points_and_a_points_status_of_the_referee_are_reissued() -> None:
    e = _milestone_engine(
        rk.DoubleSided(rk.Points(100), rk.Points(150), name="points"),
        rk.StatusLevels([rk.Level("silver", 100)], basis="points"),
    )
    code = e.issue_code("alice")
    e.issue_code("carol")
    e.handle(signup("bob", START, code=code))
    e.handle(purchase("bob", 1, 50, START + DAY))
    assert (e.status_of("alice"), e.status_of("bob")) == ("silver", "silver")
    e.reattribute("bob", "carol", actor="ops", reason="ticket 4")
    assert (e.status_of("alice"), e.status_of("bob"), e.status_of("carol")) == (
        None,
        "silver",
        "silver",
    )
    check_all(e.store, e)


def test_operator_decisions_after_a_move_act_on_the_new_rewards_only() -> None:
    store = rk.InMemoryStore()
    e = make(store)
    world(e)
    referral = e.reattribute("bob", "alice", actor="ops-1", reason="ticket 7")
    held = e.hold_referral(referral.referral_id, reason="check", actor="ops-2")
    assert {v.reward.participant_id for v in held if v.state is rk.RewardState.HELD} == {
        "alice",
        "bob",
    }
    rejected = e.reject_referral(referral.referral_id, actor="ops-2")
    assert {v.state for v in rejected} <= {rk.RewardState.REJECTED, rk.RewardState.REVERSED}
    assert lifetime(e, "alice") == 0
    assert lifetime(e, "carol") == Decimal(11)  # dave's, untouched
    check_all(store, e)


@pytest.mark.parametrize("kind", sorted(STORES))
def test_refunds_before_the_move_are_applied_again_to_the_new_rewards(kind: str) -> None:
    """A full refund of the converting order before the move: the new referrer's first
    purchase reward is granted and reversed, and the next purchase converts again."""
    store = STORES[kind]()
    e = make(store)
    world(e)  # bob (carol's): o-bob-1 80 converts, o-bob-2 30
    e.handle(
        rk.Refund(
            event_id="r-0", refund_id="rf-0", order_id="o-bob-1", amount=usd(80), at=START + 5 * DAY
        )
    )
    e.handle(purchase("bob", 3, 60, START + 6 * DAY))  # converts again for carol
    assert lifetime(e, "carol") == Decimal(22)  # dave's 11, bob's sign-up 1 and o-bob-3 10
    e.reattribute("bob", "alice", actor="ops-1", reason="ticket 7")
    assert lifetime(e, "carol") == Decimal(11)
    assert lifetime(e, "alice") == Decimal(11)
    assert counters(store, "alice") == (1, 1, 90)  # 30 + 60 referred; o-bob-3 converted
    reversed_ = [v for v in e.rewards_for("alice") if v.reward.order_id == "o-bob-1"]
    assert [v.state for v in reversed_] == [rk.RewardState.REVERSED]
    assert reversed_[0].entries[-1].cause == "r-0"  # the refund, applied again
    with store.unit_of_work() as uow:
        orders = [uow.orders.get("friends", f"o-bob-{n}") for n in (1, 2, 3)]
    assert [(o.converted if o else None) for o in orders] == [True, False, True]
    check_all(store, e)


def test_a_refund_of_named_items_is_applied_again_to_the_new_per_item_rewards() -> None:
    program = rk.Program(
        id="friends",
        effective_at=START - timedelta(days=30),
        currency="USD",
        policies=[rk.PerItem(referrer=rk.Cash(usd(5)))],
    )
    e = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(START))
    code = e.issue_code("carol")
    e.issue_code("alice")
    e.handle(signup("bob", START, code=code))
    e.handle(
        rk.Purchase(
            event_id="p",
            participant_id="bob",
            order_id="o1",
            amount=usd(60),
            at=START + DAY,
            items=(
                rk.LineItem(sku="hat", quantity=2, unit_price=usd(10)),
                rk.LineItem(sku="coat", unit_price=usd(40)),
            ),
        )
    )
    e.handle(
        rk.Refund(
            event_id="r",
            refund_id="r1",
            order_id="o1",
            amount=usd(40),
            at=START + 2 * DAY,
            items=("coat",),
        )
    )
    e.reattribute("bob", "alice", actor="ops", reason="ticket")
    states = {v.reward.item: v.state for v in e.rewards_for("alice")}
    assert states == {"hat": rk.RewardState.PENDING, "coat": rk.RewardState.REVERSED}
    assert lifetime(e, "alice") == Decimal(10)  # two hats
    assert lifetime(e, "carol") == 0
    check_all(e.store, e)


def test_the_replay_counts_conversions_as_the_engine_does() -> None:
    """The re-attribution's copy of the codes that still count as a conversion is the
    engine's."""
    from referralkit import _engine, _reattribution

    assert _reattribution._LIMITED == _engine._LIMITED
