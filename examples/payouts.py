"""A program run to payout: referrals, a hold for review, a vetoed reward, a fulfiller that
fails once and is retried, a refund after payout netted against the next payout, and the
balances (with the reasons money is not payable) printed along the way."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

import referralkit as rk

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


class Bank:
    """The host's payment side: fails the first transfer, then pays; deduplicates on the
    payout id as the Fulfiller protocol asks."""

    def __init__(self) -> None:
        self.transfers: dict[str, rk.Payout] = {}
        self.calls = 0

    def fulfil(self, payout: rk.Payout) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("the bank is down")
        if payout.payout_id not in self.transfers:
            self.transfers[payout.payout_id] = payout
            print(f"  bank: sent {payout.amount} {payout.kind} to {payout.participant_id}")


def no_staff(view: rk.RewardView) -> str | None:
    """The host's veto: staff members earn no referral rewards."""
    return "staff account" if view.reward.participant_id.startswith("staff-") else None


def show(engine: rk.Engine, *people: str) -> None:
    for who in people:
        for line in engine.balance(who):
            if not line.unit.is_money:
                continue
            print(
                f"  {who:>10} {line.unit.kind:<6} pending={line.pending} held={line.held} "
                f"available={line.available} paid={line.paid} owed={line.owed}"
            )
        for reason in engine.payable(who, min_amount=usd(10)):
            print(f"  {who:>10} not payable: {reason}")


def main() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="  log: %(message)s")
    program = rk.Program(
        id="friends",
        effective_at=START,
        currency="USD",
        policies=[rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
        hold=relativedelta(days=30),
        review_after=relativedelta(days=7),
    )
    clock = rk.ManualClock(START)
    bank = Bank()
    engine = rk.Engine(
        program,
        rk.InMemoryStore(),
        clock=clock,
        fulfiller=bank,
        veto=no_staff,
        payout_check=lambda who, amount: "no tax form" if who == "carol" else None,
    )
    code = engine.issue_code("alice")
    staff_code = engine.issue_code("staff-sam")
    for n, (who, via) in enumerate([("bob", code), ("carol", code), ("dan", staff_code)]):
        engine.handle(rk.Signup(event_id=f"s{n}", participant_id=who, code=via, at=START))
        engine.handle(
            rk.Purchase(
                event_id=f"p{n}", participant_id=who, order_id=f"o{n}", amount=usd(80), at=START
            )
        )
    carol = engine.referral_of("carol")
    assert carol is not None
    engine.hold_referral(carol.referral_id, reason="same card as bob", actor="fraud-check")
    print("day 0:")
    show(engine, "alice", "carol")

    clock.advance(timedelta(days=31))
    print(f"day 31: settle approved {engine.settle()} rewards")
    sams = engine.rewards_for("staff-sam")[0]
    print(f"  staff-sam's reward is {sams.state.value} (vetoed)")
    engine.release_referral(carol.referral_id, actor="ops@shop.example")
    engine.settle()

    first = engine.payout()
    print(f"  payout: {len(first.paid)} paid, {len(first.failed)} failed")
    for skip in first.skipped:
        print(f"  skipped {skip.participant_id}: {skip.reason} ({skip.detail})")
    retry = engine.payout()
    print(f"  retry: {len(retry.paid)} paid, {len(retry.failed)} failed")
    show(engine, "alice", "bob", "carol")

    clock.advance(timedelta(days=1))
    engine.handle(
        rk.Refund(event_id="r1", refund_id="r1", order_id="o0", amount=usd(40), at=clock.now())
    )
    print("day 32: bob refunded half his order after alice was paid:")
    show(engine, "alice")

    engine.handle(rk.Signup(event_id="s9", participant_id="erin", code=code, at=clock.now()))
    engine.handle(
        rk.Purchase(
            event_id="p9", participant_id="erin", order_id="o9", amount=usd(80), at=clock.now()
        )
    )
    clock.advance(timedelta(days=31))
    engine.settle()
    netted = engine.payout("alice")
    for payout in netted.paid:
        print(f"day 63: alice paid {payout.amount} after netting {payout.netted} she owed")
    show(engine, "alice")
    assert len(bank.transfers) == len({p.payout_id for p in bank.transfers.values()})


if __name__ == "__main__":
    main()
