"""Delivering notifications: a flaky endpoint, retries with backoff, a dead letter and its retry.

Run it with ``python examples/notifications.py``. A ``ManualClock`` stands in for time, so
the run is instant and prints the same lines every time:

1. Alice refers Bob, who buys: three notifications are queued (a friend signed up, and a
   reward earned by each side).
2. The mail server is down: every dispatch fails, each notification is retried 30 s, then
   60 s later, and after its third attempt it becomes a dead letter.
3. The server is back: ``retry_dead()`` puts the dead letters back and the next dispatch
   delivers them. The receiver deduplicates by notification id.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

import referralkit as rk


class MailServer:
    """A stand-in for an email API: down until told otherwise, deduplicates by id."""

    def __init__(self) -> None:
        self.up = False
        self.inbox: dict[str, str] = {}

    def send(self, notification: rk.Notification) -> None:
        if not self.up:
            raise ConnectionError("503 Service Unavailable")
        # A repeat (at-least-once delivery) overwrites nothing: dedup by notification id.
        self.inbox.setdefault(
            notification.notification_id,
            f"to {notification.recipient_id}: {notification.message()}",
        )


def main() -> None:
    """Run the three acts and print what happened."""
    logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="  log: %(message)s")
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    program = rk.Program(
        id="friends",
        effective_at=start,
        currency="EUR",
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money("20.00", "EUR")),
                referee=rk.Credit(rk.Money("10.00", "EUR")),
            )
        ],
        hold=relativedelta(days=14),
    )
    clock = rk.ManualClock(start)
    mail = MailServer()
    schedule = rk.RetrySchedule(max_attempts=3, first_delay=timedelta(seconds=30))
    engine = rk.Engine(program, rk.InMemoryStore(), notifier=mail, clock=clock, retry=schedule)

    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s-1", participant_id="bob", code=code, at=start))
    engine.handle(
        rk.Purchase(
            event_id="p-1",
            participant_id="bob",
            order_id="o-1",
            amount=rk.Money("60.00", "EUR"),
            at=start,
        )
    )

    print("The mail server is down:")
    for wait in (0, 30, 60):
        clock.advance(timedelta(seconds=wait))
        result = engine.dispatch()
        print(f"  dispatch at +{(clock.now() - start).seconds}s: {result}")

    print("Dead letters:")
    for letter in engine.dead_letters():
        note = letter.notification
        who = note.recipient_id
        print(f"  {note.kind} for {who}: {letter.attempts} attempts, {letter.last_error}")

    print("The mail server is back:")
    mail.up = True
    print(f"  retry_dead() put back {engine.retry_dead()} notifications")
    print(f"  dispatch: {engine.dispatch()}")
    print("Inbox:")
    for line in mail.inbox.values():
        print(f"  {line}")
    assert len(mail.inbox) == 3
    assert engine.dead_letters() == []


if __name__ == "__main__":
    main()
