"""Signed referral-link tokens: HMAC-SHA256 with key rotation (pure).

A token is ``<key id>.<payload>.<signature>``: the payload (UTF-8, URL-safe base64 without
padding) and an HMAC-SHA256 over ``<key id>.<payload>`` (URL-safe base64 without padding).
It only contains characters that need no escaping in a URL: ``A-Z a-z 0-9 - _ .``. The
payload is signed, not encrypted: anyone can read it, nobody without a key can change it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from types import MappingProxyType

from referralkit._errors import InvalidInputError, InvalidTokenError

__all__ = ["LINK_KEY_MIN_BYTES", "TOKEN_MAX_LENGTH", "LinkSigner"]

#: Shortest signing key accepted, in bytes (256 bits, the HMAC-SHA256 block strength).
LINK_KEY_MIN_BYTES = 32
#: Longest token accepted by [`LinkSigner.verify`][referralkit.attribution.LinkSigner.verify].
TOKEN_MAX_LENGTH = 2048

_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64 = re.compile(r"[A-Za-z0-9_-]*")
_MAC_LENGTH = 43  # 32 bytes of HMAC-SHA256 in base64 without padding


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    """Signs and verifies referral-link tokens, with several keys for rotation.

    Every key in ``keys`` is accepted when verifying; only ``current`` signs. To rotate,
    add a new key and make it current, then drop the old one once the links signed with it
    may expire. The keys never appear in a token, a message or a ``repr``.

    Args:
        keys: Key id -> secret key. Ids are 1 to 32 of ``A-Z a-z 0-9 _ -`` (they appear in
            each token); keys are ``bytes`` of at least 32 bytes (use
            ``secrets.token_bytes(32)``).
        current: The id of the key that signs.

    Raises:
        InvalidInputError: no keys, a malformed id, a key that is not bytes or is shorter
            than 32 bytes, or ``current`` not among the ids.

    Example:
        ```python
        from referralkit.attribution import LinkSigner

        signer = LinkSigner(keys={"k2": b"n" * 32, "k1": b"o" * 32}, current="k2")
        token = signer.sign("alice")
        assert token.startswith("k2.") and signer.verify(token) == "alice"
        ```
    """

    __slots__ = ("_current", "_keys")

    def __init__(self, keys: Mapping[str, bytes], current: str) -> None:
        if not isinstance(keys, Mapping) or not keys:
            shown = sorted(keys) if isinstance(keys, Mapping) else type(keys)
            raise InvalidInputError("keys", shown, "must map at least one key id to a key")
        checked: dict[str, bytes] = {}
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise InvalidInputError(
                    "keys", key_id, "key ids must be 1 to 32 of A-Z a-z 0-9 _ -"
                )
            if not isinstance(key, bytes | bytearray):
                raise InvalidInputError(f"keys[{key_id!r}]", type(key), "must be bytes")
            if len(key) < LINK_KEY_MIN_BYTES:
                raise InvalidInputError(
                    f"keys[{key_id!r}]",
                    f"<{len(key)} bytes>",
                    f"must be at least {LINK_KEY_MIN_BYTES} bytes",
                )
            checked[key_id] = bytes(key)
        if current not in checked:
            raise InvalidInputError("current", current, f"must be one of {sorted(checked)}")
        self._keys: Mapping[str, bytes] = MappingProxyType(checked)
        self._current = current

    @property
    def current(self) -> str:
        """The id of the key that signs."""
        return self._current

    @property
    def key_ids(self) -> frozenset[str]:
        """The ids of every key accepted when verifying."""
        return frozenset(self._keys)

    def __repr__(self) -> str:
        return f"LinkSigner(key_ids={sorted(self._keys)!r}, current={self._current!r})"

    def _signature(self, key_id: str, body: str) -> str:
        mac = hmac.new(self._keys[key_id], f"{key_id}.{body}".encode("ascii"), hashlib.sha256)
        return _b64(mac.digest())

    def sign(self, payload: str) -> str:
        """A URL-safe token carrying ``payload``, signed with the current key.

        Args:
            payload: Any text (a referrer id, a code, a small JSON document).

        Raises:
            InvalidInputError: ``payload`` is not a string, or the token would be longer
                than 2048 characters.
        """
        if not isinstance(payload, str):
            raise InvalidInputError("payload", payload, "must be a string")
        try:
            body = _b64(payload.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInputError("payload", payload, "must be encodable as UTF-8") from None
        token = f"{self._current}.{body}.{self._signature(self._current, body)}"
        if len(token) > TOKEN_MAX_LENGTH:
            raise InvalidInputError(
                "payload", payload, f"makes a token longer than {TOKEN_MAX_LENGTH} characters"
            )
        return token

    def verify(self, token: str) -> str:
        """The payload of a token signed by one of the keys.

        The signature is compared in constant time (``hmac.compare_digest``), and only the
        canonical encoding is accepted, so any change to a token makes it fail.

        Raises:
            InvalidTokenError: field ``"token"``: malformed (not three dot-separated
                URL-safe base64 parts, or too long), signed with an unknown key id, or
                tampered with (the signature does not match).
        """
        if not isinstance(token, str):
            raise InvalidTokenError("token", token, "is malformed: must be a string")
        if len(token) > TOKEN_MAX_LENGTH:
            shown = f"{token[:40]}...<{len(token)} characters>"
            raise InvalidTokenError("token", shown, f"is malformed: over {TOKEN_MAX_LENGTH} chars")
        parts = token.split(".")
        if len(parts) != 3 or not all(_B64.fullmatch(part) for part in parts):
            raise InvalidTokenError("token", token, "is malformed: expected key.payload.mac")
        key_id, body, mac = parts
        if len(mac) != _MAC_LENGTH:
            raise InvalidTokenError("token", token, "is malformed: wrong signature length")
        if key_id not in self._keys:
            raise InvalidTokenError("token", token, f"is signed with an unknown key {key_id!r}")
        expected = self._signature(key_id, body)
        if not hmac.compare_digest(expected.encode("ascii"), mac.encode("ascii")):
            raise InvalidTokenError("token", token, "was tampered with: the signature differs")
        try:
            data = _unb64(body)
            if _b64(data) != body:
                raise ValueError("non-canonical base64")
            return data.decode("utf-8")
        except (binascii.Error, ValueError):
            # Only a key holder could have signed it; refuse it all the same.
            raise InvalidTokenError("token", token, "is malformed: bad payload") from None
