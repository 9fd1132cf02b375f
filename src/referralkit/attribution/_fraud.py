"""Fraud and eligibility checks: pure functions that return a verdict (pure).

Each check returns a [`FraudVerdict`][referralkit.attribution.FraudVerdict]: an action
(allow, flag, hold or block) and the reason codes that led to it.
[`combine`][referralkit.attribution.combine] merges verdicts: the strictest action wins and
the reasons add up. Hosts plug in their own checks through the
[`FraudCheck`][referralkit.attribution.FraudCheck] protocol.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import attrs

from referralkit._errors import InvalidInputError
from referralkit._values._checks import require_aware, require_id
from referralkit.attribution._identity import DEFAULT_EMAIL_RULES, EmailRules, normalise_email

__all__ = [
    "DEFAULT_IDENTITY_ACTIONS",
    "FraudAction",
    "FraudCheck",
    "FraudContext",
    "FraudVerdict",
    "IdentityFacts",
    "check_circular",
    "check_loop",
    "check_same_identity",
    "check_velocity",
    "combine",
    "sliding_count",
]


class FraudAction(enum.StrEnum):
    """What to do with a referral, from the mildest to the strictest."""

    ALLOW = "allow"
    """Nothing suspicious."""
    FLAG = "flag"
    """Proceed, and show it to an operator."""
    HOLD = "hold"
    """Record the referral but approve none of its rewards until an operator decides."""
    BLOCK = "block"
    """Refuse the referral (the sign-up is still recorded, without a referrer)."""

    @property
    def severity(self) -> int:
        """0 for allow to 3 for block: the larger, the stricter."""
        return _SEVERITY[self]


_SEVERITY = {FraudAction.ALLOW: 0, FraudAction.FLAG: 1, FraudAction.HOLD: 2, FraudAction.BLOCK: 3}


def _action(value: object) -> FraudAction:
    if isinstance(value, str) and value in _SEVERITY:
        return FraudAction(value)
    raise InvalidInputError("action", value, f"must be one of {[a.value for a in FraudAction]}")


def _reasons(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidInputError("reasons", value, "must be a collection of reason codes")
    reasons = tuple(value)
    for reason in reasons:
        if not isinstance(reason, str) or not reason:
            raise InvalidInputError("reasons", reasons, "reason codes are non-empty strings")
    return tuple(dict.fromkeys(reasons))  # in order, without repeats


@attrs.frozen
class FraudVerdict:
    """The result of a fraud or eligibility check.

    Attributes:
        action: What to do: allow, flag, hold or block.
        reasons: Stable reason codes such as ``"fraud.same_device"``, in the order found,
            without repeats; empty for a plain allow.
    """

    action: FraudAction = attrs.field(default=FraudAction.ALLOW, converter=_action)
    reasons: tuple[str, ...] = attrs.field(default=(), converter=_reasons)

    @classmethod
    def allow(cls) -> FraudVerdict:
        """Nothing suspicious."""
        return _ALLOW

    @property
    def allowed(self) -> bool:
        """True when the referral may proceed now (allow or flag)."""
        return self.action.severity <= FraudAction.FLAG.severity


_ALLOW = FraudVerdict()


def combine(verdicts: Iterable[FraudVerdict]) -> FraudVerdict:
    """One verdict from several: the strictest action wins, and the reasons add up.

    Reasons keep the order of the verdicts given, without repeats. No verdicts at all
    is an allow.
    """
    action = FraudAction.ALLOW
    reasons: list[str] = []
    for verdict in verdicts:
        if verdict.action.severity > action.severity:
            action = verdict.action
        reasons.extend(verdict.reasons)
    return FraudVerdict(action, reasons)


_KEYED_HASH = re.compile(r"[0-9a-f]{64}")


def _hashed(_: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not _KEYED_HASH.fullmatch(value)):
        raise InvalidInputError(
            f"identity.{attribute.name}",
            value,
            "must be a keyed hash (keyed_hash(value, key)), never the raw value",
        )


def _keyed_hash_field() -> Any:
    return attrs.field(default=None, validator=_hashed)


def _email(_: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and (not isinstance(value, str) or "@" not in value):
        raise InvalidInputError("identity.email", value, "must be an email address")


@attrs.frozen(kw_only=True)
class IdentityFacts:
    """What is known of one person, for comparing a referrer with a referee.

    Device ids, payment fingerprints, payout accounts and IP addresses are given only as
    keyed hashes ([`keyed_hash`][referralkit.attribution.keyed_hash], 64 hex digits), one
    key for the program, so the raw values are never stored; a raw value is refused.
    Missing facts are ``None`` and never match.

    Args:
        email: The email address as given (compared after normalisation).
        device: Keyed hash of a device id.
        payment_fingerprint: Keyed hash of a card or wallet fingerprint.
        payout_account: Keyed hash of the account rewards are paid to.
        ip: Keyed hash of the IP address (normalised first, e.g. ``ip_address(ip).compressed``).
    """

    email: str | None = attrs.field(default=None, validator=_email)
    device: str | None = _keyed_hash_field()
    payment_fingerprint: str | None = _keyed_hash_field()
    payout_account: str | None = _keyed_hash_field()
    ip: str | None = _keyed_hash_field()


#: The action each shared identity fact leads to, by default. A shared email, payment
#: method or payout account is one person; a shared device usually is (hold for review);
#: a shared IP address may be a household, an office or a mobile carrier (flag).
DEFAULT_IDENTITY_ACTIONS: Mapping[str, FraudAction] = MappingProxyType(
    {
        "email": FraudAction.BLOCK,
        "payment_fingerprint": FraudAction.BLOCK,
        "payout_account": FraudAction.BLOCK,
        "device": FraudAction.HOLD,
        "ip": FraudAction.FLAG,
    }
)

_REASONS = {
    "email": "fraud.same_email",
    "device": "fraud.same_device",
    "payment_fingerprint": "fraud.same_payment_fingerprint",
    "payout_account": "fraud.same_payout_account",
    "ip": "fraud.same_ip",
}


def check_same_identity(
    referrer: IdentityFacts,
    referee: IdentityFacts,
    *,
    actions: Mapping[str, FraudAction | str] = DEFAULT_IDENTITY_ACTIONS,
    email_rules: EmailRules = DEFAULT_EMAIL_RULES,
) -> FraudVerdict:
    """Whether the referee looks like the referrer under another name.

    Compares each fact both sides know: emails after
    [`normalise_email`][referralkit.attribution.normalise_email] under ``email_rules``, the
    other facts as keyed hashes (equal hashes, equal values). Each shared fact adds its
    reason code (``"fraud.same_email"``, ``"fraud.same_device"``,
    ``"fraud.same_payment_fingerprint"``, ``"fraud.same_payout_account"``,
    ``"fraud.same_ip"``) and its action from ``actions``; the strictest action wins.

    Args:
        referrer: What is known of the referrer.
        referee: What is known of the referee.
        actions: Fact name -> action when shared; facts left out are not compared.
            By default
            [`DEFAULT_IDENTITY_ACTIONS`][referralkit.attribution.DEFAULT_IDENTITY_ACTIONS].
        email_rules: How email variants of one inbox are recognised.
    """
    action = FraudAction.ALLOW
    reasons = []
    for name, reason in _REASONS.items():
        if name not in actions:
            continue
        mine, theirs = getattr(referrer, name), getattr(referee, name)
        if mine is None or theirs is None:
            continue
        if name == "email":
            mine, theirs = normalise_email(mine, email_rules), normalise_email(theirs, email_rules)
        if mine == theirs:
            found = _action(actions[name])
            reasons.append(reason)
            if found.severity > action.severity:
                action = found
    return FraudVerdict(action, reasons) if reasons else _ALLOW


def _count(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(field, value, f"must be a whole number >= {minimum}")
    return value


def check_velocity(
    signups_in_window: int, limit: int, *, action: FraudAction | str = FraudAction.HOLD
) -> FraudVerdict:
    """Whether a referrer brings in sign-ups faster than a person plausibly can.

    Args:
        signups_in_window: The referrer's referred sign-ups within the host's window (an
            hour, a day), counting the one being checked.
        limit: How many are normal within that window, >= 1.
        action: What to do above the limit (hold, by default).

    Returns:
        Allow up to and including ``limit``; above it, ``action`` with reason
        ``"fraud.velocity"``.

    Raises:
        InvalidInputError: a negative count or a limit below 1.
    """
    _count("signups_in_window", signups_in_window, 0)
    _count("limit", limit, 1)
    chosen = _action(action)
    if signups_in_window <= limit:
        return _ALLOW
    return FraudVerdict(chosen, ("fraud.velocity",))


def check_circular(
    referrer_id: str, referee_id: str, referrer_of_referrer: str | None
) -> FraudVerdict:
    """Whether a referral would close a loop: A refers B, then B refers A.

    Args:
        referrer_id: Who would refer.
        referee_id: Who would be referred.
        referrer_of_referrer: Who referred ``referrer_id`` in this program, if anyone.

    Returns:
        Block with ``"fraud.self_referral"`` when both ids are the same, block with
        ``"fraud.circular"`` when the referee referred the referrer, allow otherwise. Only
        loops of two are visible from these arguments; longer chains need the host's data.
    """
    require_id("referrer_id", referrer_id)
    require_id("referee_id", referee_id)
    if referrer_of_referrer is not None:
        require_id("referrer_of_referrer", referrer_of_referrer)
    if referrer_id == referee_id:
        return FraudVerdict(FraudAction.BLOCK, ("fraud.self_referral",))
    if referrer_of_referrer == referee_id:
        return FraudVerdict(FraudAction.BLOCK, ("fraud.circular",))
    return _ALLOW


def sliding_count(current: int, previous: int, elapsed: timedelta, width: timedelta) -> int:
    """Events in the window of ``width`` that ends now, estimated from two fixed buckets.

    The window covers the whole current bucket (``current`` events, ``elapsed`` since it
    began) and the last ``width - elapsed`` of the previous one, whose ``previous`` events
    are taken as spread evenly over it: the estimate is ``current + previous * (width -
    elapsed) / width``, rounded up (a check errs towards counting a burst). A burst that
    straddles a bucket boundary (ten sign-ups at 10:59, ten at 11:01) is counted whole,
    which per-bucket counts miss.

    Args:
        current: Events in the current bucket so far.
        previous: Events in the previous bucket.
        elapsed: Time since the current bucket began, in ``[0, width)``.
        width: The bucket's and the window's length.

    Raises:
        InvalidInputError: a negative count, ``width`` not positive, or ``elapsed``
            outside ``[0, width)``.
    """
    _count("current", current, 0)
    _count("previous", previous, 0)
    if not isinstance(width, timedelta) or width <= timedelta(0):
        raise InvalidInputError("width", width, "must be a positive timedelta")
    if not isinstance(elapsed, timedelta) or not timedelta(0) <= elapsed < width:
        raise InvalidInputError("elapsed", elapsed, f"must be in [0, {width})")
    unit = timedelta(microseconds=1)
    left, whole = (width - elapsed) // unit, width // unit
    return current + -(-previous * left // whole)


def check_loop(referee_id: str, chain: Sequence[str], depth: int) -> FraudVerdict:
    """Whether a referral would close a loop of up to ``depth`` people: A refers B, B refers
    C, and now C would refer A (a loop of 3).

    Args:
        referee_id: Who would be referred.
        chain: Who referred the referrer, who referred them, and so on, nearest first.
        depth: The longest loop to look for, >= 2 (2: B would refer A who referred B).

    Returns:
        Block with ``"fraud.circular"`` when the referee is among the first ``depth - 1``
        of ``chain``; allow otherwise.

    Raises:
        InvalidInputError: ``depth`` below 2.
    """
    _count("depth", depth, 2)
    if referee_id in chain[: depth - 1]:
        return FraudVerdict(FraudAction.BLOCK, ("fraud.circular",))
    return _ALLOW


def _names(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise InvalidInputError("fraud_context.referrer_chain", value, "must be a sequence of ids")
    return tuple(value)


@attrs.frozen(kw_only=True)
class FraudContext:
    """What a [`FraudCheck`][referralkit.attribution.FraudCheck] is told about a referral.

    Args:
        program_id: The program.
        referrer_id: Who would refer.
        referee_id: Who would be referred.
        at: When the referral would be made (timezone-aware).
        referrer: What is known of the referrer.
        referee: What is known of the referee.
        code: The normalised code used, if any.
        channel: The channel of the winning touch.
        referrer_of_referrer: Who referred the referrer in this program, if anyone.
        referrals_this_hour: The referrer's referrals made in this clock hour (UTC),
            counting this one.
        referrals_today: The referrer's referrals made on this day (UTC), counting this one.
        referrals_past_hour: The referrer's referrals in the 60 minutes up to ``at``,
            counting this one: a sliding window, estimated by
            [`sliding_count`][referralkit.attribution.sliding_count] from this clock hour's
            and the previous one's counts.
        referrals_past_day: The same over the 24 hours up to ``at``, from this day's and
            the previous day's counts.
        referrer_chain: Who referred the referrer, who referred them, and so on, nearest
            first: as many as the engine's checks ask for (``CircularCheck(depth=...)``),
            at least ``referrer_of_referrer`` when there is one.
    """

    program_id: str
    referrer_id: str
    referee_id: str
    at: datetime
    referrer: IdentityFacts = attrs.field(factory=IdentityFacts)
    referee: IdentityFacts = attrs.field(factory=IdentityFacts)
    code: str | None = None
    channel: str | None = None
    referrer_of_referrer: str | None = None
    referrals_this_hour: int = 0
    referrals_today: int = 0
    referrals_past_hour: int = 0
    referrals_past_day: int = 0
    referrer_chain: tuple[str, ...] = attrs.field(default=(), converter=_names)

    def __attrs_post_init__(self) -> None:
        require_id("fraud_context.program_id", self.program_id)
        require_id("fraud_context.referrer_id", self.referrer_id)
        require_id("fraud_context.referee_id", self.referee_id)
        require_aware("fraud_context.at", self.at)


@runtime_checkable
class FraudCheck(Protocol):
    """**Protocol:** a fraud or eligibility check the host plugs in.

    Called once per referral about to be made, inside the engine's unit of work, after the
    built-in checks. It must be deterministic for a given context and must not write: the
    engine may call it again when it retries a unit of work, and stores its verdict (with
    the reasons) in the referral's decision trace. Reason codes should be stable and
    namespaced (``"host.chargeback_history"``). Raising an exception fails the event
    (nothing is written); return a verdict instead for anything expected.
    """

    def check(self, context: FraudContext) -> FraudVerdict:
        """The verdict for this referral."""
        ...
