"""A reversible JSON encoding of referralkit's values, for stores that keep records as text.

Unlike the canonical encoding (one-way, for digests), this one decodes back to equal
objects: events, outcomes, reward values, decisions. Every container is tagged, so user
metadata can hold any JSON keys, ``"$"`` included.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs

from referralkit._values import decisions, events, rates, records, rewards
from referralkit._values.canonical import (
    attribute,
    compact_json,
    first_guess,
    generated_function,
    scalar_json,
    utc_isoformat,
    when_not_default,
)
from referralkit._values.money import Money

__all__ = ["CodecError", "decode", "dumps", "encode", "loads"]


class CodecError(ValueError):
    """Data that does not decode to a referralkit value."""


def _registry() -> dict[str, type]:
    classes: dict[str, type] = {}
    for module in (events, rewards, decisions, records, rates):
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


_VERDICTS: Mapping[str, decisions.Verdict] = {v.value: v for v in decisions.Verdict}
_ROLES: Mapping[str, records.Role] = {r.value: r for r in records.Role}


def _verdict(value: Any) -> decisions.Verdict:
    """``Verdict(value)``; a stored verdict, a str, by one dict lookup."""
    verdict = _VERDICTS.get(value) if type(value) is str else None
    return verdict if verdict is not None else decisions.Verdict(value)


def _decode_decision(data: list[Any]) -> decisions.Decision:
    source, verdict, code, params = data
    value = _VERDICTS.get(verdict) if type(verdict) is str else None
    return decisions.Decision(
        source,
        value if value is not None else decisions.Verdict(verdict),
        code,
        tuple([(k, v) for k, v in params]),
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
            [
                records.RewardGrant(
                    _role(g[0]),
                    g[1],
                    decode(g[2]),
                    g[3],
                    g[4],
                    milestone=decode(g[5]) if len(g) > 5 else None,
                    item=g[6] if len(g) > 6 else None,
                )
                for g in grants
            ]
        ),
        reward_ids=tuple(reward_ids),
        reversals=tuple(
            [
                records.Reversal(r[0], r[1], rewards.Unit(r[2], r[3]), Decimal(r[4]))
                for r in reversals
            ]
        ),
        decisions=tuple(
            [
                decisions.Decision(d[0], _verdict(d[1]), d[2], tuple([tuple(p) for p in d[3]]))
                for d in decided
            ]
        ),
    )


def _role(value: Any) -> records.Role:
    """``Role(value)``, by one dict lookup for a str."""
    role = _ROLES.get(value) if type(value) is str else None
    return role if role is not None else records.Role(value)


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
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if attrs.has(type(value)):
        raise CodecError(f"cannot encode {type(value).__name__}: not a referralkit value")
    if isinstance(value, tuple):
        return {"$tu": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return _encode_mapping(value)
    raise CodecError(f"cannot encode {type(value).__name__}: {value!r}")


def _decode_attrs(data: dict[str, Any]) -> Any:
    cls = _CLASSES.get(data["$t"])
    if cls is None:
        raise CodecError(f"unknown type {data['$t']!r}")
    fields = {k: v if type(v) is str else decode(v) for k, v in data["f"].items()}
    return cls(**fields)


def _decode_money(data: Any) -> Money:
    amount, currency = data
    return Money(Decimal(amount), currency)


def _decode_enum(data: Any) -> enum.Enum:
    name, raw = data
    enum_cls = _CLASSES.get(name)
    if enum_cls is None:
        raise CodecError(f"unknown enum {name!r}")
    result: enum.Enum = enum_cls(raw)
    return result


def _decode_tuple(data: Any) -> tuple[Any, ...]:
    items: list[Any] = []
    for v in data:
        if type(v) is str:
            items.append(v)
        elif type(v) is dict and len(v) == 1 and "$D" in v:  # a decision of an explanation
            try:
                items.append(_decode_decision(v["$D"]))
            except (TypeError, ValueError, KeyError, ArithmeticError) as exc:  # as decode(v)
                raise CodecError(f"cannot decode {v!r}: {exc}") from exc
        else:
            items.append(decode(v))
    return tuple(items)


def _decode_map(data: Any) -> dict[str, Any]:
    return {k: v if type(v) is str else decode(v) for k, v in data.items()}


# The tags of one-key objects, with their decoders (``"$t"`` objects have two keys).
_TAGS: dict[str, Callable[[Any], Any]] = {
    "$o": _decode_outcome,
    "$D": _decode_decision,
    "$m": _decode_money,
    "$d": Decimal,
    "$dt": datetime.fromisoformat,
    "$date": date.fromisoformat,
    "$e": _decode_enum,
    "$tu": _decode_tuple,
    "$map": _decode_map,
}
_TAG_ORDER = tuple(_TAGS)  # which tag wins in an object with several


def _decode_tagged(data: dict[str, Any]) -> Any:
    if "$t" in data:
        return _decode_attrs(data)
    if len(data) == 1:
        [tag] = data
        decoder = _TAGS.get(tag)
        if decoder is not None:
            return decoder(data[tag])
    else:
        for tag in _TAG_ORDER:
            if tag in data:
                return _TAGS[tag](data[tag])
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


# -- JSON text --------------------------------------------------------------------------------
# ``dumps`` is on every store's write path (each event handled writes its event and its
# outcome), so it writes the text of ``compact_json(encode(value))`` itself rather than
# building the tagged data first: strings, datetimes and Money by hand, each attrs class by a
# writer made once from its field list, outcomes and decisions in their positional form. A
# value of any other type (a subclass, a float, an unregistered type) is written as
# ``compact_json(encode(value))`` alone; JSON text is compositional, so the bytes are the
# same either way (tests/property/test_codec_reference.py checks it against the generic
# encoding).

_DUMPS: Callable[[Any], str] = compact_json
_string: Callable[[str], str] = json.encoder.encode_basestring  # as compact_json writes a str


_raw = scalar_json  # a value the tagged form hands to the JSON encoder as it is


def dumps(value: Any) -> str:
    """``value`` encoded as compact JSON text: ``compact_json(encode(value))``, written
    directly."""
    if type(value) is str:
        return _string(value)
    writer = _WRITERS.get(type(value))
    if writer is not None:
        return writer(value)
    return _DUMPS(encode(value))


_text = dumps  # the name the generated writers call


def _write_money(m: Money) -> str:
    currency = m.currency
    tail = _string(currency) if type(currency) is str else _DUMPS(currency)
    return '{"$m":[' + _string(str(m.amount)) + "," + tail + "]}"


def _write_datetime(d: datetime) -> str:
    return '{"$dt":' + _string(utc_isoformat(d) if d.tzinfo is UTC else d.isoformat()) + "}"


def _write_mapping(value: Mapping[Any, Any]) -> str:
    # Fast path: every key and value an exact str (notification data, the common mapping),
    # each written by ``_string``, as the JSON encoder writes a str: one pass, no copy of
    # the mapping and no encoder call (which costs more than the pairs for a few of them).
    # A str subclass (an enum) is not a plain string here, so any other mapping leaves
    # some pair out and is written by the general rules below.
    pairs = [
        _string(k) + ":" + _string(v) for k, v in value.items() if type(k) is str and type(v) is str
    ]
    if len(pairs) == len(value):
        return '{"$map":{' + ",".join(pairs) + "}}"
    scalars = _SCALARS
    if all(type(v) in scalars for v in value.values()):
        return '{"$map":' + _DUMPS({str(k): v for k, v in value.items()}) + "}"
    items = {str(k): _text(v) for k, v in value.items()}
    return '{"$map":{' + ",".join([_string(k) + ":" + v for k, v in items.items()]) + "}}"


def _attrs_source(cls: type) -> list[str]:
    """The source of ``write(value)`` for ``cls``: ``_encode_attrs`` as text, one block per
    field, leaving out a field that holds its default."""
    lines = [f"def write(value: {cls.__qualname__!r}) -> str:", '    text = ""']
    guesses = {f.name: first_guess(f.type) for f in attrs.fields(cls)}
    for name, alias, default in _init_fields(cls):
        guess = guesses[name]
        if guess == "datetime":
            text = "_write_datetime(field) if type(field) is datetime else _text(field)"
        elif guess == "Money":
            text = "_write_money(field) if type(field) is Money else _text(field)"
        elif guess == "str":
            text = "_string(field) if type(field) is str else _text(field)"
        else:
            text = "_text(field)"
        test = when_not_default(default, _EMPTY, "_EMPTY_TYPES")
        if test is None and default is not _REQUIRED:  # pragma: no cover - _omittable's
            raise AssertionError(f"{cls.__name__}.{name}: default {default!r}")
        lines.append(f"    field = {attribute(name)}")
        if test is not None:
            lines.append(f"    if {test}:")
        indent = "    " if test is None else "        "
        lines.append(f"{indent}text += {',' + _string(alias) + ':'!r} + ({text})")
    head = '{"$t":' + _string(cls.__name__) + ',"f":{'
    lines.append(f'    return {head!r} + text[1:] + "}}}}"')
    return lines


def _write_attrs(value: Any) -> str:
    """Makes the writer of ``value``'s class, keeps it for the next instance, and writes."""
    cls = type(value)
    namespace = {
        "datetime": datetime,
        "Money": Money,
        "_EMPTY_TYPES": _EMPTY_TYPES,
        "_string": _string,
        "_text": _text,
        "_write_datetime": _write_datetime,
        "_write_money": _write_money,
    }
    writer: Callable[[Any], str] = generated_function(
        "write", _attrs_source(cls), namespace, about=f"codec.dumps of {cls.__qualname__}"
    )
    _WRITERS[cls] = writer
    return writer(value)


