"""Boundary checks shared by the value classes; each raises a named input error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from referralkit._errors import InvalidInputError, NaiveDatetimeError

__all__ = ["is_text", "require_aware", "require_id", "require_mapping"]


def require_aware(field: str, value: object) -> datetime:
    """Return ``value`` if it is a timezone-aware datetime.

    Raises:
        InvalidInputError: not a datetime.
        NaiveDatetimeError: a datetime without a UTC offset.
    """
    if not isinstance(value, datetime):
        raise InvalidInputError(field, value, "must be a timezone-aware datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(field, value, "must be timezone-aware (add tzinfo)")
    return value


def is_text(value: str) -> bool:
    """Whether ``value`` can be stored and hashed: encodable as UTF-8 (no lone surrogates)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_id(field: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string without surrounding whitespace."""
    if not isinstance(value, str):
        raise InvalidInputError(field, value, "must be a string")
    if not is_text(value):
        raise InvalidInputError(field, value, "must be valid Unicode text (no lone surrogates)")
    if not value or value != value.strip():
        raise InvalidInputError(field, value, "must be non-empty, without surrounding spaces")
    if len(value) > 200:
        raise InvalidInputError(field, value, "must be at most 200 characters")
    return value


def require_mapping(field: str, value: object) -> dict[str, Any]:
    """Return a plain dict copy of a mapping with string keys."""
    if not isinstance(value, dict):
        try:
            value = dict(value)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            raise InvalidInputError(field, value, "must be a mapping") from None
    assert isinstance(value, dict)
    for key in value:
        if not isinstance(key, str):
            raise InvalidInputError(f"{field}[{key!r}]", key, "keys must be strings")
    return value
