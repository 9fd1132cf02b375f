"""A referral held by a fraud check holds its rewards in the ledger until an operator decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import referralkit as rk
from referralkit.attribution import SameIdentityCheck, keyed_hash
from referralkit.testing import check_ledger

START = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)
KEY = b"k" * 32


def make_engine(store: rk.Store | None = None) -> rk.Engine:
    program = rk.Program(
        id="friends",
        effective_at=START - timedelta(days=365),
        currency="USD",
        policies=[
            rk.DoubleSided(
                rk.Cash(rk.Money(10, "USD")),
                rk.Credit(rk.Money(5, "USD")),
                trigger=rk.Trigger.EVERY_PURCHASE,
            )
        ],
    )
    return rk.Engine(
        program,
        store or rk.InMemoryStore(),
        clock=rk.ManualClock(START),
        fraud_checks=[SameIdentityCheck()],
    )


def held_referral(e: rk.Engine) -> str:
    """alice and bob sign up from one device: bob's referral is held."""
    code = e.issue_code("alice")
    e.handle(
        rk.Signup(event_id="s-a", participant_id="alice", at=START, device=keyed_hash("d", KEY))
    )
    e.handle(
        rk.Signup(
            event_id="s-b",
            participant_id="bob",
            at=START,
            code=code,
            device=keyed_hash("d", KEY),
        )
    )
    referral = e.referral_of("bob")
    assert referral is not None
    assert referral.status == "held"
    return referral.referral_id


def buy(e: rk.Engine, n: int) -> rk.Outcome:
    return e.handle(
        rk.Purchase(
            event_id=f"p-{n}",
            participant_id="bob",
            order_id=f"o-{n}",
            amount=rk.Money(50, "USD"),
            at=START + n * DAY,
        )
    )


def states(e: rk.Engine, who: str) -> list[rk.RewardState]:
    return [view.state for view in e.rewards_for(who)]


def test_rewards_of_a_held_referral_are_held_and_never_settled() -> None:
    e = make_engine()
    held_referral(e)
    buy(e, 1)
    assert states(e, "alice") == [rk.RewardState.HELD]
    assert states(e, "bob") == [rk.RewardState.HELD]
    assert e.settle(START + timedelta(days=400)) == 0
    assert states(e, "alice") == [rk.RewardState.HELD]
    kinds = [n.kind for n in e.store.dump()["outbox"]]
    assert kinds.count("reward_held") == 2
    check_ledger(e.store)


def test_releasing_a_held_referral_releases_its_rewards_and_later_ones_are_not_held() -> None:
    e = make_engine()
    referral_id = held_referral(e)
    buy(e, 1)
    e.release_referral(referral_id, actor="ops:kim")
    assert e.referral_of("bob").status == "active"  # type: ignore[union-attr]
    assert states(e, "alice") == [rk.RewardState.PENDING]
    buy(e, 2)
    assert states(e, "alice") == [rk.RewardState.PENDING, rk.RewardState.PENDING]
    assert e.settle(START + timedelta(days=400)) == 4
    check_ledger(e.store)


def test_rejecting_a_held_referral_rejects_its_rewards_and_it_earns_nothing_more() -> None:
    e = make_engine()
    referral_id = held_referral(e)
    buy(e, 1)
    e.reject_referral(referral_id, actor="ops:kim", fraud=True)
    assert e.referral_of("bob").status == "rejected"  # type: ignore[union-attr]
    assert states(e, "alice") == [rk.RewardState.FRAUD]
    outcome = buy(e, 2)
    assert outcome.grants == ()
    assert outcome.reasons() == ("referral.rejected",)
    assert states(e, "alice") == [rk.RewardState.FRAUD]
    assert e.balance("alice").is_zero()
    # A rejected referral stays rejected: releasing it afterwards changes nothing.
    e.release_referral(referral_id, actor="ops:kim")
    assert e.referral_of("bob").status == "rejected"  # type: ignore[union-attr]
    check_ledger(e.store)


def test_a_late_self_referral_holds_the_rewards_already_granted() -> None:
    e = make_engine()
    code = e.issue_code("alice")
    e.handle(
        rk.Signup(event_id="s-b", participant_id="bob", at=START, code=code, email="jane@x.org")
    )
    buy(e, 1)
    assert states(e, "alice") == [rk.RewardState.PENDING]
    e.handle(rk.Signup(event_id="s-a", participant_id="alice", at=START + DAY, email="Jane@x.org"))
    assert e.referral_of("bob").status == "held"  # type: ignore[union-attr]
    assert states(e, "alice") == [rk.RewardState.HELD]
    assert states(e, "bob") == [rk.RewardState.HELD]
    check_ledger(e.store)


def test_held_rewards_on_sqlite_too(tmp_path: object) -> None:
    e = make_engine(rk.SQLiteStore(":memory:"))
    held_referral(e)
    buy(e, 1)
    assert states(e, "alice") == [rk.RewardState.HELD]
    check_ledger(e.store)
