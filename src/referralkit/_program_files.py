"""Loading a declarative program from a TOML or JSON file."""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from os import PathLike
from pathlib import Path

from referralkit._errors import InvalidProgramError
from referralkit._program import Program

__all__ = ["load_program"]


def load_program(path: str | PathLike[str]) -> Program:
    """A program from a ``.toml`` file (stdlib ``tomllib``) or a ``.json`` file.

    The file holds what ``Program.from_dict`` reads. Numbers
    with a fraction are read as ``Decimal``, never as ``float``.

    Raises:
        InvalidProgramError: another suffix, a file that does not parse, or a program that
            cannot run (the field is the key path, such as ``policies[1].tiers[0].reward``).
        OSError: the file cannot be read.
    """
    if not isinstance(path, str | PathLike):
        raise InvalidProgramError("path", path, "must be a str or os.PathLike file path")
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".toml":
        try:
            with file.open("rb") as fp:
                data = tomllib.load(fp, parse_float=Decimal)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidProgramError("path", str(file), f"is not valid TOML: {exc}") from None
    elif suffix == ".json":
        try:
            data = json.loads(file.read_text("utf-8"), parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise InvalidProgramError("path", str(file), f"is not valid JSON: {exc}") from None
    else:
        raise InvalidProgramError("path", str(file), "must end in .toml or .json")
    return Program.from_dict(data)
