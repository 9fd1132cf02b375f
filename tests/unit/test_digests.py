"""Event digests: what makes a repeated event id a duplicate or a conflict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

import referralkit as rk
from referralkit._values.canonical import record_digest

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_field_added_later_with_a_default_leaves_older_digests_unchanged() -> None:
    """An event stored by an earlier release, delivered again after an upgrade that gave its
    type a new optional field, is still recognised as the same event."""

    @attrs.frozen
    class Ping:
        event_id: str
        at: datetime

    first = record_digest(Ping("e1", AT))

    @attrs.frozen  # the same type, one release later
    class Ping:  # type: ignore[no-redef]
        event_id: str
        at: datetime
        channel: str | None = None
        tags: tuple[str, ...] = attrs.field(factory=tuple)

    assert record_digest(Ping("e1", AT)) == first
    assert record_digest(Ping("e1", AT, channel="email")) != first
    assert record_digest(Ping("e1", AT, tags=("a",))) != first


@pytest.mark.parametrize(
    "other",
    [
        {"code": "ABC"},
        {"channel": "email"},
        {"email": "bob@mail.example"},
        {"existing_customer": True},
        {"at": datetime(2026, 1, 5, 9, 0, 1, tzinfo=UTC)},
        {"participant_id": "bob2"},
    ],
)
def test_any_field_that_differs_changes_the_digest(other: dict[str, object]) -> None:
    base = {"event_id": "s1", "participant_id": "bob", "at": AT}
    assert record_digest(rk.Signup(**base)) != record_digest(rk.Signup(**{**base, **other}))


def test_the_same_instant_in_another_zone_is_the_same_event() -> None:
    from zoneinfo import ZoneInfo

    local = AT.astimezone(ZoneInfo("Europe/Berlin"))
    assert record_digest(rk.Signup(event_id="s1", participant_id="bob", at=AT)) == (
        record_digest(rk.Signup(event_id="s1", participant_id="bob", at=local))
    )


def test_two_fields_cannot_trade_values() -> None:
    """Names are digested with the values: a value moved to another field is another event."""
    a = rk.Click(event_id="c1", at=AT, code="ABC", visitor_id=None, campaign="x")
    b = rk.Click(event_id="c1", at=AT, code="ABC", visitor_id="x", campaign=None)
    assert record_digest(a) != record_digest(b)


def _pinned_events() -> list[object]:
    berlin_winter = timezone(timedelta(hours=1))
    return [
        rk.Click(
            event_id="c1", at=AT, code="ABC", visitor_id="v1", channel="email", campaign="spring"
        ),
        rk.Signup(
            event_id="s1",
            participant_id="bob",
            at=AT,
            code="ABC",
            email="bob@mail.example",
            existing_customer=True,
            country="DE",
        ),
        rk.Purchase(
            event_id="p1",
            participant_id="bob",
            order_id="o1",
            amount=rk.Money("80.00", "USD"),
            at=datetime(2026, 1, 5, 10, 30, 15, 25, tzinfo=berlin_winter),
            items=(
                rk.LineItem(
                    sku="sku-1", quantity=2, unit_price=rk.Money("40.00", "USD"), category="books"
                ),
            ),
            metadata={"note": "gift", "n": [1, 2.5, None]},
            tax=rk.Money("5.00", "USD"),
        ),
        rk.Refund(
            event_id="r1",
            refund_id="rf1",
            order_id="o1",
            amount=rk.Money("30.00", "USD"),
            at=AT,
            items=("sku-1",),
        ),
        rk.Chargeback(event_id="b1", chargeback_id="cb1", order_id="o1", at=AT),
    ]


_PINNED_DIGESTS = [  # as the generic digest loop of earlier releases computed them
    "1895b20b8adc5674107e02beaf6be43c843594fba47ba9a914cba8bcc9521030",
    "b9d68b633927295717effb31680b6f22344e182f901c6d0852bae953df54fd11",
    "6bc943713d086cde2b6f239fcbfdc4b15dc559806decd0432445defe76f2e4ac",
    "8837557a7efbad411a03e82b744014526bc5dc9bc8222f3f6b008b040160504a",
    "dd3d5b88a2c06bdaa36d9e2f4e979c28e6bcbdb6909edf6bc0f695ba3cf8c4fa",
]


@pytest.mark.parametrize(
    ("index", "expected"), list(enumerate(_PINNED_DIGESTS)), ids=[d[:8] for d in _PINNED_DIGESTS]
)
def test_the_digests_of_stored_events_do_not_change(index: int, expected: str) -> None:
    """Digests stored by earlier releases: the same event delivered again after an upgrade
    is still a duplicate, not a conflict."""
    assert record_digest(_pinned_events()[index]) == expected
