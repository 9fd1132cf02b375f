"""The stored JSON text (``codec.dumps``), its decoding (``codec.loads``) and the event
digests (``record_digest``) are byte for byte what the generic implementations wrote before
they were specialised per class: stored records and digests do not change.

The generic implementations are kept below, as they were, as the reference. Each property
draws values from ``referralkit.testing.strategies`` and from strategies that reach the
corners (any text, every field set, values of unexpected types) and requires the fast
functions and the reference to agree: equal results, or the same exception.
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import referralkit as rk
from referralkit import codec
from referralkit._values import canonical, decisions, events, rates, records, rewards
from referralkit._values import codec as codec_module
from referralkit._values.canonical import (
    _CONTAINERS,
    _ENCODERS,
    canonical_json,
    compact_json,
    record_digest,
    utc_isoformat,
)
from referralkit._values.money import Money
from referralkit.testing.strategies import (
    aware_datetimes,
    currencies,
    event_streams,
    money,
    payout_records,
    reward_values,
)

# -- the reference: codec and record_digest as they were, generic -----------------------------


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
_REQUIRED = object()
_EMPTY = object()


def _omittable(default: Any) -> Any:
    if default is None or type(default) in (bool, str, int):
        return default
    if default == () or (
        isinstance(default, attrs.Factory)
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
        encoded[alias] = ref_encode(field)
    return {"$t": cls.__name__, "f": encoded}


_EMPTY_TYPES = frozenset({dict, list, tuple, frozenset, MappingProxyType})


def _encode_decision(d: decisions.Decision) -> Any:
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
    if all(type(v) in scalars for v in value.values()):
        return {"$map": {str(k): v for k, v in value.items()}}
    return {"$map": {str(k): ref_encode(v) for k, v in value.items()}}


def _encode_outcome(o: records.Outcome) -> Any:
    return {
        "$o": [
            o.event_id,
            o.event_type,
            o.duplicate,
            o.referral_id,
            [
                [g.role.value, g.participant_id, ref_encode(g.value), g.policy, g.reason]
                + ([] if g.milestone is None and g.item is None else [ref_encode(g.milestone)])
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
                ref_decode(g[2]),
                g[3],
                g[4],
                milestone=ref_decode(g[5]) if len(g) > 5 else None,
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
    tuple: lambda t: {"$tu": [ref_encode(v) for v in t]},
    list: lambda v: [ref_encode(x) for x in v],
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


def ref_encode(value: Any) -> Any:
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
        raise codec.CodecError(f"cannot encode {type(value).__name__}: not a referralkit value")
    if isinstance(value, tuple):
        return {"$tu": [ref_encode(v) for v in value]}
    if isinstance(value, list):
        return [ref_encode(v) for v in value]
    if isinstance(value, Mapping):
        return _encode_mapping(value)
    raise codec.CodecError(f"cannot encode {type(value).__name__}: {value!r}")


def _decode_tagged(data: dict[str, Any]) -> Any:
    if "$t" in data:
        cls = _CLASSES.get(data["$t"])
        if cls is None:
            raise codec.CodecError(f"unknown type {data['$t']!r}")
        fields = {k: ref_decode(v) for k, v in data["f"].items()}
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
    if "$date" in data:
        return date.fromisoformat(data["$date"])
    if "$e" in data:
        name, raw = data["$e"]
        enum_cls = _CLASSES.get(name)
        if enum_cls is None:
            raise codec.CodecError(f"unknown enum {name!r}")
        return enum_cls(raw)
    if "$tu" in data:
        return tuple(ref_decode(v) for v in data["$tu"])
    if "$map" in data:
        return {k: ref_decode(v) for k, v in data["$map"].items()}
    raise codec.CodecError(f"untagged object {sorted(data)!r}")


def ref_decode(data: Any) -> Any:
    if isinstance(data, dict):
        try:
            return _decode_tagged(data)
        except codec.CodecError:
            raise
        except (TypeError, ValueError, KeyError, ArithmeticError) as exc:
            raise codec.CodecError(f"cannot decode {data!r}: {exc}") from exc
    if isinstance(data, list):
        return [ref_decode(v) for v in data]
    return data


def ref_dumps(value: Any) -> str:
    return compact_json(ref_encode(value))


def ref_loads(text: str) -> Any:
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise codec.CodecError(f"not JSON: {text[:80]!r}") from exc
    return ref_decode(data)


def _ref_flat(value: Any) -> Any:
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


_ALWAYS = object()


def _ref_digest_fields(cls: type) -> tuple[tuple[str, Any], ...]:
    out = []
    for f in attrs.fields(cls):
        if f.name.startswith("_"):
            continue
        default = f.default
        if default is None or type(default) in (bool, str, int):
            out.append((f.name, default))
        elif isinstance(default, attrs.Factory) and default.factory in (dict, list, tuple):
            out.append((f.name, _EMPTY))
        else:
            out.append((f.name, _ALWAYS))
    return tuple(out)


_REF_DIGEST_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def ref_record_digest(value: Any) -> str:
    cls = type(value)
    fields = _REF_DIGEST_FIELDS.get(cls)
    if fields is None:
        fields = _REF_DIGEST_FIELDS[cls] = _ref_digest_fields(cls)
    parts: list[Any] = [cls.__name__]
    for name, default in fields:
        field = getattr(value, name)
        if field is default:
            continue
        if default is _EMPTY:
            if not field and type(field) in _CONTAINERS:
                continue
        elif default is not _ALWAYS and type(field) is type(default) and field == default:
            continue
        parts.append(name)
        parts.append(_ref_flat(field))
    return hashlib.sha256(compact_json(parts).encode()).hexdigest()


def _outcome_of(function: Callable[[Any], Any], value: Any) -> tuple[str, Any]:
    try:
        return "value", function(value)
    except Exception as exc:  # compared with the reference's
        return type(exc).__name__, str(exc)


def assert_agree(fast: Callable[[Any], Any], reference: Callable[[Any], Any], value: Any) -> None:
    """Equal results, or the same exception with the same message."""
    assert _outcome_of(fast, value) == _outcome_of(reference, value)


# -- strategies -------------------------------------------------------------------------------
texts = st.text(max_size=10)  # quotes, backslashes, control characters, any script
ids = texts.map(str.strip).filter(bool)
maybe_texts = st.none() | texts.filter(bool)
hashes = st.none() | st.text("0123456789abcdef", min_size=64, max_size=64)


class Tag(str):
    """A str subclass: written as a str, but digested as canonical JSON text."""


datetimes = st.one_of(
    aware_datetimes(),
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC)),
    st.datetimes(timezones=st.just(timezone(timedelta(hours=-3, minutes=-30)))),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
# Event metadata is JSON data, which has no NaN or infinity (events refuse them); the codec
# itself still meets them in ``json_values`` and ``anything`` below.
metadata_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
metadata = st.dictionaries(texts, metadata_values, max_size=3)


@st.composite
def clicks(draw: st.DrawFn) -> rk.Click:
    return rk.Click(
        event_id=draw(ids),
        at=draw(datetimes),
        code=draw(maybe_texts),
        visitor_id=draw(st.none() | ids),
        channel=draw(st.sampled_from(sorted(rk.CHANNELS))),
        metadata=draw(metadata),
        link_token=draw(maybe_texts),
        campaign=draw(maybe_texts),
        utm_source=draw(maybe_texts),
        utm_medium=draw(maybe_texts),
        utm_content=draw(maybe_texts),
        utm_term=draw(maybe_texts),
    )


@st.composite
def signups(draw: st.DrawFn) -> rk.Signup:
    return rk.Signup(
        event_id=draw(ids),
        participant_id=draw(ids),
        at=draw(datetimes),
        code=draw(maybe_texts),
        email=draw(st.none() | st.builds("{}@{}".format, texts, texts)),
        channel=draw(st.sampled_from(sorted(rk.CHANNELS))),
        metadata=draw(metadata),
        visitor_id=draw(st.none() | ids),
        link_token=draw(maybe_texts),
        existing_customer=draw(st.booleans()),
        device=draw(hashes),
        payment_fingerprint=draw(hashes),
        payout_account=draw(hashes),
        ip=draw(hashes),
        country=draw(st.none() | st.sampled_from(["DE", "US", "JP"])),
    )


@st.composite
def purchases(draw: st.DrawFn) -> rk.Purchase:
    code = draw(currencies())
    amounts = money(code)
    parts = st.none() | amounts
    items = st.builds(
        rk.LineItem,
        sku=ids,
        quantity=st.integers(1, 5),
        unit_price=amounts,
        category=st.none() | texts,
    )
    return rk.Purchase(
        event_id=draw(ids),
        participant_id=draw(ids),
        order_id=draw(ids),
        amount=draw(amounts),
        at=draw(datetimes),
        items=draw(st.lists(items, max_size=3)),
        metadata=draw(metadata),
        subtotal=draw(parts),
        discount=draw(parts),
        tax=draw(parts),
        shipping=draw(parts),
        code=draw(maybe_texts),
    )


refunds = st.builds(
    rk.Refund,
    event_id=ids,
    refund_id=ids,
    order_id=ids,
    amount=money(min_value=1),
    at=datetimes,
    metadata=metadata,
    items=st.lists(ids, max_size=3),
)
chargebacks = st.builds(
    rk.Chargeback, event_id=ids, chargeback_id=ids, order_id=ids, at=datetimes, metadata=metadata
)
all_events = st.one_of(clicks(), signups(), purchases(), refunds, chargebacks)

pairs = st.tuples(texts, texts)
params = st.lists(pairs, max_size=4).map(tuple)
odd_params = st.lists(  # what a Decision's type allows at run time, though not by its hints
    st.one_of(
        pairs,
        st.tuples(texts, st.integers() | st.none()),
        st.tuples(texts, texts, texts),
        st.lists(texts, max_size=3),
        st.text(min_size=2, max_size=2),
    ),
    max_size=3,
).map(tuple)
verdicts = st.sampled_from(list(rk.Verdict))
plain_decisions = st.builds(rk.Decision, texts, verdicts, texts, params)
odd_decisions = st.builds(
    rk.Decision,
    texts | st.none() | st.integers(),
    verdicts,
    texts | st.none(),
    odd_params | st.lists(pairs, max_size=2),
)
grants = st.builds(
    records.RewardGrant,
    role=st.sampled_from(list(records.Role)),
    participant_id=texts,
    value=currencies().flatmap(reward_values),
    policy=texts,
    reason=texts,
    milestone=st.none() | st.builds(records.MilestoneReached, texts, st.integers(), st.integers()),
    item=st.none() | texts,
)
reversals = st.builds(
    records.Reversal,
    texts,
    texts,
    st.builds(rewards.Unit, texts, texts),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
)


def outcomes(decided: st.SearchStrategy[rk.Decision]) -> st.SearchStrategy[rk.Outcome]:
    return st.builds(
        rk.Outcome,
        event_id=texts,
        event_type=texts,
        duplicate=st.booleans(),
        referral_id=st.none() | texts,
        grants=st.lists(grants, max_size=3).map(tuple),
        reward_ids=st.lists(texts, max_size=3).map(tuple),
        reversals=st.lists(reversals, max_size=2).map(tuple),
        decisions=st.lists(decided, max_size=3).map(tuple),
    )


fixed_rates = st.builds(
    rk.FixedRates,
    st.dictionaries(
        st.tuples(currencies(), currencies()).filter(lambda p: p[0] != p[1]),
        st.integers(1, 10**6).map(lambda n: Decimal(n).scaleb(-3)),
        max_size=2,
    ),
    st.none() | st.dates(),
)
round_tripping = st.one_of(
    all_events,
    outcomes(plain_decisions),
    plain_decisions,
    st.lists(plain_decisions, max_size=3).map(tuple),  # a referral's explanation
    currencies().flatmap(reward_values),
    payout_records(),
    st.dictionaries(texts, texts, max_size=4),  # a notification's data
)
registered = round_tripping | fixed_rates  # rates keyed by pairs are written, not read back


class Colour(enum.Enum):
    RED = "red"


anything = st.recursive(
    st.one_of(
        json_values,
        st.builds(Tag, texts),
        datetimes,
        st.datetimes(),  # naive
        st.dates(),
        st.decimals(),
        money(),
        verdicts,
        st.just(Colour.RED),
        st.sampled_from([1.5, float("nan"), float("inf"), True, 0, -(2**70)]),
        st.builds(rewards.Unit, texts, texts),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(texts | st.integers() | st.booleans(), inner, max_size=3),
        st.dictionaries(texts, inner, max_size=3).map(MappingProxyType),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=6,
)


# -- dumps ------------------------------------------------------------------------------------
@given(registered)
def test_dumps_writes_what_the_generic_encoding_wrote(value):
    """Events with every field, outcomes, decisions, explanations, reward values, payouts,
    notification data and rates: the same text, byte for byte."""
    assert codec.dumps(value) == ref_dumps(value)


@given(outcomes(odd_decisions | plain_decisions), odd_decisions)
def test_decisions_of_unexpected_types_are_written_or_refused_as_before(outcome, decision):
    """Parameters that are not pairs of str (the type hints are not enforced): the fast
    writers fall back to the generic form, so the text, or the error, is the same."""
    assert_agree(codec.dumps, ref_dumps, outcome)
    assert_agree(codec.dumps, ref_dumps, decision)


@given(anything)
def test_dumps_agrees_with_the_generic_encoding_on_any_value(value):
    """Subclasses, floats, naive datetimes, dates, enums, mappings whose keys collide once
    made str, unregistered attrs classes, sets: the same text or the same error."""
    assert_agree(codec.dumps, ref_dumps, value)


# -- loads ------------------------------------------------------------------------------------
@given(registered)
def test_loads_reads_what_dumps_wrote_as_before(value):
    """The same value back (every registered value but a table of rates is the value
    written), or the same error."""
    text = codec.dumps(value)
    assert_agree(codec.loads, ref_loads, text)
    if not isinstance(value, rk.FixedRates):
        assert codec.loads(text) == value


@given(event_streams())
@settings(max_examples=25)
def test_every_record_an_engine_writes_is_written_and_digested_as_before(scenario):
    """Every record of a played scenario (events, outcomes, referrals, rewards, entries,
    orders, touches, notifications, ...): the same text, digest and decoded value."""
    engine = scenario.new_engine()
    scenario.play(engine)
    for table, rows in engine.store.dump().items():
        for row in rows:
            value = row[1] if isinstance(row, tuple) else row
            if not attrs.has(type(value)):
                continue
            assert record_digest(value) == ref_record_digest(value), table
            text = codec.dumps(value)
            assert text == ref_dumps(value), table
            assert codec.loads(text) == ref_loads(text) == value, table


tags = st.sampled_from(["$o", "$D", "$m", "$d", "$dt", "$date", "$e", "$tu", "$map", "$x"])
payload_leaves = st.one_of(
    st.none(),
    st.integers(-2, 9),
    st.sampled_from(
        ["granted", "referrer", "USD", "1.50", "2026-01-05T09:00:00+00:00", "2026-01-05"]
    ),
    st.sampled_from(["Verdict", "Role", "Click", "Unit", "Badge", "Nope", "$D", "$t", "f"]),
    texts,
)


def _tagged(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(lambda tag, payload: {tag: payload}, tags, inner),
        st.dictionaries(tags, inner, min_size=2, max_size=3),
        st.builds(
            lambda name, fields: {"$t": name, "f": fields},
            st.sampled_from(["Unit", "Badge", "Points", "Nope"]),
            st.dictionaries(st.sampled_from(["kind", "code", "name", "points", "x"]), inner),
        ),
    )


tagged_json = st.recursive(
    payload_leaves,
    lambda inner: st.lists(inner, max_size=4) | _tagged(inner),
    max_leaves=10,
)


@given(tagged_json)
def test_loads_decodes_or_refuses_any_tagged_json_as_before(data):
    """Well-formed or corrupt: the same value, or the same error with the same message."""
    text = json.dumps(data)
    assert_agree(codec.loads, ref_loads, text)
    assert_agree(codec.decode, ref_decode, data)


@pytest.mark.parametrize(
    "text",
    ["", " ", "\ufeff{}", ' {"$d":"1"}', '{"$d":"1"} ', '{"$d":"1"} x', "[1,", "nan", "NaN", "1e5"],
)
def test_loads_reads_or_refuses_text_around_the_value_as_before(text):
    """White space, a byte order mark, trailing data: ``json.loads`` still decides."""
    assert_agree(codec.loads, ref_loads, text)
    assert_agree(codec.loads, ref_loads, text.encode())


# -- record_digest ----------------------------------------------------------------------------
@given(all_events)
def test_record_digest_is_the_digest_the_generic_function_computed(event):
    assert record_digest(event) == ref_record_digest(event)


@attrs.frozen
class Odd:
    """A record with every kind of default the digest knows."""

    name: str
    count: int = 3
    label: str = "x"
    flag: bool = True
    off: bool = False
    tags: list[Any] = attrs.field(factory=list)
    more: tuple[Any, ...] = ()
    data: Mapping[str, Any] = attrs.field(factory=dict)
    when: datetime | None = None
    _hidden: int = 0


# Values equal to a default but of another type, or empty containers of every kind.
near_defaults = st.sampled_from(
    [3, 3.0, Decimal(3), True, False, 0, 1, "x", Tag("x"), "", None, [], (), {}, frozenset()]
)
field_values = anything | near_defaults


@given(
    st.builds(
        Odd,
        name=field_values,
        count=field_values,
        label=field_values,
        flag=field_values,
        off=field_values,
        tags=field_values,
        more=field_values,
        data=field_values,
        when=field_values,
        hidden=field_values,
    )
)
def test_record_digest_agrees_on_fields_of_any_value(record):
    """Values of another type than the field's (an int where a bool is the default, a str
    subclass, a float, a naive datetime): the same digest or the same error."""
    assert_agree(record_digest, ref_record_digest, record)


unchecked_records = st.one_of(  # registered classes without validators
    st.builds(
        records.OutboxStatus,
        delivered_at=field_values,
        attempts=field_values,
        last_error=field_values,
        next_attempt_at=field_values,
        dead_at=field_values,
    ),
    st.builds(
        records.Entry,
        *[field_values] * 9,
        actor=field_values,
    ),
    st.builds(
        records.CodeRecord,
        *[field_values] * 4,
        max_uses=field_values,
        expires_at=field_values,
    ),
)


@given(unchecked_records)
def test_dumps_agrees_on_registered_records_holding_values_of_any_type(record):
    """A default's look-alikes (0.0 or False where the default is 0, a str subclass where it
    is ``"engine"``, empty containers of each kind): written, or left out, as before."""
    assert_agree(codec.dumps, ref_dumps, record)


@given(st.datetimes(datetime(1, 1, 1, 0, 0, 1), datetime(9999, 12, 31), timezones=st.just(UTC)))
def test_utc_isoformat_is_isoformat(value):
    assert utc_isoformat(value) == value.isoformat()


def test_the_generated_functions_show_their_source():
    """Tracebacks and ``inspect.getsource`` show the code written for a class."""
    at = datetime(2026, 1, 5, tzinfo=UTC)
    click = rk.Click(event_id="c1", at=at)
    record_digest(click)
    codec.dumps(click)
    digest_source = inspect.getsource(canonical._DIGESTERS[rk.Click])
    assert "field = value.utm_term" in digest_source
    assert "field = value.visitor_id" in inspect.getsource(codec_module._WRITERS[rk.Click])


def test_a_field_that_is_not_a_name_is_read_with_getattr():
    assert canonical.attribute("at") == "value.at"
    assert canonical.attribute("from") == "getattr(value, 'from')"
    assert canonical.attribute("a b") == "getattr(value, 'a b')"
