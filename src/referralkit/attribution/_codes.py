"""Referral codes: generation and normalisation (pure)."""

from __future__ import annotations

import math
import secrets
import unicodedata
from collections.abc import Callable

from referralkit._errors import InvalidInputError

__all__ = ["CROCKFORD", "code_entropy_bits", "generate_code", "normalise_code"]

#: Crockford's base32 alphabet: no I, L, O or U, so codes read aloud survive.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
# Dropped: dashes of every kind (phones swap '-' for typographic ones), spaces, separators,
# controls, combining marks (accents typed by mistake) and a few punctuation marks.
_DROP_CATEGORIES = frozenset({"Pd", "Zs", "Zl", "Zp", "Cc", "Cf", "Mn", "Me"})
_DROP_CHARS = frozenset("._\u2212")
_ASCII_DROP = str.maketrans("", "", "-._ " + "".join(map(chr, range(32))) + "\x7f")


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
        text = code.upper().translate(_ASCII_DROP).translate(_CONFUSABLE)
        if not text:
            raise InvalidInputError(field, code, "is empty once normalised")
        return text
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
