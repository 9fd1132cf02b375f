"""Codes: collision bound, memorable codes and vanity-code checks (pure functions)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest

import referralkit as rk
from referralkit.attribution import (
    VANITY_MAX_LENGTH,
    check_vanity_code,
    collision_probability,
    memorable_code,
    memorable_entropy_bits,
    memorable_words,
    normalise_code,
)
from referralkit.attribution._codes import _offensive_skeletons, _reserved_codes, _skeleton


def counter_bytes() -> Callable[[int], bytes]:
    """A deterministic randomness source: 0, 1, 2, ... as big-endian integers."""
    counter = itertools.count()
    return lambda n: next(counter).to_bytes(n, "big")


def fixed(byte: int) -> Callable[[int], bytes]:
    return lambda n: bytes([byte]) * n


# -- collision_probability ---------------------------------------------------------------


def test_no_code_or_one_code_never_collides() -> None:
    assert collision_probability(0) == collision_probability(1) == 0.0


@pytest.mark.parametrize(
    ("issued", "bound"), [(10_000, 4.547e-5), (100_000, 4.547e-3), (1_000_000, 0.4547)]
)
def test_the_birthday_bound_for_default_codes(issued: int, bound: float) -> None:
    assert collision_probability(issued) == pytest.approx(bound, rel=1e-3)


def test_the_bound_is_above_the_exact_probability_and_capped_at_one() -> None:
    n, length = 3000, 4  # small enough to compute exactly
    space = 32**length
    exact = 1 - math.prod((space - k) / space for k in range(n))
    assert exact <= collision_probability(n, length) <= 1.0
    assert collision_probability(10**9, 4) == 1.0


def test_longer_codes_collide_less() -> None:
    assert collision_probability(10**6, 12) < collision_probability(10**6, 8) / 10**5


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [("codes_issued", {"codes_issued": -1}), ("length", {"codes_issued": 5, "length": 0})],
)
def test_collision_probability_refuses_bad_counts(field: str, kwargs: dict[str, int]) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        collision_probability(**kwargs)
    assert info.value.field == field


# -- memorable codes ---------------------------------------------------------------------


def test_the_word_list_has_512_plain_lower_case_words() -> None:
    words = memorable_words()
    assert len(words) == len(set(words)) == 512
    assert all(w.isascii() and w.isalpha() and w.islower() and 3 <= len(w) <= 7 for w in words)


def test_no_word_is_a_prefix_of_another_once_normalised() -> None:
    """So a normalised memorable code decodes back to a single sequence of words."""
    forms = sorted(normalise_code(w) for w in memorable_words())
    assert len(set(forms)) == len(forms)
    for shorter, longer in itertools.pairwise(forms):
        assert not longer.startswith(shorter)


def test_no_word_is_offensive_or_reserved() -> None:
    for word in memorable_words():
        skeleton = _skeleton(normalise_code(word))
        assert not [bad for bad in _offensive_skeletons() if bad in skeleton], word
        assert normalise_code(word) not in _reserved_codes(), word


def test_a_memorable_code_is_words_and_a_two_digit_number() -> None:
    code = memorable_code(counter_bytes())
    *words, number = code.split("-")
    assert len(words) == 2
    assert all(w in memorable_words() for w in words)
    assert len(number) == 2
    assert number.isdigit()


def test_the_randomness_source_decides_the_code() -> None:
    assert memorable_code(fixed(0)) == f"{memorable_words()[0]}-{memorable_words()[0]}-00"
    assert memorable_code(fixed(7)) == memorable_code(fixed(7))


@pytest.mark.parametrize("words", [1, 3, 4, 6])
def test_more_words_can_be_asked_for(words: int) -> None:
    assert len(memorable_code(counter_bytes(), words=words).split("-")) == words + 1


@pytest.mark.parametrize("words", [0, 7, True, 2.0])
def test_a_word_count_out_of_range_is_refused(words: object) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        memorable_code(counter_bytes(), words=words)  # type: ignore[arg-type]
    assert info.value.field == "words"


def test_memorable_entropy_is_nine_bits_a_word_plus_the_number() -> None:
    assert memorable_entropy_bits(2) == pytest.approx(18 + math.log2(100))
    assert memorable_entropy_bits(4) >= 40


def test_a_memorable_code_is_stored_in_its_normalised_form() -> None:
    """What is shown is 'maple-otter-42'; what is stored and looked up is its normal form."""
    assert normalise_code("maple-otter-42") == "MAP1E0TTER42"
    assert normalise_code("Maple Otter 42") == normalise_code("MAPLE-OTTER-42")


def test_a_source_that_only_spells_blocked_words_is_refused() -> None:
    words = memorable_words()
    # Find a pair of words whose junction spells a blocked word, if the list has one.
    blocked = _offensive_skeletons()
    for a, b in itertools.product(words[:64], words):
        if any(bad in _skeleton(normalise_code(a + b + "00")) for bad in blocked):
            index = words.index(b) * len(words) + words.index(a)
            size = ((len(words) ** 2 * 100).bit_length() + 7) // 8 + 8
            stuck = (index * 100).to_bytes(size, "big")
            with pytest.raises(rk.InvalidInputError) as info:
                memorable_code(lambda n, stuck=stuck: stuck)
            assert info.value.field == "token_bytes"
            return
    pytest.skip("no two words of the list spell a blocked word")


# -- vanity codes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Alice2024", "A11CE2024"),
        ("  bob-the-builder ", "B0BTHEBU11DER"),
        ("ZZZZ", "ZZZZ"),
        ("freedom", "FREED0M"),  # starts with a reserved word, but is not one
        ("X" * VANITY_MAX_LENGTH, "X" * VANITY_MAX_LENGTH),
    ],
)
def test_an_acceptable_vanity_code_comes_back_normalised(typed: str, stored: str) -> None:
    assert check_vanity_code(typed) == stored


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("abc", "long"),
        ("a-b-c", "long"),
        ("X" * (VANITY_MAX_LENGTH + 1), "long"),
        ("admin", "reserved"),
        ("ADMIN", "reserved"),
        ("Adm1n", "reserved"),
        ("support24", "reserved"),
        ("Referral", "reserved"),
        ("shit", "blocked"),
        ("sh1t-happens", "blocked"),
        ("5HIT", "blocked"),
        ("shlt", "blocked"),
        ("bigfuckingdeal", "blocked"),
        ("al!ce", "letters and digits"),
        ("alice@home", "letters and digits"),
        ("\u0430lice", "letters and digits"),  # Cyrillic a
        ("\U0001f600abc", "letters and digits"),
    ],
)
def test_a_bad_vanity_code_is_refused_naming_the_code(typed: str, problem: str) -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        check_vanity_code(typed)
    assert (info.value.field, info.value.value) == ("code", typed)
    assert problem in info.value.problem


def test_a_vanity_code_empty_once_normalised_is_refused() -> None:
    with pytest.raises(rk.InvalidInputError) as info:
        check_vanity_code(" - ")
    assert info.value.field == "code"


def test_more_reserved_and_blocked_words_can_be_given() -> None:
    assert check_vanity_code("acmecorp") == "ACMEC0RP"
    with pytest.raises(rk.InvalidInputError, match="reserved"):
        check_vanity_code("acmecorp", extra_reserved=["AcmeCorp"])
    with pytest.raises(rk.InvalidInputError, match="blocked"):
        check_vanity_code("megaspam", extra_offensive=["spam"])


def test_the_vanity_check_is_idempotent() -> None:
    once = check_vanity_code("Hello-World-7")
    assert check_vanity_code(once) == once
