"""Attribution through the Engine: one referrer per referee, the window holds, unrelated
events do not change an outcome, and self-referral is refused through every variant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

import referralkit as rk
from referralkit.attribution import AttributionRules, LinkSigner
from referralkit.testing import CodeForm, check_one_referrer
from referralkit.testing.strategies import attribution_rules, clicks, email_aliases, touches

START = datetime(2026, 1, 1, tzinfo=UTC)
SIGNUPS_AT = START + timedelta(days=30)
REFERRERS = ("alice", "carol", "dave")
#: The codes the seeded code factory issues to REFERRERS, in order.
CODES = {"alice": "C0DE0001", "carol": "C0DE0002", "dave": "C0DE0003"}
PEOPLE = ("bob", "erin", "frank")
VISITORS = ("v-bob", "v-erin", "v-frank", "v-other")
SIGNER = LinkSigner({"k1": b"s" * 32}, current="k1")


def _engine(rules: AttributionRules) -> tuple[rk.Engine, dict[str, str]]:
    program = rk.Program(
        id="friends",
        effective_at=START - timedelta(days=365),
        currency="USD",
        policies=[rk.DoubleSided(rk.Cash(rk.Money(10, "USD")), rk.Credit(rk.Money(5, "USD")))],
        attribution=rules,
    )
    numbers = iter(range(1, 1000))
    engine = rk.Engine(
        program,
        rk.InMemoryStore(),
        clock=rk.ManualClock(START),
        link_signer=SIGNER,
        code_factory=lambda: f"CODE{next(numbers):04d}",
    )
    return engine, {who: engine.issue_code(who) for who in REFERRERS}


@st.composite
def journeys(draw: st.DrawFn) -> tuple[AttributionRules, list[rk.Event]]:
    """Clicks before the sign-ups, sign-ups (some with a code, some repeated), and
    purchases (some with a code typed at checkout), under any rules."""
    rules = draw(attribution_rules(max_window=timedelta(days=20)))
    codes = CODES
    events: list[rk.Event] = []
    drawn = draw(
        st.lists(clicks(list(codes.values()), VISITORS, start=START, max_days=29), max_size=8)
    )
    for n, click in enumerate(drawn):
        events.append(rk.Click(**{**_fields(click), "event_id": f"c{n}"}))
    for i, who in enumerate(draw(st.lists(st.sampled_from(PEOPLE), max_size=4))):
        at = SIGNUPS_AT + timedelta(hours=i)
        code = draw(st.none() | st.sampled_from(list(codes.values())))
        events.append(
            rk.Signup(event_id=f"s{i}", participant_id=who, at=at, code=code, visitor_id=f"v-{who}")
        )
        if draw(st.booleans()):
            code = draw(st.none() | st.sampled_from(list(codes.values())))
            events.append(
                rk.Purchase(
                    event_id=f"p{i}",
                    participant_id=who,
                    order_id=f"o{i}",
                    amount=rk.Money(20, "USD"),
                    at=at + timedelta(minutes=30),
                    code=code,
                )
            )
    return rules, events


def _fields(event: rk.Event) -> dict[str, object]:
    import attrs

    return {f.name: getattr(event, f.name) for f in attrs.fields(type(event)) if f.init}


def _run(rules: AttributionRules, events: list[rk.Event]) -> rk.Engine:
    engine, codes = _engine(rules)
    assert codes == CODES
    for event in events:
        engine.handle(event)
    return engine


@settings(max_examples=30, deadline=None)
@given(journeys())
def test_a_referee_never_has_two_referrers_and_keeps_the_first(journey):
    """Whatever clicks, codes and sign-ups arrive, each referee has at most one referral,
    never by themself, and once made it never changes."""
    rules, events = journey
    engine, _ = _engine(rules)
    made: dict[str, rk.Referral] = {}
    for event in events:
        engine.handle(event)
        for who in PEOPLE:
            referral = engine.referral_of(who)
            if who in made:
                assert referral is not None
                assert referral.referrer_id == made[who].referrer_id
            elif referral is not None:
                made[who] = referral
    check_one_referrer(engine.store)


@settings(max_examples=30, deadline=None)
@given(journeys())
def test_no_referral_is_attributed_to_a_touch_outside_the_window(journey):
    """The winning touch of every referral is at or before the referral, and no older than
    the window."""
    rules, events = journey
    engine = _run(rules, events)
    for who in PEOPLE:
        referral = engine.referral_of(who)
        if referral is None:
            continue
        won = [d for d in referral.explanation if d.code == "touch.won"]
        assert len(won) == 1
        at = datetime.fromisoformat(won[0].param_map["at"])
        assert at <= referral.created_at
        assert referral.created_at - at <= rules.window
        assert won[0].param_map["referrer"] == referral.referrer_id


@settings(max_examples=30, deadline=None)
@given(
    attribution_rules(max_window=timedelta(days=20), bind_at=("signup",)),
    st.lists(
        clicks([CODES["alice"], CODES["carol"]], ["v-bob"], start=START, max_days=29), max_size=6
    ),
    st.lists(
        clicks([CODES["alice"], CODES["dave"]], ["v-other"], start=START, max_days=40), max_size=6
    ),
    st.none() | st.sampled_from([CODES["carol"], CODES["dave"]]),
    st.randoms(use_true_random=False),
)
def test_the_outcome_does_not_depend_on_the_order_of_unrelated_events(
    rules, mine, noise, code, rng
):
    """Bob's referral and its explanation are the same whatever order his clicks and other
    visitors' clicks arrive in before his sign-up."""
    mine = [rk.Click(**{**_fields(c), "event_id": f"m{i}"}) for i, c in enumerate(mine)]
    noise = [rk.Click(**{**_fields(c), "event_id": f"n{i}"}) for i, c in enumerate(noise)]
    signup = rk.Signup(
        event_id="s", participant_id="bob", at=SIGNUPS_AT, code=code, visitor_id="v-bob"
    )
    shuffled = [*mine, *noise]
    rng.shuffle(shuffled)
    results = []
    for order in ([*mine, *noise, signup], [*shuffled, signup]):
        engine = _run(rules, order)
        results.append((engine.referral_of("bob"), engine.explain("bob").decisions))
    assert results[0] == results[1]


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(CodeForm), st.sampled_from(["signup", "click", "link"]), st.data())
def test_a_self_referral_through_any_variant_is_refused(form, via, data):
    """A participant's own code (in any typed form, in a click or a signed link) or an alias
    of the referrer's email never makes a referral."""
    engine, codes = _engine(AttributionRules())
    own = engine.issue_code("bob")
    if via == "signup":
        outcome = engine.handle(
            rk.Signup(event_id="s", participant_id="bob", at=SIGNUPS_AT, code=form.apply(own))
        )
    elif via == "click":
        engine.handle(rk.Click(event_id="c", at=START, code=form.apply(own), visitor_id="v"))
        outcome = engine.handle(
            rk.Signup(event_id="s", participant_id="bob", at=SIGNUPS_AT, visitor_id="v")
        )
    else:
        outcome = engine.handle(
            rk.Signup(
                event_id="s",
                participant_id="bob",
                at=SIGNUPS_AT,
                link_token=engine.link_token("bob"),
            )
        )
    assert outcome.reasons()[0] == "referral.self_referral"
    assert engine.referral_of("bob") is None
    # An alias of the referrer's inbox, through a click on the referrer's link.
    email = "jane.doe@gmail.com"
    alias = data.draw(email_aliases(email), label="alias")
    engine.handle(rk.Signup(event_id="s-a", participant_id="alice", at=START, email=email))
    engine.handle(rk.Click(event_id="c-a", at=START, code=codes["alice"], visitor_id="v-2"))
    outcome = engine.handle(
        rk.Signup(
            event_id="s-2", participant_id="alice-2", at=SIGNUPS_AT, email=alias, visitor_id="v-2"
        )
    )
    assert outcome.reasons()[0] == "referral.self_referral"
    check_one_referrer(engine.store)


@given(st.lists(touches(st.sampled_from(REFERRERS)), max_size=8), attribution_rules())
def test_resolution_ignores_the_order_touches_are_given_in(given_touches, rules):
    """The pure resolver picks the same winner for any permutation of the touches."""
    from referralkit.attribution import resolve_attribution

    at = START + timedelta(days=30)
    forward = resolve_attribution(given_touches, at, rules)
    backward = resolve_attribution(list(reversed(given_touches)), at, rules)
    assert forward.winner == backward.winner
