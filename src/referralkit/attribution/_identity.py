"""Identity: email normalisation, disposable domains and keyed hashes (pure).

Self-referral checks compare identities in a canonical form: emails through
[`normalise_email`][referralkit.attribution.normalise_email], and device ids, payment
fingerprints, payout accounts and IP addresses only as keyed hashes
([`keyed_hash`][referralkit.attribution.keyed_hash]), so the raw values are never stored.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import unicodedata
from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from referralkit._errors import InvalidInputError
from referralkit.attribution._data import data_lines

__all__ = [
    "DEFAULT_EMAIL_RULES",
    "KEYED_HASH_MIN_KEY_BYTES",
    "EmailRules",
    "disposable_domains",
    "is_disposable_email",
    "keyed_hash",
    "normalise_email",
]

#: Shortest key [`keyed_hash`][referralkit.attribution.keyed_hash] accepts, in bytes.
KEYED_HASH_MIN_KEY_BYTES = 32


def _domain(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lower().rstrip(".")


def _domains(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise InvalidInputError("dotless_domains", value, "must be a collection of domains")
    return frozenset(_domain(d) for d in value)


def _aliases(value: Mapping[str, str]) -> Mapping[str, str]:
    raw = {_domain(k): _domain(v) for k, v in dict(value).items()}
    resolved = {}
    for start, first in raw.items():
        seen = [start]
        target = first
        while target in raw:  # follow chains (a -> b -> c) so one pass is enough
            if target in seen:
                raise InvalidInputError("aliases", dict(value), f"loop through {target!r}")
            seen.append(target)
            target = raw[target]
        resolved[start] = target
    return MappingProxyType(resolved)


def _check_bool(_: object, attribute: attrs.Attribute[bool], value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidInputError(attribute.name, value, "must be True or False")


@attrs.frozen
class EmailRules:
    """How email addresses of one inbox are recognised as the same (per domain).

    The defaults are Gmail's rules: ``googlemail.com`` is ``gmail.com``, dots in a
    ``gmail.com`` local part are ignored, and a ``+tag`` is dropped on every domain.

    Args:
        dotless_domains: Domains (after aliases) whose local part ignores dots.
        plus_tag: Drop everything from the first ``+`` of the local part.
        aliases: Domain -> the domain it is an alias of; chains are followed, loops refused.
    """

    dotless_domains: frozenset[str] = attrs.field(
        default=frozenset({"gmail.com"}), converter=_domains
    )
    plus_tag: bool = attrs.field(default=True, validator=_check_bool)
    aliases: Mapping[str, str] = attrs.field(
        factory=lambda: {"googlemail.com": "gmail.com"},
        converter=_aliases,
        eq=False,
        hash=False,
    )
    _alias_items: frozenset[tuple[str, str]] = attrs.field(init=False, repr=False)

    @_alias_items.default
    def _freeze_aliases(self) -> frozenset[tuple[str, str]]:
        # aliases is a read-only mapping; rules compare and hash by its items.
        return frozenset(self.aliases.items())


#: Today's rules: Gmail dots and ``googlemail.com``, and ``+tags`` everywhere.
DEFAULT_EMAIL_RULES = EmailRules()


def normalise_email(email: str, rules: EmailRules = DEFAULT_EMAIL_RULES) -> str:
    """The canonical form of an email address, so variants of one inbox compare equal.

    Unicode NFKC, surrounding whitespace removed and lower case; then, under ``rules``
    (by default Gmail's): the domain replaced by what it is an alias of, a ``+tag``
    dropped from the local part, and dots dropped from the local part on dotless domains.
    A value without ``@`` is returned cleaned but otherwise unchanged. Idempotent.
    """
    text = unicodedata.normalize("NFKC", email).strip().lower()
    local, sep, domain = text.rpartition("@")
    if not sep:
        return text
    domain = rules.aliases.get(domain, domain)
    if rules.plus_tag:
        local = local.split("+", 1)[0]
    if domain in rules.dotless_domains:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def disposable_domains() -> frozenset[str]:
    """The shipped list of disposable (throwaway) email domains, about 290 of them."""
    return _disposable()


@functools.cache
def _disposable() -> frozenset[str]:
    return frozenset(data_lines("disposable_domains.txt"))


def is_disposable_email(email: str, extra_domains: Iterable[str] = ()) -> bool:
    """Whether ``email`` is at a disposable domain, or a subdomain of one.

    Args:
        email: An email address, as given.
        extra_domains: More domains to treat as disposable (added to the shipped list).

    Returns:
        True for ``x@mailinator.com`` and ``x@eu.mailinator.com``; False for an address
        without ``@``.
    """
    _, sep, domain = unicodedata.normalize("NFKC", email).strip().rpartition("@")
    if not sep:
        return False
    domain = _domain(domain)
    extra = _domains(extra_domains) if extra_domains else frozenset()
    known = _disposable()
    labels = domain.split(".")
    for i in range(len(labels) - 1):
        suffix = ".".join(labels[i:])
        if suffix in known or suffix in extra:
            return True
    return False


def keyed_hash(value: str | bytes, key: bytes) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, as 64 lower-case hex digits.

    Store device ids, payment fingerprints, payout accounts and IP addresses only in this
    form: equal values still compare equal, but the raw value cannot be read back or
    found by hashing guesses without the key. Normalise the value first if variants
    should match (``ip_address(ip).compressed``, ``normalise_email``). Keep the key out
    of the store; rotating it makes old hashes incomparable with new ones.

    Args:
        value: The value; ``str`` is encoded as UTF-8.
        key: A secret of at least 32 bytes.

    Raises:
        InvalidInputError: ``key`` not bytes or too short (the key itself is not shown),
            or ``value`` neither ``str`` nor ``bytes``.
    """
    if not isinstance(key, bytes | bytearray) or len(key) < KEYED_HASH_MIN_KEY_BYTES:
        shown = f"<{len(key)} bytes>" if isinstance(key, bytes | bytearray) else type(key)
        raise InvalidInputError(
            "key", shown, f"must be a secret of at least {KEYED_HASH_MIN_KEY_BYTES} bytes"
        )
    if isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, bytes | bytearray):
        data = bytes(value)
    else:
        raise InvalidInputError("value", value, "must be str or bytes")
    return hmac.new(bytes(key), data, hashlib.sha256).hexdigest()
