"""bench/pages.py: a bench's printed tables written as a docs page, each table under the date,
commit, machine and command it came from; without --markdown nothing changes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench import pages

from .conftest import REPO

DOC = """A bench: what it measures.

usage: python bench/x.py [--flag]
                         [--markdown PATH]

How it measures, in a paragraph
of two lines.
"""


def bench(markdown, tables: int = 2) -> None:
    """What a bench script's main does: print a line and tables inside pages.page()."""
    with pages.page(markdown, DOC):
        print("one line before the tables")
        for n in range(tables):
            print("| run | s |")
            print("| --- | ---: |")
            print(f"| {n} | 1.0 |")
            print(f"after table {n}")


def test_the_page_has_the_method_and_each_table_its_provenance(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(REPO / "bench" / "x.py"), "--repeat", "3"])
    page = tmp_path / "docs" / "x.md"
    bench(page)
    printed = capsys.readouterr().out
    assert printed.count("| run | s |") == 2  # stdout as without --markdown
    text = page.read_text()
    lines = text.splitlines()
    assert lines[0] == "# A bench: what it measures."
    assert "How it measures, in a paragraph\nof two lines." in text
    assert "usage:" not in text and "--markdown PATH" not in text
    head = subprocess.run(
        ["git", "rev-parse", "--short=10", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    tables = [i for i, line in enumerate(lines) if line == "| run | s |"]
    assert len(tables) == 2
    for i in tables:  # provenance, then a blank line, then the table
        stamp, command, blank = lines[i - 3 : i]
        assert stamp.startswith("> 20") and f"commit `{head}" in stamp, stamp
        assert f"{os.cpu_count()} cores" in stamp and "load " in stamp and "GB" in stamp
        assert command == "> `python bench/x.py --repeat 3`" and blank == ""
    assert "| 0 | 1.0 |\n\nafter table 0\n" in text  # a paragraph after a table stands apart


def test_changes_count_outside_the_docs_only(tmp_path, monkeypatch):
    """A page written by another bench (docs/) leaves the commit clean; code that differs
    from the commit is "+ changes"."""

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("old\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    monkeypatch.setattr(pages, "ROOT", tmp_path)
    (tmp_path / "docs" / "page.md").write_text("new\n")
    assert not pages.commit().endswith("+ changes")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert pages.commit().endswith("+ changes")


def test_without_markdown_nothing_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench(None)
    assert "| 1 | 1.0 |" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_leaves_no_page(tmp_path):
    page = tmp_path / "x.md"
    with pytest.raises(RuntimeError), pages.page(page, DOC):
        print("| run | s |")
        raise RuntimeError("the bench broke")
    assert not page.exists()


@pytest.mark.parametrize(
    "bench",
    [
        "batch.py",
        "speed.py",
        # pages-b's: the pages of engines, archive, small-box, performance, arm64, getting-started
        "profile_speed.py",
        "scale.py",
        "model_tools.py",
        "compile.py",
        "engine.py",
        "arm64.py",
        "install.py",
        # pages-a's: the pages of faults, whisper, parity, audio, views
        "fuzz.py",
        "whisper.py",
        "int8.py",
        "audio.py",
        "report.py",
        "serve.py",
    ],
)
def test_the_wired_bench_takes_markdown(bench):
    """The benches that write docs pages offer pages.py's --markdown PATH."""
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / bench), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--markdown PATH" in done.stdout
