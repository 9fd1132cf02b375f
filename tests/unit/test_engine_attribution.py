"""Attribution wired into the Engine: touches, rules, links, code limits, fraud checks."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

import referralkit as rk
from referralkit.attribution import (
    AttributionRules,
    CircularCheck,
    DisposableEmailCheck,
    FraudAction,
    LinkSigner,
    SameIdentityCheck,
    VelocityCheck,
    keyed_hash,
)
from referralkit.testing import check_one_referrer

START = datetime(2026, 1, 5, tzinfo=UTC)
KEY = b"k" * 32
DAY = timedelta(days=1)
USD = "USD"


def program(rules: AttributionRules | None = None, **kwargs: object) -> rk.Program:
    return rk.Program(
        id="friends",
        effective_at=START - timedelta(days=365),
        currency=USD,
        policies=[rk.DoubleSided(rk.Cash(rk.Money(10, USD)), rk.Credit(rk.Money(5, USD)))],
        attribution=rules or AttributionRules(),
        **kwargs,  # type: ignore[arg-type]
    )


def engine(
    rules: AttributionRules | None = None,
    *,
    store: rk.Store | None = None,
    signer: LinkSigner | None = None,
    checks: Sequence[object] = (),
) -> rk.Engine:
    return rk.Engine(
        program(rules),
        store or rk.InMemoryStore(),
        clock=rk.ManualClock(START),
        link_signer=signer,
        fraud_checks=checks,  # type: ignore[arg-type]
    )


_ids = itertools.count()


def click(code: str, at: datetime, visitor: str = "v-bob", **kwargs: object) -> rk.Click:
    return rk.Click(
        event_id=f"c-{next(_ids)}",
        at=at,
        code=code,
        visitor_id=visitor,
        **kwargs,  # type: ignore[arg-type]
    )


def signup(who: str = "bob", at: datetime = START, **kwargs: object) -> rk.Signup:
    return rk.Signup(event_id=f"s-{next(_ids)}", participant_id=who, at=at, **kwargs)  # type: ignore[arg-type]


def purchase(who: str = "bob", at: datetime = START + DAY, **kwargs: object) -> rk.Purchase:
    n = next(_ids)
    return rk.Purchase(
        event_id=f"p-{n}",
        participant_id=who,
        order_id=f"o-{n}",
        amount=rk.Money("50.00", USD),
        at=at,
        **kwargs,  # type: ignore[arg-type]
    )


# -- precedence rules and models, table-driven ---------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    rules: AttributionRules
    clicks: tuple[tuple[str, timedelta], ...]  # (referrer, time before the sign-up)
    code: str | None  # the referrer whose code is typed at sign-up
    winner: str | None
    reason: str | None  # the winning touch's rule, or the refusal


D = AttributionRules()
CASES = [
    Case(
        "one click, no code",
        D,
        (("alice", timedelta(hours=1)),),
        None,
        "alice",
        "attribution.last_touch",
    ),
    Case(
        "last touch among clicks",
        D,
        (("alice", timedelta(hours=5)), ("carol", timedelta(hours=1))),
        None,
        "carol",
        "attribution.last_touch",
    ),
    Case(
        "first touch among clicks",
        AttributionRules(model="first_touch"),
        (("alice", timedelta(hours=5)), ("carol", timedelta(hours=1))),
        None,
        "alice",
        "attribution.first_touch",
    ),
    Case(
        "first bind keeps the first referrer",
        AttributionRules(model="first_bind"),
        (
            ("alice", timedelta(hours=5)),
            ("carol", timedelta(hours=3)),
            ("alice", timedelta(hours=1)),
        ),
        None,
        "alice",
        "attribution.first_bind",
    ),
    Case(
        "a code beats an earlier click of someone else",
        D,
        (("alice", timedelta(hours=1)),),
        "carol",
        "carol",
        "attribution.last_touch",
    ),
    Case(
        "a code beats clicks under first touch too",
        AttributionRules(model="first_touch"),
        (("alice", timedelta(hours=1)),),
        "carol",
        "carol",
        "attribution.first_touch",
    ),
    Case(
        "without code_beats_click the first click wins under first touch",
        AttributionRules(model="first_touch", code_beats_click=False),
        (("alice", timedelta(hours=1)),),
        "carol",
        "alice",
        "attribution.first_touch",
    ),
    Case(
        "a click exactly at the window's edge counts",
        AttributionRules(window=timedelta(days=7)),
        (("alice", timedelta(days=7)),),
        None,
        "alice",
        "attribution.last_touch",
    ),
    Case(
        "a click one microsecond outside the window does not",
        AttributionRules(window=timedelta(days=7)),
        (("alice", timedelta(days=7, microseconds=1)),),
        None,
        None,
        "referral.no_touch_in_window",
    ),
    Case(
        "an outside click loses to nothing: the code in the window wins",
        AttributionRules(window=timedelta(days=7), code_beats_click=False),
        (("alice", timedelta(days=8)),),
        "carol",
        "carol",
        "attribution.last_touch",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_precedence_rules_and_models(case: Case) -> None:
    e = engine(case.rules)
    codes = {who: e.issue_code(who) for who in ("alice", "carol")}
    for referrer, before in case.clicks:
        e.handle(click(codes[referrer], START - before))
    code = codes[case.code] if case.code else None
    outcome = e.handle(signup(code=code, visitor_id="v-bob"))
    referral = e.referral_of("bob")
    if case.winner is None:
        assert referral is None
        assert case.reason in outcome.reasons()
        assert e.explain("bob").referral is None
        return
    assert referral is not None
    assert referral.referrer_id == case.winner
    won = [d for d in referral.explanation if d.code == "touch.won"]
    assert len(won) == 1
    assert won[0].param_map["reason"] == case.reason
    assert won[0].param_map["referrer"] == case.winner
    assert len(referral.explanation) == len(case.clicks) + (1 if case.code else 0)
    assert e.explain("bob").decisions == referral.explanation
    check_one_referrer(e.store)


def test_the_explanation_says_why_each_losing_touch_lost() -> None:
    """A click that lost to a code, and one outside the window, are explained as such."""
    e = engine(AttributionRules(window=timedelta(days=7)))
    alice, carol = e.issue_code("alice"), e.issue_code("carol")
    e.handle(click(alice, START - timedelta(days=10), channel="email", campaign="spring"))
    e.handle(click(alice, START - timedelta(hours=2), channel="social"))
    outcome = e.handle(signup(code=carol, visitor_id="v-bob"))
    reasons = [(d.code, d.param_map["reason"]) for d in e.explain("bob").decisions]
    assert reasons == [
        ("touch.ignored", "attribution.outside_window"),
        ("touch.lost", "attribution.code_beats_click"),
        ("touch.won", "attribution.last_touch"),
    ]
    assert e.explain("bob").decisions[0].param_map["campaign"] == "spring"
    # The outcome shows the touches that did not win, then the referral.
    assert outcome.reasons()[:3] == ("touch.ignored", "touch.lost", "referral.created")
    assert "carol" in e.explain("bob").text()


def test_a_click_with_an_unknown_code_or_no_visitor_is_only_logged() -> None:
    e = engine()
    e.issue_code("alice")
    e.handle(rk.Click(event_id="c-x", at=START, code="NOPE-NOPE", visitor_id="v"))
    e.handle(rk.Click(event_id="c-y", at=START, code=e.code_of("alice")))
    assert e.store.dump()["touches"] == []


def test_a_visitors_clicks_become_the_participants_touches_at_sign_up() -> None:
    """After the sign-up, the visitor's clicks are listed under the participant, and a
    later click of that visitor is theirs too."""
    e = engine()
    alice = e.issue_code("alice")
    e.handle(click(alice, START - DAY))
    e.handle(signup(visitor_id="v-bob"))
    e.handle(click(alice, START + DAY))
    with e.store.unit_of_work() as uow:
        mine = uow.touches.of_participant("friends", "bob")
    assert [t.kind for t in mine] == ["click", "signup", "click"]


# -- binding at the first purchase ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "winner"),
    [
        (AttributionRules(bind_at="first_purchase"), "carol"),
        (AttributionRules(bind_at="first_purchase", model="first_touch"), "carol"),
        (
            AttributionRules(bind_at="first_purchase", model="first_touch", code_beats_click=False),
            "alice",
        ),
        (AttributionRules(bind_at="first_purchase", code_beats_click=False), "carol"),
    ],
)
def test_a_code_typed_at_checkout_against_an_earlier_click_from_someone_else(
    rules: AttributionRules, winner: str
) -> None:
    e = engine(rules)
    alice, carol = e.issue_code("alice"), e.issue_code("carol")
    e.handle(click(alice, START - timedelta(hours=3)))
    deferred = e.handle(signup(visitor_id="v-bob"))
    assert deferred.reasons() == ("attribution.deferred",)
    assert e.referral_of("bob") is None
    outcome = e.handle(purchase(code=carol))
    referral = e.referral_of("bob")
    assert referral is not None
    assert referral.referrer_id == winner
    assert referral.event_id == outcome.event_id
    assert "referral.created" in outcome.reasons()
    assert {g.participant_id for g in outcome.grants} == {winner, "bob"}
    # A later purchase with yet another code changes nothing.
    dave = e.issue_code("dave")
    later = e.handle(purchase(at=START + 2 * DAY, code=dave))
    assert "touch.not_binding" in later.reasons()
    assert e.referral_of("bob") == referral


def test_only_the_first_purchase_binds() -> None:
    e = engine(AttributionRules(bind_at="first_purchase"))
    carol = e.issue_code("carol")
    e.handle(signup())
    e.handle(purchase())
    outcome = e.handle(purchase(at=START + 2 * DAY, code=carol))
    assert e.referral_of("bob") is None
    assert outcome.reasons() == ("purchase.not_referred",)


def test_a_code_at_checkout_does_not_bind_when_the_program_binds_at_sign_up() -> None:
    e = engine()
    carol = e.issue_code("carol")
    e.handle(signup())
    outcome = e.handle(purchase(code=carol))
    assert e.referral_of("bob") is None
    assert outcome.reasons() == ("attribution.not_at_purchase", "purchase.not_referred")


def test_a_referee_bound_at_sign_up_keeps_the_referrer_against_a_checkout_code() -> None:
    e = engine()
    alice, carol = e.issue_code("alice"), e.issue_code("carol")
    e.handle(signup(code=alice))
    outcome = e.handle(purchase(code=carol))
    assert e.referral_of("bob").referrer_id == "alice"  # type: ignore[union-attr]
    d = outcome.decisions[0]
    assert (d.code, d.param_map["referrer"], d.param_map["bound"]) == (
        "touch.not_binding",
        "carol",
        "alice",
    )


# -- signed links --------------------------------------------------------------------------


def test_a_signed_link_token_at_sign_up_refers() -> None:
    signer = LinkSigner({"k1": KEY}, current="k1")
    e = engine(signer=signer)
    token = e.link_token("alice")
    outcome = e.handle(signup(link_token=token))
    referral = e.referral_of("bob")
    assert referral is not None
    assert referral.referrer_id == "alice"
    assert referral.channel == "link"
    assert "referral.created" in outcome.reasons()


def test_a_signed_link_token_on_a_click_is_a_touch() -> None:
    signer = LinkSigner({"k1": KEY}, current="k1")
    e = engine(signer=signer)
    token = e.link_token("alice")
    e.handle(
        rk.Click(event_id="c", at=START - DAY, link_token=token, visitor_id="v", channel="sms")
    )
    e.handle(signup(visitor_id="v"))
    referral = e.referral_of("bob")
    assert referral is not None
    assert (referral.referrer_id, referral.channel) == ("alice", "sms")


@pytest.mark.parametrize(
    "mangle", [lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), lambda t: t[:10]]
)
def test_a_tampered_or_truncated_token_is_a_refusal_not_an_error(mangle) -> None:  # type: ignore[no-untyped-def]
    signer = LinkSigner({"k1": KEY}, current="k1")
    e = engine(signer=signer)
    outcome = e.handle(signup(link_token=mangle(e.link_token("alice"))))
    assert outcome.reasons() == ("referral.invalid_token",)
    assert outcome.decisions[0].verdict is rk.Verdict.REFUSED
    assert e.referral_of("bob") is None


def test_a_token_without_a_signer_is_refused() -> None:
    e = engine()
    outcome = e.handle(signup(link_token="k1.YWxpY2U.xxx"))
    assert outcome.reasons() == ("referral.invalid_token",)
    with pytest.raises(rk.InvalidInputError, match="link_signer"):
        e.link_token("alice")


# -- per-code limits -----------------------------------------------------------------------


def test_a_code_with_max_uses_refuses_once_exhausted() -> None:
    e = engine()
    code = e.issue_code("alice", max_uses=1)
    assert "referral.created" in e.handle(signup("bob", code=code)).reasons()
    before = e.store.dump()
    outcome = e.handle(signup("carol", code=code))
    assert outcome.reasons() == ("referral.code_exhausted",)
    assert outcome.decisions[0].param_map["max_uses"] == "1"
    after = e.store.dump()
    assert after["referrals"] == before["referrals"]
    assert after["counters"] == before["counters"]


@pytest.mark.parametrize(
    ("offset", "refused"), [(timedelta(0), True), (-timedelta(microseconds=1), False)]
)
def test_a_code_expires_at_its_expires_at(offset: timedelta, refused: bool) -> None:
    """A sign-up exactly at expires_at is refused; one microsecond before is referred."""
    e = engine()
    code = e.issue_code("alice", expires_at=START + DAY)
    outcome = e.handle(signup(at=START + DAY + offset, code=code))
    assert (outcome.reasons() == ("referral.code_expired",)) is refused
    assert (e.referral_of("bob") is None) is refused


def test_a_deactivated_code_refers_no_one_and_its_clicks_no_longer_count() -> None:
    e = engine()
    code = e.issue_code("alice")
    e.handle(click(code, START - DAY))
    assert e.deactivate_code(code.lower()) is True
    assert e.deactivate_code(code) is False
    outcome = e.handle(signup(visitor_id="v-bob"))
    assert outcome.reasons() == ("referral.code_deactivated",)
    assert e.referral_of("bob") is None


def test_issue_code_and_deactivate_code_validate_their_arguments() -> None:
    e = engine()
    with pytest.raises(rk.InvalidInputError, match="max_uses"):
        e.issue_code("alice", max_uses=0)
    with pytest.raises(rk.NaiveDatetimeError):
        e.issue_code("alice", expires_at=datetime(2026, 1, 1))
    with pytest.raises(rk.InvalidInputError, match="no participant owns"):
        e.deactivate_code("ZZZZZZZZ")
    assert e.code_of("alice") is None


# -- eligibility and fraud -----------------------------------------------------------------


def h(value: str) -> str:
    return keyed_hash(value, KEY)


def test_an_existing_customer_marked_by_the_host_is_not_referred_unless_allowed() -> None:
    e = engine()
    code = e.issue_code("alice")
    assert e.handle(signup(code=code, existing_customer=True)).reasons() == (
        "referral.existing_customer",
    )
    e2 = engine(AttributionRules(allow_existing_customers=True))
    code2 = e2.issue_code("alice")
    assert "referral.created" in e2.handle(signup(code=code2, existing_customer=True)).reasons()


def test_a_shared_device_holds_the_referral_and_notifies() -> None:
    e = engine(checks=[SameIdentityCheck()])
    code = e.issue_code("alice")
    e.handle(signup("alice", device=h("device-1")))
    outcome = e.handle(signup("bob", code=code, device=h("device-1")))
    referral = e.referral_of("bob")
    assert referral is not None
    assert referral.status == "held"
    assert "referral.held" in outcome.reasons()
    held = [n for n in e.store.dump()["outbox"] if n.kind == "referral_held"]
    assert len(held) == 1
    assert dict(held[0].data) == {
        "referral_id": referral.referral_id,
        "reason": "fraud.same_device",
    }
    assert referral.explanation[-1].code == "referral.held"


def test_a_shared_payment_fingerprint_blocks_the_referral() -> None:
    e = engine(checks=[SameIdentityCheck()])
    code = e.issue_code("alice")
    e.handle(signup("alice", payment_fingerprint=h("card")))
    outcome = e.handle(signup("bob", code=code, payment_fingerprint=h("card")))
    assert outcome.reasons()[0] == "referral.blocked"
    assert outcome.decisions[0].param_map["reasons"] == "fraud.same_payment_fingerprint"
    assert e.referral_of("bob") is None
    assert e.explain("bob").reasons() == outcome.reasons()


def test_a_shared_ip_flags_the_referral() -> None:
    e = engine(checks=[SameIdentityCheck()])
    code = e.issue_code("alice")
    e.handle(signup("alice", ip=h("10.0.0.1")))
    outcome = e.handle(signup("bob", code=code, ip=h("10.0.0.1")))
    referral = e.referral_of("bob")
    assert referral is not None
    assert referral.status == "active"
    assert "referral.flagged" in outcome.reasons()


def test_velocity_holds_referrals_above_the_hourly_limit() -> None:
    e = engine(checks=[VelocityCheck(per_hour=2)])
    code = e.issue_code("alice")
    statuses = []
    for n in range(4):
        e.handle(signup(f"friend-{n}", at=START + timedelta(minutes=n), code=code))
        statuses.append(e.referral_of(f"friend-{n}").status)  # type: ignore[union-attr]
    e.handle(signup("friend-late", at=START + timedelta(hours=1), code=code))
    assert statuses == ["active", "active", "held", "held"]
    assert e.referral_of("friend-late").status == "active"  # type: ignore[union-attr]


def test_a_circular_referral_is_blocked() -> None:
    e = engine(checks=[CircularCheck()])
    alice_code = e.issue_code("alice")
    e.handle(signup("bob", code=alice_code))
    bob_code = e.issue_code("bob")
    outcome = e.handle(signup("alice", at=START + DAY, code=bob_code))
    assert outcome.reasons()[0] == "referral.blocked"
    assert outcome.decisions[0].param_map["reasons"] == "fraud.circular"


def test_a_disposable_email_is_flagged_or_blocked_as_configured() -> None:
    e = engine(checks=[DisposableEmailCheck(action=FraudAction.BLOCK)])
    code = e.issue_code("alice")
    outcome = e.handle(signup(code=code, email="x@mailinator.com"))
    assert outcome.reasons()[0] == "referral.blocked"
    e2 = engine(checks=[DisposableEmailCheck()])
    code2 = e2.issue_code("alice")
    assert "referral.flagged" in e2.handle(signup(code=code2, email="x@mailinator.com")).reasons()


def test_a_referrer_who_signs_up_later_with_the_referees_inbox_has_the_referral_held() -> None:
    e = engine()
    code = e.issue_code("alice")
    e.handle(signup("bob", code=code, email="Jane.Doe+bob@gmail.com"))
    outcome = e.handle(signup("alice", at=START + DAY, email="janedoe@googlemail.com"))
    assert outcome.reasons() == ("referral.held_later", "referral.no_code")
    assert e.referral_of("bob").status == "held"  # type: ignore[union-attr]
    check_one_referrer(e.store)


def test_fraud_checks_must_implement_the_protocol() -> None:
    with pytest.raises(rk.InvalidInputError, match=r"fraud_checks\[0\]"):
        engine(checks=[object()])


# -- explain, bad input, programs ----------------------------------------------------------


def test_explain_without_a_referral_gives_the_deciding_events_decisions() -> None:
    e = engine(AttributionRules(window=timedelta(days=1)))
    alice = e.issue_code("alice")
    e.handle(click(alice, START - 2 * DAY))
    outcome = e.handle(signup(visitor_id="v-bob"))
    why = e.explain("bob")
    assert why.referral is None
    assert why.event_id == outcome.event_id
    assert why.reasons() == ("touch.ignored", "referral.no_touch_in_window")
    assert "was not referred" in why.text()
    assert e.explain("nobody").reasons() == ("attribution.no_touches",)


def test_identity_fields_take_keyed_hashes_only() -> None:
    with pytest.raises(rk.InvalidInputError, match=r"signup\.device"):
        signup(device="my-phone-imei")
    with pytest.raises(rk.InvalidInputError, match=r"signup\.existing_customer"):
        signup(existing_customer="yes")
    with pytest.raises(rk.InvalidInputError, match=r"click\.link_token"):
        rk.Click(event_id="c", at=START, link_token="")
    with pytest.raises(rk.InvalidInputError, match=r"purchase\.code"):
        purchase(code="")


def test_a_click_in_the_future_is_refused_when_a_tolerance_is_set() -> None:
    e = rk.Engine(
        program(),
        rk.InMemoryStore(),
        clock=rk.ManualClock(START),
        future_tolerance=timedelta(minutes=5),
    )
    code = e.issue_code("alice")
    e.handle(click(code, START + timedelta(minutes=5)))
    before = e.store.dump()
    with pytest.raises(rk.InvalidEventError, match=r"click\.at"):
        e.handle(click(code, START + timedelta(minutes=5, microseconds=1)))
    assert e.store.dump() == before


def test_program_attribution_rules_round_trip_and_leave_default_digests_alone() -> None:
    rules = AttributionRules(
        window=timedelta(days=14, hours=6),
        model="first_bind",
        code_beats_click=False,
        bind_at="first_purchase",
        allow_existing_customers=True,
    )
    p = program(rules)
    data = p.to_dict()
    assert data["attribution"]["window"] == {"days": 14, "seconds": 6 * 3600}
    assert rk.Program.from_dict(data) == p
    assert rk.Program.from_dict(data).digest == p.digest
    plain = program()
    assert "attribution" not in plain.to_dict()
    assert "attribution" not in plain.definition()
    assert plain.digest != p.digest
    with pytest.raises(rk.InvalidProgramError, match=r"attribution\.model"):
        rk.Program.from_dict({**data, "attribution": {"model": "random"}})
    with pytest.raises(rk.InvalidProgramError, match=r"attribution\.window"):
        rk.Program.from_dict({**data, "attribution": {"window": {"weeks": 1}}})
    with pytest.raises(rk.InvalidProgramError, match=r"program\.attribution"):
        program(rules="last_touch")  # type: ignore[arg-type]


def test_the_explanation_and_status_persist_in_sqlite() -> None:
    store = rk.SQLiteStore(":memory:")
    e = engine(store=store, checks=[SameIdentityCheck()])
    alice, carol = e.issue_code("alice"), e.issue_code("carol")
    e.handle(signup("carol", device=h("d")))
    e.handle(click(alice, START - DAY))
    e.handle(signup("bob", code=carol, visitor_id="v-bob", device=h("d")))
    reference = engine(checks=[SameIdentityCheck()])
    assert reference.issue_code("alice")
    assert reference.issue_code("carol")
    referral = e.referral_of("bob")
    assert referral is not None
    assert referral.status == "held"
    assert [d.code for d in referral.explanation] == ["touch.lost", "touch.won", "referral.held"]
    assert e.explain("bob").decisions == referral.explanation


def test_purge_touches_deletes_old_touch_data_and_keeps_referrals_and_the_ledger() -> None:
    e = engine(AttributionRules(window=timedelta(days=7)))
    alice = e.issue_code("alice")
    e.handle(click(alice, START - DAY))
    e.handle(click(alice, START - 20 * DAY, visitor="v-old"))
    e.handle(signup(visitor_id="v-bob", ip=h("1.2.3.4")))
    e.handle(purchase())
    before = e.store.dump()
    assert len(before["touches"]) == 3
    assert e.purge_touches(timedelta(days=10), now=START) == 1
    assert e.purge_touches(timedelta(days=7), now=START + 7 * DAY) == 1  # the click
    assert e.purge_touches(timedelta(days=7), now=START + 8 * DAY) == 1  # the sign-up
    after = e.store.dump()
    assert after["touches"] == []
    for table in ("referrals", "rewards", "entries", "counters", "events", "outbox"):
        assert after[table] == before[table], table
    assert e.explain("bob").decisions == e.referral_of("bob").explanation  # type: ignore[union-attr]
    with pytest.raises(rk.InvalidInputError, match="older_than"):
        e.purge_touches(timedelta(days=6))
    with pytest.raises(rk.InvalidInputError, match="older_than"):
        e.purge_touches(7)  # type: ignore[arg-type]


def test_a_click_with_a_code_and_a_signed_link_keeps_both_touches() -> None:
    signer = LinkSigner({"k1": KEY}, current="k1")
    e = engine(signer=signer)
    carol = e.issue_code("carol")
    token = e.link_token("alice")
    e.handle(rk.Click(event_id="c", at=START, code=carol, link_token=token, visitor_id="v"))
    touches = e.store.dump()["touches"]
    assert sorted(t.referrer_id for t in touches) == ["alice", "carol"]
    assert len({t.touch_id for t in touches}) == 2


def test_erasing_a_participant_pseudonymises_the_email_and_keeps_every_total() -> None:
    e = engine()
    alice = e.issue_code("alice")
    e.handle(click(alice, START - DAY))
    e.handle(signup(visitor_id="v-bob", email="bob@example.com", ip=h("1.2.3.4")))
    e.handle(purchase())
    before = e.store.dump()
    balances = (e.balance("alice"), e.balance("bob"))
    assert e.erase_participant("bob") == 2
    after = e.store.dump()
    assert after["touches"] == []
    for table in ("referrals", "rewards", "entries", "counters", "outbox", "participants"):
        assert after[table] == before[table], table
    email = dict(after["personal_data"])[("friends", "bob")]
    assert email.endswith("@erased.invalid")
    assert "bob@" not in email
    assert (e.balance("alice"), e.balance("bob")) == balances
    check_one_referrer(e.store)


@pytest.mark.parametrize("batch_size", [1, 50])
def test_sqlite_gives_the_reference_attribution_one_by_one_and_in_batches(batch_size: int) -> None:
    """Clicks, sign-ups and checkout codes handled on SQLiteStore (each event alone, or in
    batches whose touch reads must see the batch's own clicks) give InMemoryStore's
    referrals, explanations and touches."""
    rules = AttributionRules(window=timedelta(days=10))
    dumps = []
    for store in (rk.InMemoryStore(), rk.SQLiteStore(":memory:")):
        numbers = iter(range(100))
        e = rk.Engine(
            program(rules),
            store,
            clock=rk.ManualClock(START),
            code_factory=lambda numbers=numbers: f"CODE{next(numbers):04d}",  # type: ignore[misc]
        )
        codes = [e.issue_code(who) for who in ("alice", "carol", "dave")]
        events: list[rk.Event] = []
        for n in range(30):
            events.append(
                rk.Click(
                    event_id=f"c{n}",
                    at=START + timedelta(hours=n),
                    code=codes[n % 3],
                    visitor_id=f"v{n % 7}",
                    channel="social",
                )
            )
            if n % 4 == 3:
                events.append(
                    rk.Signup(
                        event_id=f"s{n}",
                        participant_id=f"p{n % 7}",
                        at=START + timedelta(hours=n, minutes=30),
                        visitor_id=f"v{n % 7}",
                        code=codes[(n + 1) % 3] if n % 8 == 3 else None,
                    )
                )
        results = e.handle_many(events, batch_size=batch_size)
        assert all(isinstance(r, rk.Outcome) for r in results)
        dump = store.dump()
        dumps.append({t: dump[t] for t in ("referrals", "touches", "counters", "rewards")})
    assert dumps[0]["referrals"]
    assert dumps[0] == dumps[1]


def test_explain_before_a_first_purchase_binding_says_the_decision_is_to_come() -> None:
    e = engine(AttributionRules(bind_at="first_purchase"))
    e.handle(signup(code=e.issue_code("alice")))
    assert e.explain("bob").reasons() == ("attribution.deferred",)
    e.handle(purchase())
    assert e.explain("bob").referral is not None
