"""Inbound events: what the host application tells referralkit happened.

Events are immutable and validated when built: ids are non-empty strings, ``at`` is
timezone-aware, amounts are [`Money`][referralkit.Money] and not negative. Each event has
an ``event_id`` chosen by the host (a webhook delivery id, a queue message id); delivering
the same event again is safe.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

import attrs

from referralkit._errors import InvalidEventError, InvalidInputError
from referralkit._values._checks import is_text, require_aware, require_id, require_mapping
from referralkit._values.money import Money

__all__ = [
    "CHANNELS",
    "Chargeback",
    "Click",
    "Event",
    "LineItem",
    "Purchase",
    "Refund",
    "Signup",
]

#: Channels a click or referral may be attributed to.
CHANNELS = frozenset({"email", "social", "sms", "in_app", "link", "code", "other"})

_JSON_SCALARS = (str, int, float, bool, type(None))


_NOT_TEXT = "must be valid Unicode text (no lone surrogates)"


def _check_json(field: str, value: object) -> None:
    if isinstance(value, str) and not is_text(value):
        raise InvalidEventError(field, value, _NOT_TEXT)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidEventError(field, value, "must be a finite number (JSON has no NaN or inf)")
    if isinstance(value, _JSON_SCALARS):
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(f"{field}[{i}]", item)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEventError(f"{field}[{key!r}]", key, "keys must be strings")
            if not is_text(key):
                raise InvalidEventError(f"{field}[{key!r}]", key, _NOT_TEXT)
            _check_json(f"{field}[{key!r}]", item)
        return
    raise InvalidEventError(field, value, "metadata values must be JSON data")


_NO_METADATA: Mapping[str, Any] = MappingProxyType({})


def _metadata(value: object) -> Mapping[str, Any]:
    if not value and isinstance(value, dict | MappingProxyType):
        return _NO_METADATA  # shared: most events carry none
    data = require_mapping("metadata", value)
    _check_json("metadata", data)
    return MappingProxyType(data)


def _check_ids(kind: str, obj: object, *names: str, optional: tuple[str, ...] = ()) -> None:
    for name in names:
        require_id(f"{kind}.{name}", getattr(obj, name))
    for name in optional:
        value = getattr(obj, name)
        if value is not None:
            require_id(f"{kind}.{name}", value)
    require_aware(f"{kind}.at", obj.at)  # type: ignore[attr-defined]


def _check_amount(field: str, value: object, *, positive: bool) -> None:
    if not isinstance(value, Money):
        raise InvalidInputError(field, value, "must be a Money, e.g. Money('80.00', 'USD')")
    if value.amount < 0 or (positive and not value.amount):
        raise InvalidInputError(
            field, value, "must be greater than zero" if positive else "must not be negative"
        )


def _check_code(field: str, value: object) -> None:
    # A code is kept as typed (spaces included) and normalised on lookup.
    if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
        raise InvalidInputError(field, value, "must be a non-empty string of at most 200 chars")
    if value is not None and not is_text(value):
        raise InvalidInputError(field, value, _NOT_TEXT)


def _check_token(field: str, value: object) -> None:
    # Only the type is checked here; the engine verifies the signature.
    if value is not None and (not isinstance(value, str) or not value or len(value) > 2048):
        raise InvalidInputError(field, value, "must be a non-empty string of at most 2048 chars")
    if value is not None and not is_text(value):
        raise InvalidInputError(field, value, _NOT_TEXT)


def _check_channel(field: str, value: object) -> None:
    if not isinstance(value, str) or value not in CHANNELS:
        raise InvalidInputError(field, value, f"must be one of {sorted(CHANNELS)}")


def _optional_text(field: str, value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value or len(value) > 200):
        raise InvalidInputError(field, value, "must be a non-empty string of at most 200 chars")
    if value is not None and not is_text(value):
        raise InvalidInputError(field, value, _NOT_TEXT)


def _check_country(field: str, value: object) -> None:
    if value is not None and (
        not isinstance(value, str)
        or len(value) != 2
        or not value.isascii()
        or not value.isalpha()
        or not value.isupper()
    ):
        raise InvalidInputError(
            field, value, "must be an ISO 3166-1 alpha-2 code such as 'DE' (two capitals)"
        )


_KEYED_HASH = frozenset("0123456789abcdef")


def _check_hash(field: str, value: object) -> None:
    if value is not None and (
        not isinstance(value, str) or len(value) != 64 or not set(value) <= _KEYED_HASH
    ):
        raise InvalidInputError(
            field, value, "must be a keyed hash (keyed_hash(value, key)), never the raw value"
        )


def _meta() -> Any:
    return attrs.field(factory=dict, converter=_metadata, eq=False, hash=False, repr=False)


@attrs.frozen(kw_only=True)
class Click:
    """A visitor followed a referral link or saw a code.

    Args:
        event_id: The host's id for this event; unique per program.
        at: When it happened (timezone-aware).
        code: The referral code in the link, as shown (normalised on lookup).
        visitor_id: The host's anonymous visitor id, to match a later sign-up.
        channel: One of [`CHANNELS`][referralkit.CHANNELS].
        metadata: Free JSON data kept with the event.
        link_token: The signed token of the referral link (``Engine(link_signer=...)``
            verifies it), instead of or besides ``code``.
        campaign: The campaign (``utm_campaign``), if known.
        utm_source: ``utm_source``, if known.
        utm_medium: ``utm_medium``, if known.
        utm_content: ``utm_content``, if known.
        utm_term: ``utm_term``, if known.
    """

    kind: ClassVar[str] = "click"

    event_id: str
    at: datetime
    code: str | None = None
    visitor_id: str | None = None
    channel: str = "link"
    metadata: Mapping[str, Any] = _meta()
    link_token: str | None = None
    campaign: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_ids("click", self, "event_id", optional=("visitor_id",))
        _check_code("click.code", self.code)
        _check_channel("click.channel", self.channel)
        _check_token("click.link_token", self.link_token)
        for name in ("campaign", "utm_source", "utm_medium", "utm_content", "utm_term"):
            _optional_text(f"click.{name}", getattr(self, name))

    @property
    def participant_id(self) -> None:
        """Clicks are anonymous."""
        return None


@attrs.frozen(kw_only=True)
class Signup:
    """A person signed up, possibly with a referral code.

    Args:
        event_id: The host's id for this event; unique per program.
        participant_id: The host's id for the new user.
        at: When they signed up (timezone-aware).
        code: The referral code they used, as typed (normalised on lookup).
        email: Their email, used for self-referral checks; kept as personal data.
        channel: Where the referral came from, one of [`CHANNELS`][referralkit.CHANNELS].
        metadata: Free JSON data kept with the event.
        visitor_id: The host's anonymous visitor id: the visitor's earlier clicks become
            this participant's touches.
        link_token: The signed token of the referral link they arrived with.
        existing_customer: The host knows them as a customer already (not referrable
            unless the program's ``AttributionRules.allow_existing_customers``).
        device: Keyed hash ([`keyed_hash`][referralkit.attribution.keyed_hash]) of their
            device id; never the raw value.
        payment_fingerprint: Keyed hash of their card or wallet fingerprint.
        payout_account: Keyed hash of the account their rewards are paid to.
        ip: Keyed hash of their IP address.
        country: Their country as an ISO 3166-1 alpha-2 code (``"DE"``), if the host knows
            it; conditions read it as ``referee.country``.
    """

    kind: ClassVar[str] = "signup"

    event_id: str
    participant_id: str
    at: datetime
    code: str | None = None
    email: str | None = None
    channel: str = "code"
    metadata: Mapping[str, Any] = _meta()
    visitor_id: str | None = None
    link_token: str | None = None
    existing_customer: bool = False
    device: str | None = None
    payment_fingerprint: str | None = None
    payout_account: str | None = None
    ip: str | None = None
    country: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_ids("signup", self, "event_id", "participant_id", optional=("visitor_id",))
        _check_country("signup.country", self.country)
        _check_code("signup.code", self.code)
        if self.email is not None and (not isinstance(self.email, str) or "@" not in self.email):
            raise InvalidInputError("signup.email", self.email, "must be an email address")
        if self.email is not None and not is_text(self.email):
            raise InvalidInputError("signup.email", self.email, _NOT_TEXT)
        _check_channel("signup.channel", self.channel)
        _check_token("signup.link_token", self.link_token)
        if not isinstance(self.existing_customer, bool):
            raise InvalidInputError(
                "signup.existing_customer", self.existing_customer, "must be True or False"
            )
        for name in ("device", "payment_fingerprint", "payout_account", "ip"):
            _check_hash(f"signup.{name}", getattr(self, name))


def _check_quantity(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("line_item.quantity", value, "must be a whole number >= 1")


@attrs.frozen(kw_only=True)
class LineItem:
    """One line of an order.

    Args:
        sku: The product's id.
        quantity: How many, >= 1.
        unit_price: Price of one unit (not negative).
        category: The product category, if the host has one.
    """

    sku: str
    quantity: int = attrs.field(default=1, validator=_check_quantity)
    unit_price: Money
    category: str | None = None

    def __attrs_post_init__(self) -> None:
        require_id("line_item.sku", self.sku)
        if self.category is not None and (
            not isinstance(self.category, str) or not is_text(self.category)
        ):
            raise InvalidInputError(
                "line_item.category", self.category, "must be a string of valid Unicode, or None"
            )
        _check_amount("line_item.unit_price", self.unit_price, positive=False)

    @property
    def total(self) -> Money:
        """``unit_price * quantity``."""
        return Money._trusted(self.unit_price.amount * self.quantity, self.unit_price.currency)


def _items(value: Iterable[LineItem]) -> tuple[LineItem, ...]:
    try:
        items = tuple(value)
    except TypeError:
        raise InvalidInputError(
            "purchase.items", value, "must be a sequence of LineItems"
        ) from None
    for i, item in enumerate(items):
        if not isinstance(item, LineItem):
            raise InvalidInputError(f"purchase.items[{i}]", item, "must be a LineItem")
    return items


@attrs.frozen(kw_only=True)
class Purchase:
    """An order was paid. Every purchase is recorded, referred or not.

    Args:
        event_id: The host's id for this event; unique per program.
        participant_id: Who bought.
        order_id: The host's order id; unique per program.
        amount: What was paid (the program's currency), not negative.
        at: When it was paid (timezone-aware).
        items: Optional line items.
        metadata: Free JSON data kept with the event.
        subtotal: Optional: the items' total before discounts, tax and shipping.
        discount: Optional: discounts taken off the order.
        tax: Optional: tax included in ``amount``.
        shipping: Optional: shipping included in ``amount``.
        code: A referral code typed at checkout, as typed (a touch; it binds the buyer
            when the program binds at the first purchase).
    """

    kind: ClassVar[str] = "purchase"

    event_id: str
    participant_id: str
    order_id: str
    amount: Money
    at: datetime
    items: tuple[LineItem, ...] = attrs.field(default=(), converter=_items)
    metadata: Mapping[str, Any] = _meta()
    subtotal: Money | None = None
    discount: Money | None = None
    tax: Money | None = None
    shipping: Money | None = None
    code: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_ids("purchase", self, "event_id", "participant_id", "order_id")
        _check_code("purchase.code", self.code)
        _check_amount("purchase.amount", self.amount, positive=False)
        for name in ("subtotal", "discount", "tax", "shipping"):
            part = getattr(self, name)
            if part is None:
                continue
            _check_amount(f"purchase.{name}", part, positive=False)
            if part.currency != self.amount.currency:
                raise InvalidInputError(
                    f"purchase.{name}",
                    part,
                    f"must be in the order's currency {self.amount.currency}",
                )
        for i, item in enumerate(self.items):
            if item.unit_price.currency != self.amount.currency:
                raise InvalidInputError(
                    f"purchase.items[{i}].unit_price",
                    item.unit_price,
                    f"must be in the order's currency {self.amount.currency}",
                )

    def net(self) -> Money:
        """The order net of discounts, tax and shipping (never below zero):
        ``subtotal - discount`` when the subtotal is given, else
        ``amount - tax - shipping``; ``amount`` when none of them is."""
        currency = self.amount.currency
        if self.subtotal is not None:
            value = self.subtotal.amount - (self.discount.amount if self.discount else 0)
        else:
            value = self.amount.amount
            for part in (self.tax, self.shipping):
                if part is not None:
                    value -= part.amount
        if value < 0:
            return Money.zero(currency)
        return Money._trusted(value, currency)


def _refund_items(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidInputError("refund.items", value, "must be a sequence of skus, not a string")
    try:
        items = tuple(value)
    except TypeError:
        raise InvalidInputError("refund.items", value, "must be a sequence of skus") from None
    for i, item in enumerate(items):
        require_id(f"refund.items[{i}]", item)
    return items


@attrs.frozen(kw_only=True)
class Refund:
    """Part or all of an order was refunded; its rewards are reversed pro rata.

    Args:
        event_id: The host's id for this event; unique per program.
        refund_id: The host's refund id; unique per program.
        order_id: The refunded order.
        amount: The refunded amount, greater than zero, in the order's currency.
        at: When it was refunded (timezone-aware).
        metadata: Free JSON data kept with the event.
        items: Skus of the order's line items refunded: only the per-item rewards of those
            items are reversed (wholly). Empty: the order's rewards are reversed pro rata.
    """

    kind: ClassVar[str] = "refund"

    event_id: str
    refund_id: str
    order_id: str
    amount: Money
    at: datetime
    metadata: Mapping[str, Any] = _meta()
    items: tuple[str, ...] = attrs.field(default=(), converter=_refund_items)

    def __attrs_post_init__(self) -> None:
        _check_ids("refund", self, "event_id", "refund_id", "order_id")
        _check_amount("refund.amount", self.amount, positive=True)

    @property
    def participant_id(self) -> None:
        """Refunds are found through their order."""
        return None


@attrs.frozen(kw_only=True)
class Chargeback:
    """An order was charged back; all its remaining rewards are reversed.

    Args:
        event_id: The host's id for this event; unique per program.
        chargeback_id: The payment provider's dispute id; unique per program.
        order_id: The disputed order.
        at: When the chargeback was received (timezone-aware).
        metadata: Free JSON data kept with the event.
    """

    kind: ClassVar[str] = "chargeback"

    event_id: str
    chargeback_id: str
    order_id: str
    at: datetime
    metadata: Mapping[str, Any] = _meta()

    def __attrs_post_init__(self) -> None:
        _check_ids("chargeback", self, "event_id", "chargeback_id", "order_id")

    @property
    def participant_id(self) -> None:
        """Chargebacks are found through their order."""
        return None


Event: TypeAlias = Click | Signup | Purchase | Refund | Chargeback
"""Any inbound event."""