def _write_decision(d: decisions.Decision) -> str:
    """``_encode_decision``, as text."""
    verdict, params = d.verdict, d.params
    if type(verdict) is decisions.Verdict and type(params) is tuple:
        try:
            return (
                f'{{"$D":[{_string(d.source)},{_string(verdict._value_)},{_string(d.code)},'
                f"[{','.join([f'[{_string(k)},{_string(v)}]' for k, v in params])}]]}}"
            )
        except (TypeError, ValueError):  # a value that is not a str, a parameter not a pair
            pass
    return _DUMPS(_encode_decision(d))


def _decision_row(d: decisions.Decision) -> str:
    """A decision as ``_encode_outcome`` lists it, as text."""
    verdict, params = d.verdict, d.params
    if type(verdict) is decisions.Verdict and type(params) is tuple:
        try:
            head = f"[{_string(d.source)},{_string(verdict._value_)},{_string(d.code)},["
            # Most decisions have one parameter (an order, a participant) or three (a
            # grant, a referral, a reversal): those pairs are unpacked as the loop below
            # unpacks them, without making the list.
            n = len(params)
            if n == 1:
                ((k, v),) = params
                return f"{head}[{_string(k)},{_string(v)}]]]"
            if n == 3:
                (k, v), (k2, v2), (k3, v3) = params
                return (
                    f"{head}[{_string(k)},{_string(v)}],[{_string(k2)},{_string(v2)}],"
                    f"[{_string(k3)},{_string(v3)}]]]"
                )
            return head + ",".join([f"[{_string(k)},{_string(v)}]" for k, v in params]) + "]]"
        except (TypeError, ValueError):  # not a str, or a parameter not a pair: list(p)
            pass
    return _DUMPS([d.source, verdict.value, d.code, [list(p) for p in d.params]])


