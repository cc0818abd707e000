"""Getting started from a fresh clone: what `make run` and `make test`'s install cost.

usage: python bench/install.py [--repeat 3] [--keep] [--markdown docs/bench/install.md]

Clones this checkout's commit (`git clone`, the committed files only) into a new temporary
folder and runs, there, with pip's cache pointed at an empty folder of its own (so every wheel
comes from the configured indexes, none from an earlier install's cache):

- `make run`: creates `.venv`, installs what the batch needs and segments `samples/` into
  `output/`;
- `make .venv/.installed-test`: `make test`'s install (CPU torch, the dev extra, the Debian
  tools the tests use when missing), without the suite;
- `make run` again, `--repeat` times: nothing left to install or segment.

Each is timed in wall seconds; after each install the packages `pip list` counts and the size
of `.venv` (`du -s`). What the indexes are (a local wheel mirror, PyPI, the PyTorch index)
decides most of the install times: the table says which were configured. The Debian tools
are installed only when missing, so on a machine that has them the test install does not
time apt.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pages  # bench/pages.py, same folder

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    """Wall seconds of a command that must succeed, and its last line of output."""
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    lines = (done.stdout + done.stderr).strip().splitlines()
    return took, lines[-1] if lines else ""


def venv_facts(clone: Path) -> tuple[int, float]:
    """Packages `pip list` counts in the clone's .venv, and its size in MB (du -s)."""
    listed = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kib = subprocess.run(["du", "-sk", str(clone / ".venv")], capture_output=True, text=True)
    return len(listed), int(kib.stdout.split()[0]) / 1024


def indexes() -> str:
    """The pip indexes configured here (pip config), for the reader to judge the times."""
    shown = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True)
    wanted = ("index-url", "extra-index-url", "find-links")
    found = [
        line.split("=", 1)[1].strip("'")
        for line in shown.stdout.decode().splitlines()
        if line.split("=")[0].rsplit(".", 1)[-1] in wanted
    ]
    return ", ".join(dict.fromkeys(found)) or "PyPI"


def measure(args: argparse.Namespace) -> None:
    """Clone, install, run; print the table."""
    work = Path(tempfile.mkdtemp(prefix="segmenter-install-"))
    clone, cache = work / "clone", work / "pip-cache"
    env = {**os.environ, "PIP_CACHE_DIR": str(cache)}
    env.pop("VIRTUAL_ENV", None)
    ours = str(Path(sys.executable).parent)  # this venv's bin stays out of the clone's make
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != ours)
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        run_s, run_said = timed(["make", "run"], clone, env)
        run_facts = venv_facts(clone)
        test_s, _ = timed(["make", ".venv/.installed-test"], clone, env)
        test_facts = venv_facts(clone)
        again = [timed(["make", "run"], clone, env) for _ in range(args.repeat)]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    again_s = [s for s, _ in again]
    print(f"a fresh clone in {work}; pip's cache empty at the start; indexes: {indexes()}")
    print("| step | wall s | packages (`pip list`) | `.venv` MB |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| `make run` (install, then segment samples/) | {run_s:.0f} | {run_facts[0]} |"
          f" {run_facts[1]:.0f} |")  # fmt: skip
    print(f"| `make .venv/.installed-test` (`make test`'s install), after it | {test_s:.0f} |"
          f" {test_facts[0]} | {test_facts[1]:.0f} |")  # fmt: skip
    print(f"| `make run` again, median of {args.repeat} ({min(again_s):.1f}-{max(again_s):.1f})"
          f" | {statistics.median(again_s):.1f} | | |")  # fmt: skip
    print(f"\nThe first `make run` said: `{run_said}`; the last: `{again[-1][1]}`.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs of `make run` once installed")
    ap.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    pages.add_argument(ap)
    args = ap.parse_args()
    with pages.page(args.markdown, __doc__):
        measure(args)


if __name__ == "__main__":
    main()
