"""Deterministic ids: the same inputs give the same id in every process and adapter."""

from __future__ import annotations

import hashlib

__all__ = ["derive_id"]


def derive_id(prefix: str, *parts: str) -> str:
    """An id such as ``rwd_3f2a...`` derived from ``parts`` with SHA-256.

    The parts are joined with a separator that cannot occur in them unnoticed (each part is
    length-prefixed), so ``("ab", "c")`` and ``("a", "bc")`` give different ids.
    """
    h = hashlib.sha256()
    for part in parts:
        data = part.encode()
        h.update(len(data).to_bytes(4, "big"))
        h.update(data)
    return f"{prefix}_{h.hexdigest()[:24]}"
