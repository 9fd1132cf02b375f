"""The storage format both SQL stores share: UTC timestamps that sort as text, exact
integers for money and counters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from referralkit._errors import StoreError
from referralkit._values.money import Money
from referralkit._values.rates import Rate
from referralkit._values.records import Payout, PayoutStatus

__all__ = [
    "COUNTER_SCALE",
    "PAYOUT_COLUMNS",
    "opt_ts",
    "payout",
    "rate",
    "rate_columns",
    "scaled",
    "ts",
]

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


def rate_columns(value: Rate | None) -> tuple[str | None, str | None]:
    """An exchange rate as its two columns: the exact decimal text and the ISO date."""
    if value is None:
        return None, None
    return str(value.value), value.on.isoformat()


def rate(value: str | None, on: str | None) -> Rate | None:
    """The exchange rate ``rate_columns`` wrote, or None."""
    if value is None:
        return None
    if on is None:
        raise ValueError("exchange_rate without rate_on")
    return Rate(Decimal(value), date.fromisoformat(on))


#: The columns of ``rk_payouts`` in the order ``payout`` reads them.
PAYOUT_COLUMNS: Final = (
    "payout_id",
    "program_id",
    "participant_id",
    "kind",
    "currency",
    "amount_minor",
    "netted_minor",
    "reward_ids",
    "created_at",
    "status",
    "attempts",
    "error",
    "updated_at",
)


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {text!r}")
    return value


def payout(r: Sequence[Any]) -> Payout:
    """A payout from a row of ``PAYOUT_COLUMNS``; a bad value raises ``ValueError`` (or an
    ``InvalidInputError``), which each store reports as a corrupt row."""
    return Payout(
        payout_id=r[0],
        program_id=r[1],
        participant_id=r[2],
        kind=r[3],
        amount=Money.from_minor(r[5], r[4]),
        netted=Money.from_minor(r[6], r[4]),
        reward_ids=tuple(r[7].split(",")) if r[7] else (),
        created_at=_aware(r[8]),
        status=PayoutStatus(r[9]),
        attempts=r[10],
        error=r[11],
        updated_at=None if r[12] is None else _aware(r[12]),
    )
