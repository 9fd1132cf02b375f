"""The values layer's shortcuts give what the general rules give: the faster ``__init__``
of the per-event records, ``derive_id``'s written-out arities, the codec's str-only
mappings."""

from __future__ import annotations

import enum
import hashlib
import inspect
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from referralkit._values import codec, decisions, records, rewards
from referralkit._values._fastinit import fast_init
from referralkit._values.canonical import compact_json
from referralkit._values.ids import derive_id

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# -- fast_init --------------------------------------------------------------------------------

FAST = (
    records.RewardGrant,
    records.Referral,
    records.TouchRecord,
    records.ParticipantRecord,
    records.OrderRecord,
    records.RefundRecord,
    records.Reward,
    records.Entry,
    records.Reversal,
    records.Notification,
    records.Outcome,
    records.EventRecord,
    decisions.Decision,
    rewards.Unit,
)


def _twin(cls: type) -> type:
    """``cls``'s fields in a new attrs class that keeps the ``__init__`` attrs wrote."""
    these = {
        f.name: attrs.field(
            default=f.default, converter=f.converter, eq=f.eq, hash=f.hash, init=f.init
        )
        for f in attrs.fields(cls)
    }
    return attrs.make_class(f"Twin{cls.__name__}", these, frozen=True, slots=True)


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_a_fast_init_is_the_one_attrs_would_have_written(cls: type) -> None:
    """Same parameters, defaults and annotations; every given value (converted as attrs
    converts it) ends up in its field; the defaults fill the others."""
    init = cls.__init__  # type: ignore[misc]
    assert init.__code__.co_filename.startswith("<referralkit generated"), (
        f"{cls.__name__} kept attrs' __init__: fast_init({cls.__name__}, strict=True) says why"
    )
    twin = _twin(cls)
    ours = inspect.signature(cls).parameters.values()
    theirs = inspect.signature(twin).parameters.values()
    assert [(p.name, p.default, p.kind) for p in ours] == [
        (p.name, p.default, p.kind) for p in theirs
    ]
    assert set(init.__annotations__) >= {f.name for f in attrs.fields(cls) if f.init}
    names = [f.name for f in attrs.fields(cls)]
    required = [f.name for f in attrs.fields(cls) if f.init and f.default is attrs.NOTHING]
    given_values: dict[str, Any] = {name: f"value of {name}" for name in required}
    for f in attrs.fields(cls):
        if f.converter is not None:
            given_values[f.name] = () if cls is records.Referral else {"k": "v"}
    made = cls(**given_values)
    reference = twin(**given_values)
    for name in names:
        assert getattr(made, name) == getattr(reference, name), name
    init_names = [f.name for f in attrs.fields(cls) if f.init]
    positional = cls(*[given_values.get(n, getattr(reference, n)) for n in init_names])
    assert all(getattr(positional, n) == getattr(reference, n) for n in names)
    assert attrs.evolve(made) == made


@given(
    event_id=st.text(max_size=5),
    duplicate=st.booleans(),
    referral_id=st.none() | st.text(max_size=5),
    decided=st.lists(
        st.builds(
            decisions.Decision,
            st.text(max_size=4),
            st.sampled_from(decisions.Verdict),
            st.text(max_size=4),
            st.lists(st.tuples(st.text(max_size=3), st.text(max_size=3)), max_size=2).map(tuple),
        ),
        max_size=3,
    ).map(tuple),
)
def test_records_made_through_a_fast_init_equal_those_attrs_makes(
    event_id: str, duplicate: bool, referral_id: str | None, decided: tuple[Any, ...]
) -> None:
    """An outcome and a decision made by the fast ``__init__`` hold what an attrs twin
    holds, field by field, and are written by the codec as before."""
    twin = _twin(records.Outcome)
    fast = records.Outcome(event_id, "click", duplicate, referral_id, (), (), (), decided)
    slow = twin(event_id, "click", duplicate, referral_id, (), (), (), decided)
    assert attrs.astuple(fast, recurse=False) == attrs.astuple(slow, recurse=False)
    assert codec.dumps(fast) == compact_json(codec.encode(fast))
    for d in decided:
        again = decisions.Decision(d.source, d.verdict, d.code, d.params)
        assert again == d
        assert hash(again) == hash(d)


