"""Attribution resolution: which referrer a referee's touches credit (pure).

A touch is a click on someone's referral link or a code someone typed (at sign-up or at
checkout). [`resolve_attribution`][referralkit.attribution.resolve_attribution] picks the
winner among a referee's touches under
[`AttributionRules`][referralkit.attribution.AttributionRules] and explains every touch's
fate, so support staff can answer "why did my friend not count?".
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple, TypeAlias

import attrs

from referralkit._errors import InvalidInputError
from referralkit._values._checks import require_aware, require_id
from referralkit._values.events import CHANNELS

__all__ = [
    "DEFAULT_ATTRIBUTION_RULES",
    "AttributionDecision",
    "AttributionRules",
    "Touch",
    "TouchExplanation",
    "TouchVerdict",
    "resolve_attribution",
]

TouchKind: TypeAlias = Literal["click", "code"]
Model: TypeAlias = Literal["last_touch", "first_touch", "first_bind"]
BindAt: TypeAlias = Literal["signup", "first_purchase"]

_KINDS = ("click", "code")
_MODELS = ("last_touch", "first_touch", "first_bind")
_BIND_AT = ("signup", "first_purchase")

_Validator: TypeAlias = Callable[[Any, Any, Any], None]


def _one_of(field: str, options: tuple[str, ...]) -> _Validator:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, str) or value not in options:
            raise InvalidInputError(field, value, f"must be one of {list(options)}")

    return check


def _optional_id(field: str) -> _Validator:
    def check(_: object, __: object, value: object) -> None:
        if value is not None:
            require_id(field, value)

    return check


def _flag(field: str) -> _Validator:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, bool):
            raise InvalidInputError(field, value, "must be True or False")

    return check


def _default_channel(touch: Touch) -> str:
    return "code" if touch.kind == "code" else "link"


@attrs.frozen(kw_only=True)
class Touch:
    """One contact between a would-be referee and a referrer.

    Args:
        kind: ``"click"`` (followed a referral link) or ``"code"`` (typed a referral code,
            at sign-up or at checkout).
        referrer_id: Whose link or code it was.
        at: When it happened (timezone-aware).
        channel: One of [`CHANNELS`][referralkit.CHANNELS]; by default ``"code"`` for a
            code and ``"link"`` for a click.
        campaign: The campaign (UTM campaign), if known.
        visitor_id: The host's anonymous visitor id, if known.
        event_id: The event the touch came from, if any.
    """

    kind: TouchKind = attrs.field(validator=_one_of("touch.kind", _KINDS))
    referrer_id: str
    at: datetime
    channel: str = attrs.field(default=attrs.Factory(_default_channel, takes_self=True))
    campaign: str | None = attrs.field(default=None, validator=_optional_id("touch.campaign"))
    visitor_id: str | None = attrs.field(default=None, validator=_optional_id("touch.visitor_id"))
    event_id: str | None = attrs.field(default=None, validator=_optional_id("touch.event_id"))

    def __attrs_post_init__(self) -> None:
        require_id("touch.referrer_id", self.referrer_id)
        require_aware("touch.at", self.at)
        if self.channel not in CHANNELS:
            raise InvalidInputError(
                "touch.channel", self.channel, f"must be one of {sorted(CHANNELS)}"
            )


def _window(_: object, __: object, value: object) -> None:
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise InvalidInputError("rules.window", value, "must be a positive timedelta")


@attrs.frozen(kw_only=True)
class AttributionRules:
    """How a referee's touches are turned into one referrer.

    Args:
        window: How far back a touch counts, measured from the moment of the decision.
            Inclusive: a touch exactly ``window`` old counts, one microsecond older does
            not. 30 days by default.
        model: Which touch wins among those that count:

            - ``"last_touch"``: the latest touch.
            - ``"first_touch"``: the earliest touch.
            - ``"first_bind"``: the referrer of the earliest touch keeps the referee, and
              their latest touch is the winner (so its channel and campaign are credited);
              touches by other referrers lose.
        code_beats_click: When any code touch counts, only code touches compete: a code
            typed by the referee is stronger evidence than a link clicked.
        bind_at: When the engine binds the referee to the winner: ``"signup"`` or
            ``"first_purchase"``. Read by the engine, not by ``resolve_attribution``.
        allow_existing_customers: Whether a referee who was already a customer may be
            referred. Read by the engine, not by ``resolve_attribution``.
    """

    window: timedelta = attrs.field(default=timedelta(days=30), validator=_window)
    model: Model = attrs.field(default="last_touch", validator=_one_of("rules.model", _MODELS))
    code_beats_click: bool = attrs.field(default=True, validator=_flag("rules.code_beats_click"))
    bind_at: BindAt = attrs.field(default="signup", validator=_one_of("rules.bind_at", _BIND_AT))
    allow_existing_customers: bool = attrs.field(
        default=False, validator=_flag("rules.allow_existing_customers")
    )


#: The defaults: 30 days, last touch, codes beat clicks, bound at sign-up.
DEFAULT_ATTRIBUTION_RULES = AttributionRules()


class TouchVerdict(enum.StrEnum):
    """What became of one touch."""

    WON = "won"
    """The touch chose the referrer."""
    LOST = "lost"
    """The touch counted, but another won."""
    IGNORED = "ignored"
    """The touch did not count (outside the window, or after the decision)."""


class TouchExplanation(NamedTuple):
    """One touch, what became of it, and the reason code why.

    Reason codes: ``"attribution.last_touch"``, ``"attribution.first_touch"``,
    ``"attribution.first_bind"`` (the winner, by model); ``"attribution.later_touch_won"``,
    ``"attribution.earlier_touch_won"``, ``"attribution.tie_broken"`` (same instant as the
    winner, lost on referrer id), ``"attribution.bound_to_other"`` and
    ``"attribution.superseded"`` (first bind: another referrer bound first, or a later touch
    of the same referrer won), ``"attribution.code_beats_click"`` (lost); and
    ``"attribution.outside_window"``, ``"attribution.after_decision"`` (ignored).
    """

    touch: Touch
    verdict: TouchVerdict
    reason: str


@attrs.frozen
class AttributionDecision:
    """Which referrer a referee's touches credit, and why.

    Attributes:
        referrer_id: The winner's referrer, or ``None`` when no touch counted.
        winner: The winning touch, or ``None``.
        explanation: Every touch given, in chronological order (ties in a fixed order),
            with its verdict and reason code.
    """

    referrer_id: str | None
    winner: Touch | None
    explanation: tuple[TouchExplanation, ...]

    def explain(self) -> str:
        """The explanation as text, one line per touch."""
        lines = []
        for touch, verdict, reason in self.explanation:
            lines.append(
                f"{touch.kind} by {touch.referrer_id} at {touch.at.isoformat()}"
                f" via {touch.channel}: {verdict} ({reason})"
            )
        return "\n".join(lines) if lines else "no touches"


def _key(touch: Touch) -> tuple[object, ...]:
    # A total order on touches, so the result never depends on the order given.
    return (
        touch.at,
        touch.referrer_id,
        touch.kind,
        touch.channel,
        *((value is not None, value or "") for value in (touch.campaign, touch.visitor_id)),
        (touch.event_id is not None, touch.event_id or ""),
    )


def _pick(touches: list[Touch], *, latest: bool) -> Touch:
    instant = max(t.at for t in touches) if latest else min(t.at for t in touches)
    return min((t for t in touches if t.at == instant), key=_key)


def resolve_attribution(
    touches: Iterable[Touch],
    at: datetime,
    rules: AttributionRules = DEFAULT_ATTRIBUTION_RULES,
) -> AttributionDecision:
    """Pick the referrer a referee's touches credit at the moment ``at``.

    A touch counts when ``at - window <= touch.at <= at`` (both ends inclusive). Among the
    touches that count, code touches alone compete when ``rules.code_beats_click`` and
    there is one; then ``rules.model`` picks the winner. Touches at the same instant are
    ordered by referrer id (the smallest wins), then by their other fields, so the result
    does not depend on the order the touches are given in.

    Args:
        touches: The referee's touches, in any order.
        at: The moment of the decision: the sign-up, or the purchase (timezone-aware).
        rules: The program's attribution rules.

    Returns:
        The decision, with an explanation for every touch.

    Raises:
        InvalidInputError: a touch that is not a ``Touch``, or rules that are not
            ``AttributionRules``.
        NaiveDatetimeError: ``at`` without a time zone.
    """
    require_aware("at", at)
    if not isinstance(rules, AttributionRules):
        raise InvalidInputError("rules", rules, "must be AttributionRules")
    ordered = list(touches)
    for i, touch in enumerate(ordered):
        if not isinstance(touch, Touch):
            raise InvalidInputError(f"touches[{i}]", touch, "must be a Touch")
    ordered.sort(key=_key)

    fate: dict[int, tuple[TouchVerdict, str]] = {}
    counted: list[Touch] = []
    for i, touch in enumerate(ordered):
        if touch.at > at:
            fate[i] = (TouchVerdict.IGNORED, "attribution.after_decision")
        elif at - touch.at > rules.window:
            fate[i] = (TouchVerdict.IGNORED, "attribution.outside_window")
        else:
            counted.append(touch)
    if not counted:
        return AttributionDecision(None, None, _explain(ordered, fate))

    contenders = counted
    if rules.code_beats_click and any(t.kind == "code" for t in counted):
        contenders = [t for t in counted if t.kind == "code"]

    if rules.model == "first_bind":
        bound = _pick(contenders, latest=False).referrer_id
        winner = _pick([t for t in contenders if t.referrer_id == bound], latest=True)
    else:
        winner = _pick(contenders, latest=rules.model == "last_touch")

    for i, touch in enumerate(ordered):
        if i in fate:
            continue
        if touch is winner:
            fate[i] = (TouchVerdict.WON, f"attribution.{rules.model}")
        elif touch.kind == "click" and winner.kind == "code" and rules.code_beats_click:
            fate[i] = (TouchVerdict.LOST, "attribution.code_beats_click")
        elif rules.model == "first_bind":
            same = touch.referrer_id == winner.referrer_id
            fate[i] = (
                TouchVerdict.LOST,
                "attribution.superseded" if same else "attribution.bound_to_other",
            )
        elif touch.at == winner.at:
            fate[i] = (TouchVerdict.LOST, "attribution.tie_broken")
        elif touch.at < winner.at:
            fate[i] = (TouchVerdict.LOST, "attribution.later_touch_won")
        else:
            fate[i] = (TouchVerdict.LOST, "attribution.earlier_touch_won")
    return AttributionDecision(winner.referrer_id, winner, _explain(ordered, fate))


def _explain(
    ordered: list[Touch], fate: dict[int, tuple[TouchVerdict, str]]
) -> tuple[TouchExplanation, ...]:
    return tuple(TouchExplanation(touch, *fate[i]) for i, touch in enumerate(ordered))
