"""The policy protocol and what a policy sees and returns.

A policy is a pure object: given a [`PolicyContext`][referralkit.PolicyContext] (the
referral, the triggering event and an immutable snapshot of the counters the policy
declared) it returns a [`PolicyResult`][referralkit.PolicyResult]: the grants and the
decisions that explain them. It never reads the clock, the store or any global state.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, tzinfo
from decimal import Decimal
from typing import Protocol, runtime_checkable

import attrs

from referralkit._values.decisions import Decision
from referralkit._values.events import Purchase, Signup
from referralkit._values.money import Money
from referralkit._values.records import Referral, RewardGrant

__all__ = [
    "Counter",
    "PolicyContext",
    "PolicyResult",
    "RewardPolicy",
    "Trigger",
]


class Trigger(enum.StrEnum):
    """The event a policy pays on."""

    SIGNUP = "signup"
    """The referee signed up with a valid referral (a lead)."""
    FIRST_PURCHASE = "first_purchase"
    """The referee's first qualifying purchase under the referral. If that order is later
    refunded in full (the referral is no longer successful), the next qualifying purchase
    pays again, unless the program is ``first_purchase_only``."""
    EVERY_PURCHASE = "every_purchase"
    """Every qualifying purchase of the referee."""


class Counter(enum.StrEnum):
    """Figures a policy may declare it needs; the store keeps them as counters."""

    REFERRER_SUCCESSFUL_REFERRALS = "referrer.successful_referrals"
    """The referrer's successful referrals before this event."""
    REFERRER_REFERRALS = "referrer.referrals"
    """Referrals the referrer has made (sign-ups with their code)."""
    REFERRER_REVENUE_REFERRED = "referrer.revenue_referred"
    """Total order amounts of the referrer's referees, in the program currency, net of
    refunds and chargebacks."""
    REFEREE_PURCHASES = "referee.purchases"
    """The referee's purchases before this one."""
    REFEREE_EXISTING_CUSTOMER = "participant.existing_customer"
    """1 if the referee was a customer before the referral (``Signup(existing_customer=True)``,
    or they bought before signing up), else 0."""
    PROGRAM_SPEND = "program.spend"
    """Money granted by the program so far, in the program currency."""


@attrs.frozen
class PolicyContext:
    """What a policy sees: an immutable snapshot, identical on replay.

    Attributes:
        program_id: The program.
        program_version: The version that governs the referral.
        currency: The program's currency; money grants must use it.
        rounding: The program's ``decimal`` rounding mode.
        referral: The referral the event concerns.
        event: The triggering sign-up or purchase.
        trigger: Which trigger this evaluation is for.
        counters: The counters the policy declared, as of before this event.
        base: The purchase's commissionable amount under the program's
            ``commissionable_base`` (None: the purchase amount).
        referee_country: The referee's ISO 3166-1 alpha-2 country from their sign-up
            (``Signup.country``), or None when it was not given.
        zone: The governing version's time zone (``Program.zone``), for calendar terms
            such as ``RevenueShare.duration``; UTC by default.
    """

    program_id: str
    program_version: int
    currency: str
    rounding: str
    referral: Referral
    event: Signup | Purchase
    trigger: Trigger
    counters: Mapping[Counter, Decimal] = attrs.field(factory=dict)
    base: Money | None = None
    referee_country: str | None = None
    zone: tzinfo = UTC

    def count(self, counter: Counter) -> Decimal:
        """A declared counter's value (0 when it was never incremented)."""
        return self.counters.get(counter, Decimal(0))

    @property
    def amount(self) -> Money | None:
        """The purchase amount, when the event is a purchase."""
        return self.event.amount if isinstance(self.event, Purchase) else None

    @property
    def commissionable(self) -> Money | None:
        """What percentage rewards are computed on: ``base``, else the purchase amount."""
        return self.base if self.base is not None else self.amount


@attrs.frozen
class PolicyResult:
    """What a policy returns: grants, and decisions explaining them (or their absence)."""

    grants: tuple[RewardGrant, ...] = ()
    decisions: tuple[Decision, ...] = ()


@runtime_checkable
class RewardPolicy(Protocol):
    """**Protocol:** a pure reward rule.

    Attributes:
        name: Unique within a program; recorded on every grant it makes.
        trigger: The event it pays on.
    """

    @property
    def name(self) -> str:
        """Unique within a program."""
        ...

    @property
    def trigger(self) -> Trigger:
        """The event it pays on."""
        ...

    def needs(self) -> frozenset[Counter]:
        """The counters ``evaluate`` reads; the engine snapshots only these."""
        ...

    def check(self, currency: str) -> None:
        """Raise ``InvalidProgramError`` if the policy cannot run in a program of ``currency``."""
        ...

    def evaluate(self, ctx: PolicyContext) -> PolicyResult:
        """The grants this policy makes for ``ctx``; pure and deterministic."""
        ...