def _shapes() -> list[type]:
    """Fresh attrs classes with each kind of field fast_init takes."""

    def plain() -> type:
        @attrs.frozen
        class Plain:
            a: int
            b: str = "b"
            c: tuple[int, ...] = attrs.field(default=(), converter=tuple)

        return Plain

    def factories() -> type:
        @attrs.frozen
        class Factories:
            a: int
            b: list[int] = attrs.field(factory=list)
            c: Any = attrs.field(factory=dict, converter=MappingProxyType)
            d: tuple[int, int] = attrs.field(init=False)
            e: int = attrs.field(init=False, default=7)

            @d.default
            def _d(self) -> tuple[int, int]:
                return (self.a, len(self.b))

        return Factories

    return [plain(), factories(), plain(), factories()]


def test_fast_init_makes_what_attrs_makes_for_every_kind_of_field() -> None:
    """Plain, defaulted, converted, factory, self-taking and init=False fields: the same
    instances, given every argument or none of the optional ones."""
    fast_plain, fast_factories, plain, factories = _shapes()
    fast_init(fast_plain)
    fast_init(fast_factories)
    assert fast_plain.__init__.__code__.co_filename.startswith("<referralkit generated")  # type: ignore[misc]
    for fast, slow, calls in (
        (fast_plain, plain, [((1,), {}), ((1, "x", [2, 3]), {}), ((), {"a": 4, "c": (5,)})]),
        (
            fast_factories,
            factories,
            [((1,), {}), ((1, [2, 3], {"k": "v"}), {}), ((), {"a": 2, "b": [9]})],
        ),
    ):
        assert [(p.name, p.default) for p in inspect.signature(fast).parameters.values()] == [
            (p.name, p.default) for p in inspect.signature(slow).parameters.values()
        ]
        for args, kwargs in calls:
            made, reference = fast(*args, **kwargs), slow(*args, **kwargs)
            assert attrs.astuple(made, recurse=False) == attrs.astuple(reference, recurse=False)
    first, second = fast_factories(1), fast_factories(1)
    assert first.b is not second.b  # a new list from the factory each time


def test_fast_init_refuses_a_class_it_cannot_speed_up() -> None:
    """Validators, post-init hooks, converted or default-less init=False fields, own
    ``__init__``s, dict classes and private fields keep attrs' ``__init__`` (and so its
    checks); with ``strict=True`` fast_init says why instead."""

    @attrs.frozen
    class Validated:
        a: int = attrs.field(validator=attrs.validators.instance_of(int))

    @attrs.frozen
    class Hooked:
        a: int

        def __attrs_post_init__(self) -> None:
            pass

    @attrs.frozen
    class Converted:
        a: int
        b: int = attrs.field(init=False, default="1", converter=int)

    @attrs.frozen(init=False)
    class Own:
        a: int

        def __init__(self, a: int) -> None:
            object.__setattr__(self, "a", a)

    @attrs.frozen(slots=False)
    class Plain:
        a: int

    @attrs.frozen
    class Private:
        _a: int

    @attrs.frozen
    class KeywordOnly:
        a: int = attrs.field(kw_only=True)

    refused: list[type] = [Validated, Hooked, Converted, Own, Plain, Private, KeywordOnly]
    converter_type = getattr(attrs, "Converter", None)
    if converter_type is not None:  # attrs >= 24.1: a converter that takes the instance

        @attrs.frozen
        class TakesSelf:
            a: int = attrs.field(
                converter=converter_type(lambda value, _self: value, takes_self=True)
            )

        refused.append(TakesSelf)
    for cls in refused:
        with pytest.raises(TypeError):
            fast_init(cls, strict=True)
        init = cls.__init__  # type: ignore[misc]
        assert fast_init(cls) is cls  # not strict: the class keeps the __init__ it had
        assert cls.__init__ is init  # type: ignore[misc]
    with pytest.raises(TypeError):  # a validator still runs in the __init__ kept
        Validated("1")  # type: ignore[arg-type]


