"""Declarative programs: policies and program terms as plain data (TOML, JSON, dicts).

A policy is a table with a ``type`` (its registered name) and its fields; reward values are
tables with a ``kind``; money is an amount (a string such as ``"10.00"``, in the program's
currency) or a table ``{amount = "10.00", currency = "USD"}``; durations are tables such as
``{months = 12}``. Every error names the key path and the value, such as
``policies[1].tiers[0].reward.amount='-5': must be > 0``.

Policy types are registered by name (``register_policy``),
so host applications can add their own.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta

from referralkit._errors import InvalidInputError, InvalidProgramError
from referralkit._values.money import Money
from referralkit._values.rewards import Badge, Cash, Credit, Discount, FreePeriod, Points
from referralkit.policies._base import RewardPolicy
from referralkit.policies._combinators import FirstMatch, Stack, When
from referralkit.policies._conditions import All, Compare, _lookup
from referralkit.policies._conditions import Any as AnyOf
from referralkit.policies._escalating import Escalating
from referralkit.policies._hybrid import Hybrid
from referralkit.policies._limits import CAP_NAMES, REFEREE_LIMITS, Caps
from referralkit.policies._milestones import (
    Level,
    Milestone,
    Milestones,
    RollingStatusLevels,
    StatusLevels,
)
from referralkit.policies._per_item import PerItem
from referralkit.policies._points import PointsPolicy
from referralkit.policies._revenue_share import RevenueShare
from referralkit.policies._sided import DoubleSided, SingleSided
from referralkit.policies._tiered import Tier, Tiered
from referralkit.policies._util import as_decimal

__all__ = [
    "DECODERS",
    "Decoder",
    "PolicyType",
    "encode",
    "policy_from_dict",
    "policy_to_dict",
    "policy_types",
    "program_kwargs",
    "program_to_dict",
    "register_policy",
]

Decoder = Callable[[object, str, str], Any]
"""Turns a config value at a key path into a constructor argument: ``(value, path,
currency) -> argument``; raises ``InvalidProgramError`` naming the path."""

_DURATION_PARTS = ("years", "months", "days", "hours", "minutes", "seconds", "microseconds")
_LIFETIME = "lifetime"


def _fail(path: str, value: object, problem: str) -> InvalidProgramError:
    return InvalidProgramError(path, value, problem)


def _mapping(value: object, path: str, example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, value, f"must be a table such as {example}")
    return value


def _list(value: object, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _fail(path, value, "must be a list")
    return list(value)


def _repath(exc: InvalidInputError, path: str) -> InvalidProgramError:
    """Re-raise a constructor's error (field ``kind.rest``) under ``path`` (``path.rest``)."""
    field = exc.field
    cut = min((i for i in (field.find("."), field.find("[")) if i >= 0), default=-1)
    rest = f".{field}" if cut < 0 else field[cut:]
    return InvalidProgramError(f"{path}{rest}", exc.value, exc.problem)


def _construct(cls: type, kwargs: dict[str, Any], path: str, keys: Mapping[str, str]) -> Any:
    for field in attrs.fields(cls):
        if field.init and field.default is attrs.NOTHING and field.name not in kwargs:
            key = keys.get(field.name, field.name.rstrip("_"))
            raise _fail(f"{path}.{key}", None, "is required")
    try:
        return cls(**kwargs)
    except InvalidInputError as exc:
        raise _repath(exc, path) from None


# -- decoders -----------------------------------------------------------------------------
def _raw(value: object, path: str, currency: str) -> object:
    if isinstance(value, float):
        raise _fail(path, value, "floats are not accepted; write it as a string")
    return value


def _decimal(value: object, path: str, currency: str) -> Decimal:
    try:
        return as_decimal(path, value)
    except InvalidInputError as exc:
        raise InvalidProgramError(path, value, exc.problem) from None


def _int(value: object, path: str, currency: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, value, "must be a whole number")
    return value


def _str(value: object, path: str, currency: str) -> str:
    if not isinstance(value, str):
        raise _fail(path, value, "must be a string")
    return value


def _bool(value: object, path: str, currency: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, value, "must be true or false")
    return value


