"""Default English messages for notifications: pure text from each kind's structured data.

Money in the data is written as referralkit prints it (``"20.00 USD cash"``, ``"1,500 JPY"``)
and shown with the currency's symbol where it is common (``$20.00``, ``¥1,500``); other
currencies keep their code (``20.00 CHF``). Dates (``"2026-12-12"``) read as ``12 December``,
with the year when it is not the notification's year. Rendering never raises: an unknown kind,
a missing key or an unreadable value falls back to a generic text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from referralkit._values.records import Notification

__all__ = ["CURRENCY_SYMBOLS", "MESSAGE_KINDS", "render_message"]

CURRENCY_SYMBOLS: Mapping[str, str] = {
    "AUD": "A$",
    "BRL": "R$",
    "CAD": "CA$",
    "CNY": "CN¥",
    "EUR": "€",
    "GBP": "£",
    "HKD": "HK$",
    "ILS": "₪",
    "INR": "₹",
    "JPY": "¥",
    "KRW": "₩",
    "MXN": "MX$",
    "NGN": "₦",
    "NZD": "NZ$",
    "PHP": "₱",
    "TWD": "NT$",
    "USD": "$",
    "VND": "₫",
}
"""Currencies shown with a symbol in default messages; any other keeps its ISO code."""

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONEY = re.compile(r"^(-?)([\d,]+(?:\.\d+)?) ([A-Z]{3})(?: (.+))?$")
_Data = Mapping[str, str]


def money_text(value: str) -> str:
    """A reward value or amount as a message shows it: ``"20.00 USD cash"`` -> ``$20.00``,
    ``"5.00 EUR credit"`` -> ``€5.00 credit``, ``"20.00 CHF"`` -> ``20.00 CHF``; anything
    else (``"10 points"``) unchanged."""
    found = _MONEY.match(value)
    if found is None:
        return value
    sign, amount, currency, kind = found.groups()
    symbol = CURRENCY_SYMBOLS.get(currency)
    text = f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"
    if kind and kind != "cash":
        text = f"{text} {kind}"
    return text


def date_text(value: str, year: int | None = None) -> str:
    """``"2026-12-12"`` -> ``12 December`` (``12 December 2026`` when ``year`` differs);
    anything that is not an ISO date unchanged."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return value
    text = f"{day.day} {_MONTHS[day.month - 1]}"
    return text if day.year == year else f"{text} {day.year}"


def _plural(count: str, noun: str) -> str:
    return f"{count} {noun}" if count == "1" else f"{count} {noun}s"


def _referral_created(d: _Data, year: int) -> str:
    return f"{d['referee']} signed up with your code {d['code']}."


def _reward_earned(d: _Data, year: int) -> str:
    earned = f"you earned {money_text(d['value'])}"
    if d.get("payable_on"):
        earned += f", payable on {date_text(d['payable_on'], year)}"
    if d.get("role") == "referee":
        return f"Welcome! {earned[0].upper()}{earned[1:]}."
    if d.get("referee"):
        return f"{d['referee']} used your code — {earned}."
    return f"{earned[0].upper()}{earned[1:]}."


def _reward_approved(d: _Data, year: int) -> str:
    return f"Your reward of {money_text(d['value'])} is now available."


def _reward_reversed(d: _Data, year: int) -> str:
    return f"{money_text(d['value'])} of your reward was reversed after a {d['cause']}."


def _reward_held(d: _Data, year: int) -> str:
    return f"Your reward is on hold for review: {d['reason']}."


def _reward_released(d: _Data, year: int) -> str:
    return "Your reward is no longer on hold."


def _reward_rejected(d: _Data, year: int) -> str:
    return f"Your reward was rejected: {d['reason']}."


def _review_due(d: _Data, year: int) -> str:
    return f"Reward {d['reward_id']} is waiting for a review decision."


def _reward_clawed_back(d: _Data, year: int) -> str:
    return (
        f"{money_text(d['value'])} already paid to you was clawed back; "
        "it will be deducted from your next payout."
    )


def _reward_paid(d: _Data, year: int) -> str:
    return f"You were paid {money_text(d['value'])}."


def _milestone_reached(d: _Data, year: int) -> str:
    text = (
        f"You reached the {d['milestone']} milestone with "
        f"{_plural(d['count'], 'successful referral')}"
    )
    if d.get("value"):
        text += f" and earned {money_text(d['value'])}"
    return text + "."


def _status_changed(d: _Data, year: int) -> str:
    old, new = d["old"], d["new"]
    if not old:
        return f"Your status is now {new}."
    if not new:
        return f"You no longer hold the {old} status."
    return f"Your status changed from {old} to {new}."


def _budget_exhausted(d: _Data, year: int) -> str:
    return (
        f"The program budget of {money_text(d['budget'])} is exhausted: "
        f"{money_text(d['spent'])} spent."
    )


def _points_redeemed(d: _Data, year: int) -> str:
    return f"You redeemed {d['points']} points for {money_text(d['value'])}."


def _referral_held(d: _Data, year: int) -> str:
    return f"Referral {d['referral_id']} is on hold for review: {d['reason']}."


def _referral_reattributed(d: _Data, year: int) -> str:
    referee = d.get("referee")
    if referee:
        return f"{referee} now counts as your referral."
    return f"Referral {d['referral_id']} now counts as yours."


_RENDERERS: Mapping[str, Callable[[_Data, int], str]] = {
    "referral_created": _referral_created,
    "reward_earned": _reward_earned,
    "reward_approved": _reward_approved,
    "reward_reversed": _reward_reversed,
    "reward_held": _reward_held,
    "reward_released": _reward_released,
    "reward_rejected": _reward_rejected,
    "review_due": _review_due,
    "reward_clawed_back": _reward_clawed_back,
    "reward_paid": _reward_paid,
    "milestone_reached": _milestone_reached,
    "status_changed": _status_changed,
    "budget_exhausted": _budget_exhausted,
    "points_redeemed": _points_redeemed,
    "referral_held": _referral_held,
    "referral_reattributed": _referral_reattributed,
}

MESSAGE_KINDS: frozenset[str] = frozenset(_RENDERERS)
"""The notification kinds with a default message of their own."""


def _generic(kind: object) -> str:
    words = str(kind).replace("_", " ").strip() or "notification"
    return f"{words[0].upper()}{words[1:]}."


def render_message(notification: Notification) -> str:
    """The default English message of a notification.

    Args:
        notification: Any notification; its ``kind`` picks the text and its ``data`` fills
            it in (see the Notifications page for every kind and its keys).

    Returns:
        One short sentence, e.g. ``bob used your code — you earned $20.00, payable on
        12 December.`` An unknown kind or a missing key gives a generic text built from
        the kind (``Reward paid.``); this function never raises.
    """
    try:
        kind = notification.kind
        render = _RENDERERS.get(kind)
        if render is None:
            return _generic(kind)
        data = {str(k): str(v) for k, v in notification.data.items()}
        return render(data, notification.created_at.year)
    except Exception:  # a default text must never break a delivery
        return _generic(getattr(notification, "kind", "notification"))
