"""Attribution rules: referral codes and identity normalisation (pure functions)."""

from referralkit.attribution._codes import (
    CROCKFORD,
    code_entropy_bits,
    generate_code,
    normalise_code,
)
from referralkit.attribution._identity import normalise_email

__all__ = [
    "CROCKFORD",
    "code_entropy_bits",
    "generate_code",
    "normalise_code",
    "normalise_email",
]
