"""A program: the terms (currency, hold, qualification) and the policies that pay."""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from dateutil.relativedelta import relativedelta

from referralkit._errors import InvalidInputError, InvalidProgramError
from referralkit._values._checks import require_aware, require_id
from referralkit._values.canonical import canonical, digest
from referralkit._values.decisions import Decision, Verdict
from referralkit._values.money import ROUNDING_MODES, Money, currency_exponent
from referralkit.attribution._resolve import DEFAULT_ATTRIBUTION_RULES, AttributionRules
from referralkit.policies._base import Counter, RewardPolicy, Trigger
from referralkit.policies._combinators import PRECEDENCE
from referralkit.policies._config import program_kwargs, program_to_dict
from referralkit.policies._limits import Caps

__all__ = ["Program"]


def _policies(value: object) -> tuple[RewardPolicy, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str):
        raise InvalidProgramError("program.policies", value, "must be a sequence")
    try:
        policies: tuple[RewardPolicy, ...] = tuple(value)
    except TypeError:
        raise InvalidProgramError("program.policies", value, "must be a sequence") from None
    return policies


def _version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidProgramError("program.version", value, "must be an int >= 1")
    return value


def _hold(value: object, field: str = "program.hold") -> relativedelta:
    if isinstance(value, timedelta):
        return relativedelta(days=value.days, seconds=value.seconds)
    if not isinstance(value, relativedelta):
        raise InvalidProgramError(
            field, value, "must be a dateutil relativedelta, e.g. relativedelta(days=30)"
        )
    parts = ("years", "months", "days", "hours", "minutes", "seconds", "microseconds")
    if any(getattr(value, part) < 0 for part in parts):
        raise InvalidProgramError(field, value, "must not be negative")
    return value


def _policy_holds(value: object) -> Mapping[str, relativedelta]:
    if not isinstance(value, Mapping):
        raise InvalidProgramError(
            "program.policy_holds", value, "must map policy names to relativedelta holds"
        )
    holds: dict[str, relativedelta] = {}
    for name, hold in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidProgramError("program.policy_holds", name, "keys must be policy names")
        holds[name] = _hold(hold, f"program.policy_holds[{name!r}]")
    return MappingProxyType(dict(sorted(holds.items())))


def _review_after(value: object) -> relativedelta | None:
    return None if value is None else _hold(value, "program.review_after")


def _fixed(h: relativedelta) -> timedelta | None:
    """A day-only relativedelta as a timedelta (converted once, not per event)."""
    absolute = (h.year, h.month, h.day, h.weekday, h.hour, h.minute, h.second, h.microsecond)
    if h.years or h.months or any(part is not None for part in absolute):
        return None
    return timedelta(
        days=h.days,
        hours=h.hours,
        minutes=h.minutes,
        seconds=h.seconds,
        microseconds=h.microseconds,
    )


def _after(at: datetime, span: timedelta) -> datetime:
    """``span`` after ``at``, counted in elapsed time (in the zone of ``at``): ``at + span``
    would count the wall-clock days of a zone with daylight saving time, so the same
    instant given in another zone would end elsewhere."""
    if at.tzinfo is UTC:
        return at + span
    return (at.astimezone(UTC) + span).astimezone(at.tzinfo)


def _duration_table(value: object, field: str) -> relativedelta:
    """A relativedelta from a table such as ``{"days": 30}`` (as ``to_dict`` writes it)."""
    if isinstance(value, relativedelta):
        return value
    parts = ("years", "months", "days", "hours", "minutes", "seconds", "microseconds")
    if not isinstance(value, Mapping) or any(k not in parts for k in value):
        raise InvalidProgramError(field, value, f"must be a table with keys from {parts}")
    for key, part in value.items():
        if isinstance(part, bool) or not isinstance(part, int):
            raise InvalidProgramError(f"{field}.{key}", part, "must be a whole number")
    return relativedelta(**value)


