"""Attribution invariants: order independence, the window, normalisation, tokens, codes."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.attribution import (
    AttributionRules,
    IdentityFacts,
    LinkSigner,
    Touch,
    TouchVerdict,
    check_same_identity,
    memorable_code,
    memorable_words,
    normalise_code,
    normalise_email,
    resolve_attribution,
)
from referralkit.testing.strategies import email_aliases

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
SIGNER = LinkSigner(keys={"k2": b"\x02" * 32, "k1": b"\x01" * 32}, current="k2")

referrers = st.sampled_from(["alice", "bob", "carol", "dave"])
# Offsets around the 30-day window, with the edges over-represented.
offsets = st.one_of(
    st.sampled_from(
        [
            timedelta(0),
            timedelta(days=30),
            timedelta(days=30, microseconds=1),
            -timedelta(seconds=1),
        ]
    ),
    st.timedeltas(min_value=-timedelta(days=2), max_value=timedelta(days=40)),
)
touches = st.builds(
    lambda kind, who, ago, channel, campaign: Touch(
        kind=kind, referrer_id=who, at=AT - ago, channel=channel, campaign=campaign
    ),
    st.sampled_from(["click", "code"]),
    referrers,
    offsets,
    st.sampled_from(sorted(rk.CHANNELS)),
    st.none() | st.sampled_from(["spring", "summer"]),
)
rules = st.builds(
    AttributionRules,
    window=st.sampled_from([timedelta(days=30), timedelta(days=7), timedelta(hours=1)]),
    model=st.sampled_from(["last_touch", "first_touch", "first_bind"]),
    code_beats_click=st.booleans(),
)


@given(st.lists(touches, max_size=8), rules, st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_touch_order(
    given_touches: list[Touch], given_rules: AttributionRules, random: object
) -> None:
    shuffled = list(given_touches)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert resolve_attribution(shuffled, AT, given_rules) == resolve_attribution(
        given_touches, AT, given_rules
    )


@given(st.lists(touches, max_size=8), rules)
def test_no_winner_outside_the_window(
    given_touches: list[Touch], given_rules: AttributionRules
) -> None:
    decision = resolve_attribution(given_touches, AT, given_rules)
    counted = [t for t in given_touches if AT - given_rules.window <= t.at <= AT]
    if decision.winner is None:
        assert not counted
    else:
        assert AT - given_rules.window <= decision.winner.at <= AT
        assert decision.referrer_id == decision.winner.referrer_id
    won = [t for t, verdict, _ in decision.explanation if verdict is TouchVerdict.WON]
    assert won == ([decision.winner] if decision.winner else [])
    for touch, verdict, _ in decision.explanation:
        assert (verdict is TouchVerdict.IGNORED) == (touch not in counted)


@given(st.lists(touches, min_size=1, max_size=8), rules)
def test_a_code_in_the_window_always_beats_clicks(
    given_touches: list[Touch], given_rules: AttributionRules
) -> None:
    decision = resolve_attribution(given_touches, AT, given_rules)
    codes_in_window = [
        t for t in given_touches if t.kind == "code" and AT - given_rules.window <= t.at <= AT
    ]
    if given_rules.code_beats_click and codes_in_window:
        assert decision.winner is not None
        assert decision.winner.kind == "code"


TYPED = st.text(alphabet=string.ascii_letters + string.digits + "-_. ", min_size=1, max_size=20)


@given(TYPED | st.text(min_size=1, max_size=20))
def test_normalise_code_is_idempotent(typed: str) -> None:
    try:
        once = normalise_code(typed)
    except rk.InvalidInputError:
        return
    assert normalise_code(once) == once


@given(st.emails() | st.text(max_size=30))
def test_normalise_email_is_idempotent(email: str) -> None:
    once = normalise_email(email)
    assert normalise_email(once) == once


@given(
    st.sampled_from(
        ["alice@gmail.com", "a.lice@gmail.com", "bob@example.com", "Carol@Example.org"]
    ).flatmap(lambda e: st.tuples(st.just(e), email_aliases(e)))
)
def test_a_self_referral_through_any_email_variant_is_detected(pair: tuple[str, str]) -> None:
    email, alias = pair
    assert normalise_email(alias) == normalise_email(email)
    verdict = check_same_identity(IdentityFacts(email=email), IdentityFacts(email=alias))
    assert verdict.action is rk.attribution.FraudAction.BLOCK
    assert verdict.reasons == ("fraud.same_email",)


@given(st.text(max_size=50), st.data())
def test_a_tampered_token_never_verifies(payload: str, data: st.DataObject) -> None:
    token = SIGNER.sign(payload)
    assert SIGNER.verify(token) == payload
    index = data.draw(st.integers(0, len(token)), label="index")
    removed = data.draw(st.integers(0, 3), label="removed")
    inserted = data.draw(st.text(alphabet=string.ascii_letters + "-_.=+/", max_size=3))
    tampered = token[:index] + inserted + token[index + removed :]
    if tampered == token:
        return
    try:
        SIGNER.verify(tampered)
    except rk.InvalidTokenError:
        return
    raise AssertionError(f"{tampered!r} verified")


@given(st.integers(1, 4), st.integers(0, 2**64))
def test_memorable_codes_are_stored_normalised_and_decode_to_their_words(
    words: int, seed: int
) -> None:
    code = memorable_code(random.Random(seed).randbytes, words=words)
    stored = normalise_code(code)
    assert normalise_code(stored) == stored  # what the store keeps is a fixed point
    assert normalise_code(code.upper()) == normalise_code(code.replace("-", " ")) == stored
    # The normalised form still decodes to the same words: no two codes share a key.
    forms = {normalise_code(w): w for w in memorable_words()}
    rest, decoded = stored[:-2], []
    while rest:
        prefix = next(p for p in forms if rest.startswith(p))
        decoded.append(forms[prefix])
        rest = rest[len(prefix) :]
    assert decoded == code.split("-")[:-1]
