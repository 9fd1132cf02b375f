"""A faster ``__init__`` for the frozen records made on every event.

For a frozen class attrs writes ``_setattr('name', value)`` per field, where ``_setattr`` is
``object.__setattr__`` bound to the new instance (the class's own ``__setattr__`` raises):
each call looks the attribute up on the class by name before it sets the slot. The
``__init__`` written here calls each slot's own descriptor (``Cls.__dict__[name].__set__``)
instead, which sets the same slot without the lookup: about a third less time for an
eight-field record, and an event makes several (its outcome, its log record, decisions,
rewards, entries, notifications). Everything else stays attrs': equality, hashing, repr,
``attrs.evolve`` (which calls the class), pickling, and the signature (same parameters,
defaults and annotations).

Only a class whose ``__init__`` attrs wrote from plain fields qualifies: slotted, no
validator, no ``kw_only`` field, aliases equal to the names, no ``__attrs_pre_init__`` or
``__attrs_post_init__``, no slot besides the fields' (a cached hash adds one). A converter
that is a plain callable is called, and a factory default made (given the instance when it
takes self), as attrs does it; an ``init=False`` field is set from its default, without a
converter. Any other class keeps attrs' ``__init__`` (slower, with the same result), so a
newer attrs or a record given a validator never breaks the import; the tests check that
every record meant to have the fast ``__init__`` has it, and ``fast_init(cls, strict=True)``
says why a class does not qualify.
"""

from __future__ import annotations

import types
from typing import Any, TypeVar

import attrs

from referralkit._values.canonical import generated_function

__all__ = ["fast_init"]

C = TypeVar("C", bound=type)
# attrs' converter objects (``attrs.Converter``, attrs >= 24.1) may take the instance or the
# field as well: not written here. A plain callable is called with the value, as attrs does.
_CONVERTER_TYPES: tuple[type, ...] = tuple(
    t for t in (getattr(attrs, "Converter", None),) if isinstance(t, type)
)


def fast_init(cls: C, *, strict: bool = False) -> C:
    """Give the attrs class ``cls`` an ``__init__`` that sets its slots directly (see the
    module's docstring for the classes that qualify); returns ``cls``. A class that does
    not qualify keeps attrs' ``__init__``.

    Raises:
        TypeError: ``strict`` and ``cls`` does not qualify (the message says why).
    """
    try:
        fast = _fast_init_of(cls)
    except TypeError:
        if strict:
            raise
        return cls
    type.__setattr__(cls, "__init__", fast)
    return cls


def _fast_init_of(cls: type) -> Any:
    """The fast ``__init__`` for ``cls``; a ``TypeError`` says why it does not qualify."""
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if code is None or not code.co_filename.startswith("<attrs generated"):
        raise TypeError(f"{cls.__qualname__}: its __init__ is not the one attrs wrote")
    if hasattr(cls, "__attrs_pre_init__") or hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__qualname__}: has a pre- or post-init hook")
    fields = attrs.fields(cls)
    slots = set(cls.__dict__.get("__slots__", ())) - {"__weakref__"}
    if slots != {f.name for f in fields}:
        raise TypeError(f"{cls.__qualname__}: slots {sorted(slots)} are not its fields")
    namespace: dict[str, Any] = {}
    params: list[str] = []
    body: list[str] = []
    namespace["NOTHING"] = attrs.NOTHING
    for n, f in enumerate(fields):
        descriptor = cls.__dict__.get(f.name)
        converter = f.converter
        if (
            type(descriptor) is not types.MemberDescriptorType
            or f.validator is not None
            or f.kw_only
            or (f.init and f.alias != f.name)
            or (converter is not None and isinstance(converter, _CONVERTER_TYPES))
            or (not f.init and (converter is not None or f.default is attrs.NOTHING))
        ):
            raise TypeError(f"{cls.__qualname__}.{f.name}: not a plain field")
        namespace[f"_set{n}"] = descriptor.__set__
        default = f.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            namespace[f"_factory{n}"] = default.factory
            made = f"_factory{n}(self)" if default.takes_self else f"_factory{n}()"
        else:
            namespace[f"_default{n}"] = default
            made = f"_default{n}"
        if converter is not None:
            namespace[f"_convert{n}"] = converter
        value = f"_convert{n}({f.name})" if converter is not None else f.name
        if not f.init:  # set from its default, in field order as attrs does
            body.append(f"    _set{n}(self, {made})")
        elif default is attrs.NOTHING:
            params.append(f.name)
            body.append(f"    _set{n}(self, {value})")
        elif made.startswith("_factory"):
            params.append(f"{f.name}=NOTHING")
            body.append(f"    if {f.name} is NOTHING:")
            body.append(f"        {f.name} = {made}")
            body.append(f"    _set{n}(self, {value})")
        else:
            params.append(f"{f.name}={made}")
            body.append(f"    _set{n}(self, {value})")
    lines = [f"def __init__(self, {', '.join(params)}):", *(body or ["    pass"])]
    fast = generated_function("__init__", lines, namespace, about=f"__init__ of {cls.__qualname__}")
    fast.__annotations__ = dict(init.__annotations__)
    fast.__qualname__ = f"{cls.__qualname__}.__init__"
    fast.__module__ = cls.__module__
    fast.__doc__ = init.__doc__
    return fast