_LEDGER_KEYS = ("policy_holds", "review_after", "negative_balance")


def _id(value: object) -> str:
    try:
        return require_id("program.id", value)
    except InvalidInputError as exc:
        raise InvalidProgramError(exc.field, exc.value, exc.problem) from None


def _effective_at(value: object) -> datetime:
    try:
        return require_aware("program.effective_at", value)
    except InvalidInputError as exc:
        raise InvalidProgramError(exc.field, exc.value, exc.problem) from None


@attrs.frozen(kw_only=True)
class Program:
    """A referral program version: its terms and its reward policies.

    Args:
        id: The program's id; stable across versions.
        version: 1, 2, ...; each published version is immutable.
        effective_at: When this version starts to govern new referrals (timezone-aware).
        currency: ISO 4217 code every money reward and purchase must use.
        policies: The reward policies, evaluated in order; names must be unique.
        timezone: IANA zone for calendar terms (month-based holds, calendar periods).
        rounding: A ``decimal`` rounding mode for computed amounts; half-up by default.
        hold: How long a reward stays pending before it is payable (a ``relativedelta``).
        min_order: Purchases below this amount do not qualify.
        first_purchase_only: Only the referee's first purchase ever qualifies: a first
            order below ``min_order`` forfeits the purchase rewards. A policy whose trigger
            is ``EVERY_PURCHASE`` overrides it and pays on later purchases too.
        policy_holds: Hold periods per policy name, overriding ``hold`` for the rewards
            that policy grants.
        review_after: How long a reward may stay held before ``Engine.settle`` reminds the
            operator (one ``review_due`` notification per hold); None: no reminder.
        negative_balance: Show what a participant owes after a clawback as a negative
            ``available`` balance (it is netted against the next payouts either way).
        caps: Upper bounds on the money granted per referral, referrer (all time or per
            calendar day / week / month in ``timezone``) and referee; they clamp grants.
        budget: The most money the program grants in total (all versions together); once
            it is spent no further grants are made and one ``budget_exhausted``
            notification is written.
        precedence: When several top-level ``when(...)`` policies grant on one event:
            ``"all"`` (default) pays each, ``"first_match"`` only the first in program
            order, ``"highest"`` only the one granting the most money (first on a tie).
        commissionable_base: What percentage rewards (revenue share, points per unit) are
            computed on: ``"net"`` (default) the purchase net of discounts, tax and shipping
            (``Purchase.net()``), or ``"total"`` the amount paid.
        attribution: How touches (clicks, codes) choose a referee's referrer, and when;
            by default a code at sign-up, as
            [`DEFAULT_ATTRIBUTION_RULES`][referralkit.attribution.DEFAULT_ATTRIBUTION_RULES].

    Raises:
        InvalidProgramError: any term that cannot run; the message names the field.
    """

    id: str = attrs.field(converter=_id)
    version: int = attrs.field(default=1, converter=_version)
    effective_at: datetime = attrs.field(converter=_effective_at)
    currency: str
    policies: tuple[RewardPolicy, ...] = attrs.field(converter=_policies)
    timezone: str = "UTC"
    rounding: str = decimal.ROUND_HALF_UP
    hold: relativedelta = attrs.field(factory=relativedelta, converter=_hold)
    min_order: Money | None = None
    first_purchase_only: bool = False
    policy_holds: Mapping[str, relativedelta] = attrs.field(
        factory=dict, converter=_policy_holds, hash=False
    )
    review_after: relativedelta | None = attrs.field(default=None, converter=_review_after)
    negative_balance: bool = False
    caps: Caps = attrs.field(factory=Caps)
    budget: Money | None = None
    precedence: str = "all"
    commissionable_base: str = "net"
    attribution: AttributionRules = DEFAULT_ATTRIBUTION_RULES
    _fixed_hold: timedelta | None = attrs.field(init=False, eq=False, repr=False)
    _zone: ZoneInfo = attrs.field(init=False, eq=False, repr=False)
    _needs: frozenset[Counter] = attrs.field(init=False, eq=False, repr=False)
    _digest: str = attrs.field(init=False, eq=False, repr=False)
    _policy_fixed: dict[str, timedelta | None] = attrs.field(init=False, eq=False, repr=False)
    # Whether a policy pays on every purchase / on the first purchase (qualifying_triggers).
    _pays_every: bool = attrs.field(init=False, eq=False, repr=False)
    _pays_first: bool = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        try:
            currency_exponent(self.currency, "program.currency")
        except InvalidInputError as exc:
            raise InvalidProgramError(exc.field, exc.value, exc.problem) from None
        if not isinstance(self.rounding, str) or self.rounding not in ROUNDING_MODES:
            raise InvalidProgramError(
                "program.rounding", self.rounding, f"must be one of {sorted(ROUNDING_MODES)}"
            )
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError):
            raise InvalidProgramError(
                "program.timezone", self.timezone, "must be an IANA time zone name"
            ) from None
        if self.min_order is not None:
            if not isinstance(self.min_order, Money):
                raise InvalidProgramError("program.min_order", self.min_order, "must be a Money")
            if self.min_order.currency != self.currency:
                raise InvalidProgramError(
                    "program.min_order",
                    self.min_order,
                    f"must be in the program's currency {self.currency}",
                )
        if not isinstance(self.first_purchase_only, bool):
            raise InvalidProgramError(
                "program.first_purchase_only", self.first_purchase_only, "must be a bool"
            )
        if not isinstance(self.negative_balance, bool):
            raise InvalidProgramError(
                "program.negative_balance", self.negative_balance, "must be a bool"
            )
        self._check_limits()
        if not isinstance(self.attribution, AttributionRules):
            raise InvalidProgramError(
                "program.attribution", self.attribution, "must be AttributionRules"
            )
        if not self.policies:
            raise InvalidProgramError("program.policies", (), "needs at least one policy")
        names: set[str] = set()
        needs: set[Counter] = set()
        for i, policy in enumerate(self.policies):
            name = getattr(policy, "name", None)
            if (
                not isinstance(name, str)
                or not name
                or not callable(getattr(policy, "evaluate", None))
            ):
                raise InvalidProgramError(
                    f"program.policies[{i}]", policy, "must implement RewardPolicy"
                )
            if name in names:
                raise InvalidProgramError(
                    f"program.policies[{i}].name", name, "is used by an earlier policy"
                )
            names.add(name)
            policy.check(self.currency)
            needs |= policy.needs()
        for name in self.policy_holds:
            if name not in names:
                raise InvalidProgramError(
                    "program.policy_holds", name, "names no policy of this program"
                )
        object.__setattr__(
            self, "_policy_fixed", {n: _fixed(h) for n, h in self.policy_holds.items()}
        )
        h = self.hold
        fixed = None
        absolute = (h.year, h.month, h.day, h.weekday, h.hour, h.minute, h.second, h.microsecond)
        if not (h.years or h.months) and all(part is None for part in absolute):
            # A day-only hold is converted once, not per event.
            fixed = timedelta(
                days=h.days,
                hours=h.hours,
                minutes=h.minutes,
                seconds=h.seconds,
                microseconds=h.microseconds,
            )
        object.__setattr__(self, "_fixed_hold", fixed)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_needs", frozenset(needs))
        object.__setattr__(
            self, "_pays_every", any(p.trigger is Trigger.EVERY_PURCHASE for p in self.policies)
        )
        object.__setattr__(
            self, "_pays_first", any(p.trigger is Trigger.FIRST_PURCHASE for p in self.policies)
        )
        object.__setattr__(self, "_digest", digest(self.definition()))

    def _check_limits(self) -> None:
        if self.commissionable_base not in ("net", "total"):
            raise InvalidProgramError(
                "program.commissionable_base",
                self.commissionable_base,
                "must be 'net' or 'total'",
            )
        if self.precedence not in PRECEDENCE:
            raise InvalidProgramError(
                "program.precedence", self.precedence, f"must be one of {list(PRECEDENCE)}"
            )
        if not isinstance(self.caps, Caps):
            raise InvalidProgramError("program.caps", self.caps, "must be a Caps")
        self.caps.check(self.currency)
        if self.budget is not None:
            if not isinstance(self.budget, Money):
                raise InvalidProgramError("program.budget", self.budget, "must be a Money")
            if self.budget.currency != self.currency:
                raise InvalidProgramError(
                    "program.budget",
                    self.budget,
                    f"must be in the program's currency {self.currency}",
                )
            if self.budget.amount <= 0:
                raise InvalidProgramError("program.budget", self.budget, "must be > 0")

    @classmethod
    def from_dict(cls, data: Any) -> Program:
        """A program from plain data, as ``to_dict`` writes it or a TOML / JSON file holds it.

        ```python
        Program.from_dict({
            "id": "spring", "effective_at": "2026-01-05T00:00:00+00:00", "currency": "USD",
            "policies": [{"type": "single_sided", "referrer": {"kind": "cash", "amount": "10"}}],
        })
        ```

        Raises:
            InvalidProgramError: the field is the key path of the bad value, such as
                ``policies[1].tiers[0].reward.amount``.
        """
        extra: dict[str, Any] = {}
        if isinstance(data, Mapping) and any(k in data for k in _LEDGER_KEYS):
            data = dict(data)
            holds = data.pop("policy_holds", None)
            if holds is not None:
                if not isinstance(holds, Mapping):
                    raise InvalidProgramError("policy_holds", holds, "must be a table")
                extra["policy_holds"] = {
                    k: _duration_table(v, f"policy_holds.{k}") for k, v in holds.items()
                }
            review = data.pop("review_after", None)
            if review is not None:
                extra["review_after"] = _duration_table(review, "review_after")
            if "negative_balance" in data:
                extra["negative_balance"] = data.pop("negative_balance")
        rules = DEFAULT_ATTRIBUTION_RULES
        if isinstance(data, Mapping) and "attribution" in data:
            data = dict(data)
            rules = _rules_from_dict(data.pop("attribution"))
        kwargs = {**program_kwargs(data), **extra}
        if rules is not DEFAULT_ATTRIBUTION_RULES:
            kwargs["attribution"] = rules
        try:
            return cls(**kwargs)
        except InvalidInputError as exc:
            field = exc.field.removeprefix("program.")
            for i, policy in enumerate(kwargs.get("policies", ())):
                name = getattr(policy, "name", None)
                if isinstance(name, str) and (field == name or field.startswith(f"{name}.")):
                    field = f"policies[{i}]{field[len(name) :]}"
                    break
            raise InvalidProgramError(field, exc.value, exc.problem) from None

    def to_dict(self) -> dict[str, Any]:
        """The program as plain data (JSON-ready); ``Program.from_dict`` reads it back equal.

        Raises:
            InvalidProgramError: a policy whose class is not registered
                (``referralkit.policies.register_policy``).
        """
        data = program_to_dict(self)
        if self.attribution != DEFAULT_ATTRIBUTION_RULES:
            data["attribution"] = _rules_to_dict(self.attribution)
        data.update(self._ledger_terms())
        return data

    def _ledger_terms(self) -> dict[str, Any]:
        """The ledger terms that differ from their defaults, as plain data."""
        data: dict[str, Any] = {}
        parts = ("years", "months", "days", "hours", "minutes", "seconds", "microseconds")

        def table(h: relativedelta) -> dict[str, int]:
            return {p: getattr(h, p) for p in parts if getattr(h, p)}

        if self.policy_holds:
            data["policy_holds"] = {n: table(h) for n, h in self.policy_holds.items()}
        if self.review_after is not None:
            data["review_after"] = table(self.review_after)
        if self.negative_balance:
            data["negative_balance"] = True
        return data

    def definition(self) -> dict[str, Any]:
        """The program's content as canonical data (what its digest covers)."""
        data: dict[str, Any] = canonical(
            {
                "id": self.id,
                "version": self.version,
                "effective_at": self.effective_at,
                "currency": self.currency,
                "timezone": self.timezone,
                "rounding": self.rounding,
                "hold": self.hold,
                "min_order": self.min_order,
                "first_purchase_only": self.first_purchase_only,
            }
        )
        data["policies"] = [_policy_definition(p) for p in self.policies]
        # Ledger terms join the digest only when set, so existing programs keep theirs.
        if self.policy_holds:
            data["policy_holds"] = canonical(dict(self.policy_holds))
        if self.review_after is not None:
            data["review_after"] = canonical(self.review_after)
        if self.negative_balance:
            data["negative_balance"] = True
        # Limits join the digest only when set, so programs without them keep their digest.
        if self.caps:
            data["caps"] = canonical(self.caps.settings())
        if self.budget is not None:
            data["budget"] = canonical(self.budget)
        if self.precedence != "all":
            data["precedence"] = self.precedence
        if self.commissionable_base != "net":
            data["commissionable_base"] = self.commissionable_base
        if self.attribution != DEFAULT_ATTRIBUTION_RULES:
            # Only when set: the digests of programs without rules stay as they were.
            data["attribution"] = _rules_to_dict(self.attribution)
        return data

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical definition; republishing a version needs the same one."""
        return self._digest

    @property
    def zone(self) -> ZoneInfo:
        """The program's time zone."""
        return self._zone

    def needs(self) -> frozenset[Counter]:
        """Every counter the policies declared."""
        return self._needs

    def payable_at(self, granted_at: datetime, policy: str | None = None) -> datetime:
        """When a reward granted at ``granted_at`` becomes payable (end of the hold).

        The hold is the policy's own (``policy_holds``) when the policy has one, else the
        program's. Month and year holds are calendar terms in the program's time zone; a
        hold of days (hours, ...) alone is elapsed time, 24 hours a day.
        """
        if policy is not None and policy in self.policy_holds:
            fixed = self._policy_fixed[policy]
            if fixed is not None:
                return _after(granted_at, fixed)
            held: datetime = granted_at.astimezone(self._zone) + self.policy_holds[policy]
            return held
        if self._fixed_hold is not None:
            return _after(granted_at, self._fixed_hold)
        local = granted_at.astimezone(self._zone)
        result: datetime = local + self.hold
        return result

    def review_due_at(self, held_at: datetime) -> datetime | None:
        """When a reward held at ``held_at`` is due for review, or None without a term."""
        if self.review_after is None:
            return None
        due: datetime = held_at.astimezone(self._zone) + self.review_after
        return due


