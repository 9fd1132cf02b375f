"""The stored JSON encoding (``referralkit.codec``) decodes back to equal values."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import assume, given
from hypothesis import strategies as st

import referralkit as rk
from referralkit import codec
from referralkit._values.canonical import compact_json
from referralkit.testing.strategies import event_streams


@given(event_streams())
def test_every_event_outcome_and_explanation_an_engine_writes_round_trips(scenario):
    """Events, outcomes (with their grants and decisions), referral explanations, reward
    values and notification data: ``loads(dumps(x)) == x`` for all an engine wrote."""
    assume(scenario.events)  # a scenario where nobody signs up or buys delivers nothing
    engine = scenario.new_engine()
    scenario.play(engine)
    dump = engine.store.dump()
    values: list[object] = []
    for record in dump["events"]:
        values += [record.event, record.outcome]
    for referral in dump["referrals"]:
        values.append(referral.explanation)
    for reward in dump["rewards"]:
        values.append(reward.value)
    for note in dump["outbox"]:
        values.append(dict(note.data))
    assert dump["events"], "the scenario recorded no event"
    for value in values:
        text = codec.dumps(value)
        assert codec.loads(text) == value, text


def test_fields_that_hold_their_default_are_left_out_and_filled_in_again():
    signup = rk.Signup(
        event_id="e1",
        participant_id="bob",
        at=datetime(2026, 1, 5, tzinfo=UTC),
        code="ABC",
    )
    encoded = codec.encode(signup)
    assert set(encoded["f"]) == {"event_id", "participant_id", "at", "code"}
    assert codec.decode(encoded) == signup


def test_a_decision_in_the_generic_tagged_form_still_decodes():
    """Explanations written before decisions had their positional form still load."""
    decision = rk.Decision.of("attribution", rk.Verdict.REFUSED, "referral.unknown_code", code="X")
    old = {
        "$t": "Decision",
        "f": {
            "source": "attribution",
            "verdict": {"$e": ["Verdict", "refused"]},
            "code": "referral.unknown_code",
            "params": {"$tu": [{"$tu": ["code", "X"]}]},
        },
    }
    assert codec.decode(old) == decision
    assert codec.decode(codec.encode(decision)) == decision
    assert "$D" in codec.encode(decision)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_compact_json_writes_what_the_standard_encoder_writes(value):
    """The encoder made once writes byte for byte what ``json.JSONEncoder.encode`` does with
    the same settings, so digests and stored text do not change."""
    standard = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    assert compact_json(value) == standard(value)


def test_the_stored_text_of_an_event_an_outcome_and_an_explanation_does_not_change():
    """Pinned as earlier releases wrote it: stores hold this text, and readers of their
    tables may compare it."""
    at = datetime(2026, 1, 5, 9, 0, 0, 25, tzinfo=UTC)
    purchase = rk.Purchase(
        event_id="p1",
        participant_id="bob",
        order_id="o1",
        amount=rk.Money("80.00", "USD"),
        at=at,
        items=(rk.LineItem(sku="sku-1", quantity=2, unit_price=rk.Money("40.00", "USD")),),
        metadata={"note": 'gift "x"', "n": [1, 2.5, None]},
    )
    outcome = rk.Outcome(
        "e6",
        "purchase",
        False,
        "ref_1",
        grants=(
            rk.RewardGrant(
                rk.Role.REFERRER, "ann", rk.Cash(rk.Money("20.00", "USD")), "double_sided"
            ),
            rk.RewardGrant(
                rk.Role.REFEREE,
                "bob",
                rk.Points(5),
                "m",
                milestone=rk.MilestoneReached("first", 1, 1),
                item="sku-1",
            ),
        ),
        reward_ids=("rwd_1", "rwd_2"),
        reversals=(rk.Reversal("rwd_0", "ann", rk.Unit("cash", "USD"), Decimal("15.35")),),
        decisions=(
            rk.Decision.of(
                "double_sided",
                rk.Verdict.GRANTED,
                "policy.granted",
                role="referrer",
                value="20.00 USD cash",
            ),
        ),
    )
    explanation = (
        rk.Decision.of(
            "attribution",
            rk.Verdict.NOTED,
            "touch.won",
            kind="code",
            at="2026-01-05T09:00:44+00:00",
        ),
    )
    assert codec.dumps(purchase) == (
        '{"$t":"Purchase","f":{"event_id":"p1","participant_id":"bob","order_id":"o1",'
        '"amount":{"$m":["80.00","USD"]},"at":{"$dt":"2026-01-05T09:00:00.000025+00:00"},'
        '"items":{"$tu":[{"$t":"LineItem","f":{"sku":"sku-1","quantity":2,'
        '"unit_price":{"$m":["40.00","USD"]}}}]},'
        '"metadata":{"$map":{"note":"gift \\"x\\"","n":[1,2.5,null]}}}}'
    )
    assert codec.dumps(outcome) == (
        '{"$o":["e6","purchase",false,"ref_1",'
        '[["referrer","ann",{"$t":"Cash","f":{"amount":{"$m":["20.00","USD"]}}},'
        '"double_sided","policy.granted"],'
        '["referee","bob",{"$t":"Points","f":{"points":5}},"m","policy.granted",'
        '{"$t":"MilestoneReached","f":{"name":"first","threshold":1,"count":1}},"sku-1"]],'
        '["rwd_1","rwd_2"],[["rwd_0","ann","cash","USD","15.35"]],'
        '[["double_sided","granted","policy.granted",'
        '[["role","referrer"],["value","20.00 USD cash"]]]]]}'
    )
    assert codec.dumps(explanation) == (
        '{"$tu":[{"$D":["attribution","noted","touch.won",'
        '[["kind","code"],["at","2026-01-05T09:00:44+00:00"]]]}]}'
    )
    for value in (purchase, outcome, explanation):
        assert codec.loads(codec.dumps(value)) == value
