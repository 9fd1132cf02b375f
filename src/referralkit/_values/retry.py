"""When a failed notification is tried again: exponential backoff, capped, deterministic."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from referralkit._errors import InvalidInputError

__all__ = ["RetrySchedule"]

_US = timedelta(microseconds=1)


def _max_attempts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("retry.max_attempts", value, "must be an int >= 1")
    return value


def _delay(field: str, value: Any) -> timedelta:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidInputError(field, value, "must be a timedelta above 0")
    return value


def _first_delay(value: Any) -> timedelta:
    return _delay("retry.first_delay", value)


def _max_delay(value: Any) -> timedelta:
    return _delay("retry.max_delay", value)


def _factor(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise InvalidInputError(
            "retry.factor", value, "must be an int, Decimal or str (not a float)"
        )
    try:
        factor = Decimal(value)
    except ArithmeticError:
        raise InvalidInputError("retry.factor", value, "is not a number") from None
    if not factor.is_finite() or factor < 1:
        raise InvalidInputError("retry.factor", value, "must be a number >= 1")
    return factor


def _jitter(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise InvalidInputError(
            "retry.jitter_percent", value, "must be an int, Decimal or str (not a float)"
        )
    try:
        percent = Decimal(value)
    except ArithmeticError:
        raise InvalidInputError("retry.jitter_percent", value, "is not a number") from None
    if not percent.is_finite() or not 0 <= percent <= 100:
        raise InvalidInputError("retry.jitter_percent", value, "must be in [0, 100]")
    return percent


@attrs.frozen
class RetrySchedule:
    """How often, and when, the engine retries a notification the notifier failed to send.

    The n-th failed attempt (n = 1, 2, ...) is retried after
    ``min(first_delay * factor ** (n - 1), max_delay)``; when ``max_attempts`` attempts have
    failed the notification becomes a dead letter instead. With the defaults the retries
    come 30 s, 1, 2, 4, 8, 16 and 32 minutes after each failure, and the 8th failure, about
    an hour after the first, is final.

    Delays are exact (whole microseconds, rounded down) and deterministic. To spread the
    retries of many notifications that failed together, ``jitter_percent`` lengthens each
    delay by up to that percent, by an amount derived from the notification id and the
    attempt (a stable hash, not a random number), so every process computes the same time.

    Args:
        max_attempts: Delivery attempts before a notification is dead, >= 1.
        first_delay: Wait after the first failure, above 0.
        factor: Each further wait is this many times the previous one, >= 1 (int, Decimal
            or str; 1 means a constant delay).
        max_delay: The longest wait, at least ``first_delay``.
        jitter_percent: In [0, 100]; ``Decimal("10")`` lengthens each delay by 0 to 10 %.

    Raises:
        InvalidInputError: a value outside the ranges above; the message names the field
            (``retry.max_attempts``, ...) and the value.
    """

    max_attempts: int = attrs.field(default=8, converter=_max_attempts)
    first_delay: timedelta = attrs.field(default=timedelta(seconds=30), converter=_first_delay)
    factor: Decimal = attrs.field(default=Decimal(2), converter=_factor)
    max_delay: timedelta = attrs.field(default=timedelta(hours=1), converter=_max_delay)
    jitter_percent: Decimal = attrs.field(default=Decimal(0), converter=_jitter)

    def __attrs_post_init__(self) -> None:
        if self.max_delay < self.first_delay:
            raise InvalidInputError(
                "retry.max_delay",
                self.max_delay,
                f"must be at least first_delay ({self.first_delay})",
            )

    def delay(self, attempt: int, notification_id: str = "") -> timedelta:
        """The wait after the ``attempt``-th failed attempt (1 for the first failure).

        Raises:
            InvalidInputError: ``attempt`` is not an int >= 1.
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise InvalidInputError("attempt", attempt, "must be an int >= 1")
        first = self.first_delay // _US
        cap = self.max_delay // _US
        # Stop multiplying once past the cap, so a huge attempt number stays cheap.
        grown = Decimal(first)
        for _ in range(attempt - 1):
            grown *= self.factor
            if grown >= cap:
                break
        micros = min(int(grown), cap)
        if self.jitter_percent and notification_id:
            digest = hashlib.sha256(f"{notification_id}\x00{attempt}".encode()).digest()
            fraction = Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2**64)
            micros += int(micros * self.jitter_percent / 100 * fraction)
        return timedelta(microseconds=micros)

    def next_attempt_at(
        self, failed_at: datetime, attempts: int, notification_id: str = ""
    ) -> datetime | None:
        """When to try again after ``attempts`` failed attempts, the latest at ``failed_at``;
        None when the attempts ran out (the notification is dead)."""
        if attempts >= self.max_attempts:
            return None
        return failed_at + self.delay(attempts, notification_id)
