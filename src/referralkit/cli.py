"""The ``referralkit`` command line."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``referralkit`` console script."""
    args = sys.argv[1:] if argv is None else argv
    print(f"referralkit: unknown command {args!r}", file=sys.stderr)
    return 2
