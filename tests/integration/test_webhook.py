"""WebhookNotifier against a real HTTP server on 127.0.0.1 that verifies every delivery."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

import referralkit as rk

SECRET = b"s" * 32
T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


class Receiver(http.server.ThreadingHTTPServer):
    """Verifies each delivery with rk.verify_webhook; answers 204, or 400 when it fails."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.accepted: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.seen: set[str] = set()
        self.raw: list[tuple[bytes, str]] = []
        self.status = 204
        self.delay = 0.0
        self.now = T0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/referrals"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signature = self.headers.get(rk.SIGNATURE_HEADER, "")
        self.server.raw.append((body, signature))
        time.sleep(self.server.delay)
        try:
            payload = rk.verify_webhook(body, signature, SECRET, now=self.server.now)
        except rk.InvalidSignatureError as exc:
            self.server.refused.append(exc.problem)
            self.send_response(400)
            self.end_headers()
            return
        if self.server.status < 300 and payload["id"] not in self.server.seen:
            self.server.seen.add(payload["id"])
            self.server.accepted.append(payload)
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def make_engine(notifier: rk.Notifier) -> rk.Engine:
    program = rk.Program(
        id="hooks",
        effective_at=T0,
        currency="USD",
        policies=[
            rk.DoubleSided(
                referrer=rk.Cash(rk.Money(20, "USD")), referee=rk.Credit(rk.Money(10, "USD"))
            )
        ],
        hold=relativedelta(days=30),
    )
    return rk.Engine(program, rk.InMemoryStore(), clock=rk.ManualClock(T0), notifier=notifier)


def refer_and_buy(engine: rk.Engine) -> None:
    code = engine.issue_code("alice")
    engine.handle(rk.Signup(event_id="s-1", participant_id="bob", code=code, at=T0))
    engine.handle(
        rk.Purchase(
            event_id="p-1",
            participant_id="bob",
            order_id="o-1",
            amount=rk.Money(80, "USD"),
            at=T0,
        )
    )


def test_deliveries_verify_and_carry_the_notification(receiver: Receiver) -> None:
    engine = make_engine(rk.WebhookNotifier(receiver.url, SECRET, clock=rk.ManualClock(T0)))
    refer_and_buy(engine)

    assert engine.dispatch() == rk.DispatchResult(delivered=3, failed=0)

    kinds = sorted(p["kind"] for p in receiver.accepted)
    assert kinds == ["referral_created", "reward_earned", "reward_earned"]
    earned = next(p for p in receiver.accepted if p["recipient_id"] == "alice" and p["data"])
    assert receiver.refused == []
    assert engine.dispatch() == rk.DispatchResult(0, 0)  # nothing left to deliver
    assert any("you earned $20.00" in p["message"] for p in receiver.accepted), earned


def test_an_altered_body_or_a_wrong_secret_is_refused(receiver: Receiver) -> None:
    engine = make_engine(rk.WebhookNotifier(receiver.url, SECRET, clock=rk.ManualClock(T0)))
    refer_and_buy(engine)
    engine.dispatch(limit=1)
    body, signature = receiver.raw[0]

    altered = body.replace(b"alice", b"mallory")
    with pytest.raises(rk.InvalidSignatureError, match="does not match"):
        rk.verify_webhook(altered, signature, SECRET, now=T0)
    with pytest.raises(rk.InvalidSignatureError, match="does not match"):
        rk.verify_webhook(body, signature, b"x" * 32, now=T0)
    with pytest.raises(rk.InvalidSignatureError, match="must look like"):
        rk.verify_webhook(body, "v1=abc", SECRET, now=T0)


def test_a_captured_delivery_replayed_later_is_refused(receiver: Receiver) -> None:
    engine = make_engine(rk.WebhookNotifier(receiver.url, SECRET, clock=rk.ManualClock(T0)))
    refer_and_buy(engine)
    engine.dispatch(limit=1)
    body, signature = receiver.raw[0]

    assert rk.verify_webhook(body, signature, SECRET, now=T0 + timedelta(minutes=4))["id"]
    with pytest.raises(rk.InvalidSignatureError, match="replay"):
        rk.verify_webhook(body, signature, SECRET, now=T0 + timedelta(minutes=6))


def test_a_failing_endpoint_leaves_notifications_queued_until_it_recovers(
    receiver: Receiver,
) -> None:
    engine = make_engine(rk.WebhookNotifier(receiver.url, SECRET, clock=rk.ManualClock(T0)))
    refer_and_buy(engine)
    receiver.status = 503

    assert engine.dispatch() == rk.DispatchResult(delivered=0, failed=3)
    receiver.status = 204
    assert engine.dispatch() == rk.DispatchResult(delivered=0, failed=0)  # retried later
    later = T0 + timedelta(seconds=30)
    assert engine.dispatch(now=later) == rk.DispatchResult(delivered=3, failed=0)
    assert len(receiver.accepted) == 3


def test_a_slow_endpoint_times_out_as_a_notifier_error(receiver: Receiver) -> None:
    receiver.delay = 1.0
    notifier = rk.WebhookNotifier(receiver.url, SECRET, timeout=0.2, clock=rk.ManualClock(T0))
    note = rk.Notification("ntf_1", "hooks", "referral_created", "alice", T0, {"referee": "bob"})
    with pytest.raises(rk.NotifierError):
        notifier.send(note)


@pytest.mark.parametrize(
    ("url", "secret", "field"),
    [("ftp://x", SECRET, "url"), ("http://127.0.0.1:1/", b"short", "secret")],
)
def test_bad_arguments_name_the_field(url: str, secret: bytes, field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        rk.WebhookNotifier(url, secret)
    assert info.value.field == field
    assert b"short" not in str(info.value).encode()  # the secret is never echoed
