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
import itertools
import json
import keyword
import linecache
import re
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
_string: Callable[[str], str] = json.encoder.encode_basestring  # as compact_json writes a str


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


_TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))
_DAYS: dict[int, str] = {}  # ordinal -> "2026-01-05T", for the days seen lately
# The datetime utc_isoformat wrote last and its text, as one tuple (replaced whole).
_LAST_UTC: list[tuple[datetime | None, str]] = [(None, "")]


def utc_isoformat(value: datetime) -> str:
    """``value.isoformat()`` for a datetime in UTC (``value.tzinfo is UTC``), about three
    times faster (see ``utc_text``). Both encodings write every event's ``at`` this way."""
    last = _LAST_UTC[0]
    if last[0] is value:
        # The datetime written last (an event's ``at`` is written by its digest, then by
        # its stored text): datetimes are immutable, so its text is the same. One tuple,
        # replaced whole, so a thread never reads one datetime with another's text.
        return last[1]
    text = utc_text(value, "")
    _LAST_UTC[0] = (value, text)
    return text


def utc_text(value: datetime, whole_seconds: str) -> str:
    """``value.isoformat()`` of a UTC datetime (``value.tzinfo is UTC``) with
    ``whole_seconds`` in place of the microseconds when they are 0 (``""`` as
    ``isoformat()``, ``".000000"`` as ``isoformat(timespec="microseconds")``), about
    three times faster: the date part is made once per day seen, the time from a table of
    digits."""
    ordinal = value.toordinal()
    day = _DAYS.get(ordinal)
    if day is None:
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        day = _DAYS[ordinal] = value.date().isoformat() + "T"
    two = _TWO_DIGITS
    micro = value.microsecond
    if micro:
        return f"{day}{two[value.hour]}:{two[value.minute]}:{two[value.second]}.{micro:06d}+00:00"
    return f"{day}{two[value.hour]}:{two[value.minute]}:{two[value.second]}{whole_seconds}+00:00"


def _utc(value: datetime) -> str:
    """``value.astimezone(UTC).isoformat()``."""
    value = value.astimezone(UTC)
    return utc_isoformat(value) if value.tzinfo is UTC else value.isoformat()


def _flat(value: Any) -> Any:
    """One value of a record as a JSON scalar; the common types without building lists."""
    t = type(value)
    if t is str or value is None:
        return value
    if t is datetime:
        return _utc(value)
    encoder = _ENCODERS.get(t)
    if encoder is not None and t not in _CONTAINERS:
        return encoder(value)
    if not value and t in _CONTAINERS:
        return 0
    return canonical_json(value)


_CONTAINERS: frozenset[type] = frozenset({list, tuple, dict, MappingProxyType})


_ALWAYS = object()  # a field digested whatever its value
_EMPTY = object()  # a field whose default is an empty container


def _digest_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    """Each public field with the default it may be left out at (None, a bool, a str or an
    int default, ``_EMPTY`` for an empty-container default), or ``_ALWAYS``."""
    out = []
    for f in attrs.fields(cls):
        if f.name.startswith("_"):
            continue
        default = f.default
        if default is None or type(default) in (bool, str, int):
            out.append((f.name, default))
        elif isinstance(default, attrs.Factory) and default.factory in (  # type: ignore[arg-type]
            dict,
            list,
            tuple,
        ):
            out.append((f.name, _EMPTY))
        else:
            out.append((f.name, _ALWAYS))
    return tuple(out)


# -- generated functions ----------------------------------------------------------------------
# The per-record work (an event's digest here, its stored JSON text in the codec) is done by
# a function written for each class once, from its field list, as attrs writes ``__init__``:
# straight-line code with one block per field reads each attribute directly and leaves out a
# field holding its default by one test, which a loop over the fields cannot match for speed.
# The source goes into ``linecache``, so tracebacks and ``inspect.getsource`` show it.

_GENERATED = itertools.count(1)


def attribute(name: str) -> str:
    """Source reading the attribute ``name`` of ``value``."""
    if name.isidentifier() and not keyword.iskeyword(name):
        return f"value.{name}"
    return f"getattr(value, {name!r})"


def when_not_default(default: Any, empty: object, empty_types: str) -> str | None:
    """The source of a test that is true when ``field`` does not hold ``default``, for a
    default that lets a field be left out (``None``, a bool, an exact str or int), or
    ``empty`` (an empty-container default: ``field`` is left out when it is empty and of
    one of the types named ``empty_types``); None when the field is always written."""
    if default is None or type(default) is bool:
        return f"field is not {default!r}"  # singletons: equal only to themselves
    if type(default) in (str, int):
        return f"not (type(field) is {type(default).__name__} and field == {default!r})"
    if default is empty:
        return f"field or type(field) not in {empty_types}"
    return None


