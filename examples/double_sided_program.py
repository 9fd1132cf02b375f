"""A double-sided program, step by step: referrals, refusals, rewards, a retried webhook,
refunds, notifications and settlement.

The program pays 20 USD cash to the referrer and 10 USD credit to the referee when the
referee's first purchase is at least 25 USD; rewards are held for 30 days (the refund
window) and reversed pro rata on refunds. Run it with ``python examples/double_sided_program.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

import referralkit as rk

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


delivered: list[rk.Notification] = []


def notify(note: rk.Notification) -> None:
    """Stands in for the host app's email or push service."""
    delivered.append(note)


def print_notifications() -> None:
    for note in delivered:
        print(f"  -> to {note.recipient_id}: {note.message()}")
    delivered.clear()


program = rk.Program(
    id="friends",
    effective_at=START,
    currency="USD",
    policies=[rk.DoubleSided(referrer=rk.Cash(usd(20)), referee=rk.Credit(usd(10)))],
    hold=relativedelta(days=30),
    min_order=usd(25),
    first_purchase_only=True,
)
clock = rk.ManualClock(START)
engine = rk.Engine(
    program,
    rk.InMemoryStore(),
    notifier=rk.CallbackNotifier(notify),
    clock=clock,
    auto_dispatch=True,  # deliver the outbox after every event (a worker would call dispatch())
)


def step(title: str, event: rk.Event) -> rk.Outcome:
    """Handle one event at its own time and print the decision trace."""
    clock.set(event.at)
    print(f"\n{event.at:%b %d %H:%M}  {title}")
    outcome = engine.handle(event)
    for line in outcome.explain().splitlines():
        print(f"  {line}")
    print_notifications()
    return outcome


def at(days: int = 0, hours: int = 0) -> datetime:
    return START + timedelta(days=days, hours=hours)


alice, carol = engine.issue_code("alice"), engine.issue_code("carol")
print(f"Program {program.id!r}: 20 USD cash to the referrer, 10 USD credit to the referee")
print(f"Codes: alice {alice}, carol {carol}")

# -- referrals, and referrals that cannot be made -----------------------------------------
step(
    "bob clicks alice's link",
    rk.Click(event_id="evt-1", at=at(hours=1), code=alice, visitor_id="v-bob", channel="email"),
)
step(
    "bob signs up with alice's code",
    rk.Signup(event_id="evt-2", participant_id="bob", code=alice, channel="email", at=at(hours=2)),
)
step(
    "alice signs up with her own code",
    rk.Signup(event_id="evt-3", participant_id="alice", code=alice, at=at(hours=3)),
)
step(
    "dan types a code nobody holds",
    rk.Signup(event_id="evt-4", participant_id="dan", code="SPRING-SALE", at=at(hours=4)),
)
typed = f"{carol[:4].lower()}-{carol[4:].lower()}"  # codes are normalised before lookup
step(
    f"erin signs up with carol's code, typed as {typed!r}",
    rk.Signup(event_id="evt-5", participant_id="erin", code=typed, at=at(hours=5)),
)
step(
    "frank signs up with carol's code",
    rk.Signup(event_id="evt-6", participant_id="frank", code=carol, at=at(hours=6)),
)

# -- purchases ----------------------------------------------------------------------------
bob_order = rk.Purchase(
    event_id="evt-7", participant_id="bob", order_id="order-100", amount=usd("80.00"), at=at(1)
)
step("bob's first order: 80 USD", bob_order)
step("the shop's webhook delivers bob's order again", bob_order)
step(
    "erin's first order: 20 USD, below the 25 USD minimum",
    rk.Purchase(
        event_id="evt-8", participant_id="erin", order_id="order-101", amount=usd(20), at=at(2)
    ),
)
step(
    "erin's second order: 120 USD (only a first purchase qualifies)",
    rk.Purchase(
        event_id="evt-9", participant_id="erin", order_id="order-102", amount=usd(120), at=at(3)
    ),
)
step(
    "frank's first order: 60 USD",
    rk.Purchase(
        event_id="evt-10", participant_id="frank", order_id="order-103", amount=usd(60), at=at(3)
    ),
)

# -- refunds: rewards are reversed pro rata on what was refunded ---------------------------
step(
    "bob returns 20 USD of his 80 USD order",
    rk.Refund(
        event_id="evt-11", refund_id="refund-1", order_id="order-100", amount=usd(20), at=at(9)
    ),
)
step(
    "frank's order is refunded in full",
    rk.Refund(
        event_id="evt-12", refund_id="refund-2", order_id="order-103", amount=usd(60), at=at(12)
    ),
)

# -- settlement: the hold is over ---------------------------------------------------------
settle_at = at(31)
clock.set(settle_at)
print(f"\n{settle_at:%b %d %H:%M}  settle: the 30-day hold is over")
print(f"  {engine.settle()} rewards approved")
print_notifications()

print("\nBalances (pending / available / lifetime):")
for who in ("alice", "bob", "carol", "erin", "frank"):
    for line in engine.balance(who):
        pending, available, lifetime = (
            f"{q:>6.2f}" for q in (line.pending, line.available, line.lifetime)
        )
        print(f"  {who:<6} {line.unit!s:<11} {pending} / {available} / {lifetime}")

print("\nAlice's ledger:")
for view in engine.rewards_for("alice"):
    for entry in view.entries:
        print(f"  {entry.at:%b %d}  {entry.kind:<9} {entry.quantity:>6.2f} {view.reward.unit}")

why = engine.outcome_of("evt-9")
assert why is not None
print("\nWeeks later, support asks why erin's 120 USD order earned nothing:")
print(f"  {why.explain().splitlines()[-1].strip()}")