def test_a_frozen_record_stays_frozen() -> None:
    """The fast ``__init__`` sets the slots; assigning afterwards still raises."""
    outcome = records.Outcome("e-1", "click")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        outcome.duplicate = True  # type: ignore[misc]


# -- derive_id --------------------------------------------------------------------------------


class _Kind(enum.StrEnum):
    REFERRER = "referrer"


def _generic_id(prefix: str, *parts: str) -> str:
    text = "".join([f"{len(part)}:{part}" for part in parts])
    return f"{prefix}_{hashlib.sha256(text.encode()).hexdigest()[:24]}"


@given(
    prefix=st.sampled_from(["ref", "tch", "rwd", "x"]),
    parts=st.lists(st.text() | st.just(_Kind.REFERRER), max_size=7),
)
def test_derive_id_of_every_arity_is_the_generic_join(prefix: str, parts: list[str]) -> None:
    """The written-out arities (2 to 5 parts) join the parts as the loop does."""
    assert derive_id(prefix, *parts) == _generic_id(prefix, *parts)


def test_derive_id_is_pinned() -> None:
    """Ids stored before stay the ids derived now."""
    assert derive_id("ref", "bench", "p1234") == "ref_38f866c73ab77aa17f81275b"
    assert derive_id("tch", "bench", "e1", "signup") == "tch_d334047e5c97c23e5c71a8cd"
    assert derive_id("tch", "bench", "e1234", "code", "0") == "tch_587c8df59f602e9c6e1c19c8"
    assert (
        derive_id("rwd", "bench", "e1234", "double_sided", "referrer", "0")
        == "rwd_a29252d0a0e05adae202bbc3"
    )


# -- codec: mappings of strings ---------------------------------------------------------------


_KEYS = st.text(max_size=6) | st.integers(-5, 5) | st.just(records.Role.REFERRER) | st.booleans()
_VALUES = (
    st.text(max_size=6)
    | st.integers(-5, 5)
    | st.none()
    | st.booleans()
    | st.just(records.Role.REFERRER)
    | st.just(T0)
)


@given(
    data=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=6)
    | st.dictionaries(_KEYS, _VALUES, max_size=5),
    frozen=st.booleans(),
)
def test_a_mapping_is_written_as_the_generic_encoding_writes_it(
    data: dict[Any, Any], frozen: bool
) -> None:
    """Strings only (notification data) or anything else: the bytes of
    ``compact_json(encode(mapping))``."""
    value = MappingProxyType(dict(data)) if frozen else data
    assert codec.dumps(value) == compact_json(codec.encode(value))
    assert codec.loads(codec.dumps(value)) == codec.loads(compact_json(codec.encode(value)))


def test_notification_data_is_written_as_before() -> None:
    """A pinned text: the stored bytes of a notification's data do not change."""
    data = MappingProxyType({"reward_id": "rwd_1", "role": "referrer", "value": "20.00 USD é"})
    assert codec.dumps(data) == (
        '{"$map":{"reward_id":"rwd_1","role":"referrer","value":"20.00 USD é"}}'
    )


# -- codec: decision rows ---------------------------------------------------------------------

_PARAM_ITEMS = st.text(max_size=4) | st.integers(-3, 3) | st.none()
_PARAMS = st.lists(
    st.tuples(st.text(max_size=4), st.text(max_size=4))
    | st.tuples(_PARAM_ITEMS, _PARAM_ITEMS)
    | st.tuples(st.text(max_size=3))
    | st.tuples(st.text(max_size=3), st.text(max_size=3), st.text(max_size=3))
    | st.text(min_size=2, max_size=2)
    | st.lists(st.text(max_size=3), min_size=2, max_size=2),
    max_size=5,
)