def _strings(value: object, path: str, currency: str) -> tuple[str, ...]:
    items = _list(value, path)
    for i, item in enumerate(items):
        _str(item, f"{path}[{i}]", currency)
    return tuple(items)


def _money(value: object, path: str, currency: str) -> Money:
    if isinstance(value, Money):
        money = value
    elif isinstance(value, Mapping):
        _keys(value, path, ("amount", "currency"))
        if "amount" not in value:
            raise _fail(f"{path}.amount", None, "is required")
        code = value.get("currency", currency)
        if code != currency:
            raise _fail(f"{path}.currency", code, f"must be the program's currency {currency}")
        money = _money(value["amount"], f"{path}.amount", currency)
    else:
        if isinstance(value, float):
            raise _fail(path, value, "floats are not accepted for money; write it as a string")
        try:
            money = Money(value, currency, field=path)
        except InvalidInputError as exc:
            raise InvalidProgramError(path, value, exc.problem) from None
    if money.currency != currency:
        raise _fail(path, money, f"must be in the program's currency {currency}")
    return money


def _positive_money(value: object, path: str, currency: str) -> Money:
    money = _money(value, path, currency)
    if money.amount <= 0:
        raise _fail(path, value, "must be > 0")
    return money


_REWARD_KEYS: Mapping[str, tuple[str, ...]] = {
    "cash": ("amount", "currency"),
    "credit": ("amount", "currency"),
    "discount": ("percent", "amount", "currency"),
    "free_period": ("days", "months"),
    "points": ("points", "account"),
    "badge": ("name",),
}