def _policy_definition(policy: RewardPolicy) -> Any:
    """What a program's digest covers of a policy: an attrs policy's fields, or what its
    ``definition()`` returns; otherwise only its class and name (say so in your docs)."""
    if attrs.has(type(policy)):
        return canonical(policy)
    definition = getattr(policy, "definition", None)
    if callable(definition):
        return canonical([f"{type(policy).__module__}.{type(policy).__qualname__}", definition()])
    return {
        "$policy": f"{type(policy).__module__}.{type(policy).__qualname__}",
        "name": policy.name,
    }


_RULE_KEYS = ("window", "model", "code_beats_click", "bind_at", "allow_existing_customers")
_WINDOW_KEYS = ("days", "hours", "minutes", "seconds", "microseconds")


def _rules_to_dict(rules: AttributionRules) -> dict[str, Any]:
    window = rules.window
    return {
        "window": {
            k: v
            for k, v in (
                ("days", window.days),
                ("seconds", window.seconds),
                ("microseconds", window.microseconds),
            )
            if v
        },
        "model": rules.model,
        "code_beats_click": rules.code_beats_click,
        "bind_at": rules.bind_at,
        "allow_existing_customers": rules.allow_existing_customers,
    }


def _rules_from_dict(data: object) -> AttributionRules:
    """AttributionRules from ``{"window": {"days": 30}, "model": "last_touch", ...}``."""
    if not isinstance(data, dict):
        raise InvalidProgramError("attribution", data, "must be a table of attribution rules")
    unknown = sorted(set(data) - set(_RULE_KEYS))
    if unknown:
        raise InvalidProgramError(
            f"attribution.{unknown[0]}", data[unknown[0]], f"is not one of {list(_RULE_KEYS)}"
        )
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k != "window"}
    if "window" in data:
        window = data["window"]
        if not isinstance(window, dict) or not window or set(window) - set(_WINDOW_KEYS):
            raise InvalidProgramError(
                "attribution.window", window, f"must be a table of {list(_WINDOW_KEYS)}"
            )
        for key, value in window.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidProgramError(f"attribution.window.{key}", value, "must be a number")
        kwargs["window"] = timedelta(**window)
    try:
        return AttributionRules(**kwargs)
    except InvalidInputError as exc:
        field = exc.field.replace("rules.", "attribution.", 1)
        raise InvalidProgramError(field, exc.value, exc.problem) from None


