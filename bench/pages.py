"""Benchmark pages: what a bench prints, also written as a docs page with where it came from.

A bench script adds `--markdown PATH` to its parser with `add_argument(parser)` and runs its
printing inside `page(args.markdown, __doc__)`:

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    pages.add_argument(parser)
    args = parser.parse_args()
    with pages.page(args.markdown, __doc__):
        print("| run | wall s |")          # stdout as before; the page gets it too
        print("| --- | ---: |")

Without `--markdown` nothing changes. With it, the page (written when the block ends, and
only if it ends without an error) holds the script's docstring (what is measured and how),
then everything printed, each table preceded by its provenance: the date, the commit (with
"+ changes" when the work tree differs from it), the machine (CPU model, usable and total
cores, memory, load averages when the run began and when it ended) and the exact command that
printed it. The
docs site lists these pages under Benchmarks; figures quoted elsewhere come from them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import io
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def add_argument(parser: argparse.ArgumentParser) -> None:
    """The `--markdown PATH` option every bench takes."""
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="PATH",
        help="also write the output as a docs page (e.g. docs/bench/NAME.md), with the date,"
        " commit, machine and command above each table",
    )


@dataclass(frozen=True)
class Provenance:
    """Where a table came from."""

    date: str
    commit: str
    cpu: str
    cores: str
    memory: str
    load: str
    python: str
    command: str
    load_after: str = ""

    def lines(self) -> list[str]:
        """A small block of Markdown to put above a table."""
        after = f" (after: {self.load_after})" if self.load_after else ""
        return [
            f"> {self.date} · commit `{self.commit}` · {self.cpu}, {self.cores}, {self.memory}"
            f" · load {self.load}{after} · Python {self.python}  ",
            f"> `{self.command}`",
        ]


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; arm64 boards name the model or the part)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    for key in ("model name", "Model", "Hardware", "CPU part"):
        for line in info.splitlines():
            if line.split(":")[0].strip() == key:
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    return platform.machine()


def memory() -> str:
    """Total memory, in GB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.0f} GB"
    except OSError:
        pass
    return "memory unknown"


def commit() -> str:
    """The checkout's commit, short, with "+ changes" when tracked files other than the docs
    differ from it (pages just written by other benches change nothing that is measured)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short=10", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs")
    return f"{head} + changes" if dirty else head


def command() -> str:
    """The command as typed from the repository's top: `python bench/x.py ARGS`."""
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(ROOT)
    return shlex.join(["python", str(script), *sys.argv[1:]])


def load() -> str:
    """The load averages over 1, 5 and 15 minutes."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def provenance() -> Provenance:
    """This machine and run, now."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return Provenance(
        date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        commit=commit(),
        cpu=cpu_model(),
        cores=f"{usable} of {os.cpu_count()} cores",
        memory=memory(),
        load=load(),
        python=platform.python_version(),
        command=command(),
    )


def render(doc: str, printed: str, origin: Provenance) -> str:
    """The page: the docstring as its title and method, then what was printed, with the
    provenance above each table."""
    summary, _, method = (doc or "").strip().partition("\n")
    lines = [f"# {summary.strip()}", ""]
    for paragraph in method.strip().split("\n\n"):  # the usage lines are the command's, below
        if paragraph.strip() and not paragraph.startswith("usage:"):
            lines += [paragraph.strip(), ""]
    in_table = False
    for line in printed.rstrip("\n").splitlines():
        table_line = line.lstrip().startswith("|")
        if table_line and not in_table:
            if lines and lines[-1] != "":
                lines.append("")
            lines += [*origin.lines(), ""]
        elif not table_line and in_table and line.strip():
            lines.append("")
        in_table = table_line
        lines.append(line)
    return "\n".join(lines).rstrip("\n") + "\n"


class Tee(io.TextIOBase):
    """Writes go to the real stdout and are kept for the page."""

    def __init__(self, stream):
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def page(path: Path | None, doc: str | None) -> Iterator[None]:
    """Print as usual; with a path, also write the page there when the block ends well."""
    if path is None:
        yield
        return
    origin = provenance()  # the load before the run loads the machine itself
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield
    origin = dataclasses.replace(origin, load_after=load())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(doc or "", tee.kept.getvalue(), origin), encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
