"""Caps and the program budget: pure rules that clamp what a program grants.

A cap is an upper bound on the money granted under one scope; a budget bounds what the
whole program spends. Both *clamp*: a grant that would go over is reduced to what is left,
and a grant reduced to nothing is not made. The event itself is always accepted, and the
decision trace says which cap or budget clamped what.

Scopes (every cap is optional, a positive amount in the program's currency):

- ``per_referral``: money granted under one referral, both sides together.
- ``per_referrer``: money granted to one referrer, all time.
- ``per_referrer_day`` / ``_week`` / ``_month``: money granted to one referrer in one
  calendar day, ISO week (Monday to Sunday) or month of the program's time zone, by the
  time of the event that earned it.
- ``per_referee``: money granted to one referee (across their purchases).
- the program ``budget``: money granted by the whole program, all versions together.

Only money rewards (cash, credit, fixed-amount discounts) count and are clamped; points,
badges, free periods and percent discounts are not money. Once the budget is spent, no
further grants are made, of any kind (non-money grants of the event that spends the last of
it are still made).

Spend is kept in counters keyed by the program id (not the version), so a cap or budget
spans versions; the *limit* is read from the version that governs the referral. A version
counts spend towards a cap only when it declares that cap: a cap added by a later version
starts counting when that version pays. Reversals (refunds, chargebacks) give the reversed
amount back to every counter the grant was counted in, including the calendar period of the
original grant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta

from referralkit._errors import InvalidProgramError
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.money import Money, currency_exponent
from referralkit._values.records import RewardGrant, Role
from referralkit._values.rewards import reward_from_quantity

__all__ = [
    "BUDGET_EXHAUSTED",
    "CAP_NAMES",
    "REFEREE_FIRST_REWARD",
    "REFEREE_LIMITS",
    "REFEREE_PURCHASES_REWARDED",
    "referee_gate",
    "Caps",
    "LimitPlan",
    "apply_limits",
    "spend_keys",
]

CAP_NAMES = (
    "per_referral",
    "per_referrer",
    "per_referrer_day",
    "per_referrer_week",
    "per_referrer_month",
    "per_referee",
)
"""The caps a program may declare, in the order they are checked."""

REFEREE_LIMITS = ("max_referee_purchases", "referee_window")
"""The limits that count a referee's rewarded purchases and time."""

REFEREE_PURCHASES_REWARDED = "cap.referee_purchases"
"""Counter (subject: the referee): purchases that earned rewards."""

REFEREE_FIRST_REWARD = "cap.referee_first_reward_at"
"""Counter (subject: the referee): POSIX seconds of the referee's first reward (0: none)."""

BUDGET_EXHAUSTED = "program.budget_exhausted"
"""The counter (subject ``""``) that records that the budget-exhausted notification was
written, so it is written once."""

_ZERO = Decimal(0)
_REFERRER_CAPS = frozenset(
    {"per_referrer", "per_referrer_day", "per_referrer_week", "per_referrer_month"}
)
_COUNTER = {
    "per_referral": "cap.referral",
    "per_referrer": "cap.referrer",
    "per_referrer_day": "cap.referrer_day",
    "per_referrer_week": "cap.referrer_week",
    "per_referrer_month": "cap.referrer_month",
    "per_referee": "cap.referee",
}


