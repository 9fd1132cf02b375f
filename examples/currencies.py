"""A USD program that sells in euros and yen: purchases are converted through the host's
exchange rates, the rate and its date are kept on every reward, and refunds are converted at
the order's rate even after the market moved, so they take back exactly what was granted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import referralkit as rk
from referralkit.policies import Attr, RevenueShare, when

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CASH = rk.Unit("cash", "USD")


class DailyRates:
    """The host's port: a table of the rates published each day (a real one would read
    them from a central bank feed and cache them). The same question gets the same answer,
    so a replay of the event log reproduces the ledger."""

    def __init__(self) -> None:
        self.table: dict[tuple[str, str, date], str] = {
            ("EUR", "USD", date(2026, 3, 2)): "1.0850",
            ("EUR", "USD", date(2026, 3, 20)): "1.1500",  # the euro rose
            ("JPY", "USD", date(2026, 3, 2)): "0.0067",
        }

    def rate(self, base: str, quote: str, on: datetime) -> rk.Rate | None:
        day = on.date()
        value = self.table.get((base, quote, day))
        return None if value is None else rk.Rate(Decimal(value), day)


def main() -> None:
    program = rk.Program(
        id="global-shop",
        effective_at=START,
        currency="USD",
        min_order=rk.Money(20, "USD"),
        policies=[
            RevenueShare(Decimal("15")),  # every purchase
            when(
                Attr("referee.country") == "JP",
                rk.SingleSided(referrer=rk.Cash(rk.Money(5, "USD")), name="japan_bonus"),
            ),
        ],
    )
    engine = rk.Engine(program, rk.InMemoryStore(), exchange_rates=DailyRates())
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s1", participant_id="bob", code=code, at=START))
    engine.handle(
        rk.Signup(event_id="s2", participant_id="kenji", code=code, at=START, country="JP")
    )

    def buy(n: int, who: str, amount: rk.Money) -> None:
        outcome = engine.handle(
            rk.Purchase(
                event_id=f"p{n}",
                participant_id=who,
                order_id=f"o{n}",
                amount=amount,
                at=START + timedelta(hours=n),
            )
        )
        print(f"{who} pays {amount}:")
        for decision in outcome.decisions:
            print(f"  {decision.message()}")

    buy(1, "bob", rk.Money("99.99", "EUR"))
    buy(2, "kenji", rk.Money(2500, "JPY"))  # 16.75 USD: below the 20 USD minimum
    buy(3, "kenji", rk.Money(12000, "JPY"))

    print("\nalice's rewards:")
    for view in engine.rewards_for("alice"):
        r = view.reward
        fx = r.exchange_rate
        rate = f"at {fx.value} of {fx.on}" if fx is not None else "(no conversion)"
        print(f"  {r.value} from order {r.order_id} on {r.base_amount} {rate}")
    print(f"  pending: {engine.balance('alice')[CASH].pending} USD")

    # Weeks later the euro is worth more; bob's order is refunded in two parts.
    later = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
    for n, part in enumerate(["40.00", "59.99"], start=1):
        engine.handle(
            rk.Refund(
                event_id=f"r{n}",
                refund_id=f"r{n}",
                order_id="o1",
                amount=rk.Money(part, "EUR"),
                at=later + timedelta(minutes=n),
            )
        )
        print(
            f"\nrefund of {part} EUR on order o1: alice's pending balance is "
            f"{engine.balance('alice')[CASH].pending} USD"
        )
    bob = [v for v in engine.rewards_for("alice") if v.reward.order_id == "o1"]
    assert all(v.state is rk.RewardState.REVERSED for v in bob)
    print("bob's order is wholly reversed at its own rate (1.0850), not today's (1.1500).")

    try:
        buy(4, "bob", rk.Money("10.00", "GBP"))
    except rk.ExchangeRateError as exc:
        print(f"\na purchase in GBP is refused, nothing written: {exc}")


if __name__ == "__main__":
    main()
