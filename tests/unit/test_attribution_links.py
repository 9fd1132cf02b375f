"""Signed referral-link tokens: HMAC-SHA256, key rotation, tamper detection."""

from __future__ import annotations

import base64
import pickle
import re

import pytest

import referralkit as rk
from referralkit.attribution import LinkSigner

K1 = b"\x01" * 32
K2 = bytes(range(32, 96))
SIGNER = LinkSigner(keys={"k2": K2, "k1": K1}, current="k2")


def test_a_signed_payload_verifies() -> None:
    token = SIGNER.sign("alice")
    assert SIGNER.verify(token) == "alice"


@pytest.mark.parametrize("payload", ["", "alice", "ünïcödé ✓", '{"r": "alice", "c": "x"}'])
def test_any_text_round_trips(payload: str) -> None:
    assert SIGNER.verify(SIGNER.sign(payload)) == payload


def test_a_token_is_url_safe_and_names_the_current_key() -> None:
    token = SIGNER.sign("alice?&=/+ #")
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)
    key_id, _, _ = token.split(".")
    assert key_id == "k2"


def test_the_secret_never_appears_in_a_token_or_a_repr() -> None:
    token = SIGNER.sign("alice")
    for key in (K1, K2):
        for form in (key.hex(), base64.urlsafe_b64encode(key).decode().rstrip("=")):
            assert form not in token
            assert form not in repr(SIGNER)
    assert repr(SIGNER) == "LinkSigner(key_ids=['k1', 'k2'], current='k2')"


def test_tokens_signed_with_an_older_key_still_verify() -> None:
    old = LinkSigner(keys={"k1": K1}, current="k1").sign("alice")
    assert old.startswith("k1.")
    assert SIGNER.verify(old) == "alice"


def test_a_retired_key_no_longer_verifies() -> None:
    old = SIGNER.sign("alice")
    rotated = LinkSigner(keys={"k3": b"\x03" * 32}, current="k3")
    with pytest.raises(rk.InvalidTokenError, match="unknown key 'k2'"):
        rotated.verify(old)


def test_signing_is_deterministic() -> None:
    assert SIGNER.sign("alice") == SIGNER.sign("alice")


def _flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("B" if char == "A" else "A") + text[index + 1 :]


@pytest.mark.parametrize("part", [1, 2])
def test_a_changed_payload_or_signature_is_tampering(part: int) -> None:
    parts = SIGNER.sign("alice").split(".")
    for index in range(len(parts[part])):
        changed = parts.copy()
        changed[part] = _flip(parts[part], index)
        with pytest.raises(rk.InvalidTokenError, match="tampered"):
            SIGNER.verify(".".join(changed))


def test_a_payload_swapped_from_another_token_is_tampering() -> None:
    key_id, _, mac = SIGNER.sign("alice").split(".")
    _, body, _ = SIGNER.sign("mallory").split(".")
    with pytest.raises(rk.InvalidTokenError, match="tampered"):
        SIGNER.verify(f"{key_id}.{body}.{mac}")


def test_a_token_relabelled_with_another_key_id_is_tampering() -> None:
    _, body, mac = SIGNER.sign("alice").split(".")
    with pytest.raises(rk.InvalidTokenError, match="tampered"):
        SIGNER.verify(f"k1.{body}.{mac}")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "k2",
        "k2.abc",
        "k2.abc.def.ghi",
        "k2.ab+c.def",
        "k2.abc.de=f",
        "k2.abc.de f",
        "k2..",
        "x" * 3000,
        None,
        b"k2.abc.def",
    ],
)
def test_a_malformed_token_is_refused(token: object) -> None:
    with pytest.raises(rk.InvalidTokenError, match="malformed") as info:
        SIGNER.verify(token)  # type: ignore[arg-type]
    assert info.value.field == "token"


def test_a_truncated_token_is_refused() -> None:
    token = SIGNER.sign("alice")
    for end in range(len(token)):
        with pytest.raises(rk.InvalidTokenError):
            SIGNER.verify(token[:end])


def test_the_error_is_an_input_error_and_pickles() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        SIGNER.verify("k9.abc.def")
    assert isinstance(info.value, rk.InvalidTokenError)
    again = pickle.loads(pickle.dumps(info.value))
    assert (type(again), str(again)) == (rk.InvalidTokenError, str(info.value))


@pytest.mark.parametrize(
    ("keys", "current", "field"),
    [
        ({}, "k1", "keys"),
        ({"k1": b"short"}, "k1", "keys['k1']"),
        ({"k1": b"x" * 31}, "k1", "keys['k1']"),
        ({"k1": "x" * 32}, "k1", "keys['k1']"),
        ({"k.1": K1}, "k.1", "keys"),
        ({"": K1}, "", "keys"),
        ({"k1": K1}, "k2", "current"),
    ],
)
def test_bad_keys_are_refused_without_showing_them(
    keys: dict[str, bytes], current: str, field: str
) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        LinkSigner(keys=keys, current=current)
    assert info.value.field == field
    for key in keys.values():
        if len(key) > 4:
            assert str(key) not in str(info.value)


def test_a_signer_exposes_its_key_ids_but_not_its_keys() -> None:
    assert SIGNER.key_ids == {"k1", "k2"}
    assert SIGNER.current == "k2"
    assert not hasattr(SIGNER, "__dict__")


def test_a_payload_making_a_token_too_long_is_refused() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        SIGNER.sign("x" * 2000)
    assert info.value.field == "payload"
