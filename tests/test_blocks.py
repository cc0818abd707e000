"""Every code block marked runnable in README.md and the docs runs as written (tests/blocks.py
says how a block is marked): a page's unnamed blocks in order, in a temporary folder holding a
copy of samples/, with the venv's `segmenter` and `python` first on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from . import blocks
from .conftest import SAMPLES

BIN = str(Path(sys.executable).parent)
TIMEOUT = 300
TAIL = 3000  # characters of a failing block's output shown


def runnable_pages() -> dict[str, list[blocks.Block]]:
    """Pages with unnamed runnable blocks, by their path in the repository."""
    found: dict[str, list[blocks.Block]] = {}
    for block in blocks.every():
        if block.name is None:
            found.setdefault(str(block.page.relative_to(blocks.REPO)), []).append(block)
    return found


def command(block: blocks.Block) -> list[str]:
    """How a block runs: bash that stops at the first failing command, or the venv's Python."""
    if block.lang == "sh":
        return ["bash", "-euo", "pipefail", "-c", block.code]
    return [sys.executable, "-c", block.code]


def run_block(block: blocks.Block, cwd: Path) -> subprocess.CompletedProcess:
    """One block in `cwd`, offline, with the venv first on PATH."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        command(block), cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def failure(block: blocks.Block, done: subprocess.CompletedProcess) -> str:
    """What a reader of the test log needs: where the block is, what it is, what it said."""
    return (
        f"the runnable block at {block.where} exited {done.returncode}\n"
        f"--- block ---\n{block.code}"
        f"--- stdout (end) ---\n{done.stdout[-TAIL:]}\n"
        f"--- stderr (end) ---\n{done.stderr[-TAIL:]}"
    )


def test_the_markers_are_well_formed_and_named_blocks_are_claimed():
    """A marker without a block, or a named block no test runs, fails here (not silently)."""
    every = blocks.every()  # raises BlockError on a marker that marks nothing runnable
    names = [b.name for b in every if b.name is not None]
    assert sorted(set(names)) == sorted(blocks.NAMED), "blocks.NAMED lists each named block"
    assert len(names) == len(set(names)), f"a name marks more than one block: {names}"


@pytest.mark.slow  # all pages: a minute or two
@pytest.mark.parametrize("page", sorted(runnable_pages()))
def test_runnable_blocks_run(page, tmp_path):
    shutil.copytree(SAMPLES, tmp_path / "samples")
    for block in runnable_pages()[page]:
        done = run_block(block, tmp_path)
        assert done.returncode == 0, failure(block, done)


def test_the_extractor_reads_what_the_marker_marks(tmp_path, monkeypatch):
    """Marked blocks are found with their language, line and code (a list item's unindented);
    unmarked ones and other languages are not run."""
    page = tmp_path / "page.md"
    page.write_text(
        "```sh\necho unmarked\n```\n\n<!-- runnable -->\n```sh\necho one\n```\n\n"
        "- item\n\n  <!-- runnable: x -->\n  ```python\n  print(2)\n  ```\n"
    )
    monkeypatch.setattr(blocks, "REPO", tmp_path)
    found = blocks.read(page)
    assert [(b.lang, b.line, b.code, b.name) for b in found] == [
        ("sh", 6, "echo one\n", None),
        ("python", 13, "print(2)\n", "x"),
    ]
    page.write_text("<!-- runnable -->\n```json\n{}\n```\n")
    with pytest.raises(blocks.BlockError, match="not 'json'"):
        blocks.read(page)
    page.write_text("<!-- runnable -->\n\n```sh\ntrue\n```\n")
    with pytest.raises(blocks.BlockError, match="just above"):
        blocks.read(page)


def test_a_failing_block_fails_with_its_place_and_output(tmp_path):
    """The runner's own check: a block that breaks is reported with page, line and stderr."""
    block = blocks.Block(blocks.REPO / "README.md", 7, "sh", "echo fine\nfalse\necho never\n", None)
    done = run_block(block, tmp_path)
    assert done.returncode != 0 and "never" not in done.stdout
    message = failure(block, done)
    assert "README.md:7 exited 1" in message and "echo fine" in message
    broken = blocks.Block(blocks.REPO / "README.md", 9, "python", "import nosuchmodule\n", None)
    done = run_block(broken, tmp_path)
    assert done.returncode == 1 and "ModuleNotFoundError" in failure(broken, done)
