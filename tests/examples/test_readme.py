"""The README's demo and test commands are the ones CI runs (``.ci/run``), word for word."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CI_SCRIPT = ROOT / ".ci" / "run"


def ci_variable(name: str) -> str:
    """The value of a ``NAME="..."`` assignment in ``.ci/run``, unquoted as bash would."""
    text = CI_SCRIPT.read_text("utf-8")
    found = re.findall(rf"^{name}=(.+)$", text, flags=re.MULTILINE)
    assert len(found) == 1, f"expected one {name}=... line in .ci/run, found {len(found)}"
    words = shlex.split(found[0], comments=True)
    assert len(words) == 1, f"{name} in .ci/run is not one quoted string: {found[0]}"
    return words[0]


def bash_blocks(text: str) -> list[list[str]]:
    """The lines of every ```bash (or ```sh / ```console) block, in order."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if current is None:
            if re.fullmatch(r"```\s*(bash|sh|shell|console)\b.*", stripped):
                current = []
        elif stripped.startswith("```"):
            blocks.append(current)
            current = None
        else:
            current.append(line)
    return blocks


@pytest.mark.parametrize(
    ("variable", "marker"),
    [("DEMO_COMMAND", "referralkit demo"), ("TEST_COMMAND", "-m pytest")],
)
def test_the_readme_command_is_one_bash_line_identical_to_ci(variable: str, marker: str) -> None:
    """The README shows the command as one line of a bash block, exactly as .ci/run has it."""
    command = ci_variable(variable)
    assert marker in command, f"{variable} in .ci/run no longer contains {marker!r}: {command}"
    blocks = bash_blocks(README.read_text("utf-8"))
    candidates = [line for lines in blocks for line in lines if marker in line]
    assert candidates, f"README.md has no bash block with a line containing {marker!r}"
    for lines in blocks:
        for i, line in enumerate(lines):
            if marker in line:
                continued = line.rstrip().endswith("\\") or (
                    i > 0 and lines[i - 1].rstrip().endswith("\\")
                )
                assert not continued, f"the README's {variable} spans several lines: {line!r}"
    assert command in [line.strip() for line in candidates], (
        f"README.md's command differs from {variable} in .ci/run:\n"
        f"  README: {candidates}\n  .ci/run: {command!r}"
    )
