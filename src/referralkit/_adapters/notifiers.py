"""Notifiers shipped with referralkit: logging, a callback, and a recorder for tests."""

from __future__ import annotations

import logging
from collections.abc import Callable

from referralkit._values.records import Notification

__all__ = ["CallbackNotifier", "LoggingNotifier", "RecordingNotifier"]


class LoggingNotifier:
    """Writes each notification's default message to a logger (``referralkit.notify``)."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self._log = logger or logging.getLogger("referralkit.notify")
        self._level = level

    def send(self, notification: Notification) -> None:
        """Log one notification."""
        self._log.log(
            self._level,
            "%s -> %s: %s",
            notification.kind,
            notification.recipient_id,
            notification.message(),
        )


class CallbackNotifier:
    """Calls a function with each notification; an exception it raises is a failed delivery."""

    def __init__(self, callback: Callable[[Notification], object]) -> None:
        self._callback = callback

    def send(self, notification: Notification) -> None:
        """Pass one notification to the callback."""
        self._callback(notification)


class RecordingNotifier:
    """Keeps every notification it is sent, in order; for tests.

    Attributes:
        sent: Every delivery, repeats included (delivery is at least once).
    """

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        """Record one notification."""
        self.sent.append(notification)

    @property
    def unique(self) -> list[Notification]:
        """The deliveries deduplicated by notification id, first delivery first."""
        seen: dict[str, Notification] = {}
        for n in self.sent:
            seen.setdefault(n.notification_id, n)
        return list(seen.values())
