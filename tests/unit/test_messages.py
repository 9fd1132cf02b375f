"""Default English messages: every kind, money with symbols, dates, and the fallback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def note(kind: str, **data: Any) -> rk.Notification:
    return rk.Notification("ntf-1", "friends", kind, "alice", AT, data)


EXAMPLES = [
    (
        note("referral_created", referee="bob", referral_id="ref-1", code="ALICE123"),
        "bob signed up with your code ALICE123.",
    ),
    (
        note(
            "reward_earned",
            reward_id="rwd-1",
            role="referrer",
            value="20.00 USD cash",
            payable_on="2026-12-12",
            referral_id="ref-1",
            referee="bob",
        ),
        "bob used your code — you earned $20.00, payable on 12 December.",
    ),
    (
        note(
            "reward_earned",
            reward_id="rwd-2",
            role="referee",
            value="10.00 EUR credit",
            payable_on="2027-01-05",
            referral_id="ref-1",
            referee="bob",
        ),
        "Welcome! You earned €10.00 credit, payable on 5 January 2027.",
    ),
    (
        note("reward_approved", reward_id="rwd-1", value="1,500 JPY cash"),
        "Your reward of ¥1,500 is now available.",
    ),
    (
        note(
            "reward_reversed",
            reward_id="rwd-1",
            quantity="5.00",
            value="5.00 GBP cash",
            unit="cash GBP",
            cause="refund",
        ),
        "£5.00 of your reward was reversed after a refund.",
    ),
    (
        note("reward_held", reward_id="rwd-1", reason="fraud.velocity"),
        "Your reward is on hold for review: fraud.velocity.",
    ),
    (note("reward_released", reward_id="rwd-1"), "Your reward is no longer on hold."),
    (
        note("reward_rejected", reward_id="rwd-1", reason="self-referral"),
        "Your reward was rejected: self-referral.",
    ),
    (note("review_due", reward_id="rwd-1"), "Reward rwd-1 is waiting for a review decision."),
    (
        note("reward_clawed_back", reward_id="rwd-1", value="20.00 CHF cash"),
        "20.00 CHF already paid to you was clawed back; it will be deducted from your next payout.",
    ),
    (
        note("reward_paid", payout_id="pay-1", value="40.00 USD", reward_ids="rwd-1,rwd-2"),
        "You were paid $40.00.",
    ),
    (
        note("milestone_reached", milestone="gold", threshold="5", count="5"),
        "You reached the gold milestone with 5 successful referrals.",
    ),
    (
        note(
            "milestone_reached", milestone="first", threshold="1", count="1", value="5.00 USD cash"
        ),
        "You reached the first milestone with 1 successful referral and earned $5.00.",
    ),
    (note("status_changed", old="silver", new="gold"), "Your status changed from silver to gold."),
    (note("status_changed", old="", new="bronze"), "Your status is now bronze."),
    (note("status_changed", old="bronze", new=""), "You no longer hold the bronze status."),
    (
        note("budget_exhausted", budget="10000.00 USD", spent="10000.00 USD"),
        "The program budget of $10000.00 is exhausted: $10000.00 spent.",
    ),
    (
        note("points_redeemed", points="250", value="2.50 USD credit", account="points"),
        "You redeemed 250 points for $2.50 credit.",
    ),
    (
        note("budget_exhausted", budget="5,000.00 GBP", spent="5,000.00 GBP"),
        "The program budget of £5,000.00 is exhausted: £5,000.00 spent.",
    ),
    (
        note(
            "points_redeemed",
            redemption_id="red-1",
            account="points",
            points="500",
            value="5.00 USD credit",
        ),
        "You redeemed 500 points for $5.00 credit.",
    ),
    (
        note("referral_held", referral_id="ref-9", reason="same device"),
        "Referral ref-9 is on hold for review: same device.",
    ),
    (
        note(
            "referral_reattributed",
            referral_id="ref-9",
            referee="bob",
            old_referrer="carol",
            new_referrer="alice",
            actor="ops-1",
        ),
        "bob now counts as your referral.",
    ),
]


@pytest.mark.parametrize(("notification", "text"), EXAMPLES)
def test_each_kind_has_its_default_message(notification: rk.Notification, text: str) -> None:
    assert rk.render_message(notification) == text
    assert notification.message() == text


def test_a_reattribution_message_without_the_referee_names_the_referral() -> None:
    """Notifications queued before the referee was in the data still read well."""
    text = rk.render_message(note("referral_reattributed", referral_id="ref-9"))
    assert text == "Referral ref-9 now counts as yours."


def test_every_kind_with_a_message_is_exemplified() -> None:
    assert {n.kind for n, _ in EXAMPLES} == rk.MESSAGE_KINDS


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("20.00 USD cash", "$20.00"),
        ("-3.50 USD cash", "-$3.50"),
        ("5.00 CAD off", "CA$5.00 off"),
        ("20.00 CHF", "20.00 CHF"),
        ("1.250 BHD credit", "1.250 BHD credit"),
        ("10 points", "10 points"),
        ("2 free months", "2 free months"),
        ("badge 'gold'", "badge 'gold'"),
        ("15% off", "15% off"),
    ],
)
def test_reward_values_read_with_currency_symbols_where_common(value: str, text: str) -> None:
    message = rk.render_message(note("reward_approved", reward_id="r", value=value))
    assert message == f"Your reward of {text} is now available."


def test_an_earned_reward_without_a_referee_or_date_still_reads_well() -> None:
    """Notifications written before ``referee`` was added, or without a hold date."""
    old = note("reward_earned", reward_id="r", value="20.00 USD cash", payable_on="2026-11-20")
    assert rk.render_message(old) == "You earned $20.00, payable on 20 November."
    bare = note("reward_earned", reward_id="r", value="10 points")
    assert rk.render_message(bare) == "You earned 10 points."
    odd_date = note("reward_earned", value="10 points", payable_on="soon", referee="bob")
    assert (
        rk.render_message(odd_date) == "bob used your code — you earned 10 points, payable on soon."
    )


@pytest.mark.parametrize(
    ("notification", "text"),
    [
        (note("reward_paid", payout_id="p"), "Reward paid."),  # missing value
        (note("status_changed", new="gold"), "Status changed."),  # missing old
        (note("gift_card_sent", value="5.00 USD"), "Gift card sent."),  # unknown kind
        (note("", x="y"), "Notification."),
    ],
)
def test_an_unknown_kind_or_a_missing_key_gives_a_generic_text(
    notification: rk.Notification, text: str
) -> None:
    assert rk.render_message(notification) == text


@given(
    st.sampled_from(sorted(rk.MESSAGE_KINDS | {"other_kind"})),
    st.dictionaries(
        st.sampled_from(["value", "payable_on", "referee", "count", "reason", "old", "new"]),
        st.one_of(st.text(max_size=12), st.integers(), st.none()),
    ),
)
def test_rendering_never_raises(kind: str, data: dict[str, Any]) -> None:
    text = rk.render_message(note(kind, **data))
    assert isinstance(text, str)
    assert text


def test_logging_notifier_logs_the_message(caplog: pytest.LogCaptureFixture) -> None:
    notification = EXAMPLES[1][0]
    with caplog.at_level(logging.INFO, logger="referralkit.notify"):
        rk.LoggingNotifier().send(notification)
    assert "reward_earned -> alice: bob used your code — you earned $20.00" in caplog.text


def test_the_webhook_body_carries_the_message_and_the_data() -> None:
    notification = EXAMPLES[1][0]
    payload = json.loads(rk.webhook_body(notification))
    assert payload["message"] == EXAMPLES[1][1]
    assert payload["data"]["referee"] == "bob"


def test_the_engine_names_the_friend_in_reward_earned() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    program = rk.Program(
        id="p",
        effective_at=start,
        currency="GBP",
        policies=[rk.SingleSided(referrer=rk.Cash(rk.Money("12.50", "GBP")))],
        hold=relativedelta(days=30),
    )
    engine = rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(start))
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s", participant_id="bob", code=code, at=start))
    engine.handle(
        rk.Purchase(
            event_id="o",
            participant_id="bob",
            order_id="o",
            amount=rk.Money(50, "GBP"),
            at=start,
        )
    )
    with engine.store.unit_of_work() as uow:
        earned = [n for n in uow.outbox.pending(10) if n.kind == "reward_earned"]
    assert [n.message() for n in earned] == [
        "bob used your code — you earned £12.50, payable on 31 December."
    ]