@attrs.frozen
class Caps:
    """Upper bounds on the money a program grants per scope; ``None`` means no cap.

    Every cap is a positive `Money` in the program's currency. See the module docs
    for what each scope counts; a grant is clamped to the smallest amount left under any
    cap that applies to it.

    Two limits count purchases and time rather than money; a purchase or sign-up they
    refuse earns nothing for either side (reason ``cap.referee_purchases`` or
    ``cap.referee_window``):

    - ``max_referee_purchases``: rewards are paid on at most this many of a referee's
      purchases (those that earned anything). A full refund or a chargeback of such a
      purchase frees its slot, so a later purchase may earn again; a partial refund does
      not.
    - ``referee_window``: rewards are paid only within this ``relativedelta`` of the
      referee's first reward (calendar terms in the program's time zone), even if that
      reward was later reversed.

    Args:
        per_referral: One referral, both sides together.
        per_referrer: One referrer, all time.
        per_referrer_day: One referrer, one calendar day (program time zone).
        per_referrer_week: One referrer, one ISO week (Monday to Sunday).
        per_referrer_month: One referrer, one calendar month.
        per_referee: One referee.
        max_referee_purchases: Purchases per referee that may earn rewards, >= 1.
        referee_window: How long after the referee's first reward rewards are paid.
    """

    per_referral: Money | None = attrs.field(default=None, kw_only=True)
    per_referrer: Money | None = attrs.field(default=None, kw_only=True)
    per_referrer_day: Money | None = attrs.field(default=None, kw_only=True)
    per_referrer_week: Money | None = attrs.field(default=None, kw_only=True)
    per_referrer_month: Money | None = attrs.field(default=None, kw_only=True)
    per_referee: Money | None = attrs.field(default=None, kw_only=True)
    max_referee_purchases: int | None = attrs.field(default=None, kw_only=True)
    referee_window: relativedelta | None = attrs.field(default=None, kw_only=True)

    def settings(self) -> dict[str, Any]:
        """Every limit that is set, by name (money caps first)."""
        out: dict[str, Any] = dict(self.declared())
        for name in REFEREE_LIMITS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def declared(self) -> dict[str, Money]:
        """The caps that are set, by name, in checking order."""
        out: dict[str, Money] = {}
        for name in CAP_NAMES:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def check(self, currency: str, field: str = "program.caps") -> None:
        """Raise ``InvalidProgramError`` for a cap that is not a positive amount of
        ``currency``; the field is ``program.caps.<name>``."""
        for name in CAP_NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, Money):
                raise InvalidProgramError(f"{field}.{name}", value, "must be a Money or None")
            if value.currency != currency:
                raise InvalidProgramError(
                    f"{field}.{name}", value, f"must be in the program's currency {currency}"
                )
            if value.amount <= 0:
                raise InvalidProgramError(f"{field}.{name}", value, "must be > 0")
        n = self.max_referee_purchases
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise InvalidProgramError(
                f"{field}.max_referee_purchases", n, "must be a whole number >= 1"
            )
        window = self.referee_window
        if window is not None and (
            not isinstance(window, relativedelta)
            or not window
            or any(getattr(window, p) < 0 for p in ("years", "months", "days", "hours"))
        ):
            raise InvalidProgramError(
                f"{field}.referee_window", window, "must be a positive relativedelta"
            )

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in (*CAP_NAMES, *REFEREE_LIMITS))


def _period(name: str, at: datetime, zone: tzinfo) -> str:
    local = at.astimezone(zone)
    if name == "per_referrer_day":
        return local.date().isoformat()
    if name == "per_referrer_week":
        year, week, _ = local.isocalendar()
        return f"{year:04d}-W{week:02d}"
    return f"{local.year:04d}-{local.month:02d}"


def spend_keys(
    caps: Caps,
    role: Role,
    participant_id: str,
    referral_id: str,
    at: datetime,
    zone: tzinfo,
) -> dict[str, tuple[str, str]]:
    """The spend counters (name, subject) a money grant counts in, by cap name.

    Args:
        caps: The caps of the version that governs the referral.
        role: The grant's side.
        participant_id: Who receives the grant.
        referral_id: The referral it is granted under.
        at: When it was earned (the event time); picks the calendar periods.
        zone: The program's time zone.
    """
    out: dict[str, tuple[str, str]] = {}
    for name in CAP_NAMES:
        if getattr(caps, name) is None:
            continue
        if name == "per_referral":
            out[name] = (_COUNTER[name], referral_id)
        elif name == "per_referee":
            if role is Role.REFEREE:
                out[name] = (_COUNTER[name], participant_id)
        elif role is Role.REFERRER:
            subject = participant_id
            if name != "per_referrer":
                subject = f"{participant_id}/{_period(name, at, zone)}"
            out[name] = (_COUNTER[name], subject)
    return out


@attrs.frozen
class LimitPlan:
    """What the caps and the budget leave of an event's grants.

    Attributes:
        grants: The grants to make, clamped (those clamped to nothing are left out).
        decisions: One decision per grant that was clamped or dropped.
        spend: How much to add to each spend counter (name, subject).
        program_spend: Money the grants add to the program's spend.
        spent_after: The program's spend once the grants are made.
        limited: Whether any grant was clamped or dropped.
        read: The spend counters the caps were checked against.
    """

    grants: tuple[RewardGrant, ...]
    decisions: tuple[Decision, ...]
    spend: Mapping[tuple[str, str], Decimal]
    program_spend: Decimal
    spent_after: Decimal
    limited: bool
    read: frozenset[tuple[str, str]] = frozenset()


