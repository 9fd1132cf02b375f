"""The README quick start: a double-sided program, one referral, one purchase, settled."""

from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

import referralkit as rk

start = datetime(2026, 1, 5, tzinfo=UTC)
program = rk.Program(
    id="friends",
    effective_at=start,
    currency="USD",
    policies=[
        rk.DoubleSided(
            referrer=rk.Cash(rk.Money(20, "USD")), referee=rk.Credit(rk.Money(10, "USD"))
        )
    ],
    hold=relativedelta(days=30),
    first_purchase_only=True,
)
engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(start))

code = engine.issue_code("alice")
engine.handle(rk.Signup(event_id="s-1", participant_id="bob", code=code, at=start))
outcome = engine.handle(
    rk.Purchase(
        event_id="p-1",
        participant_id="bob",
        order_id="o-1",
        amount=rk.Money("80.00", "USD"),
        at=start,
    )
)
print(outcome.explain())  # why each reward was (or was not) granted

engine.settle(start + timedelta(days=30))  # the hold is over: rewards become available
for who in ("alice", "bob"):
    for line in engine.balance(who):
        print(f"{who}: {line.as_money()} {line.unit.kind} available")
