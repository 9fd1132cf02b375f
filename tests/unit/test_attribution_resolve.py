"""Attribution resolution: windows, models and precedence rules, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

import referralkit as rk
from referralkit.attribution import (
    AttributionDecision,
    AttributionRules,
    Touch,
    TouchVerdict,
    resolve_attribution,
)

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
US = timedelta(microseconds=1)
WINDOW = timedelta(days=30)


def click(who: str, ago: timedelta, **kw: object) -> Touch:
    return Touch(kind="click", referrer_id=who, at=AT - ago, **kw)  # type: ignore[arg-type]


def code(who: str, ago: timedelta, **kw: object) -> Touch:
    return Touch(kind="code", referrer_id=who, at=AT - ago, **kw)  # type: ignore[arg-type]


def fates(decision: AttributionDecision) -> dict[tuple[str, str, datetime], tuple[str, str]]:
    return {(t.kind, t.referrer_id, t.at): (str(v), r) for t, v, r in decision.explanation}


# (name, touches, rules, expected referrer)
CASES = [
    ("no touches", [], {}, None),
    ("one click", [click("alice", DAY)], {}, "alice"),
    ("click exactly at the window edge counts", [click("alice", WINDOW)], {}, "alice"),
    ("one microsecond past the window does not", [click("alice", WINDOW + US)], {}, None),
    ("a touch at the decision instant counts", [code("alice", timedelta(0))], {}, "alice"),
    ("a touch after the decision does not", [click("alice", -US)], {}, None),
    ("last touch: the later click wins", [click("alice", 5 * DAY), click("bob", DAY)], {}, "bob"),
    (
        "first touch: the earlier click wins",
        [click("alice", 5 * DAY), click("bob", DAY)],
        {"model": "first_touch"},
        "alice",
    ),
    (
        "first touch: an earlier click outside the window is ignored",
        [click("alice", WINDOW + US), click("bob", DAY)],
        {"model": "first_touch"},
        "bob",
    ),
    (
        "code typed at checkout beats an earlier click from someone else",
        [click("alice", DAY), code("bob", timedelta(0))],
        {},
        "bob",
    ),
    (
        "an earlier code beats a later click",
        [code("bob", 10 * DAY), click("alice", DAY)],
        {},
        "bob",
    ),
    (
        "without code_beats_click, last touch is last touch",
        [code("bob", 10 * DAY), click("alice", DAY)],
        {"code_beats_click": False},
        "alice",
    ),
    (
        "a code outside the window does not beat a click inside it",
        [code("bob", WINDOW + US), click("alice", DAY)],
        {},
        "alice",
    ),
    (
        "last touch among codes",
        [code("bob", 10 * DAY), code("carol", 2 * DAY), click("alice", DAY)],
        {},
        "carol",
    ),
    (
        "first touch among codes",
        [click("alice", 20 * DAY), code("bob", 10 * DAY), code("carol", 2 * DAY)],
        {"model": "first_touch"},
        "bob",
    ),
    (
        "first bind: the first referrer keeps the referee",
        [
            click("alice", 9 * DAY),
            click("bob", 5 * DAY),
            click("alice", 3 * DAY),
            click("bob", DAY),
        ],
        {"model": "first_bind"},
        "alice",
    ),
    (
        "first bind: codes first, then the first code's referrer",
        [click("alice", 9 * DAY), code("bob", 5 * DAY), code("carol", DAY)],
        {"model": "first_bind"},
        "bob",
    ),
    (
        "tie at the same instant: the smaller referrer id wins",
        [click("bob", DAY), click("alice", DAY)],
        {},
        "alice",
    ),
    (
        "tie at the same instant, first touch too",
        [click("bob", DAY), click("alice", DAY)],
        {"model": "first_touch"},
        "alice",
    ),
    (
        "a shorter window",
        [click("alice", 2 * DAY), click("bob", 7 * DAY + US)],
        {"window": timedelta(days=7), "model": "first_touch"},
        "alice",
    ),
    (
        "a shorter window, exactly at its edge",
        [click("alice", 2 * DAY), click("bob", 7 * DAY)],
        {"window": timedelta(days=7), "model": "first_touch"},
        "bob",
    ),
]


@pytest.mark.parametrize(
    ("touches", "rules", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_resolution(touches: list[Touch], rules: dict[str, object], expected: str | None) -> None:
    decision = resolve_attribution(touches, AT, AttributionRules(**rules))  # type: ignore[arg-type]
    assert decision.referrer_id == expected
    assert (decision.winner is None) == (expected is None)
    if decision.winner is not None:
        assert decision.winner.referrer_id == expected
    assert len(decision.explanation) == len(touches)
    assert sum(v is TouchVerdict.WON for _, v, _ in decision.explanation) == (expected is not None)


def test_every_touch_is_explained_with_its_reason() -> None:
    touches = [
        click("zed", WINDOW + US),
        click("yan", -US),
        click("alice", 3 * DAY),
        click("bob", 2 * DAY),
        code("carol", DAY),
        code("dave", timedelta(0)),
    ]
    decision = resolve_attribution(touches, AT)
    assert fates(decision) == {
        ("click", "zed", AT - WINDOW - US): ("ignored", "attribution.outside_window"),
        ("click", "yan", AT + US): ("ignored", "attribution.after_decision"),
        ("click", "alice", AT - 3 * DAY): ("lost", "attribution.code_beats_click"),
        ("click", "bob", AT - 2 * DAY): ("lost", "attribution.code_beats_click"),
        ("code", "carol", AT - DAY): ("lost", "attribution.later_touch_won"),
        ("code", "dave", AT): ("won", "attribution.last_touch"),
    }
    # Chronological order.
    assert [t.at for t, _, _ in decision.explanation] == sorted(t.at for t in touches)


def test_first_touch_and_first_bind_reasons() -> None:
    touches = [click("alice", 9 * DAY), click("bob", 5 * DAY), click("alice", 3 * DAY)]
    first = resolve_attribution(touches, AT, AttributionRules(model="first_touch"))
    assert fates(first) == {
        ("click", "alice", AT - 9 * DAY): ("won", "attribution.first_touch"),
        ("click", "bob", AT - 5 * DAY): ("lost", "attribution.earlier_touch_won"),
        ("click", "alice", AT - 3 * DAY): ("lost", "attribution.earlier_touch_won"),
    }
    bind = resolve_attribution(touches, AT, AttributionRules(model="first_bind"))
    assert bind.winner == touches[2]  # alice bound first; her latest touch is credited
    assert fates(bind) == {
        ("click", "alice", AT - 9 * DAY): ("lost", "attribution.superseded"),
        ("click", "bob", AT - 5 * DAY): ("lost", "attribution.bound_to_other"),
        ("click", "alice", AT - 3 * DAY): ("won", "attribution.first_bind"),
    }


def test_a_tie_names_its_reason() -> None:
    decision = resolve_attribution([click("bob", DAY), click("alice", DAY)], AT)
    assert fates(decision)[("click", "bob", AT - DAY)] == ("lost", "attribution.tie_broken")


def test_the_window_edge_holds_across_time_zones() -> None:
    plus_two = timezone(timedelta(hours=2))
    edge = Touch(kind="click", referrer_id="alice", at=(AT - WINDOW).astimezone(plus_two))
    assert resolve_attribution([edge], AT).referrer_id == "alice"
    past = Touch(kind="click", referrer_id="alice", at=(AT - WINDOW - US).astimezone(plus_two))
    assert resolve_attribution([past], AT).referrer_id is None


def test_the_winner_carries_channel_and_campaign() -> None:
    touch = click("alice", DAY, channel="email", campaign="spring", visitor_id="v1")
    decision = resolve_attribution([touch], AT)
    assert decision.winner == touch
    assert (decision.winner.channel, decision.winner.campaign) == ("email", "spring")
    assert "click by alice" in decision.explain()
    assert "won (attribution.last_touch)" in decision.explain()


def test_an_empty_decision_explains_itself() -> None:
    assert resolve_attribution([], AT).explain() == "no touches"


def test_touch_channels_default_by_kind() -> None:
    assert click("a", DAY).channel == "link"
    assert code("a", DAY).channel == "code"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "view"}, "touch.kind"),
        ({"referrer_id": ""}, "touch.referrer_id"),
        ({"at": datetime(2026, 1, 1)}, "touch.at"),
        ({"channel": "fax"}, "touch.channel"),
        ({"campaign": " spring"}, "touch.campaign"),
        ({"visitor_id": ""}, "touch.visitor_id"),
    ],
)
def test_a_bad_touch_is_refused(kwargs: dict[str, object], field: str) -> None:
    fields: dict[str, object] = {"kind": "click", "referrer_id": "alice", "at": AT, **kwargs}
    with pytest.raises(rk.InvalidInputError) as info:
        Touch(**fields)  # type: ignore[arg-type]
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": timedelta(0)}, "rules.window"),
        ({"window": 30}, "rules.window"),
        ({"model": "linear"}, "rules.model"),
        ({"code_beats_click": 1}, "rules.code_beats_click"),
        ({"bind_at": "click"}, "rules.bind_at"),
        ({"allow_existing_customers": None}, "rules.allow_existing_customers"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        AttributionRules(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_resolve_refuses_a_naive_time_and_foreign_objects() -> None:
    with pytest.raises(rk.NaiveDatetimeError):
        resolve_attribution([], datetime(2026, 1, 1))
    with pytest.raises(rk.InvalidInputError) as info:
        resolve_attribution([click("a", DAY), "b"], AT)  # type: ignore[list-item]
    assert info.value.field == "touches[1]"
