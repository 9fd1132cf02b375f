"""Clocks: the engine never reads the wall clock except through one of these."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from dateutil.relativedelta import relativedelta

from referralkit._errors import InvalidInputError
from referralkit._values._checks import require_aware

__all__ = ["Clock", "ManualClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """**Protocol:** tells the current time as a timezone-aware datetime."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to; for tests, backtests and simulations.

    Args:
        start: The initial instant (timezone-aware).
    """

    def __init__(self, start: datetime) -> None:
        self._now = require_aware("start", start)

    def now(self) -> datetime:
        """The instant last set."""
        return self._now

    def set(self, at: datetime) -> None:
        """Jump to ``at`` (timezone-aware; may go backwards)."""
        self._now = require_aware("at", at)

    def advance(self, delta: timedelta | relativedelta) -> datetime:
        """Move forward by ``delta`` and return the new instant.

        Raises:
            InvalidInputError: ``delta`` is not a ``timedelta`` (or a dateutil
                ``relativedelta``), or moves the clock outside the years 1 to 9999.
        """
        if not isinstance(delta, timedelta | relativedelta):
            raise InvalidInputError(
                "delta", delta, "must be a datetime.timedelta or a dateutil relativedelta"
            )
        try:
            moved: datetime = self._now + delta
        except (OverflowError, ValueError):
            raise InvalidInputError(
                "delta", delta, f"moves the clock from {self._now.isoformat()} out of range"
            ) from None
        self._now = moved
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()!r})"
