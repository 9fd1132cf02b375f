"""The Python code blocks of README.md and docs/*.md run as written.

Each page's ```python blocks run in order in one namespace, so a later block may use the
names an earlier one defined. A block right after an ``<!-- skip-test -->`` HTML comment is
not run. Functions named ``test_*`` that a page defines (property tests shown as examples)
are called after its blocks have run, so they are executed too.
"""

from __future__ import annotations

import inspect
import re
import traceback
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import referralkit as rk

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_MARKER = "<!-- skip-test -->"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")


@attrs.frozen
class Block:
    """One fenced code block of a Markdown page."""

    language: str
    line: int
    """1-based line number of the block's first code line."""
    code: str
    skip: bool


def fenced_blocks(text: str) -> Iterator[Block]:
    """Every fenced block of ``text``, with its language and whether it is marked skipped.

    Fences may be indented (inside an admonition or a list); the indentation of the opening
    fence is removed from the block's lines. A block is skipped when the last non-blank line
    before its opening fence is the skip marker.
    """
    lines = text.splitlines()
    i = 0
    previous = ""
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            if lines[i].strip():
                previous = lines[i].strip()
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        words = opening["info"].strip().lstrip("{.").split()
        language = words[0].rstrip("}").lower() if words else ""
        start = i + 1
        j = start
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            j += 1
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[start:j]]
        yield Block(language, start + 1, "\n".join(body) + "\n", previous == SKIP_MARKER)
        previous = lines[j].strip() if j < len(lines) else ""
        i = j + 1


def python_blocks(page: Path) -> list[Block]:
    """The page's ```python blocks, skipped ones included."""
    return [b for b in fenced_blocks(page.read_text("utf-8")) if b.language in {"python", "py"}]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def run_page(page: Path) -> dict[str, object]:
    """Run every block of ``page`` not marked skipped in one namespace, then its tests."""
    name = page_id(page)
    namespace: dict[str, object] = {"__name__": f"docs:{name}"}
    for number, block in enumerate(python_blocks(page), start=1):
        if block.skip:
            continue
        # Pad with blank lines so that tracebacks point at the page's own line numbers.
        source = "\n" * (block.line - 1) + block.code
        try:
            exec(compile(source, str(page), "exec"), namespace)
        except Exception:
            pytest.fail(
                f"{name}, python block {number} (line {block.line}) failed:\n"
                f"{traceback.format_exc()}",
                pytrace=False,
            )
    for attr, value in list(namespace.items()):
        if not (attr.startswith("test_") and inspect.isfunction(value)):
            continue
        if getattr(value, "__module__", None) != namespace["__name__"]:
            continue  # imported, not defined on the page
        required = [
            p
            for p in inspect.signature(value).parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if required:
            continue  # needs pytest fixtures: shown as an example only
        try:
            value()
        except Exception:
            pytest.fail(
                f"{name}: {attr}(), defined on the page, failed:\n{traceback.format_exc()}",
                pytrace=False,
            )
    return namespace


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_the_python_blocks_of_each_page_run_in_order(page: Path) -> None:
    """Every python block of the page runs, in order, in one namespace, without error."""
    run_page(page)


def test_the_readme_and_the_guides_have_code_to_run() -> None:
    """The extractor finds the blocks (a broken extractor would make every page pass)."""
    counts = {page_id(p): len([b for b in python_blocks(p) if not b.skip]) for p in PAGES}
    for name in ("README.md", "docs/getting-started.md", "docs/policies.md", "docs/testing.md"):
        assert counts[name] > 0, f"{name} has no python block to run"


def test_the_extractor_handles_indented_fences_and_the_skip_marker() -> None:
    """Blocks in admonitions are dedented; a block after the marker is flagged skipped."""
    text = "\n".join(
        [
            "# Page",
            "```python",
            "x = 1",
            "```",
            "",
            SKIP_MARKER,
            "",
            "```python",
            "raise SystemExit",
            "```",
            '!!! note "In an admonition"',
            "    ```python",
            "    y = x + 1",
            "    ```",
            "````markdown",
            "```python",
            "not a block of its own",
            "```",
            "````",
            "```bash",
            "echo hi",
            "```",
        ]
    )
    blocks = list(fenced_blocks(text))
    assert [(b.language, b.line, b.code, b.skip) for b in blocks] == [
        ("python", 3, "x = 1\n", False),
        ("python", 9, "raise SystemExit\n", True),
        ("python", 13, "y = x + 1\n", False),
        ("markdown", 16, "```python\nnot a block of its own\n```\n", False),
        ("bash", 21, "echo hi\n", False),
    ]


def test_the_reason_code_table_lists_every_built_in_code() -> None:
    """The reason code table of docs/getting-started.md has one row per built-in code."""
    from referralkit._values.decisions import _TEMPLATES  # the built-in codes

    text = (ROOT / "docs" / "getting-started.md").read_text("utf-8")
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", text, flags=re.MULTILINE)
    assert len(rows) == len(set(rows)), "a reason code is listed twice"
    assert set(rows) == set(_TEMPLATES), (
        f"missing from the table: {sorted(set(_TEMPLATES) - set(rows))}; "
        f"not built-in codes: {sorted(set(rows) - set(_TEMPLATES))}"
    )


def test_the_api_reference_documents_every_public_name() -> None:
    """docs/reference.md has a ``::: referralkit.<name>`` directive for each public name."""
    text = (ROOT / "docs" / "reference.md").read_text("utf-8")
    documented = set(re.findall(r"^::: referralkit\.(\w+)\s*$", text, flags=re.MULTILINE))
    missing = sorted(set(rk.__all__) - {"__version__"} - documented)
    assert not missing, f"docs/reference.md does not document: {missing}"