def apply_limits(
    grants: Sequence[RewardGrant],
    *,
    caps: Caps,
    budget: Money | None,
    referral_id: str,
    at: datetime,
    zone: tzinfo,
    spent: Mapping[tuple[str, str], Decimal],
    program_spent: Decimal,
) -> LimitPlan:
    """Clamp ``grants`` (in order) to the caps and the budget.

    Each money grant is reduced to the smallest amount left under the caps that apply to it
    and the budget, counting what earlier grants of the same event took; a grant reduced to
    zero is dropped. Non-money grants are dropped only when the budget was spent before
    this event.

    Args:
        grants: The policies' grants for one event, in order.
        caps: The governing version's caps.
        budget: The governing version's budget, or None.
        referral_id: The referral.
        at: The event time.
        zone: The program's time zone.
        spent: Current values of the spend counters (missing ones read as 0).
        program_spent: The program's spend so far.

    Returns:
        The plan; pure and deterministic.
    """
    running: dict[tuple[str, str], Decimal] = {}
    total = program_spent
    kept: list[RewardGrant] = []
    decisions: list[Decision] = []
    limited = False
    for grant in grants:
        unit = grant.value.unit
        if not unit.is_money:
            if budget is not None and program_spent >= budget.amount:
                limited = True
                used = program_spent.quantize(
                    Decimal(1).scaleb(-currency_exponent(budget.currency))
                )
                decisions.append(_decision("budget.exhausted", grant, budget, used, _ZERO))
                continue
            kept.append(grant)
            continue
        requested = grant.value.quantity
        quantum = Decimal(1).scaleb(-unit.exponent)
        allowed = requested
        binding: tuple[str, Money, Decimal] | None = None
        keys = spend_keys(caps, grant.role, grant.participant_id, referral_id, at, zone)
        for name, key in keys.items():
            limit: Money = getattr(caps, name)
            used = running.get(key, spent.get(key, _ZERO)).quantize(quantum)
            left = max(limit.amount - used, _ZERO)
            if left < allowed:
                allowed, binding = left, (name, limit, used)
        if budget is not None:
            used = total.quantize(quantum)
            left = max(budget.amount - used, _ZERO)
            if left < allowed:
                allowed, binding = left, ("budget", budget, used)
        if binding is not None:
            limited = True
            name, limit, used = binding
            if name == "budget":
                code = "budget.clamped" if allowed > 0 else "budget.exhausted"
                decisions.append(_decision(code, grant, limit, used, allowed))
            else:
                code = "cap.clamped" if allowed > 0 else "cap.reached"
                decisions.append(_decision(code, grant, limit, used, allowed, cap=name))
        if allowed <= 0:
            continue
        if allowed < requested:
            kept.append(attrs.evolve(grant, value=reward_from_quantity(grant.value, allowed)))
        else:
            kept.append(grant)
        for key in keys.values():
            running[key] = running.get(key, spent.get(key, _ZERO)) + allowed
        total += allowed
    deltas = {key: value - spent.get(key, _ZERO) for key, value in running.items()}
    return LimitPlan(
        grants=tuple(kept),
        decisions=tuple(decisions),
        spend={k: v for k, v in deltas.items() if v},
        program_spend=total - program_spent,
        spent_after=total,
        limited=limited,
        read=frozenset(spent),
    )


def _decision(
    code: str,
    grant: RewardGrant,
    limit: Money,
    used: Decimal,
    allowed: Decimal,
    *,
    cap: str = "budget",
) -> Decision:
    verdict = Verdict.CLAMPED if allowed > 0 else Verdict.SKIPPED
    requested = grant.value
    granted = reward_from_quantity(requested, allowed) if allowed > 0 else "nothing"
    return Decision.of(
        grant.policy,
        verdict,
        code,
        cap=cap,
        limit=limit,
        spent=Money._trusted(used, limit.currency),
        role=grant.role.value,
        participant=grant.participant_id,
        requested=requested,
        granted=granted,
    )


def referee_gate(
    caps: Caps,
    *,
    purchase: bool,
    rewarded_purchases: Decimal,
    first_reward_at: Decimal,
    at: datetime,
    zone: tzinfo,
) -> Decision | None:
    """Whether the referee limits refuse this event's rewards: the refusal, or None.

    Args:
        caps: The governing version's caps.
        purchase: Whether the event is a purchase (sign-ups do not use a purchase slot).
        rewarded_purchases: The referee's purchases that earned rewards so far.
        first_reward_at: POSIX seconds of the referee's first reward, 0 if none.
        at: The event time.
        zone: The program's time zone (for month and year windows).
    """
    n = caps.max_referee_purchases
    if purchase and n is not None and rewarded_purchases >= n:
        return Decision.of(
            "caps",
            Verdict.SKIPPED,
            "cap.referee_purchases",
            limit=n,
            rewarded=int(rewarded_purchases),
        )
    window = caps.referee_window
    if window is not None and first_reward_at:
        first = datetime.fromtimestamp(int(first_reward_at), UTC).astimezone(zone)
        until: datetime = first + window
        if at >= until:
            return Decision.of(
                "caps", Verdict.SKIPPED, "cap.referee_window", first=first, until=until
            )
    return None
