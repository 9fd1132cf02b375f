"""The stored JSON encoding (``referralkit.codec``) decodes back to equal values."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit import codec
from referralkit._values.canonical import compact_json
from referralkit.testing.strategies import event_streams


@given(event_streams())
def test_every_event_outcome_and_explanation_an_engine_writes_round_trips(scenario):
    """Events, outcomes (with their grants and decisions), referral explanations, reward
    values and notification data: ``loads(dumps(x)) == x`` for all an engine wrote."""
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
