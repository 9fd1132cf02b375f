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
    # The arities the engine uses on every event (referrals 2, touches 3 and 4, rewards 5)
    # write the same text as the join below in one f-string, without the list.
    n = len(parts)
    if n == 2:
        a, b = parts
        text = f"{len(a)}:{a}{len(b)}:{b}"
    elif n == 4:
        a, b, c, d = parts
        text = f"{len(a)}:{a}{len(b)}:{b}{len(c)}:{c}{len(d)}:{d}"
    elif n == 5:
        a, b, c, d, e = parts
        text = f"{len(a)}:{a}{len(b)}:{b}{len(c)}:{c}{len(d)}:{d}{len(e)}:{e}"
    elif n == 3:
        a, b, c = parts
        text = f"{len(a)}:{a}{len(b)}:{b}{len(c)}:{c}"
    else:
        text = "".join([f"{len(part)}:{part}" for part in parts])
    return prefix + "_" + _sha256(text.encode()).hexdigest()[:24]


def sub_id(prefix: str, parent_id: str, suffix: str) -> str:
    """An id for a record that belongs to ``parent_id``: ``ent_<parent hash>_granted``.

    Cheaper than ``derive_id`` and just as deterministic; ``suffix`` must be unique among
    the parent's children.
    """
    return f"{prefix}_{parent_id.partition('_')[2]}_{suffix}"
