"""Manual re-attribution by an operator: a referrer assigned to a referee who had none,
with the referee's past sign-up and purchases re-evaluated (backfilled rewards)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing import check_all, check_ledger, check_one_referrer

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


def make(store: rk.Store) -> rk.Engine:
    program = rk.Program(
        id="friends",
        effective_at=START - timedelta(days=365),
        currency="USD",
        policies=[
            rk.DoubleSided(rk.Cash(usd(10)), rk.Credit(usd(5))),
            rk.DoubleSided(rk.Cash(usd(1)), rk.Credit(usd(2)), trigger="signup", name="welcome"),
        ],
    )
    return rk.Engine(program, store, clock=rk.ManualClock(START + 10 * DAY))


def signup(who: str, at: datetime, code: str | None = None) -> rk.Signup:
    return rk.Signup(event_id=f"s-{who}", participant_id=who, at=at, code=code)


def purchase(who: str, n: int, amount: int, at: datetime) -> rk.Purchase:
    return rk.Purchase(
        event_id=f"p-{who}-{n}",
        participant_id=who,
        order_id=f"o-{who}-{n}",
        amount=usd(amount),
        at=at,
    )


def world(store: rk.Store) -> tuple[rk.Engine, str, str]:
    e = make(store)
    alice = e.issue_code("alice")
    carol = e.issue_code("carol")
    e.handle(signup("alice", START))
    e.handle(signup("carol", START))
    e.handle(signup("dave", START + DAY, code=carol))  # another referral, left alone
    e.handle(purchase("dave", 1, 50, START + 2 * DAY))
    e.handle(signup("bob", START + DAY))  # no code: not referred
    e.handle(purchase("bob", 1, 80, START + 3 * DAY))
    e.handle(purchase("bob", 2, 30, START + 4 * DAY))
    return e, alice, carol


def counters(store: rk.Store, who: str) -> tuple[Decimal, Decimal]:
    keys = [
        ("friends", rk.Counter.REFERRER_SUCCESSFUL_REFERRALS.value, who),
        ("friends", rk.Counter.REFERRER_REVENUE_REFERRED.value, who),
    ]
    with store.unit_of_work() as uow:
        got = uow.counters.get(keys)
    return got[keys[0]], got[keys[1]]


def lifetime(e: rk.Engine, who: str, unit: rk.Unit = CASH) -> Decimal:
    return e.balance(who)[unit].lifetime


@pytest.mark.parametrize("kind", sorted(STORES))
def test_backfill_grants_the_new_referrer_past_rewards(kind: str) -> None:
    store = STORES[kind]()
    e, _, _ = world(store)
    assert lifetime(e, "alice") == 0
    assert lifetime(e, "bob", CREDIT) == 0
    carol_before = e.rewards_for("carol")
    dave_before = e.rewards_for("dave")

    referral = e.reattribute("bob", "alice", actor="ops-1", reason="ticket 42")

    assert referral.referrer_id == "alice"
    assert e.referral_of("bob") == referral
    # sign-up (1 + 2) and the first purchase (10 + 5); the second purchase pays nothing
    assert lifetime(e, "alice") == Decimal(11)
    assert lifetime(e, "bob", CREDIT) == Decimal(7)
    assert e.rewards_for("carol") == carol_before
    assert e.rewards_for("dave") == dave_before
    last = referral.explanation[-1]
    assert last.code == "referral.reattributed"
    assert last.param_map == {
        "actor": "ops-1",
        "reason": "ticket 42",
        "old_referrer": "",
        "new_referrer": "alice",
    }
    notes = [n for n in store.dump()["outbox"] if n.kind == "referral_reattributed"]
    assert [(n.recipient_id, n.data) for n in notes] == [
        (
            "alice",
            {
                "referral_id": referral.referral_id,
                "referee": "bob",
                "old_referrer": "",
                "new_referrer": "alice",
                "actor": "ops-1",
            },
        )
    ]
    assert counters(store, "alice") == (1, 110)
    assert counters(store, "carol") == (1, 50)
    check_one_referrer(store)
    check_ledger(store, e)
    check_all(store, e)

    # a later purchase counts as the referee's, not as a second first purchase
    e.handle(purchase("bob", 3, 40, START + 11 * DAY))
    assert lifetime(e, "alice") == Decimal(11)
    # a refund of the backfilled order reverses its rewards and the referrer's counters
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
    assert counters(store, "alice") == (0, 70)
    check_all(store, e)


@pytest.mark.parametrize("kind", sorted(STORES))
def test_a_refunded_order_is_not_backfilled(kind: str) -> None:
    store = STORES[kind]()
    e, _, _ = world(store)
    e.handle(
        rk.Refund(
            event_id="r-0", refund_id="rf-0", order_id="o-bob-1", amount=usd(80), at=START + 5 * DAY
        )
    )
    e.reattribute("bob", "alice", actor="ops-1", reason="ticket 42")
    # the sign-up pays; the refunded order does not; the next one is the first that counts
    assert lifetime(e, "alice") == Decimal(11)
    assert [v.reward.order_id for v in e.rewards_for("alice") if v.reward.order_id] == ["o-bob-2"]
    check_all(store, e)


@pytest.mark.parametrize(
    ("referee", "referrer", "field"),
    [
        ("nobody", "alice", "referee_id"),
        ("bob", "bob", "referrer_id"),
        ("dave", "carol", "referrer_id"),  # the same referrer as now
        ("carol", "dave", "referrer_id"),  # dave's referrer is carol: circular
        ("bob", "erin", "referrer_id"),  # no code
    ],
)
@pytest.mark.parametrize("kind", sorted(STORES))
def test_bad_input_writes_nothing(kind: str, referee: str, referrer: str, field: str) -> None:
    store = STORES[kind]()
    e, _, _ = world(store)
    e.handle(signup("erin", START))
    before = store.dump()
    with pytest.raises(rk.InvalidInputError) as info:
        e.reattribute(referee, referrer, actor="ops-1", reason="ticket 42")
    assert info.value.field == field
    assert info.value.value == (referee if field == "referee_id" else referrer)
    assert store.dump() == before


def test_a_retry_after_success_writes_nothing() -> None:
    """The same call again is recognised as a retry: it returns the referral and writes
    nothing; another call naming the current referrer is refused."""
    store = rk.InMemoryStore()
    e, _, _ = world(store)
    referral = e.reattribute("bob", "alice", actor="ops-1", reason="ticket 42")
    before = store.dump()
    assert e.reattribute("bob", "alice", actor="ops-1", reason="ticket 42") == referral
    assert store.dump() == before
    with pytest.raises(rk.InvalidInputError, match="already the referrer"):
        e.reattribute("bob", "alice", actor="ops-2", reason="another ticket")
    assert store.dump() == before


@pytest.mark.parametrize(("actor", "reason"), [("", "why"), ("ops", "")])
def test_actor_and_reason_are_required(actor: str, reason: str) -> None:
    store = rk.InMemoryStore()
    e, _, _ = world(store)
    before = store.dump()
    with pytest.raises(rk.InvalidInputError):
        e.reattribute("bob", "alice", actor=actor, reason=reason)
    assert store.dump() == before


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=200), max_size=4))
def test_backfill_gives_what_a_referral_at_sign_up_would_have(amounts: list[int]) -> None:
    live, late = make(rk.InMemoryStore()), make(rk.InMemoryStore())
    for e in (live, late):
        code = e.issue_code("alice")
        e.handle(signup("bob", START, code=code if e is live else None))
        for n, amount in enumerate(amounts):
            e.handle(purchase("bob", n, amount, START + (n + 1) * DAY))
    late.reattribute("bob", "alice", actor="ops-1", reason="forgot the code")
    for who in ("alice", "bob"):
        assert late.balance(who) == live.balance(who)
    check_all(late.store, late)
