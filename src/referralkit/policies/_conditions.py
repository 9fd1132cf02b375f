"""Conditions: structured comparisons over what a policy context knows; no string grammar.

```python
Attr("sale.amount") >= Money(50, "USD")
All([Attr("referral.channel").in_(["email", "sms"]), Attr("referee.purchase_number") == 1])
```
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC
from decimal import Decimal
from types import MappingProxyType
from typing import Any as _Any
from typing import Protocol, runtime_checkable

import attrs

from referralkit._errors import InvalidProgramError
from referralkit._values.events import Purchase
from referralkit._values.money import Money
from referralkit.policies._base import Counter, PolicyContext

__all__ = [
    "ATTRIBUTES",
    "OPERATORS",
    "All",
    "AllOf",
    "Any",
    "AnyOf",
    "Attr",
    "Compare",
    "Condition",
]

_MISSING: _Any = object()

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains")
"""The comparison operators, as ``Compare.op`` spells them."""

_ORDERED = ("==", "!=", "<", "<=", ">", ">=", "in", "not in")
_KIND_OPS: Mapping[str, tuple[str, ...]] = {
    "money": _ORDERED,
    "int": _ORDERED,
    "str": ("==", "!=", "in", "not in", "contains"),
    "strs": ("contains",),
    "bool": ("==", "!="),
    "json": OPERATORS,
}


@attrs.frozen
class _Attribute:
    kind: str
    needs: frozenset[Counter]
    get: Callable[[PolicyContext], object]
    doc: str


def _counter(counter: Counter) -> Callable[[PolicyContext], object]:
    return lambda ctx: int(ctx.count(counter))


def _money_counter(counter: Counter) -> Callable[[PolicyContext], object]:
    return lambda ctx: Money.rounded(ctx.count(counter), ctx.currency)


def _purchase(get: Callable[[Purchase], object]) -> Callable[[PolicyContext], object]:
    return lambda ctx: get(ctx.event) if isinstance(ctx.event, Purchase) else _MISSING


def _purchase_number(ctx: PolicyContext) -> object:
    if not isinstance(ctx.event, Purchase):
        return 0
    return int(ctx.count(Counter.REFEREE_PURCHASES)) + 1


def _recurring(ctx: PolicyContext) -> object:
    if not isinstance(ctx.event, Purchase):
        return _MISSING
    return ctx.count(Counter.REFEREE_PURCHASES) > 0


def _optional(value: str | None) -> object:
    return _MISSING if value is None else value


def _days(ctx: PolicyContext) -> object:
    # In UTC: two times in one zone with daylight saving time subtract as wall clocks.
    return (ctx.event.at.astimezone(UTC) - ctx.referral.created_at.astimezone(UTC)).days


def _none() -> frozenset[Counter]:
    return frozenset()


ATTRIBUTES: Mapping[str, _Attribute] = MappingProxyType(
    {
        "referrer.successful_referrals": _Attribute(
            "int",
            frozenset({Counter.REFERRER_SUCCESSFUL_REFERRALS}),
            _counter(Counter.REFERRER_SUCCESSFUL_REFERRALS),
            "the referrer's successful referrals before this event",
        ),
        "referrer.referrals": _Attribute(
            "int",
            frozenset({Counter.REFERRER_REFERRALS}),
            _counter(Counter.REFERRER_REFERRALS),
            "referrals the referrer has made",
        ),
        "referrer.revenue_referred": _Attribute(
            "money",
            frozenset({Counter.REFERRER_REVENUE_REFERRED}),
            _money_counter(Counter.REFERRER_REVENUE_REFERRED),
            "order totals of the referrer's referees, net of refunds, before this event",
        ),
        "referee.days_since_signup": _Attribute(
            "int", _none(), _days, "whole days from the referral to this event"
        ),
        "referee.country": _Attribute(
            "str",
            _none(),
            lambda ctx: _optional(ctx.referee_country),
            "the referee's ISO 3166-1 alpha-2 country from their sign-up (Signup.country)",
        ),
        "referee.new_customer": _Attribute(
            "bool",
            frozenset({Counter.REFEREE_EXISTING_CUSTOMER}),
            lambda ctx: not ctx.count(Counter.REFEREE_EXISTING_CUSTOMER),
            "False when the referee was a customer before the referral (only possible with "
            "AttributionRules(allow_existing_customers=True))",
        ),
        "referee.purchase_number": _Attribute(
            "int",
            frozenset({Counter.REFEREE_PURCHASES}),
            _purchase_number,
            "1 for the referee's first purchase, 2 for the second, ...; 0 at the sign-up",
        ),
        "sale.amount": _Attribute("money", _none(), _purchase(lambda p: p.amount), "the order"),
        "sale.recurring": _Attribute(
            "bool",
            frozenset({Counter.REFEREE_PURCHASES}),
            _recurring,
            "True for a repeat or recurring payment, False for the referee's first purchase",
        ),
        "sale.skus": _Attribute(
            "strs", _none(), _purchase(lambda p: {i.sku for i in p.items}), "the line skus"
        ),
        "sale.categories": _Attribute(
            "strs",
            _none(),
            _purchase(lambda p: {i.category for i in p.items if i.category is not None}),
            "the line categories",
        ),
        "sale.item_count": _Attribute(
            "int",
            _none(),
            _purchase(lambda p: sum(i.quantity for i in p.items)),
            "units over all lines",
        ),
        "referral.channel": _Attribute(
            "str", _none(), lambda ctx: ctx.referral.channel, "where the referral came from"
        ),
        "referral.campaign": _Attribute(
            "str",
            _none(),
            lambda ctx: _optional(ctx.referral.campaign),
            "the campaign (utm_campaign) of the touch that won the attribution",
        ),
        "referral.code": _Attribute(
            "str", _none(), lambda ctx: ctx.referral.code, "the normalised code used"
        ),
        "program.spend": _Attribute(
            "money",
            frozenset({Counter.PROGRAM_SPEND}),
            _money_counter(Counter.PROGRAM_SPEND),
            "money the program has granted, net of reversals",
        ),
    }
)
"""The attributes a ``Compare`` may name; plus ``sale.metadata.<key>`` (the purchase's
metadata) and ``event.metadata.<key>`` (the triggering sign-up's or purchase's metadata)."""

_METADATA_PREFIXES = ("sale.metadata.", "event.metadata.")


def _metadata(prefix: str, key: str) -> _Attribute:
    if prefix == "sale.metadata.":
        get = _purchase(lambda p: p.metadata.get(key, _MISSING))
    else:

        def get(ctx: PolicyContext) -> object:
            return ctx.event.metadata.get(key, _MISSING)

    return _Attribute("json", _none(), get, f"metadata key {key!r}")


def _lookup(field: str, name: object) -> _Attribute:
    if isinstance(name, str):
        spec = ATTRIBUTES.get(name)
        if spec is not None:
            return spec
        for prefix in _METADATA_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                return _metadata(prefix, name[len(prefix) :])
    known = [*ATTRIBUTES, *(p + "<key>" for p in _METADATA_PREFIXES)]
    raise InvalidProgramError(field, name, f"is not a known attribute; one of {known}")


def _text(value: object) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, set | frozenset):
        return _text(sorted(value, key=str))
    return str(value)


@runtime_checkable
class Condition(Protocol):
    """**Protocol:** a structured condition over a [`PolicyContext`][referralkit.PolicyContext]."""

    def needs(self) -> frozenset[Counter]:
        """The counters the condition reads."""
        ...

    def check(self, currency: str) -> None:
        """Raise ``InvalidProgramError`` if a money value is in another currency."""
        ...

    def failure(self, ctx: PolicyContext) -> str | None:
        """None when the condition holds, else the clause that was false, as text."""
        ...

    def describe(self) -> str:
        """The condition as text."""
        ...


def _attribute(value: object) -> str:
    _lookup("compare.attribute", value)
    return str(value)


def _op(value: object) -> str:
    if value not in OPERATORS:
        raise InvalidProgramError("compare.op", value, f"must be one of {list(OPERATORS)}")
    return str(value)


def _frozen_value(value: object) -> object:
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(value)
    return value


def _check_scalar(kind: str, field: str, value: object) -> None:
    if kind == "money":
        if not isinstance(value, Money):
            raise InvalidProgramError(field, value, "must be a Money")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            raise InvalidProgramError(field, value, "must be a whole number")
    elif kind in ("str", "strs"):
        if not isinstance(value, str):
            raise InvalidProgramError(field, value, "must be a string")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise InvalidProgramError(field, value, "must be true or false")
    elif not isinstance(value, str | int | bool | Decimal | type(None)):
        raise InvalidProgramError(field, value, "must be a string, number, bool or None")


_COMPARE: Mapping[str, Callable[[_Any, _Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a,
}


@attrs.frozen
class Compare:
    """``attribute op value``, such as ``Compare("sale.amount", ">=", Money(50, "USD"))``.

    ``Attr("sale.amount") >= Money(50, "USD")`` builds the same object. An attribute the
    event does not have (``sale.amount`` at a sign-up, a missing metadata key) makes the
    comparison false.

    Args:
        attribute: One of ``CONDITION_ATTRIBUTES``, or ``sale.metadata.<key>`` /
            ``event.metadata.<key>``.
        op: One of ``CONDITION_OPERATORS``; ``in`` and ``not in`` take a list.
        value: What to compare with: Money for money attributes, an int for counts, a
            string for names; a list for ``in`` / ``not in``.

    Raises:
        InvalidProgramError: an unknown attribute, an operator the attribute does not
            support, or a value of the wrong type.
    """

    attribute: str = attrs.field(converter=_attribute)
    op: str = attrs.field(converter=_op)
    value: object = attrs.field(converter=_frozen_value)
    _spec: _Attribute = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        spec = _lookup("compare.attribute", self.attribute)
        if self.op not in _KIND_OPS[spec.kind]:
            raise InvalidProgramError(
                "compare.op", self.op, f"{self.attribute} supports {list(_KIND_OPS[spec.kind])}"
            )
        if self.op in ("in", "not in"):
            if not isinstance(self.value, tuple) or not self.value:
                raise InvalidProgramError("compare.value", self.value, "must be a non-empty list")
            for i, item in enumerate(self.value):
                _check_scalar(spec.kind, f"compare.value[{i}]", item)
        else:
            _check_scalar(spec.kind, "compare.value", self.value)
        object.__setattr__(self, "_spec", spec)

    def needs(self) -> frozenset[Counter]:
        """The counters the attribute reads."""
        return self._spec.needs

    def check(self, currency: str) -> None:
        """Money values must be in the program's currency."""
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        for value in values:
            if isinstance(value, Money) and value.currency != currency:
                raise InvalidProgramError(
                    "compare.value.currency",
                    value.currency,
                    f"must be the program's currency {currency}",
                )

    def describe(self) -> str:
        """``sale.amount >= 50.00 USD``."""
        return f"{self.attribute} {self.op} {_text(self.value)}"

    def failure(self, ctx: PolicyContext) -> str | None:
        """None when the comparison holds, else the clause with the actual value."""
        actual = self._spec.get(ctx)
        if actual is _MISSING:
            return f"{self.describe()} ({self.attribute} is missing)"
        try:
            ok = _COMPARE[self.op](actual, self.value)
        except TypeError:
            ok = False
        return None if ok else f"{self.describe()} (was {_text(actual)})"


