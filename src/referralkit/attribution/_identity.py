"""Identity normalisation, for self-referral checks (pure)."""

from __future__ import annotations

import unicodedata

__all__ = ["normalise_email"]

_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalise_email(email: str) -> str:
    """The canonical form of an email address, so variants of one inbox compare equal.

    Lower case, surrounding whitespace removed, a ``+tag`` dropped from the local part;
    for Gmail, dots in the local part are dropped and ``googlemail.com`` becomes
    ``gmail.com``. Idempotent.
    """
    text = unicodedata.normalize("NFKC", email).strip().lower()
    local, sep, domain = text.rpartition("@")
    if not sep:
        return text
    local = local.split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"
