"""Attribution: clicks from two referrers, a code typed at checkout, and the explanation.

Bob clicks Alice's signed link in an email, then Dave's link on social media, signs up on
the same device, and at checkout types Carol's code. The shop binds referees at their first
purchase, so all four touches compete there: a typed code beats clicks, and Carol gets the
referral. ``Engine.explain`` prints why, touch by touch, as support staff would read it.
A second visitor clicks a link too long ago (outside the 30-day window): not referred, and
``explain`` says why. Then an operator moves Bob's referral to Dave (Carol's rewards are
reversed, Dave's granted) and Erin is erased. Run it with ``python examples/attribution.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import referralkit as rk
from referralkit import attribution as ra


def main() -> None:
    """Run the journeys and print each explanation."""
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    usd = "USD"
    program = rk.Program(
        id="shop",
        effective_at=start - timedelta(days=365),
        currency=usd,
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money(15, usd)), referee=rk.Credit(rk.Money(10, usd))
            )
        ],
        attribution=ra.AttributionRules(window=timedelta(days=30), bind_at="first_purchase"),
    )
    signer = ra.LinkSigner(
        keys={"2026-03": b"an example link key of 32+ bytes!"}, current="2026-03"
    )
    engine = rk.Engine(
        program,
        rk.InMemoryStore(),
        clock=rk.ManualClock(start),
        link_signer=signer,
        fraud_checks=ra.default_fraud_checks(),
    )
    carol_code = engine.issue_code("carol")
    hour = timedelta(hours=1)
    events: list[rk.Event] = [
        rk.Click(
            event_id="c-1",
            at=start,
            link_token=engine.link_token("alice"),
            visitor_id="v-bob",
            channel="email",
            campaign="spring",
            utm_source="newsletter",
        ),
        rk.Click(
            event_id="c-2",
            at=start + 2 * hour,
            link_token=engine.link_token("dave"),
            visitor_id="v-bob",
            channel="social",
        ),
        rk.Signup(
            event_id="s-1",
            participant_id="bob",
            at=start + 3 * hour,
            visitor_id="v-bob",
            email="bob@example.com",
        ),
        rk.Purchase(
            event_id="p-1",
            participant_id="bob",
            order_id="o-1",
            amount=rk.Money("60.00", usd),
            at=start + timedelta(days=1),
            code=carol_code.lower(),  # typed at checkout, any case
        ),
        # Erin clicked Alice's link 45 days before buying: outside the window.
        rk.Click(
            event_id="c-3",
            at=start - timedelta(days=44),
            link_token=engine.link_token("alice"),
            visitor_id="v-erin",
        ),
        rk.Signup(event_id="s-2", participant_id="erin", at=start, visitor_id="v-erin"),
        rk.Purchase(
            event_id="p-2",
            participant_id="erin",
            order_id="o-2",
            amount=rk.Money("25.00", usd),
            at=start + timedelta(days=1),
        ),
    ]
    for event in events:
        outcome = engine.handle(event)
        print(f"{event.event_id:<4} {event.kind:<8} {', '.join(outcome.reasons()) or '-'}")

    for who in ("bob", "erin"):
        print()
        print(engine.explain(who).text())
    referral = engine.referral_of("bob")
    assert referral is not None
    assert referral.referrer_id == "carol"
    assert engine.referral_of("erin") is None
    print()
    for who in ("carol", "bob"):
        for line in engine.balance(who):
            print(f"{who:<6} {line.unit!s:<10} pending {line.pending}")

    # Support finds that Dave sent Bob the code: an operator moves the referral to Dave.
    # Carol's rewards are reversed, Dave's are granted as if Bob had been his from the start.
    engine.issue_code("dave")
    moved = engine.reattribute(
        "bob", "dave", actor="support-7", reason="ticket 1234", operation_id="req-1"
    )
    # The operator tool times out and sends the request again: one effect.
    again = engine.reattribute(
        "bob", "dave", actor="support-7", reason="ticket 1234", operation_id="req-1"
    )
    assert again == moved
    assert moved.referral_id == referral.referral_id
    assert moved.referrer_id == "dave"
    print()
    print(engine.explain("bob").text())
    print()
    for who in ("carol", "dave", "bob"):
        for line in engine.balance(who):
            print(f"{who:<6} {line.unit!s:<10} pending {line.pending}")

    # Erin asks to be forgotten: her personal fields leave the store and the event log;
    # every total stays, and a retry of her sign-up is still a duplicate.
    engine.erase_participant("erin")
    assert engine.handle(events[5]).duplicate


if __name__ == "__main__":
    main()
