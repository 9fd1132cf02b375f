"""A canonical encoding of values, for payload digests and program fingerprints.

The encoding is compact JSON: mappings with sorted keys; an attrs instance as a list of its
class name and its public fields in definition order; datetimes normalised to UTC ISO
strings, ``Decimal`` as its normalised string, ``Money`` as ``"80.00 USD"``. Fields are
typed, so a string and a number never meet in one place. The digest is SHA-256 of that
text, so it is stable across processes (never Python's salted ``hash()``).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta

__all__ = ["canonical", "canonical_json", "digest", "parts_digest", "record_digest"]

_RELATIVEDELTA_FIELDS = (
    "years",
    "months",
    "days",
    "hours",
    "minutes",
    "seconds",
    "microseconds",
    "weeks",
)


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


def _datetime(value: datetime) -> Any:
    return value.astimezone(UTC).isoformat()


def _sequence(value: list[Any] | tuple[Any, ...]) -> Any:
    return [canonical(v) for v in value]


def _mapping(value: Mapping[Any, Any]) -> Any:
    return {str(k): canonical(value[k]) for k in sorted(value, key=str)}


def _identity(value: Any) -> Any:
    return value


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    str: _identity,
    int: _identity,
    bool: _identity,
    type(None): _identity,
    Decimal: _decimal,
    datetime: _datetime,
    list: _sequence,
    tuple: _sequence,
    dict: _mapping,
    MappingProxyType: _mapping,
}
_ATTRS_FIELDS: dict[type, tuple[str, ...]] = {}


def _compact_dumps() -> Callable[[Any], str]:
    """Compact JSON text (``separators=(",", ":")``, non-ASCII kept), as
    ``json.JSONEncoder.encode`` writes it, through the C encoder made once: the standard
    ``encode`` makes a new one on every call, which costs more than encoding a small
    record. referralkit's values are never circular, so there is no cycle check."""
    standard = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - an interpreter without the C accelerator
        return standard

    def default(value: Any) -> Any:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    encoder = make(
        None, default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def dumps(value: Any) -> str:
        return "".join(encoder(value, 0))

    return dumps


compact_json: Callable[[Any], str] = _compact_dumps()
_DUMPS = compact_json


def _public_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in attrs.fields(cls) if not f.name.startswith("_"))


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data (dict, list, str, int, bool, None)."""
    cls = type(value)
    encoder = _ENCODERS.get(cls)
    if encoder is not None:
        return encoder(value)
    names = _ATTRS_FIELDS.get(cls)
    if names is None and attrs.has(cls):
        names = _ATTRS_FIELDS[cls] = _public_fields(cls)
    if names is not None:
        return [cls.__name__, *[canonical(getattr(value, name)) for name in names]]
    return _canonical_other(value)


def _canonical_other(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, float):
        return {"$float": repr(value)}
    if isinstance(value, datetime):
        return _datetime(value)
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, relativedelta):
        return {"$rd": {f: getattr(value, f) for f in _RELATIVEDELTA_FIELDS if getattr(value, f)}}
    if isinstance(value, Mapping):
        return _mapping(value)
    if isinstance(value, list | tuple):
        return _sequence(value)
    if isinstance(value, frozenset | set):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    raise TypeError(f"cannot encode {type(value).__name__} canonically: {value!r}")


def canonical_json(value: Any) -> str:
    """The canonical encoding of ``value`` as compact JSON text with sorted keys."""
    return _DUMPS(canonical(value))


def digest(value: Any) -> str:
    """SHA-256 hex digest of the canonical encoding of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def register_encoder(cls: type, encoder: Callable[[Any], str]) -> None:
    """Encode instances of exactly ``cls`` as the string ``encoder`` returns (``Money``)."""
    _ENCODERS[cls] = encoder


def _flat(value: Any) -> Any:
    """One value of a record as a JSON scalar; the common types without building lists."""
    t = type(value)
    if t is str or value is None:
        return value
    if t is datetime:
        return value.astimezone(UTC).isoformat()
    encoder = _ENCODERS.get(t)
    if encoder is not None and t not in _CONTAINERS:
        return encoder(value)
    if not value and t in _CONTAINERS:
        return 0
    return canonical_json(value)


_CONTAINERS: frozenset[type] = frozenset({list, tuple, dict, MappingProxyType})


def record_digest(value: Any) -> str:
    """SHA-256 of an attrs record: its class name and public fields, each flattened to one
    JSON scalar (a nested value as its canonical JSON text). Cheaper than
    ``digest(value)`` for the flat records events are; fields have fixed types, so the
    flattening cannot make two different records collide."""
    cls = type(value)
    names = _ATTRS_FIELDS.get(cls)
    if names is None:
        names = _ATTRS_FIELDS[cls] = _public_fields(cls)
    parts = [cls.__name__, *[_flat(getattr(value, name)) for name in names]]
    return hashlib.sha256(_DUMPS(parts).encode()).hexdigest()


def parts_digest(*parts: Any) -> str:
    """SHA-256 of several values flattened like ``record_digest``'s fields."""
    return hashlib.sha256(_DUMPS([_flat(p) for p in parts]).encode()).hexdigest()
