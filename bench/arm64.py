"""ARM64 under emulation: what `make test-arm64` checks, how it came out and how long it took.

usage: python bench/arm64.py [--markdown docs/bench/arm64.md]

Runs the real `make test-arm64` from the repository's top (scripts/arm64/run.sh: an arm64
Python from Debian bookworm's packages run by `qemu-aarch64 -cpu cortex-a76`, or `ARM64_CPU`;
pip inside the emulation installs torch, onnxruntime and this checkout with PyPI's aarch64
wheels; then scripts/arm64/check.py runs its checks there) and turns what it prints into
tables: the emulated Python and library versions, each check's result and seconds, and the
steps of the run with the minute each began (the first run installs; `.arm64/` keeps the
downloads, sysroot and venv, so a rerun skips those steps). The seconds are emulated ones:
they say how long the check takes here, not how fast an ARM box is (measure that on the box
with `segmenter bench`). Exits as `make test-arm64` did, after printing what it saw.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

import pages  # bench/pages.py, same folder

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r"^== \[(\d+):(\d\d)\] (.*)$")  # run.sh's say()
CHECK = re.compile(r"^(.*?)\s+(ok|FAIL)\s+([\d.]+) s  (.*)$")  # check.py's rows


def run() -> tuple[int, list[str], float]:
    """`make test-arm64`, its lines echoed to stderr as they come; exit code, lines, wall s."""
    start = time.perf_counter()
    lines = []
    with subprocess.Popen(
        ["make", "test-arm64"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        for line in proc.stdout:
            print(line, end="", file=sys.stderr, flush=True)
            lines.append(line.rstrip("\n"))
    return proc.returncode, lines, time.perf_counter() - start


def report(code: int, lines: list[str], wall: float) -> None:
    """The tables, from the lines `make test-arm64` printed."""
    steps = [m.groups() for m in map(STEP.match, lines) if m]
    checks = [m.groups() for m in map(CHECK.match, lines) if m]
    versions = next((line for line in lines if line.startswith("aarch64 Python")), "")
    print(f"`make test-arm64` exited {code} after {wall // 60:.0f} min {wall % 60:.0f} s;"
          f" emulated: {versions or 'no version line (the checks did not start)'}")  # fmt: skip
    if checks:
        print("\n| check | result | detail | s |")
        print("| --- | --- | --- | ---: |")
        for check, ok, seconds, detail in checks:
            print(f"| {check} | {ok} | {detail} | {float(seconds):.0f} |")
    print("\n| step (run.sh) | began at |")
    print("| --- | ---: |")
    for minutes, seconds, step in steps:
        print(f"| {step} | {minutes}:{seconds} |")
    if code and not checks:
        print("\nlast lines:\n\n" + "\n".join(f"    {line}" for line in lines[-15:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    pages.add_argument(ap)
    args = ap.parse_args()
    with pages.page(args.markdown, __doc__):  # the load is taken before the run
        code, lines, wall = run()
        report(code, lines, wall)
    sys.exit(code)


if __name__ == "__main__":
    main()