def _keys(data: Mapping[str, Any], path: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in data:
        if key not in allowed:
            raise _fail(f"{path}.{key}", data[key], f"is not a known key; expected {list(allowed)}")


def _reward(value: object, path: str, currency: str) -> Any:
    data = _mapping(value, path, "{kind = 'cash', amount = '10.00'}")
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _REWARD_KEYS:
        raise _fail(f"{path}.kind", kind, f"must be one of {list(_REWARD_KEYS)}")
    _keys(data, path, ("kind", *_REWARD_KEYS[kind]))
    if "currency" in data and data["currency"] != currency:
        raise _fail(
            f"{path}.currency", data["currency"], f"must be the program's currency {currency}"
        )

    def amount() -> Money:
        if "amount" not in data:
            raise _fail(f"{path}.amount", None, "is required")
        return _positive_money(data["amount"], f"{path}.amount", currency)

    try:
        if kind == "cash":
            return Cash(amount())
        if kind == "credit":
            return Credit(amount())
        if kind == "discount":
            if "percent" in data:
                return Discount(percent=_decimal(data["percent"], f"{path}.percent", currency))
            return Discount(amount=amount())
        if kind == "free_period":
            return FreePeriod(**{k: data[k] for k in ("days", "months") if k in data})
        if kind == "points":
            if "points" not in data:
                raise _fail(f"{path}.points", None, "is required")
            return Points(data["points"], data.get("account", "points"))
        if "name" not in data:
            raise _fail(f"{path}.name", None, "is required")
        return Badge(data["name"])
    except InvalidProgramError:
        raise
    except InvalidInputError as exc:
        raise _repath(exc, path) from None


def _rewards(value: object, path: str, currency: str) -> tuple[Any, ...]:
    return tuple(_reward(v, f"{path}[{i}]", currency) for i, v in enumerate(_list(value, path)))


def _reward_or_money(value: object, path: str, currency: str) -> Any:
    if isinstance(value, Mapping) and "kind" in value:
        return _reward(value, path, currency)
    return _positive_money(value, path, currency)


def _relativedelta(value: object, path: str) -> relativedelta:
    data = _mapping(value, path, "{months = 12}")
    _keys(data, path, _DURATION_PARTS)
    parts: dict[str, int] = {}
    for key, part in data.items():
        if isinstance(part, bool) or not isinstance(part, int):
            raise _fail(f"{path}.{key}", part, "must be a whole number")
        parts[key] = part
    return relativedelta(
        years=parts.get("years", 0),
        months=parts.get("months", 0),
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
        microseconds=parts.get("microseconds", 0),
    )


def _hold(value: object, path: str, currency: str) -> relativedelta:
    return _relativedelta(value, path)


def _lifetime(value: object, path: str, currency: str) -> relativedelta | None:
    if value == _LIFETIME or value is None:
        return None
    if isinstance(value, str):
        raise _fail(path, value, f"must be a table such as {{months = 12}}, or {_LIFETIME!r}")
    return _relativedelta(value, path)


def _tiers(value: object, path: str, currency: str) -> tuple[Tier, ...]:
    tiers = []
    for i, item in enumerate(_list(value, path)):
        at = f"{path}[{i}]"
        data = _mapping(item, at, "{min_referrals = 3, reward = {...}}")
        _keys(data, at, ("min_referrals", "reward"))
        kwargs: dict[str, Any] = {}
        if "min_referrals" in data:
            kwargs["min_referrals"] = _raw(data["min_referrals"], f"{at}.min_referrals", currency)
        if "reward" in data:
            kwargs["reward"] = _reward(data["reward"], f"{at}.reward", currency)
        tiers.append(_construct(Tier, kwargs, at, {}))
    return tuple(tiers)


def _milestone_list(value: object, path: str, currency: str) -> tuple[Milestone, ...]:
    out = []
    for i, item in enumerate(_list(value, path)):
        at = f"{path}[{i}]"
        data = _mapping(item, at, "{threshold = 5, reward = {kind = 'badge', name = 'five'}}")
        _keys(data, at, ("threshold", "reward", "name"))
        kwargs: dict[str, Any] = {}
        if "threshold" in data:
            kwargs["threshold"] = _raw(data["threshold"], f"{at}.threshold", currency)
        if "reward" in data:
            kwargs["reward"] = _reward(data["reward"], f"{at}.reward", currency)
        if "name" in data:
            kwargs["name"] = data["name"]
        out.append(_construct(Milestone, kwargs, at, {}))
    return tuple(out)


def _level_list(value: object, path: str, currency: str) -> tuple[Level, ...]:
    out = []
    for i, item in enumerate(_list(value, path)):
        at = f"{path}[{i}]"
        data = _mapping(item, at, "{name = 'gold', minimum = 10}")
        _keys(data, at, ("name", "minimum"))
        kwargs = {k: _raw(v, f"{at}.{k}", currency) for k, v in data.items()}
        out.append(_construct(Level, kwargs, at, {}))
    return tuple(out)


def _condition(value: object, path: str, currency: str) -> Any:
    data = _mapping(value, path, "{attribute = 'sale.amount', op = '>=', value = '50.00'}")
    for combinator, cls in (("all", All), ("any", AnyOf)):
        if combinator in data:
            _keys(data, path, (combinator,))
            at = f"{path}.{combinator}"
            items = [
                _condition(v, f"{at}[{i}]", currency)
                for i, v in enumerate(_list(data[combinator], at))
            ]
            return _construct(cls, {"conditions": items}, at, {})
    _keys(data, path, ("attribute", "op", "value"))
    for key in ("attribute", "op", "value"):
        if key not in data:
            raise _fail(f"{path}.{key}", None, "is required")
    try:
        spec = _lookup(f"{path}.attribute", data["attribute"])
    except InvalidProgramError as exc:
        raise InvalidProgramError(f"{path}.attribute", exc.value, exc.problem) from None
    raw = data["value"]
    if spec.kind == "money":
        if isinstance(raw, list | tuple):
            raw = tuple(_money(v, f"{path}.value[{i}]", currency) for i, v in enumerate(raw))
        else:
            raw = _money(raw, f"{path}.value", currency)
    elif isinstance(raw, float):
        raise _fail(f"{path}.value", raw, "floats are not accepted; write it as a string")
    return _construct(
        Compare, {"attribute": data["attribute"], "op": data["op"], "value": raw}, path, {}
    )


def _policy(value: object, path: str, currency: str) -> RewardPolicy:
    return policy_from_dict(value, currency, path)


def _policies(value: object, path: str, currency: str) -> tuple[RewardPolicy, ...]:
    return tuple(_policy(v, f"{path}[{i}]", currency) for i, v in enumerate(_list(value, path)))


DECODERS: Mapping[str, Decoder] = {
    "value": _raw,
    "int": _int,
    "str": _str,
    "bool": _bool,
    "decimal": _decimal,
    "strings": _strings,
    "money": _money,
    "reward": _reward,
    "rewards": _rewards,
    "reward_or_money": _reward_or_money,
    "duration": _hold,
    "lifetime_duration": _lifetime,
    "tiers": _tiers,
    "condition": _condition,
    "milestones": _milestone_list,
    "levels": _level_list,
    "policy": _policy,
    "policies": _policies,
}
"""The decoders ``register_policy`` accepts by name."""


# -- the registry -------------------------------------------------------------------------
@attrs.frozen
class PolicyType:
    """A registered policy type: its config name, its class and how to decode its fields.

    Attributes:
        type: The ``type`` key of its tables, such as ``"tiered"``.
        cls: The policy's attrs class.
        fields: Attribute name -> decoder. The config key is the attribute name without a
            trailing underscore (``as_`` is written ``as``).
        lifetime: Attributes whose None is written ``"lifetime"``.
    """

    type: str
    cls: builtins.type
    fields: Mapping[str, Decoder]
    lifetime: frozenset[str] = frozenset()

    def key(self, attribute: str) -> str:
        """The config key of ``attribute``."""
        return attribute.rstrip("_")


_TYPES: dict[str, PolicyType] = {}
_BY_CLASS: dict[type, PolicyType] = {}


def register_policy(type_name: str, cls: type, fields: Mapping[str, str | Decoder]) -> None:
    """Make a policy class loadable from config as ``{type = type_name, ...}``.

    Args:
        type_name: The ``type`` key, such as ``"every_nth_bonus"``.
        cls: An attrs class implementing ``RewardPolicy``.
        fields: For each attribute to (de)serialise, a decoder: one of the names of
            ``DECODERS`` (``"reward"``, ``"money"``, ``"int"``, ``"str"``, ``"value"``,
            ``"policy"``, ...) or a callable ``(value, path, currency) -> argument``.

    Raises:
        InvalidProgramError: an unknown decoder name, or ``type_name`` already registered
            for another class.
    """
    if not attrs.has(cls):
        raise InvalidProgramError("cls", cls, "must be an attrs class")
    decoders: dict[str, Decoder] = {}
    lifetime = set()
    for name, decoder in fields.items():
        if isinstance(decoder, str):
            if decoder not in DECODERS:
                raise InvalidProgramError(
                    f"fields.{name}", decoder, f"must be one of {sorted(DECODERS)} or a callable"
                )
            if decoder == "lifetime_duration":
                lifetime.add(name)
            decoders[name] = DECODERS[decoder]
        else:
            decoders[name] = decoder
    known = _TYPES.get(type_name)
    if known is not None and known.cls is not cls:
        raise InvalidProgramError("type_name", type_name, f"is registered for {known.cls!r}")
    entry = PolicyType(type_name, cls, decoders, frozenset(lifetime))
    _TYPES[type_name] = entry
    _BY_CLASS[cls] = entry


def policy_types() -> Mapping[str, PolicyType]:
    """The registered policy types by name."""
    return dict(_TYPES)


def policy_from_dict(data: object, currency: str, path: str = "policy") -> RewardPolicy:
    """Build a policy from its table; errors name the key under ``path``."""
    table = _mapping(data, path, "{type = 'double_sided', ...}")
    type_name = table.get("type")
    entry = _TYPES.get(type_name) if isinstance(type_name, str) else None
    if entry is None:
        raise _fail(
            f"{path}.type", type_name, f"must be a registered policy type: {sorted(_TYPES)}"
        )
    by_key = {entry.key(a): a for a in entry.fields}
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key == "type":
            continue
        attribute = by_key.get(key)
        if attribute is None:
            raise _fail(
                f"{path}.{key}", value, f"is not a key of {type_name}; expected {sorted(by_key)}"
            )
        kwargs[attribute] = entry.fields[attribute](value, f"{path}.{key}", currency)
    policy: RewardPolicy = _construct(
        entry.cls, kwargs, path, {a: entry.key(a) for a in entry.fields}
    )
    return policy


def policy_to_dict(policy: object, path: str = "policy") -> dict[str, Any]:
    """A registered policy as a table (``type`` first)."""
    entry = _BY_CLASS.get(type(policy))
    if entry is None:
        raise _fail(path, policy, "its class is not registered: call register_policy() first")
    data: dict[str, Any] = {"type": entry.type}
    for attribute in entry.fields:
        value = getattr(policy, attribute)
        if value is None:
            if attribute in entry.lifetime:
                data[entry.key(attribute)] = _LIFETIME
            continue
        data[entry.key(attribute)] = encode(value, f"{path}.{entry.key(attribute)}")
    return data


def encode(value: object, path: str = "value") -> Any:
    """A value as plain data (the inverse of the decoders)."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, Cash | Credit):
        kind = "cash" if isinstance(value, Cash) else "credit"
        return {"kind": kind, **encode(value.amount)}
    if isinstance(value, Discount):
        if value.percent is not None:
            return {"kind": "discount", "percent": str(value.percent)}
        return {"kind": "discount", **encode(value.amount)}
    if isinstance(value, FreePeriod):
        return {
            "kind": "free_period",
            **({"days": value.days} if value.days else {"months": value.months}),
        }
    if isinstance(value, Points):
        return {"kind": "points", "points": value.points, "account": value.account}
    if isinstance(value, Badge):
        return {"kind": "badge", "name": value.name}
    if isinstance(value, relativedelta):
        return {p: getattr(value, p) for p in _DURATION_PARTS if getattr(value, p)}
    if isinstance(value, Tier):
        return {"min_referrals": value.min_referrals, "reward": encode(value.reward)}
    if isinstance(value, Milestone):
        return {"threshold": value.threshold, "reward": encode(value.reward), "name": value.name}
    if isinstance(value, Level):
        return {"name": value.name, "minimum": value.minimum}
    if isinstance(value, Compare):
        return {"attribute": value.attribute, "op": value.op, "value": encode(value.value)}
    if isinstance(value, All):
        return {"all": [encode(c) for c in value.conditions]}
    if isinstance(value, AnyOf):
        return {"any": [encode(c) for c in value.conditions]}
    if isinstance(value, frozenset | set):
        return sorted(encode(v) for v in value)
    if isinstance(value, list | tuple):
        return [encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if type(value) in _BY_CLASS:
        return policy_to_dict(value, path)
    raise _fail(path, value, "cannot be written as config")


# -- programs -----------------------------------------------------------------------------
_PROGRAM_KEYS = (
    "id",
    "version",
    "effective_at",
    "currency",
    "timezone",
    "rounding",
    "hold",
    "min_order",
    "first_purchase_only",
    "policies",
    "caps",
    "budget",
    "precedence",
    "commissionable_base",
)


def _datetime(value: object, path: str) -> object:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise _fail(path, value, "must be an ISO 8601 datetime with a time zone") from None
    return value


def _caps(value: object, path: str, currency: str) -> Caps:
    data = _mapping(value, path, "{per_referrer = '100.00', per_referrer_month = '50.00'}")
    _keys(data, path, (*CAP_NAMES, *REFEREE_LIMITS))
    kwargs: dict[str, Any] = {}
    for name, cap in data.items():
        at = f"{path}.{name}"
        if name == "max_referee_purchases":
            kwargs[name] = _int(cap, at, currency)
        elif name == "referee_window":
            kwargs[name] = _relativedelta(cap, at)
        else:
            kwargs[name] = _positive_money(cap, at, currency)
    try:
        return Caps(**kwargs)
    except InvalidInputError as exc:
        raise _repath(exc, path) from None


def program_kwargs(data: object) -> dict[str, Any]:
    """The keyword arguments of ``Program(...)`` for a program table."""
    table = _mapping(data, "program", "{id = 'spring', currency = 'USD', policies = [...]}")
    _keys(table, "program", _PROGRAM_KEYS)
    for key in ("id", "effective_at", "currency", "policies"):
        if key not in table:
            raise _fail(key, None, "is required")
    currency = table["currency"]
    if not isinstance(currency, str) or currency.upper() != currency:
        raise _fail("currency", currency, "must be an ISO 4217 code such as 'USD'")
    try:
        Money(0, currency, field="currency")
    except InvalidInputError as exc:
        raise InvalidProgramError("currency", currency, exc.problem) from None
    kwargs: dict[str, Any] = {"currency": currency}
    for key, value in table.items():
        if key == "effective_at":
            kwargs[key] = _datetime(value, key)
        elif key == "hold":
            kwargs[key] = _hold(value, key, currency)
        elif key == "min_order":
            kwargs[key] = _money(value, key, currency)
        elif key == "policies":
            kwargs[key] = _policies(value, key, currency)
        elif key == "first_purchase_only":
            kwargs[key] = _bool(value, key, currency)
        elif key == "caps":
            kwargs[key] = _caps(value, key, currency)
        elif key == "budget":
            kwargs[key] = _positive_money(value, key, currency)
        elif key != "currency":
            kwargs[key] = _raw(value, key, currency)
    return kwargs


def program_to_dict(program: Any) -> dict[str, Any]:
    """A program as a table that ``program_kwargs`` reads back."""
    data: dict[str, Any] = {
        "id": program.id,
        "version": program.version,
        "effective_at": program.effective_at.isoformat(),
        "currency": program.currency,
        "timezone": program.timezone,
        "rounding": program.rounding,
        "hold": encode(program.hold),
        "first_purchase_only": program.first_purchase_only,
    }
    if program.min_order is not None:
        data["min_order"] = encode(program.min_order)
    if program.caps:
        data["caps"] = {name: encode(cap) for name, cap in program.caps.settings().items()}
    if program.budget is not None:
        data["budget"] = encode(program.budget)
    if program.precedence != "all":
        data["precedence"] = program.precedence
    if program.commissionable_base != "net":
        data["commissionable_base"] = program.commissionable_base
    data["policies"] = [policy_to_dict(p, f"policies[{i}]") for i, p in enumerate(program.policies)]
    return data


# -- the built-in types -------------------------------------------------------------------
register_policy(
    "single_sided", SingleSided, {"referrer": "reward", "trigger": "value", "name": "str"}
)
register_policy(
    "double_sided",
    DoubleSided,
    {"referrer": "reward", "referee": "reward", "trigger": "value", "name": "str"},
)
register_policy(
    "tiered",
    Tiered,
    {"tiers": "tiers", "side": "value", "trigger": "value", "name": "str", "mode": "str"},
)
register_policy(
    "escalating",
    Escalating,
    {
        "first": "reward",
        "step": "reward_or_money",
        "factor": "decimal",
        "ceiling": "reward_or_money",
        "values": "rewards",
        "side": "value",
        "trigger": "value",
        "name": "str",
    },
)
register_policy(
    "per_item",
    PerItem,
    {
        "referrer": "reward",
        "referee": "reward",
        "skus": "strings",
        "categories": "strings",
        "cap_per_referral": "value",
        "trigger": "value",
        "name": "str",
    },
)
register_policy(
    "revenue_share",
    RevenueShare,
    {"percent": "decimal", "duration": "lifetime_duration", "as_": "value", "name": "str"},
)
register_policy(
    "hybrid",
    Hybrid,
    {
        "fixed": "reward",
        "percent": "decimal",
        "duration": "lifetime_duration",
        "as_": "value",
        "name": "str",
    },
)
register_policy("when", When, {"condition": "condition", "policy": "policy"})
register_policy("stack", Stack, {"policies": "policies", "name": "str"})
register_policy("first_match", FirstMatch, {"policies": "policies", "name": "str"})
register_policy("milestones", Milestones, {"milestones": "milestones", "name": "str"})
register_policy(
    "status_levels",
    StatusLevels,
    {"levels": "levels", "basis": "value", "account": "str", "name": "str"},
)
register_policy(
    "rolling_status_levels",
    RollingStatusLevels,
    {"levels": "levels", "window": "duration", "basis": "value", "account": "str", "name": "str"},
)
register_policy(
    "points",
    PointsPolicy,
    {
        "per_referral": "int",
        "per_unit": "decimal",
        "side": "value",
        "account": "str",
        "trigger": "value",
        "expires_after": "duration",
        "redeem_rate": "money",
        "redeem_as": "str",
        "name": "str",
    },
)
