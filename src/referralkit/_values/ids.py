"""Deterministic ids: the same inputs give the same id in every process and adapter."""

from __future__ import annotations

import hashlib

__all__ = ["derive_id", "sub_id"]

_sha256 = hashlib.sha256


def derive_id(prefix: str, *parts: str) -> str:
    """An id such as ``rwd_3f2a...`` derived from ``parts`` with SHA-256.

    The parts are joined with a separator that cannot occur in them unnoticed (each part is
    length-prefixed, in characters), so ``("ab", "c")`` and ``("a", "bc")`` give different ids.
    """
    text = "".join([f"{len(part)}:{part}" for part in parts])
    return f"{prefix}_{_sha256(text.encode()).hexdigest()[:24]}"


def sub_id(prefix: str, parent_id: str, suffix: str) -> str:
    """An id for a record that belongs to ``parent_id``: ``ent_<parent hash>_granted``.

    Cheaper than ``derive_id`` and just as deterministic; ``suffix`` must be unique among
    the parent's children.
    """
    return f"{prefix}_{parent_id.partition('_')[2]}_{suffix}"