def qualifying_triggers(
    version: Program, number: int, amount: Money, converted_before: bool
) -> tuple[set[Trigger], list[Decision]]:
    """Which purchase triggers the referee's ``number``-th purchase (of ``amount``, in the
    program currency) fires under ``version``'s terms, and the decisions that say why
    others did not.

    ``min_order`` applies to every purchase policy. ``first_purchase_only`` is the
    program's default, and a policy's own trigger overrides it: a later purchase fires no
    ``FIRST_PURCHASE`` policy, but still pays the policies that declare
    ``EVERY_PURCHASE``. ``FIRST_PURCHASE`` fires until the referral has converted.
    """
    decisions: list[Decision] = []
    not_first = version.first_purchase_only and number > 1
    if not_first:
        decisions.append(  # Decision.of(..., number=number), without the keyword packing
            Decision(
                "qualification",
                Verdict.SKIPPED,
                "qualify.not_first_purchase",
                (("number", str(number)),),
            )
        )
        if not version._pays_every:
            return set(), decisions
    if version.min_order is not None and amount < version.min_order:
        decisions.append(  # Decision.of(..., amount=amount, minimum=version.min_order)
            Decision(
                "qualification",
                Verdict.SKIPPED,
                "qualify.below_minimum",
                (("amount", str(amount)), ("minimum", str(version.min_order))),
            )
        )
        return set(), decisions
    triggers = {Trigger.EVERY_PURCHASE}
    if not_first:
        return triggers, decisions
    if not converted_before:
        triggers.add(Trigger.FIRST_PURCHASE)
    elif version._pays_first:
        decisions.append(Decision.of("qualification", Verdict.SKIPPED, "qualify.already_converted"))
    return triggers, decisions


#: Decision codes of a purchase whose reward a cap, the budget or a used milestone took to
#: nothing: the referral still converted (it earned, the limit only clamped what it paid).
LIMITED: frozenset[str] = frozenset(
    {
        "cap.reached",
        "budget.exhausted",
        "milestone.already_granted",
        "cap.referee_purchases",
        "cap.referee_window",
    }
)


def purchase_converts(
    triggers: Iterable[Trigger],
    granted: bool,
    decisions: Iterable[Decision],
    converted_before: bool,
) -> bool:
    """Whether a referred purchase converts its referral, live or replayed: the first that
    qualifies as one (``Trigger.FIRST_PURCHASE`` among ``triggers``) and earned: a reward
    was ``granted``, or a limit took it to nothing (a ``LIMITED`` code among the policies'
    ``decisions``)."""
    if converted_before or Trigger.FIRST_PURCHASE not in triggers:
        return False
    return granted or any(d.code in LIMITED for d in decisions)
