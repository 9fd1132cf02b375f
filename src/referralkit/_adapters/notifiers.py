"""Notifiers shipped with referralkit: logging, a callback, a recorder for tests, and a
signed webhook (with the receiver's verification helper)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from referralkit._errors import InvalidInputError, InvalidSignatureError, NotifierError
from referralkit._values._checks import require_aware
from referralkit._values.clock import Clock, SystemClock
from referralkit._values.records import Notification

__all__ = [
    "ID_HEADER",
    "SIGNATURE_HEADER",
    "CallbackNotifier",
    "LoggingNotifier",
    "RecordingNotifier",
    "WebhookNotifier",
    "verify_webhook",
    "webhook_body",
]


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


SIGNATURE_HEADER: Final = "X-Referralkit-Signature"
ID_HEADER: Final = "X-Referralkit-Id"


def _sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def webhook_body(notification: Notification) -> bytes:
    """The JSON body a ``WebhookNotifier`` posts for ``notification`` (UTF-8, sorted keys)."""
    payload = {
        "id": notification.notification_id,
        "program_id": notification.program_id,
        "kind": notification.kind,
        "recipient_id": notification.recipient_id,
        "created_at": notification.created_at.isoformat(),
        "data": dict(notification.data),
        "message": notification.message(),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class WebhookNotifier:
    """Posts each notification as signed JSON to an HTTPS (or HTTP) endpoint.

    The body is [`webhook_body`][referralkit.webhook_body]. The header
    ``X-Referralkit-Signature: t=<unix seconds>,v1=<hex>`` carries an HMAC-SHA256 of
    ``"<t>." + body`` under ``secret``: it covers the timestamp and the body, so an altered
    delivery fails verification and a captured one can be replayed only within the
    receiver's tolerance (and ``X-Referralkit-Id``, the notification id, lets the receiver
    drop repeats). Receivers check it with [`verify_webhook`][referralkit.verify_webhook].

    Args:
        url: The endpoint.
        secret: The shared secret, at least 32 bytes; it never leaves the process.
        timeout: Seconds to wait for the endpoint.
        clock: The time source for the signature's timestamp (the system clock).

    Raises:
        InvalidInputError: a secret shorter than 32 bytes or a URL that is not http(s).
    """

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise InvalidInputError("url", url, "must be an http:// or https:// URL")
        if not isinstance(secret, bytes) or len(secret) < 32:
            raise InvalidInputError("secret", "<hidden>", "must be at least 32 bytes")
        self._url = url
        self._secret = secret
        self._timeout = timeout
        self._clock: Clock = clock or SystemClock()

    def send(self, notification: Notification) -> None:
        """Post one notification; any non-2xx answer or network failure raises.

        Raises:
            NotifierError: the endpoint did not accept the delivery in time.
        """
        body = webhook_body(notification)
        timestamp = int(self._clock.now().timestamp())
        request = urllib.request.Request(
            self._url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "referralkit-webhook",
                ID_HEADER: notification.notification_id,
                SIGNATURE_HEADER: f"t={timestamp},v1={_sign(self._secret, timestamp, body)}",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise NotifierError(f"webhook {self._url} answered {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise NotifierError(f"webhook {self._url} failed: {exc}") from exc
        if not 200 <= status < 300:
            raise NotifierError(f"webhook {self._url} answered {status}")

    def __repr__(self) -> str:
        return f"WebhookNotifier({self._url!r})"


def verify_webhook(
    body: bytes,
    signature: str,
    secret: bytes,
    *,
    now: datetime,
    tolerance: timedelta = timedelta(minutes=5),
) -> dict[str, Any]:
    """Check a delivery from a ``WebhookNotifier`` and return its JSON payload.

    Args:
        body: The raw request body, as received.
        signature: The ``X-Referralkit-Signature`` header.
        secret: The shared secret.
        now: The receiver's current time (timezone-aware).
        tolerance: How far the signed timestamp may be from ``now``, either way. A delivery
            older than this is refused as a replay; deduplicate newer repeats by ``id``.

    Raises:
        InvalidSignatureError: a malformed header, a timestamp outside the tolerance, or a
            signature that does not match the body (compared in constant time).
        InvalidInputError: ``body`` or ``secret`` that is not bytes, a ``tolerance`` that
            is not a timedelta, or a signed body that is not JSON.
    """
    require_aware("now", now)
    if not isinstance(body, bytes | bytearray):
        raise InvalidInputError("body", body, "must be the raw request body, as bytes")
    if not isinstance(secret, bytes | bytearray):
        raise InvalidInputError("secret", secret, "must be bytes")
    if not isinstance(tolerance, timedelta):
        raise InvalidInputError("tolerance", tolerance, "must be a datetime.timedelta")
    if not isinstance(signature, str) or not signature.isascii():
        raise InvalidSignatureError(
            SIGNATURE_HEADER, signature, "must be a str like t=<unix seconds>,v1=<hex>"
        )
    parts = dict(p.split("=", 1) for p in signature.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise InvalidSignatureError(
            SIGNATURE_HEADER, signature, "must look like t=<unix seconds>,v1=<hex>"
        ) from None
    age = abs(now.timestamp() - timestamp)
    if age > tolerance.total_seconds():
        raise InvalidSignatureError(
            SIGNATURE_HEADER, f"t={timestamp}", f"is {age:.0f} s away from now: a replay?"
        )
    if not hmac.compare_digest(given, _sign(secret, timestamp, body)):
        raise InvalidSignatureError(
            SIGNATURE_HEADER, f"t={timestamp}", "does not match the body (altered or wrong secret)"
        )
    try:
        payload: dict[str, Any] = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError("body", body[:80], f"is signed but not JSON: {exc}") from None
    return payload
