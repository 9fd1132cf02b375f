"""The word lists shipped with referralkit.attribution, read once and kept immutable."""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["data_lines"]


@functools.cache
def data_lines(name: str) -> tuple[str, ...]:
    """The non-blank, non-comment lines of ``data/<name>``, stripped, in file order."""
    text = resources.files("referralkit.attribution").joinpath("data", name).read_text("utf-8")
    return tuple(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
