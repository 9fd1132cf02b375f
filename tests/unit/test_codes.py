"""Referral codes and identities: generation and normalisation (pure functions)."""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import referralkit as rk
from referralkit.attribution import (
    CROCKFORD,
    code_entropy_bits,
    generate_code,
    normalise_code,
    normalise_email,
)

TYPED = st.text(alphabet=string.ascii_letters + string.digits + "-_. ", min_size=1, max_size=20)


# -- normalise_code ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ABCD2345", "ABCD2345"),
        ("abcd2345", "ABCD2345"),
        ("abcd-2345", "ABCD2345"),
        ("ABCD 2345", "ABCD2345"),
        (" abcd_23.45 ", "ABCD2345"),
        ("ab\u00a0cd", "ABCD"),
        ("\uff21\uff22\uff23", "ABC"),  # full-width letters, as some keyboards type them
    ],
)
def test_codes_ignore_case_dashes_dots_underscores_and_spaces(typed: str, expected: str) -> None:
    assert normalise_code(typed) == expected


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("O0o", "000"), ("I1i", "111"), ("L1l", "111"), ("HELLO", "HE110"), ("bOIL", "B011")],
)
def test_confusable_letters_read_as_digits(typed: str, expected: str) -> None:
    assert normalise_code(typed) == expected


@given(TYPED)
def test_normalise_code_is_idempotent_for_typed_codes(typed: str) -> None:
    try:
        once = normalise_code(typed)
    except rk.InvalidInputError:
        return
    assert normalise_code(once) == once
    assert set(once) <= set(string.ascii_uppercase + string.digits) - set("OIL")


def test_normalise_code_is_idempotent_for_spacing_accents() -> None:
    once = normalise_code("A\u00b4")
    assert normalise_code(once) == once


@pytest.mark.parametrize("dash", ["\u2010", "\u2011", "\u2013", "\u2212"])
def test_typographic_dashes_are_dropped_too(dash: str) -> None:
    assert normalise_code(f"ABCD{dash}2345") == "ABCD2345"


@pytest.mark.parametrize("typed", ["", "-", " - . _ "])
def test_a_code_empty_once_normalised_is_refused_naming_the_field(typed: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        normalise_code(typed, "signup.code")
    assert (info.value.field, info.value.value) == ("signup.code", typed)


# -- generate_code -----------------------------------------------------------------------


def test_crockford_alphabet_has_32_unambiguous_characters() -> None:
    assert len(CROCKFORD) == len(set(CROCKFORD)) == 32
    assert not set("ILOU") & set(CROCKFORD)


def test_generated_codes_are_8_crockford_characters_by_default() -> None:
    codes = {generate_code() for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert len(code) == 8
        assert set(code) <= set(CROCKFORD)
        assert normalise_code(code) == code


def test_a_default_code_carries_at_least_40_bits_of_entropy() -> None:
    assert code_entropy_bits(8) >= 40
    assert code_entropy_bits(12) == pytest.approx(60)


@pytest.mark.parametrize("length", [8, 9, 12, 20])
def test_longer_codes_can_be_asked_for(length: int) -> None:
    assert len(generate_code(length)) == length


def test_codes_shorter_than_8_are_refused() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        generate_code(7)
    assert (info.value.field, info.value.value) == ("length", 7)


def fixed(byte: int) -> Callable[[int], bytes]:
    return lambda n: bytes([byte]) * n


def test_the_randomness_source_can_be_injected() -> None:
    assert generate_code(token_bytes=fixed(0)) == "00000000"
    assert generate_code(token_bytes=fixed(0xFF)) == "ZZZZZZZZ"
    assert generate_code(token_bytes=fixed(0x5A)) == generate_code(token_bytes=fixed(0x5A))


def test_every_character_of_the_alphabet_is_used() -> None:
    seen = "".join(generate_code(16) for _ in range(200))
    assert set(seen) == set(CROCKFORD)


# -- normalise_email ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("Alice@Example.com", "alice@example.com"),
        ("  alice@example.com\n", "alice@example.com"),
        ("alice+promo@example.com", "alice@example.com"),
        ("a.lice@example.com", "a.lice@example.com"),
        ("a.lice@gmail.com", "alice@gmail.com"),
        ("A.Lice+x+y@GoogleMail.com", "alice@gmail.com"),
        ("Alice+promo@Gmail.com", "alice@gmail.com"),
        ("a.lice@googlemail.com", "alice@gmail.com"),
        ('"a@b"@example.com', '"a@b"@example.com'),
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_email_normalisation_rules(email: str, expected: str) -> None:
    assert normalise_email(email) == expected


def test_variants_of_one_gmail_inbox_compare_equal() -> None:
    variants = ["alice@gmail.com", "A.L.I.C.E@gmail.com", "alice+shop@googlemail.com"]
    assert len({normalise_email(v) for v in variants}) == 1


def test_different_inboxes_stay_different() -> None:
    assert normalise_email("alice@example.com") != normalise_email("alice@example.org")
    assert normalise_email("a.lice@example.com") != normalise_email("alice@example.com")


@given(st.emails() | st.text(max_size=30))
def test_normalise_email_is_idempotent(email: str) -> None:
    once = normalise_email(email)
    assert normalise_email(once) == once