def _conditions(value: object) -> tuple[Condition, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise InvalidProgramError("conditions", value, "must be a sequence of conditions")
    items = tuple(value)
    if not items:
        raise InvalidProgramError("conditions", items, "needs at least one condition")
    for i, item in enumerate(items):
        if not isinstance(item, Compare | All | Any):
            raise InvalidProgramError(f"conditions[{i}]", item, "must be a condition")
    return items


@attrs.frozen
class All:
    """Holds when every condition holds; the first false one is reported."""

    conditions: tuple[Condition, ...] = attrs.field(converter=_conditions)

    def needs(self) -> frozenset[Counter]:
        """The counters of every condition."""
        return frozenset().union(*(c.needs() for c in self.conditions))

    def check(self, currency: str) -> None:
        """Check every condition."""
        for c in self.conditions:
            c.check(currency)

    def describe(self) -> str:
        """``(a and b)``."""
        return "(" + " and ".join(c.describe() for c in self.conditions) + ")"

    def failure(self, ctx: PolicyContext) -> str | None:
        """The first false condition, or None."""
        for c in self.conditions:
            failed = c.failure(ctx)
            if failed is not None:
                return failed
        return None


@attrs.frozen
class Any:
    """Holds when at least one condition holds; otherwise every clause is reported."""

    conditions: tuple[Condition, ...] = attrs.field(converter=_conditions)

    def needs(self) -> frozenset[Counter]:
        """The counters of every condition."""
        return frozenset().union(*(c.needs() for c in self.conditions))

    def check(self, currency: str) -> None:
        """Check every condition."""
        for c in self.conditions:
            c.check(currency)

    def describe(self) -> str:
        """``(a or b)``."""
        return "(" + " or ".join(c.describe() for c in self.conditions) + ")"

    def failure(self, ctx: PolicyContext) -> str | None:
        """None if one condition holds, else every false clause."""
        failures = []
        for c in self.conditions:
            failed = c.failure(ctx)
            if failed is None:
                return None
            failures.append(failed)
        return "none of: " + "; ".join(failures)


class Attr:
    """Builds comparisons with Python operators: ``Attr("sale.amount") >= Money(50, "USD")``.

    ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` return a ``Compare``; so do ``in_(values)``,
    ``not_in(values)`` and ``contains(value)``. An unknown attribute is refused at once.
    """

    __slots__ = ("name",)
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        _lookup("attr", name)
        self.name = name

    def __repr__(self) -> str:
        return f"Attr({self.name!r})"

    def __eq__(self, value: object) -> Compare:  # type: ignore[override]
        return Compare(self.name, "==", value)

    def __ne__(self, value: object) -> Compare:  # type: ignore[override]
        return Compare(self.name, "!=", value)

    def __lt__(self, value: object) -> Compare:
        return Compare(self.name, "<", value)

    def __le__(self, value: object) -> Compare:
        return Compare(self.name, "<=", value)

    def __gt__(self, value: object) -> Compare:
        return Compare(self.name, ">", value)

    def __ge__(self, value: object) -> Compare:
        return Compare(self.name, ">=", value)

    def in_(self, values: Iterable[object]) -> Compare:
        """``attribute in values``."""
        return Compare(self.name, "in", tuple(values))

    def not_in(self, values: Iterable[object]) -> Compare:
        """``attribute not in values``."""
        return Compare(self.name, "not in", tuple(values))

    def contains(self, value: object) -> Compare:
        """``value in attribute`` (a sku among the order's skus, a substring)."""
        return Compare(self.name, "contains", value)


AllOf = All
"""``All`` under the name the top-level ``referralkit`` package exports (``rk.AllOf``), so a
``from referralkit import *`` does not shadow ``typing.Any``/``builtins.all``."""
AnyOf = Any
"""``Any`` under the name the top-level ``referralkit`` package exports (``rk.AnyOf``)."""
