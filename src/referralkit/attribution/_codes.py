"""Referral codes: random, memorable and vanity codes, and their normalisation (pure).

Randomness is passed in (``token_bytes``); the word lists are read from the package data
once. Nothing here reads the clock or keeps state between calls.
"""

from __future__ import annotations

import functools
import math
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping

from referralkit._errors import InvalidInputError
from referralkit._values._checks import is_text
from referralkit.attribution._data import data_lines

__all__ = [
    "CROCKFORD",
    "VANITY_MAX_LENGTH",
    "VANITY_MIN_LENGTH",
    "check_vanity_code",
    "code_entropy_bits",
    "collision_probability",
    "generate_code",
    "memorable_code",
    "memorable_entropy_bits",
    "memorable_words",
    "normalise_code",
]

#: Crockford's base32 alphabet: no I, L, O or U, so codes read aloud survive.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Dropped: dashes of every kind (phones swap '-' for typographic ones), spaces, separators,
# controls, combining marks (accents typed by mistake) and a few punctuation marks.
_DROP_CATEGORIES = frozenset({"Pd", "Zs", "Zl", "Zp", "Cc", "Cf", "Mn", "Me"})
_DROP_CHARS = frozenset("._\u2212")
_ASCII_DROP = str.maketrans("", "", "-._ " + "".join(map(chr, range(32))) + "\x7f")
# Both of the ASCII rules in one table (the characters dropped and the confusable letters
# are disjoint), so an ASCII code is translated once.
_ASCII_RULES = {**_ASCII_DROP, **_CONFUSABLE}


def _keep(char: str) -> bool:
    return char not in _DROP_CHARS and unicodedata.category(char) not in _DROP_CATEGORIES


def _normalise_once(code: str) -> str:
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", code).upper())
    text = "".join(char for char in text if _keep(char))
    return unicodedata.normalize("NFKC", text.translate(_CONFUSABLE))


def normalise_code(code: str, field: str = "code") -> str:
    """The canonical form of a code, for lookup.

    Applies Unicode NFKC and upper case, drops accents, dashes of every kind, dots,
    underscores and whitespace, and maps confusable letters to digits (O to 0, I and L to
    1). Idempotent: normalising a normalised code returns it unchanged.

    Raises:
        InvalidInputError: the code is empty once normalised.
    """
    if not isinstance(code, str):
        raise InvalidInputError(field, code, "must be a string")
    if code.isascii():
        # The same rules, for the common case: nothing to decompose or recompose.
        text = code.upper().translate(_ASCII_RULES)
        if not text:
            raise InvalidInputError(field, code, "is empty once normalised")
        return text
    if not is_text(code):
        raise InvalidInputError(field, code, "must be valid Unicode text (no lone surrogates)")
    text = _normalise_once(code)
    while (again := _normalise_once(text)) != text:
        text = again
    if not text:
        raise InvalidInputError(field, code, "is empty once normalised")
    return text


def code_entropy_bits(length: int) -> float:
    """Bits of entropy of a random code of ``length`` Crockford characters (5 each)."""
    return length * math.log2(len(CROCKFORD))


def generate_code(
    length: int = 8, token_bytes: Callable[[int], bytes] = secrets.token_bytes
) -> str:
    """A random code of ``length`` Crockford base32 characters (8 by default: 40 bits).

    Args:
        length: Characters; at least 8 so a code cannot be guessed by enumeration.
        token_bytes: The randomness source (``secrets.token_bytes``; inject for tests).
    """
    if length < 8:
        raise InvalidInputError("length", length, "must be at least 8 (40 bits)")
    raw = int.from_bytes(token_bytes(math.ceil(length * 5 / 8) + 1), "big")
    chars = []
    for _ in range(length):
        raw, digit = divmod(raw, 32)
        chars.append(CROCKFORD[digit])
    return "".join(chars)


