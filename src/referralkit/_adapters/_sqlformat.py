"""The storage format both SQL stores share: UTC timestamps that sort as text, exact
integers for money and counters."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from referralkit._errors import StoreError

__all__ = ["COUNTER_SCALE", "opt_ts", "scaled", "ts"]

#: Counters are integers of 10**-6 units: exact for every ISO 4217 currency.
COUNTER_SCALE: Final = 6


def ts(value: datetime) -> str:
    """A UTC timestamp that sorts as text: ``2026-01-05T09:00:00.000000+00:00``."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


def opt_ts(value: datetime | None) -> str | None:
    """``ts(value)``, or None."""
    return None if value is None else ts(value)


def scaled(value: Decimal, exponent: int, what: str) -> int:
    """``value * 10**exponent`` as an exact int; more decimal places is a ``StoreError``."""
    result = value.scaleb(exponent)
    if result != result.to_integral_value():
        raise StoreError(f"{what}={value}: more than {exponent} decimal places")
    return int(result)