def generated_function(
    name: str, lines: list[str], namespace: dict[str, Any], *, about: str
) -> Callable[..., Any]:
    """The function ``name`` that the source ``lines`` define, run in ``namespace``.

    Args:
        name: The function's name in the source.
        lines: Its source, one line each.
        namespace: The globals the source reads.
        about: What it is for, in its file name (``"record_digest of Click"``).
    """
    source = "\n".join(lines) + "\n"
    filename = f"<referralkit generated {next(_GENERATED)}: {about}>"
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    function: Callable[..., Any] = namespace[name]
    return function


def _flat_json(value: Any) -> str:
    """``_flat(value)`` as JSON text."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if kind is datetime:
        return _string(_utc(value))
    if kind in _CONTAINERS:
        return _string(canonical_json(value)) if value else "0"
    encoder = _ENCODERS.get(kind)
    return scalar_json(encoder(value) if encoder is not None else canonical_json(value))


def scalar_json(value: Any) -> str:
    """``compact_json(value)``, for a str, an int, a bool or None without the encoder."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    return _DUMPS(value)


def first_guess(annotation: Any) -> str | None:
    """The type a generated function tests a field's value for first, from the field's
    annotation: ``"str"`` for ``str`` or ``str | None``, ``"datetime"``, ``"Money"`` alike;
    None for anything else. A guess only: every value is tested for its exact type."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    names = set(re.findall(r"[\w.]+", str(text))) - {"None", "Optional"}
    return names.pop() if len(names) == 1 else None


def _digest_source(cls: type, namespace: dict[str, Any]) -> list[str]:
    """The source of ``digest(value)`` for ``cls``: one block per public field, leaving out
    a field that holds its default, adding its name and flattened value otherwise. The
    classes with an encoder of their own (``Money``) that it names go into ``namespace``."""
    lines = [
        f"def digest(value: {cls.__qualname__!r}) -> str:",
        f"    text = {'[' + _string(cls.__name__)!r}",
    ]
    guesses = {f.name: first_guess(f.type) for f in attrs.fields(cls)}
    encoded = {t.__name__: t for t in _ENCODERS if t.__module__ != "builtins"}
    for name, default in _digest_fields(cls):
        guess = guesses[name]
        if guess == "datetime":
            flat = "_string(_utc(field)) if type(field) is datetime else _flat_json(field)"
        elif guess == "str":
            flat = "_string(field) if type(field) is str else _flat_json(field)"
        elif guess in encoded:  # Money, as _flat_json does it, without the other tests
            namespace[f"_{guess}"] = encoded[guess]
            flat = (
                f"scalar_json(_ENCODERS[_{guess}](field)) if type(field) is _{guess} "
                "else _flat_json(field)"
            )
        else:
            flat = "_flat_json(field)"
        test = when_not_default(default, _EMPTY, "_CONTAINERS")
        lines.append(f"    field = {attribute(name)}")
        if test is not None:
            lines.append(f"    if {test}:")
        indent = "    " if test is None else "        "
        lines.append(f"{indent}text += {',' + _string(name) + ','!r} + ({flat})")
    lines.append('    return sha256((text + "]").encode()).hexdigest()')
    return lines


_DIGESTERS: dict[type, Callable[[Any], str]] = {}


def record_digest(value: Any) -> str:
    """SHA-256 of an attrs record: its class name and the fields that do not hold their
    default, each as its name and the value flattened to one JSON scalar (a nested value as
    its canonical JSON text). Cheaper than ``digest(value)`` for the flat records events
    are. Fields have fixed types, so the flattening cannot make two different records
    collide; and a field added later with a default leaves the digests of records that do
    not use it unchanged, so an event stored before is still recognised when delivered
    again.

    Each class's digest is computed by a function written for it on first use."""
    cls = type(value)
    digest_of = _DIGESTERS.get(cls)
    if digest_of is None:
        namespace = {
            "_utc": _utc,
            "datetime": datetime,
            "sha256": hashlib.sha256,
            "scalar_json": scalar_json,
            "_CONTAINERS": _CONTAINERS,
            "_ENCODERS": _ENCODERS,
            "_flat_json": _flat_json,
            "_string": _string,
        }
        source = _digest_source(cls, namespace)
        digest_of = _DIGESTERS[cls] = generated_function(
            "digest", source, namespace, about=f"record_digest of {cls.__qualname__}"
        )
    return digest_of(value)


def parts_digest(*parts: Any) -> str:
    """SHA-256 of several values flattened like ``record_digest``'s fields."""
    # The text of ``compact_json([_flat(p) for p in parts])``, each scalar written as
    # ``scalar_json`` writes it (a str, the common part, directly): no list for the encoder.
    texts = []
    for part in parts:
        if type(part) is str:
            texts.append(_string(part))
        else:
            flat = _flat(part)
            texts.append(_string(flat) if type(flat) is str else scalar_json(flat))
    return hashlib.sha256(("[" + ",".join(texts) + "]").encode()).hexdigest()
