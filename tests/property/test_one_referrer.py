"""Invariant 5: one referrer per referee per program; nobody refers themself."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.testing import CodeForm, check_one_referrer, check_playback
from referralkit.testing.strategies import email_aliases, event_streams, participant_ids

START = datetime(2026, 1, 5, tzinfo=UTC)
PROGRAM = rk.Program(
    id="friends",
    effective_at=START,
    currency="USD",
    policies=[rk.DoubleSided(rk.Cash(rk.Money(10, "USD")), rk.Credit(rk.Money(5, "USD")))],
)


def _engine() -> rk.Engine:
    return rk.Engine(PROGRAM, rk.InMemoryStore(), clock=rk.ManualClock(START))


def _signup(event_id: str, who: str, *, code: str | None = None, email: str | None = None):
    return rk.Signup(event_id=event_id, participant_id=who, code=code, email=email, at=START)


emails = st.builds(
    "{}@{}".format,
    st.from_regex(r"[a-z][a-z0-9]{0,5}(\.[a-z0-9]{1,5}){0,2}", fullmatch=True),
    st.sampled_from(["gmail.com", "googlemail.com", "example.com"]),
)


@given(event_streams())
def test_no_stream_gives_a_referee_two_referrers_or_a_self_referral(scenario):
    """Whatever sign-ups a stream holds (repeats, other codes, own codes, email aliases),
    each referee has at most one referral, never from themself, and keeps its first one."""
    engine = scenario.new_engine()
    playback = scenario.play(engine)
    check_playback(playback)
    check_one_referrer(engine.store)
    created = Counter(
        r.event.participant_id
        for r in playback.results
        if r.accepted and "referral.created" in r.outcome.reasons()
    )
    assert all(n == 1 for n in created.values()), created
    for referee in created:
        referral = engine.referral_of(referee)
        assert referral is not None
        assert referral.referrer_id != referee
        assert engine.code_of(referral.referrer_id) == referral.code


@given(participant_ids(), st.sampled_from(CodeForm))
def test_signing_up_with_ones_own_code_in_any_form_is_a_self_referral(who, form):
    """A participant typing their own code (any case, dashes, O for 0) is not referred."""
    engine = _engine()
    code = engine.issue_code(who)
    outcome = engine.handle(_signup("s1", who, code=form.apply(code)))
    assert outcome.reasons() == ("referral.self_referral",)
    assert engine.referral_of(who) is None
    assert engine.store.dump()["referrals"] == []


@given(st.data(), emails)
def test_a_referrer_email_alias_is_a_self_referral(data, email):
    """Signing up with a referrer's code and an alias of the referrer's email (case, +tag,
    Gmail dots, googlemail.com) is refused as a self-referral."""
    alias = data.draw(email_aliases(email), label="alias")
    engine = _engine()
    code = engine.issue_code("alice")
    engine.handle(_signup("s1", "alice", email=email))
    outcome = engine.handle(_signup("s2", "alice-2nd-account", code=code, email=alias))
    assert outcome.reasons() == ("referral.self_referral",)
    assert engine.referral_of("alice-2nd-account") is None


@given(st.lists(st.sampled_from(["alice", "carol", "dave"]), min_size=1, max_size=5))
def test_later_sign_ups_with_other_codes_never_change_the_referrer(others):
    """A referee who signs up again with other referrers' codes keeps their first referrer."""
    engine = _engine()
    codes = {who: engine.issue_code(who) for who in ("alice", "carol", "dave")}
    engine.handle(_signup("s0", "bob", code=codes["alice"]))
    for n, other in enumerate(others, start=1):
        outcome = engine.handle(_signup(f"s{n}", "bob", code=codes[other]))
        assert outcome.reasons() == ("referral.already_referred",)
    referral = engine.referral_of("bob")
    assert referral is not None
    assert referral.referrer_id == "alice"
    check_one_referrer(engine.store)


def test_a_referrer_signing_up_after_their_referee_with_the_same_inbox_is_caught():
    """A referral whose referrer later signs up with the referee's email (normalised) does
    not survive as a referral between two accounts of one person."""
    engine = _engine()
    code = engine.issue_code("alice")
    engine.handle(_signup("s1", "bob", code=code, email="Jane.Doe+bob@gmail.com"))
    engine.handle(
        rk.Signup(
            event_id="s2",
            participant_id="alice",
            email="janedoe@gmail.com",
            at=START + timedelta(minutes=1),
        )
    )
    check_one_referrer(engine.store)
    assert engine.referral_of("bob").status == "held"
