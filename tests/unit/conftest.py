"""Fixtures for the policy tests: a PolicyContext factory."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

import referralkit as rk

START = datetime(2026, 1, 5, tzinfo=UTC)

MakeCtx = Callable[..., rk.PolicyContext]


@pytest.fixture
def make_ctx() -> MakeCtx:
    """Build a PolicyContext for a purchase (or a sign-up with ``signup=True``)."""

    def build(
        amount: str | None = "100.00",
        *,
        counters: Mapping[rk.Counter, int | Decimal] | None = None,
        items: Sequence[rk.LineItem] = (),
        days: int = 0,
        signup: bool = False,
        channel: str = "email",
        metadata: Mapping[str, Any] | None = None,
        currency: str = "USD",
        rounding: str = ROUND_HALF_UP,
        trigger: rk.Trigger = rk.Trigger.FIRST_PURCHASE,
    ) -> rk.PolicyContext:
        referral = rk.Referral(
            referral_id="ref_1",
            program_id="p",
            program_version=1,
            referrer_id="alice",
            referee_id="bob",
            code="ABCD1234",
            channel=channel,
            created_at=START,
            event_id="s1",
        )
        at = START + timedelta(days=days)
        event: rk.Signup | rk.Purchase
        if signup:
            event = rk.Signup(
                event_id="s1", participant_id="bob", at=at, code="ABCD1234", metadata=metadata or {}
            )
        else:
            event = rk.Purchase(
                event_id="p1",
                participant_id="bob",
                order_id="o1",
                amount=rk.Money(amount, currency),
                at=at,
                items=items,
                metadata=metadata or {},
            )
        return rk.PolicyContext(
            program_id="p",
            program_version=1,
            currency=currency,
            rounding=rounding,
            referral=referral,
            event=event,
            trigger=trigger,
            counters={k: Decimal(v) for k, v in (counters or {}).items()},
        )

    return build
