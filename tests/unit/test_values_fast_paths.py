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
        f.name: attrs.field(default=f.default, converter=f.converter, eq=f.eq, hash=f.hash)
        for f in attrs.fields(cls)
    }
    return attrs.make_class(f"Twin{cls.__name__}", these, frozen=True, slots=True)


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_a_fast_init_is_the_one_attrs_would_have_written(cls: type) -> None:
    """Same parameters, defaults and annotations; every given value (converted as attrs
    converts it) ends up in its field; the defaults fill the others."""
    init = cls.__init__  # type: ignore[misc]
    assert init.__code__.co_filename.startswith("<referralkit generated")
    twin = _twin(cls)
    ours = inspect.signature(cls).parameters.values()
    theirs = inspect.signature(twin).parameters.values()
    assert [(p.name, p.default, p.kind) for p in ours] == [
        (p.name, p.default, p.kind) for p in theirs
    ]
    assert set(init.__annotations__) >= {f.name for f in attrs.fields(cls)}
    names = [f.name for f in attrs.fields(cls)]
    required = [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]
    given_values: dict[str, Any] = {name: f"value of {name}" for name in required}
    for f in attrs.fields(cls):
        if f.converter is not None:
            given_values[f.name] = {"k": "v"} if cls is records.Notification else ()
    made = cls(**given_values)
    reference = twin(**given_values)
    for name in names:
        assert getattr(made, name) == getattr(reference, name), name
    positional = cls(*[given_values.get(n, getattr(reference, n)) for n in names])
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


def test_fast_init_refuses_a_class_it_cannot_speed_up() -> None:
    """Validators, factories, post-init hooks, ``init=False`` fields, own ``__init__``s and
    dict classes keep attrs' ``__init__``: fast_init says so at import time."""

    @attrs.frozen
    class Validated:
        a: int = attrs.field(validator=attrs.validators.instance_of(int))

    @attrs.frozen
    class Factory:
        a: list[int] = attrs.field(factory=list)

    @attrs.frozen
    class Hooked:
        a: int

        def __attrs_post_init__(self) -> None:
            pass

    @attrs.frozen
    class Derived:
        a: int
        b: int = attrs.field(init=False, default=0)

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

    for cls in (Validated, Factory, Hooked, Derived, Own, Plain, Private):
        with pytest.raises(TypeError):
            fast_init(cls)


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
