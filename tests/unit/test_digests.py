"""Event digests: what makes a repeated event id a duplicate or a conflict."""

from __future__ import annotations

from datetime import UTC, datetime

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
