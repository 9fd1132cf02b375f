"""Inbound events are immutable and validated when built."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

import referralkit as rk
from referralkit._values.canonical import digest

AT = datetime(2026, 2, 2, 10, 0, tzinfo=UTC)
NAIVE = datetime(2026, 2, 2, 10, 0)


def usd(amount: str | int) -> rk.Money:
    return rk.Money(amount, "USD")


def purchase(**changes: Any) -> rk.Purchase:
    fields: dict[str, Any] = {
        "event_id": "e-1",
        "participant_id": "bob",
        "order_id": "o-1",
        "amount": usd("80.00"),
        "at": AT,
    }
    fields.update(changes)
    return rk.Purchase(**fields)


def refund(**changes: Any) -> rk.Refund:
    fields: dict[str, Any] = {
        "event_id": "e-2",
        "refund_id": "r-1",
        "order_id": "o-1",
        "amount": usd("20.00"),
        "at": AT,
    }
    fields.update(changes)
    return rk.Refund(**fields)


def signup(**changes: Any) -> rk.Signup:
    fields: dict[str, Any] = {"event_id": "e-3", "participant_id": "bob", "at": AT}
    fields.update(changes)
    return rk.Signup(**fields)


def chargeback(**changes: Any) -> rk.Chargeback:
    fields: dict[str, Any] = {
        "event_id": "e-4",
        "chargeback_id": "cb-1",
        "order_id": "o-1",
        "at": AT,
    }
    fields.update(changes)
    return rk.Chargeback(**fields)


BUILDERS = {"purchase": purchase, "refund": refund, "signup": signup, "chargeback": chargeback}


def test_events_carry_their_kind() -> None:
    assert [b().kind for b in BUILDERS.values()] == list(BUILDERS)
    assert rk.Click(event_id="c", at=AT).kind == "click"


def test_events_are_keyword_only_and_immutable() -> None:
    with pytest.raises(TypeError):
        rk.Refund("e", "r", "o", usd(1), AT)  # type: ignore[misc]
    event = purchase()
    with pytest.raises(AttributeError):
        event.amount = usd(1)  # type: ignore[misc]


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_a_naive_at_is_a_naive_datetime_error_naming_the_field(kind: str) -> None:
    with pytest.raises(rk.NaiveDatetimeError) as info:
        BUILDERS[kind](at=NAIVE)
    assert (info.value.field, info.value.value) == (f"{kind}.at", NAIVE)


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_at_must_be_a_datetime(kind: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        BUILDERS[kind](at="2026-02-02T10:00:00Z")
    assert info.value.field == f"{kind}.at"


def test_any_utc_offset_is_accepted() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert purchase(at=AT.astimezone(plus_two)).at == AT


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("purchase", "event_id", ""),
        ("purchase", "participant_id", " bob"),
        ("purchase", "order_id", 17),
        ("purchase", "order_id", "x" * 201),
        ("refund", "refund_id", ""),
        ("refund", "order_id", None),
        ("signup", "participant_id", "bob\n"),
        ("signup", "code", ""),
        ("chargeback", "chargeback_id", " "),
    ],
)
def test_ids_must_be_non_empty_strings_without_surrounding_spaces(
    kind: str, field: str, value: object
) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        BUILDERS[kind](**{field: value})
    assert (info.value.field, info.value.value) == (f"{kind}.{field}", value)


@pytest.mark.parametrize(
    ("kind", "amount", "problem"),
    [
        ("purchase", "80.00", "must be a Money"),
        ("purchase", usd("-0.01"), "must not be negative"),
        ("refund", usd(0), "must be greater than zero"),
        ("refund", usd(-1), "must be greater than zero"),
        ("refund", 20, "must be a Money"),
    ],
)
def test_amounts_must_be_money_and_not_negative(kind: str, amount: object, problem: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        BUILDERS[kind](amount=amount)
    assert (info.value.field, info.value.value) == (f"{kind}.amount", amount)
    assert info.value.problem.startswith(problem)


def test_a_free_order_is_a_valid_purchase() -> None:
    assert purchase(amount=usd(0)).amount.is_zero()


def test_line_items_are_validated() -> None:
    item = rk.LineItem(sku="mug", quantity=3, unit_price=usd("4.50"), category="kitchen")
    assert item.total == usd("13.50")
    assert purchase(items=[item]).items == (item,)

    for kwargs, field in [
        ({"sku": "mug", "quantity": 0, "unit_price": usd(1)}, "line_item.quantity"),
        ({"sku": "mug", "quantity": 1.0, "unit_price": usd(1)}, "line_item.quantity"),
        ({"sku": "", "unit_price": usd(1)}, "line_item.sku"),
        ({"sku": "mug", "unit_price": usd(-1)}, "line_item.unit_price"),
    ]:
        with pytest.raises(rk.InvalidInputError) as info:
            rk.LineItem(**kwargs)
        assert info.value.field == field


def test_purchase_items_must_be_line_items_in_the_orders_currency() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        purchase(items=[{"sku": "mug"}])
    assert info.value.field == "purchase.items[0]"

    eur_item = rk.LineItem(sku="mug", unit_price=rk.Money(1, "EUR"))
    with pytest.raises(rk.InvalidInputError) as info:
        purchase(items=[rk.LineItem(sku="a", unit_price=usd(1)), eur_item])
    assert info.value.field == "purchase.items[1].unit_price"


def test_signup_email_and_channel_are_validated() -> None:
    assert signup(email="Bob@Example.com", channel="email").email == "Bob@Example.com"
    with pytest.raises(rk.InvalidInputError) as info:
        signup(email="bob.example.com")
    assert info.value.field == "signup.email"
    with pytest.raises(rk.InvalidInputError) as info:
        signup(channel="carrier-pigeon")
    assert info.value.field == "signup.channel"
    with pytest.raises(rk.InvalidInputError) as info:
        rk.Click(event_id="c", at=AT, channel="fax")
    assert info.value.field == "click.channel"


def test_metadata_must_be_json_data_with_string_keys() -> None:
    event = purchase(metadata={"utm": {"source": "mail", "tags": [1, 2.5, None, True]}})
    assert event.metadata["utm"]["source"] == "mail"
    with pytest.raises(TypeError):
        event.metadata["new"] = 1  # type: ignore[index]

    with pytest.raises(rk.InvalidEventError) as info:
        purchase(metadata={"when": AT})
    assert info.value.field == "metadata['when']"
    with pytest.raises(rk.InvalidInputError) as info:
        purchase(metadata={1: "x"})
    assert info.value.field == "metadata[1]"
    with pytest.raises(rk.InvalidEventError) as info:
        purchase(metadata={"a": {2: "x"}})
    assert info.value.field == "metadata['a'][2]"
    with pytest.raises(rk.InvalidInputError):
        purchase(metadata=42)


def test_metadata_is_left_out_of_equality_but_not_out_of_the_digest() -> None:
    plain, tagged = purchase(), purchase(metadata={"utm": "mail"})
    assert plain == tagged
    assert digest(plain) != digest(tagged)


def test_the_digest_is_stable_across_time_zones_and_equal_events() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert digest(purchase()) == digest(purchase(at=AT.astimezone(plus_two)))
    assert digest(purchase()) == digest(purchase(amount=usd("80")))
    assert digest(purchase()) != digest(refund())
    assert len(digest(purchase())) == 64


def test_refunds_and_chargebacks_name_no_participant() -> None:
    assert refund().participant_id is None
    assert chargeback().participant_id is None
    assert rk.Click(event_id="c", at=AT).participant_id is None


def test_events_are_attrs_classes_so_evolve_revalidates() -> None:
    with pytest.raises(rk.NaiveDatetimeError):
        attrs.evolve(purchase(), at=NAIVE)


def test_a_click_with_a_naive_at_is_refused() -> None:
    with pytest.raises(rk.NaiveDatetimeError):
        rk.Click(event_id="c-1", at=NAIVE)


def test_a_click_with_a_non_string_event_id_is_refused() -> None:
    with pytest.raises(rk.InvalidInputError):
        rk.Click(event_id=5, at=AT)  # type: ignore[arg-type]


def test_a_signup_code_typed_with_surrounding_spaces_is_accepted() -> None:
    assert signup(code=" ABCD-EFGH ").code is not None