def collision_probability(codes_issued: int, length: int = 8) -> float:
    """An upper bound on the chance that two of ``codes_issued`` random codes are equal.

    The birthday bound for ``n`` codes drawn uniformly from ``N = 32 ** length``:
    ``P(some two equal) <= n (n - 1) / (2 N)`` (capped at 1). The exact value is a little
    lower, about ``1 - exp(-n (n - 1) / (2 N))``. For the default 8 characters
    (``N = 2**40``), 10,000 codes collide with probability at most 4.5e-5, and 1,000,000
    codes at most 0.45 (about 0.36 exactly): the store's uniqueness constraint catches
    the rare collision and the engine draws again.

    Args:
        codes_issued: How many codes were generated, >= 0.
        length: Characters per code, >= 1.

    Returns:
        A probability in [0, 1].

    Raises:
        InvalidInputError: a negative count or a length below 1.
    """
    _require_int("codes_issued", codes_issued, 0)
    _require_int("length", length, 1)
    space: int = 32**length
    return min(1.0, codes_issued * (codes_issued - 1) / (2 * space))


def _require_int(field: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(field, value, "must be a whole number")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise InvalidInputError(field, value, f"must be {bound}")
    return value


# -- memorable codes -----------------------------------------------------------------------

#: The number at the end of a memorable code has two digits, 00 to 99.
_NUMBERS = 100
_MAX_WORDS = 6
# Redraws when a memorable code happens to spell a blocked word across a word boundary;
# a random source essentially never needs more than one or two.
_MAX_DRAWS = 64


def memorable_words() -> tuple[str, ...]:
    """The shipped word list for memorable codes: 512 plain English words (9 bits each).

    Lower case, 3 to 7 letters. After [`normalise_code`][referralkit.attribution.normalise_code]
    no two words are equal and none is a prefix of another, so a normalised memorable code
    decodes back to a single sequence of words.
    """
    return data_lines("words.txt")


def memorable_entropy_bits(words: int = 2) -> float:
    """Bits of entropy of a memorable code of ``words`` words and a two-digit number.

    ``words * log2(512) + log2(100)``: 24.6 bits for 2 words (26,214,400 codes),
    33.6 for 3 and 42.6 for 4. The few codes redrawn because they spell a blocked word
    remove a negligible fraction of that.
    """
    _require_int("words", words, 1, _MAX_WORDS)
    return words * math.log2(len(memorable_words())) + math.log2(_NUMBERS)


def memorable_code(
    token_bytes: Callable[[int], bytes] = secrets.token_bytes, words: int = 2
) -> str:
    """A code people can say and remember: ``"maple-otter-42"``.

    ``words`` words from [`memorable_words`][referralkit.attribution.memorable_words] and a
    two-digit number (00 to 99), joined by dashes, in lower case. This is the form to show.
    Store and look it up by ``normalise_code(code)`` (``"MAP1E0TTER42"``), as for every
    code: normalisation drops the dashes and reads O as 0 and I, L as 1, and the word list
    is built so that distinct memorable codes stay distinct once normalised.

    Two words give 24.6 bits: enough to be unique among a few thousand codes (the store
    enforces uniqueness; draw again on a clash) but guessable by enumeration, so rate-limit
    code lookups, or ask for 4 words (42.6 bits) where a guessed code is worth something.

    Args:
        token_bytes: The randomness source (``secrets.token_bytes``; inject for tests).
        words: How many words, from 1 to 6.

    Raises:
        InvalidInputError: ``words`` out of range, or a randomness source so constant that
            every draw spelled a blocked word.
    """
    _require_int("words", words, 1, _MAX_WORDS)
    vocabulary = memorable_words()
    space = len(vocabulary) ** words * _NUMBERS
    # 64 spare bits make the modulo bias below 2**-64.
    size = (space.bit_length() + 7) // 8 + 8
    for _ in range(_MAX_DRAWS):
        raw = int.from_bytes(token_bytes(size), "big") % space
        raw, number = divmod(raw, _NUMBERS)
        parts = []
        for _ in range(words):
            raw, index = divmod(raw, len(vocabulary))
            parts.append(vocabulary[index])
        code = "-".join([*parts, f"{number:02d}"])
        if _offensive_match(normalise_code(code), _offensive_skeletons()) is None:
            return code
    raise InvalidInputError(
        "token_bytes", token_bytes, f"gave {_MAX_DRAWS} codes in a row that spell a blocked word"
    )


# -- vanity codes --------------------------------------------------------------------------

#: Shortest vanity code accepted, counted after normalisation.
VANITY_MIN_LENGTH = 4
#: Longest vanity code accepted, counted after normalisation.
VANITY_MAX_LENGTH = 32

_VANITY_CHARS = re.compile(r"[A-Z0-9]+")
# Digits read as the letters they stand for, after normalise_code has turned O into 0 and
# I, L into 1: the "skeleton" that offensive words are matched against.
_SKELETON = str.maketrans("0134578", "OIEASTB")


def _skeleton(normalised: str) -> str:
    return normalised.translate(_SKELETON)


@functools.cache
def _reserved_codes() -> dict[str, str]:
    return {normalise_code(word): word for word in data_lines("reserved.txt")}


@functools.cache
def _offensive_skeletons() -> frozenset[str]:
    return frozenset(_skeleton(normalise_code(word)) for word in data_lines("offensive.txt"))


def _offensive_match(normalised: str, skeletons: Iterable[str]) -> str | None:
    skeleton = _skeleton(normalised)
    for word in skeletons:
        if word in skeleton:
            return word
    return None


def _reserved_match(normalised: str, reserved: Mapping[str, str]) -> str | None:
    for key, word in reserved.items():
        rest = normalised[len(key) :]
        if normalised.startswith(key) and (not rest or rest.isdigit()):
            return word
    return None


def check_vanity_code(
    code: str, *, extra_reserved: Iterable[str] = (), extra_offensive: Iterable[str] = ()
) -> str:
    """Validate a code a participant chose, and return it normalised (the form to store).

    The code is normalised with [`normalise_code`][referralkit.attribution.normalise_code],
    then refused when:

    - it holds a character other than ``A-Z`` and ``0-9`` (emoji, other scripts, ``@``);
    - it is shorter than 4 or longer than 32 characters (counted after normalisation);
    - it is a reserved word (``admin``, ``support``, ``referral``, ...), alone or followed
      only by digits (``Support24``);
    - it contains an offensive word anywhere, also when spelled with digits or confusable
      letters (``5h1t``, ``shlt``). Substring matching blocks a few innocent words too.

    Args:
        code: The code as typed.
        extra_reserved: More words to reserve (your brand, your staff's names).
        extra_offensive: More words to block as substrings.

    Returns:
        The normalised code.

    Raises:
        InvalidInputError: field ``"code"``, naming the code and the rule it breaks.
    """
    normalised = normalise_code(code)
    if not _VANITY_CHARS.fullmatch(normalised):
        bad = sorted({c for c in normalised if not _VANITY_CHARS.fullmatch(c)})
        raise InvalidInputError("code", code, f"may hold only letters and digits, not {bad}")
    if not VANITY_MIN_LENGTH <= len(normalised) <= VANITY_MAX_LENGTH:
        raise InvalidInputError(
            "code",
            code,
            f"must be {VANITY_MIN_LENGTH} to {VANITY_MAX_LENGTH} letters and digits long,"
            f" not {len(normalised)}",
        )
    extra = {normalise_code(w, "extra_reserved"): w for w in extra_reserved}
    reserved = {**_reserved_codes(), **extra}
    if (word := _reserved_match(normalised, reserved)) is not None:
        raise InvalidInputError("code", code, f"is reserved ({word!r})")
    offensive = _offensive_skeletons() | {
        _skeleton(normalise_code(w, "extra_offensive")) for w in extra_offensive
    }
    if _offensive_match(normalised, offensive) is not None:
        raise InvalidInputError("code", code, "contains a blocked word")
    return normalised
