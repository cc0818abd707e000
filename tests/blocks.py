"""Runnable code blocks of README.md and the docs pages: found by their marker, read verbatim.

A fenced block is runnable when the line just before its opening fence is an HTML comment
(invisible on GitHub and on the docs site):

    <!-- runnable -->                 run by tests/test_blocks.py on the sample recordings
    <!-- runnable: NAME -->           run by the test that asks for NAME (blocks.named(NAME)),
                                      in a setting it makes (e.g. tests/test_whisper.py)

Only ```sh (bash) and ```python blocks can be runnable. tests/test_blocks.py runs a page's
unnamed blocks in order, in one temporary folder holding a copy of samples/ (so a block may use
what an earlier one wrote, as a reader following the page would), and every named block must
belong to a test listed in NAMED.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).parents[1]
LANGUAGES = ("sh", "python")
MARKER = re.compile(r"^<!--\s*runnable(?::\s*(?P<name>[\w-]+))?\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")

# Each named block and the test that runs it: a name no test claims fails tests/test_blocks.py,
# so a block cannot be marked runnable and left unrun.
NAMED = {
    "whisper-chunks": "tests/test_whisper.py",
    "whisper-packed": "tests/test_whisper.py",
    "whisper-clips": "tests/test_whisper.py",
    "after-make-run": "tests/test_install.py",
    "pyannote-metrics": "tests/test_handoff.py",
    "library-stream": "tests/test_streaming.py",
}


@dataclass(frozen=True)
class Block:
    """One runnable block: where it is, its language, its code as written, its name if any."""

    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    name: str | None

    @property
    def where(self) -> str:
        """`docs/x.md:12`, for failure messages."""
        return f"{self.page.relative_to(REPO)}:{self.line}"


class BlockError(ValueError):
    """A marker that marks no block, or a block in a language that cannot run."""


def pages() -> list[Path]:
    """README.md and every Markdown page of the docs site."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def read(page: Path) -> list[Block]:
    """The runnable blocks of one page, in order."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        marker = MARKER.match(lines[i].strip())
        i += 1
        if not marker:
            continue
        where = f"{page.relative_to(REPO)}:{i}"
        fence = FENCE.match(lines[i].lstrip()) if i < len(lines) else None
        if fence is None:
            raise BlockError(f"{where}: a runnable marker must stand just above a fenced block")
        lang = fence["lang"]
        if lang not in LANGUAGES:
            raise BlockError(f"{where}: a runnable block is one of {LANGUAGES}, not {lang!r}")
        start = i + 1
        end = next(
            (j for j in range(start, len(lines)) if lines[j].strip() == fence["fence"]), None
        )
        if end is None:
            raise BlockError(f"{where}: the block is never closed")
        indent = len(lines[i]) - len(lines[i].lstrip())  # a block inside a list item
        code = "".join(unindent(line, indent) + "\n" for line in lines[start:end])
        found.append(Block(page, start, lang, code, marker["name"]))
        i = end + 1
    return found


def unindent(line: str, indent: int) -> str:
    """A block's line without the indentation of its fence (blocks inside list items)."""
    cut = len(line) - len(line.lstrip(" "))
    return line[min(cut, indent) :]


def every() -> list[Block]:
    """All runnable blocks of all pages."""
    return [block for page in pages() for block in read(page)]


def named(name: str) -> Block:
    """The one block marked `<!-- runnable: NAME -->`."""
    found = [b for b in every() if b.name == name]
    if len(found) != 1:
        places = ", ".join(b.where for b in found) or "no page"
        raise BlockError(f"runnable block {name!r}: expected exactly one, found {places}")
    return found[0]
