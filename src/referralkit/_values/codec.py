"""A reversible JSON encoding of referralkit's values, for stores that keep records as text.

Unlike the canonical encoding (one-way, for digests), this one decodes back to equal
objects: events, outcomes, reward values, decisions. Every container is tagged, so user
metadata can hold any JSON keys, ``"$"`` included.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs

from referralkit._values import decisions, events, records, rewards
from referralkit._values.canonical import compact_json
from referralkit._values.money import Money

__all__ = ["CodecError", "decode", "dumps", "encode", "loads"]


class CodecError(ValueError):
    """Data that does not decode to a referralkit value."""


def _registry() -> dict[str, type]:
    classes: dict[str, type] = {}
    for module in (events, rewards, decisions, records):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and (attrs.has(obj) or issubclass(obj, enum.Enum)):
                classes[obj.__name__] = obj
    return classes


_CLASSES: dict[str, type] = _registry()
_INIT_FIELDS: dict[type, tuple[tuple[str, str, Any], ...]] = {}
_REQUIRED = object()  # a field that is always encoded
_EMPTY = object()  # a field whose default is an empty container


def _omittable(default: Any) -> Any:
    """What a field's value may equal to be left out of the encoding (the decoder's
    constructor call fills the default in again): None, a bool, a str or an int default,
    or ``_EMPTY`` for an empty-container default; else ``_REQUIRED``."""
    if default is None or type(default) in (bool, str, int):
        return default
    if default == () or (
        isinstance(default, attrs.Factory)  # type: ignore[arg-type]
        and not default.takes_self
        and default.factory in (dict, list, tuple, frozenset)
    ):
        return _EMPTY
    return _REQUIRED


def _init_fields(cls: type) -> tuple[tuple[str, str, Any], ...]:
    fields = _INIT_FIELDS.get(cls)
    if fields is None:
        fields = tuple(
            (f.name, f.alias or f.name, _omittable(f.default)) for f in attrs.fields(cls) if f.init
        )
        _INIT_FIELDS[cls] = fields
    return fields


def _encode_attrs(value: Any) -> Any:
    """``{"$t": class name, "f": fields}``, leaving out fields that hold their default."""
    cls = type(value)
    encoded: dict[str, Any] = {}
    for name, alias, default in _init_fields(cls):
        field = getattr(value, name)
        if field is default:
            continue
        if default is _EMPTY:
            if not field and type(field) in _EMPTY_TYPES:
                continue
        elif default is not _REQUIRED and type(field) is type(default) and field == default:
            continue
        encoded[alias] = encode(field)
    return {"$t": cls.__name__, "f": encoded}


_EMPTY_TYPES = frozenset({dict, list, tuple, frozenset, MappingProxyType})


def _encode_decision(d: decisions.Decision) -> Any:
    """Decisions are stored in explanations and notifications: a positional form."""
    return {"$D": [d.source, d.verdict.value, d.code, [[k, v] for k, v in d.params]]}


def _decode_decision(data: list[Any]) -> decisions.Decision:
    source, verdict, code, params = data
    return decisions.Decision(
        source, decisions.Verdict(verdict), code, tuple((k, v) for k, v in params)
    )


def _encode_enum(value: enum.Enum) -> Any:
    return {"$e": [type(value).__name__, value.value]}


def _plain(value: Any) -> Any:
    return value


_SCALARS = frozenset({str, int, bool, type(None)})


def _encode_mapping(value: Mapping[Any, Any]) -> Any:
    scalars = _SCALARS
    if all(type(v) in scalars for v in value.values()):  # notification data, mostly
        return {"$map": {str(k): v for k, v in value.items()}}
    return {"$map": {str(k): encode(v) for k, v in value.items()}}


def _encode_outcome(o: records.Outcome) -> Any:
    """Outcomes are stored with every event: a compact, positional form (several times
    smaller and faster than the generic one)."""
    return {
        "$o": [
            o.event_id,
            o.event_type,
            o.duplicate,
            o.referral_id,
            [
                [g.role.value, g.participant_id, encode(g.value), g.policy, g.reason]
                + ([] if g.milestone is None and g.item is None else [encode(g.milestone)])
                + ([] if g.item is None else [g.item])
                for g in o.grants
            ],
            list(o.reward_ids),
            [
                [r.reward_id, r.participant_id, r.unit.kind, r.unit.code, str(r.quantity)]
                for r in o.reversals
            ],
            [[d.source, d.verdict.value, d.code, [list(p) for p in d.params]] for d in o.decisions],
        ]
    }


def _decode_outcome(data: list[Any]) -> records.Outcome:
    event_id, event_type, duplicate, referral_id, grants, reward_ids, reversals, decided = data
    return records.Outcome(
        event_id=event_id,
        event_type=event_type,
        duplicate=duplicate,
        referral_id=referral_id,
        grants=tuple(
            records.RewardGrant(
                records.Role(g[0]),
                g[1],
                decode(g[2]),
                g[3],
                g[4],
                milestone=decode(g[5]) if len(g) > 5 else None,
                item=g[6] if len(g) > 6 else None,
            )
            for g in grants
        ),
        reward_ids=tuple(reward_ids),
        reversals=tuple(
            records.Reversal(r[0], r[1], rewards.Unit(r[2], r[3]), Decimal(r[4])) for r in reversals
        ),
        decisions=tuple(
            decisions.Decision(d[0], decisions.Verdict(d[1]), d[2], tuple(tuple(p) for p in d[3]))
            for d in decided
        ),
    )


_BY_TYPE: dict[type, Callable[[Any], Any]] = {
    str: _plain,
    int: _plain,
    bool: _plain,
    float: _plain,
    type(None): _plain,
    Money: lambda m: {"$m": [str(m.amount), m.currency]},
    Decimal: lambda d: {"$d": str(d)},
    datetime: lambda d: {"$dt": d.isoformat()},
    tuple: lambda t: {"$tu": [encode(v) for v in t]},
    list: lambda v: [encode(x) for x in v],
    dict: _encode_mapping,
    MappingProxyType: _encode_mapping,
}
for _cls in _CLASSES.values():
    if issubclass(_cls, enum.Enum):
        _BY_TYPE[_cls] = _encode_enum
    elif _cls is not Money:
        _BY_TYPE[_cls] = _encode_attrs
_BY_TYPE[records.Outcome] = _encode_outcome
_BY_TYPE[decisions.Decision] = _encode_decision


def encode(value: Any) -> Any:
    """``value`` as tagged JSON data."""
    encoder = _BY_TYPE.get(type(value))
    if encoder is not None:
        return encoder(value)
    return _encode_other(value)


def _encode_other(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return _encode_enum(value)
    if value is None or isinstance(value, bool | int | str | float):
        return value
    if isinstance(value, Money):
        return _BY_TYPE[Money](value)
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if attrs.has(type(value)):
        raise CodecError(f"cannot encode {type(value).__name__}: not a referralkit value")
    if isinstance(value, tuple):
        return {"$tu": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return _encode_mapping(value)
    raise CodecError(f"cannot encode {type(value).__name__}: {value!r}")


def _decode_tagged(data: dict[str, Any]) -> Any:
    if "$t" in data:
        cls = _CLASSES.get(data["$t"])
        if cls is None:
            raise CodecError(f"unknown type {data['$t']!r}")
        fields = {k: decode(v) for k, v in data["f"].items()}
        return cls(**fields)
    if "$o" in data:
        return _decode_outcome(data["$o"])
    if "$D" in data:
        return _decode_decision(data["$D"])
    if "$m" in data:
        amount, currency = data["$m"]
        return Money(Decimal(amount), currency)
    if "$d" in data:
        return Decimal(data["$d"])
    if "$dt" in data:
        return datetime.fromisoformat(data["$dt"])
    if "$e" in data:
        name, raw = data["$e"]
        enum_cls = _CLASSES.get(name)
        if enum_cls is None:
            raise CodecError(f"unknown enum {name!r}")
        return enum_cls(raw)
    if "$tu" in data:
        return tuple(decode(v) for v in data["$tu"])
    if "$map" in data:
        return {k: decode(v) for k, v in data["$map"].items()}
    raise CodecError(f"untagged object {sorted(data)!r}")


def decode(data: Any) -> Any:
    """The value that [`encode`][referralkit.codec.encode] turned into ``data``.

    Raises:
        CodecError: the data is not a referralkit encoding.
    """
    if isinstance(data, dict):
        try:
            return _decode_tagged(data)
        except CodecError:
            raise
        except (TypeError, ValueError, KeyError, ArithmeticError) as exc:
            raise CodecError(f"cannot decode {data!r}: {exc}") from exc
    if isinstance(data, list):
        return [decode(v) for v in data]
    return data


_DUMPS: Callable[[Any], str] = compact_json


def dumps(value: Any) -> str:
    """``value`` encoded as compact JSON text."""
    return _DUMPS(encode(value))


def loads(text: str) -> Any:
    """The value [`dumps`][referralkit.codec.dumps] wrote.

    Raises:
        CodecError: not JSON, or not a referralkit encoding.
    """
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"not JSON: {text[:80]!r}") from exc
    return decode(data)


def frozen_map(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of ``data``."""
    return MappingProxyType(dict(data))