def _write_grant(g: records.RewardGrant) -> str:
    """A grant as ``_encode_outcome`` lists it, as text."""
    role, milestone, item = g.role, g.milestone, g.item
    if type(role) is records.Role and milestone is None and item is None:
        try:
            return (
                f"[{_string(role._value_)},{_string(g.participant_id)},{_text(g.value)},"
                f"{_string(g.policy)},{_string(g.reason)}]"
            )
        except TypeError:  # a value that is not a str: as the JSON encoder writes it
            pass
    parts = [_raw(role.value), _raw(g.participant_id), _text(g.value), _raw(g.policy)]
    parts.append(_raw(g.reason))
    if milestone is not None or item is not None:
        parts.append(_text(milestone))
    if item is not None:
        parts.append(_raw(item))
    return "[" + ",".join(parts) + "]"


def _reversal_row(r: records.Reversal) -> str:
    """A reversal as ``_encode_outcome`` lists it, as text."""
    unit = r.unit
    try:
        return (
            f"[{_string(r.reward_id)},{_string(r.participant_id)},{_string(unit.kind)},"
            f"{_string(unit.code)},{_string(str(r.quantity))}]"
        )
    except TypeError:  # a value that is not a str: as the JSON encoder writes it
        return _DUMPS([r.reward_id, r.participant_id, unit.kind, unit.code, str(r.quantity)])


