"""A canonical encoding of values, for payload digests and program fingerprints.

The encoding is JSON with sorted keys; datetimes are normalised to UTC, ``Decimal`` is
written as its string, attrs classes carry their class name. The digest is SHA-256 of that
text, so it is stable across processes (never Python's salted ``hash()``).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta

__all__ = ["canonical", "canonical_json", "digest"]

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


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data (dict, list, str, int, bool, None)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if isinstance(value, Decimal):
        return {"$dec": format(value.normalize(), "f") if value else "0"}
    if isinstance(value, float):
        return {"$float": repr(value)}
    if isinstance(value, datetime):
        return {"$dt": value.astimezone(UTC).isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, relativedelta):
        return {"$rd": {f: getattr(value, f) for f in _RELATIVEDELTA_FIELDS if getattr(value, f)}}
    if attrs.has(type(value)):
        out: dict[str, Any] = {"$type": type(value).__name__}
        for field in attrs.fields(type(value)):
            if field.name.startswith("_"):
                continue
            out[field.name] = canonical(getattr(value, field.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    raise TypeError(f"cannot encode {type(value).__name__} canonically: {value!r}")


def canonical_json(value: Any) -> str:
    """The canonical encoding of ``value`` as compact JSON text with sorted keys."""
    return json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 hex digest of the canonical encoding of ``value``."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