@given(params=_PARAMS, verdict=st.sampled_from(decisions.Verdict), count=st.integers(0, 3))
def test_an_outcome_s_decisions_are_written_as_the_generic_encoding_writes_them(
    params: list[Any], verdict: decisions.Verdict, count: int
) -> None:
    """The written-out one- and three-parameter rows, and every other count or shape of
    parameters, in outcomes of none, one or several decisions: the bytes of
    ``compact_json(encode(outcome))``, or the same refusal."""
    decided = decisions.Decision("engine", verdict, "x.y", tuple(params))
    outcome = records.Outcome("e-1", "purchase", decisions=(decided,) * count)
    try:
        expected = compact_json(codec.encode(outcome))
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            codec.dumps(outcome)
    else:
        assert codec.dumps(outcome) == expected


# -- parts_digest ----------------------------------------------------------------------------


@given(
    parts=st.lists(
        st.text()
        | st.none()
        | st.integers()
        | st.booleans()
        | st.just(())
        | st.just(T0)
        | st.just(records.Role.REFEREE)
        | st.decimals(allow_nan=False, places=2)
        | st.lists(st.text(max_size=3), max_size=2).map(tuple),
        max_size=7,
    )
)
def test_parts_digest_is_the_digest_of_the_flattened_list(parts: list[Any]) -> None:
    """Strings written directly, other parts flattened: the digest of
    ``compact_json([_flat(p) for p in parts])`` as before."""
    from referralkit._values.canonical import _flat, parts_digest

    expected = hashlib.sha256(compact_json([_flat(p) for p in parts]).encode()).hexdigest()
    assert parts_digest(*parts) == expected


# -- normalise_code ---------------------------------------------------------------------------


@given(code=st.text(alphabet=st.characters(max_codepoint=127), min_size=1, max_size=12))
def test_an_ascii_code_is_normalised_by_both_rules_in_one_table(code: str) -> None:
    """One translation with the joined table: what dropping then mapping confusables gave."""
    from referralkit._errors import InvalidInputError
    from referralkit.attribution import _codes

    expected = code.upper().translate(_codes._ASCII_DROP).translate(_codes._CONFUSABLE)
    if not expected:
        with pytest.raises(InvalidInputError):
            _codes.normalise_code(code)
    else:
        assert _codes.normalise_code(code) == expected


# -- utc_isoformat ----------------------------------------------------------------------------


@given(
    st.lists(
        st.datetimes(
            min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
        ),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_utc_isoformat_of_the_datetime_written_last_is_its_isoformat(
    values: list[datetime], data: st.DataObject
) -> None:
    """Written again right after (the digest, then the stored text) or after another one:
    always ``isoformat()``, never the text of the one before."""
    from referralkit._values.canonical import utc_isoformat

    for _ in range(10):
        value = data.draw(st.sampled_from(values))
        assert utc_isoformat(value) == value.isoformat()
        assert utc_isoformat(value) == value.isoformat()
    twin = values[0].replace()  # equal, another object
    assert utc_isoformat(twin) == values[0].isoformat()


# -- Money._trusted ---------------------------------------------------------------------------


@given(cents=st.integers(-(10**12), 10**12), currency=st.sampled_from(["USD", "JPY", "KWD"]))
def test_trusted_money_is_the_money_the_constructor_makes(cents: int, currency: str) -> None:
    """Slots set through their descriptors: equal, same hash, same text, still frozen."""
    from referralkit._values.money import Money

    made = Money.from_minor(cents, currency)  # through _trusted
    checked = Money(made.amount, currency)
    assert made == checked
    assert hash(made) == hash(checked)
    assert (str(made), repr(made)) == (str(checked), repr(checked))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        made.amount = checked.amount  # type: ignore[misc]