def _write_outcome(o: records.Outcome) -> str:
    """``_encode_outcome``, as text; an empty tuple of grants, reward ids, reversals or
    decisions costs one test."""
    grants, reward_ids, reversals, decided = o.grants, o.reward_ids, o.reversals, o.decisions
    if type(grants) is tuple and not grants:
        grants_text = "[]"
    else:
        grants_text = "[" + ",".join([_write_grant(g) for g in grants]) + "]"
    if type(reward_ids) is not tuple:
        ids_text = _DUMPS(list(reward_ids))
    elif not reward_ids:
        ids_text = "[]"
    else:
        try:
            ids_text = "[" + ",".join(map(_string, reward_ids)) + "]"
        except TypeError:  # an id that is not a str: as the JSON encoder writes it
            ids_text = _DUMPS(reward_ids)
    if type(reversals) is tuple and not reversals:
        reversals_text = "[]"
    else:
        reversals_text = "[" + ",".join([_reversal_row(r) for r in reversals]) + "]"
    if type(decided) is tuple and len(decided) < 2:  # most outcomes have none or one
        decided_text = "[" + _decision_row(decided[0]) + "]" if decided else "[]"
    else:
        decided_text = "[" + ",".join([_decision_row(d) for d in decided]) + "]"
    event_id, event_type, duplicate, referral_id = (
        o.event_id,
        o.event_type,
        o.duplicate,
        o.referral_id,
    )
    return (
        f'{{"$o":[{_string(event_id) if type(event_id) is str else _raw(event_id)},'
        f"{_string(event_type) if type(event_type) is str else _raw(event_type)},"
        f"{'false' if duplicate is False else _raw(duplicate)},"
        f"{'null' if referral_id is None else _raw(referral_id)},"
        f"{grants_text},{ids_text},{reversals_text},{decided_text}]}}"
    )


def _write_enum(value: enum.Enum) -> str:
    return _DUMPS(_encode_enum(value))


def _write_float(value: float) -> str:
    return _DUMPS(value)


_WRITERS: dict[type, Callable[[Any], str]] = {
    str: _string,
    int: int.__repr__,
    bool: _raw,
    float: _write_float,
    type(None): _raw,
    Money: _write_money,
    Decimal: lambda d: '{"$d":' + _string(str(d)) + "}",
    datetime: _write_datetime,
    tuple: lambda t: '{"$tu":[' + ",".join([_text(v) for v in t]) + "]}",
    list: lambda v: "[" + ",".join([_text(x) for x in v]) + "]",
    dict: _write_mapping,
    MappingProxyType: _write_mapping,
    records.Outcome: _write_outcome,
    decisions.Decision: _write_decision,
}
for _cls in _CLASSES.values():
    if issubclass(_cls, enum.Enum):
        _WRITERS[_cls] = _write_enum
    elif _cls not in _WRITERS:
        _WRITERS[_cls] = _write_attrs  # replaced by the class's own writer on first use


def loads(text: str) -> Any:
    """The value [`dumps`][referralkit.codec.dumps] wrote.

    Raises:
        CodecError: not JSON, or not a referralkit encoding.
    """
    if type(text) is str:  # what dumps wrote: one JSON value, nothing around it
        try:
            data, end = _SCAN(text, 0)
        except StopIteration:  # not a JSON value at the start (space, a BOM): see below
            end = -1
        except ValueError as exc:
            raise CodecError(f"not JSON: {text[:80]!r}") from exc
        if end == len(text):
            return decode(data)
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise CodecError(f"not JSON: {text[:80]!r}") from exc
    return decode(data)


# ``json.loads(text)`` is ``scan_once(text, 0)`` once it has checked that ``text`` has no
# BOM, no white space around the value and nothing after it; ``loads`` calls it directly
# when the value fills ``text`` and leaves every other text to ``json.loads``.
_DECODER = json.JSONDecoder()
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def frozen_map(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only copy of ``data``."""
    return MappingProxyType(dict(data))
