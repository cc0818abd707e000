"""Batch scaling: `segmenter run` with 1 and 2 workers, and the per-file overhead on tiny files.

usage: python bench/batch.py [--backend loky] [--runtime onnx|torch] [--repeat N]
                            [--markdown docs/bench/batch.md]

Makes (once, under bench/data/) 20 and 80 one-minute files and 1,000 one-second files cut
from the golden recordings, then times whole `segmenter run` invocations into fresh output
folders, as a user would run them (worker start-up included), plus a resume over the finished
output. The 1- and 2-worker runs of each minute batch are repeated N times, interleaved, and
their medians shown (one such run varies by 10-20% on a shared 2-core machine). Steady
throughput is the workers' own: audio over the per-file processing seconds the manifest
records, per worker. The peak RSS is that of the largest process of the run (a worker: the
coordinator loads no model). The package's bytecode is compiled first, as a wheel install has it.
"""

from __future__ import annotations

import argparse
import compileall
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pages  # bench/pages.py, same folder
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
SEGMENTER = str(Path(sys.executable).parent / "segmenter")


def make_files(name: str, count: int, seconds: float) -> Path:
    """`count` recordings of `seconds`, cut from the golden set at different places."""
    folder = DATA / name
    if folder.exists() and len(list(folder.glob("*.wav"))) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    golden = [ROOT / "tests" / "data" / "golden" / "dev06_densepink30db.flac"]  # 150 s
    audio = [sf.read(g, dtype="int16")[0] for g in golden]
    n = int(seconds * 16000)
    for i in range(count):
        source = audio[i % len(audio)]
        start = (i * 104729) % (len(source) - n + 1)
        sf.write(folder / f"{name}_{i:04d}.wav", source[start : start + n], 16000)
    return folder


# Runs a command and prints the peak RSS (KiB) of its largest descendant, once all have exited.
# As a subreaper it also reaps what outlives the command (the workers' fork server, whose
# children the workers are), so their peaks count too.
PEAK = """
import ctypes, os, resource, subprocess, sys
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
subprocess.run(sys.argv[1:], check=True)
try:
    while True:
        os.wait()
except ChildProcessError:
    pass
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def timed_run(inputs: Path, jobs: int, settings: argparse.Namespace, out: Path) -> float:
    """Wall seconds of one `segmenter run`; its peak RSS in MB goes to PEAK_MB."""
    cmd = [SEGMENTER, "run", str(inputs), "-o", str(out), "--jobs", str(jobs), "--quiet"]
    cmd += ["--settle-seconds", "0", "--backend", settings.backend, "--runtime", settings.runtime]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK, *cmd], check=True, capture_output=True)
    PEAK_MB.append(int(done.stdout.decode().split()[-1]) / 1024)
    return time.perf_counter() - start


PEAK_MB: list[float] = []


def steady_rate(out: Path) -> float:
    """Files per second of one worker at work: start-up, dispatch and writing excluded."""
    with sqlite3.connect(out / "manifest.sqlite") as db:
        seconds = [row[0] for row in db.execute("SELECT seconds FROM files")]
    return len(seconds) / sum(seconds)


def scaling(inputs: Path, jobs: int, settings: argparse.Namespace) -> tuple[float, float]:
    """(wall seconds, steady files/s per worker) of one fresh run."""
    out = Path(tempfile.mkdtemp(prefix="segbench-"))
    try:
        return timed_run(inputs, jobs, settings, out), steady_rate(out)
    finally:
        shutil.rmtree(out)


def medians(inputs: Path, settings: argparse.Namespace) -> dict[int, tuple[float, float, float]]:
    """Per worker count (1, 2): median wall s, median steady rate, median peak MB over the
    interleaved repeats."""
    runs: dict[int, list[tuple[float, float, float]]] = {1: [], 2: []}
    for _ in range(settings.repeat):
        for jobs in runs:
            wall, rate = scaling(inputs, jobs, settings)
            runs[jobs].append((wall, rate, PEAK_MB.pop()))
    return {jobs: tuple(map(statistics.median, zip(*r, strict=True))) for jobs, r in runs.items()}


def compiled() -> None:
    """The package's bytecode, as a wheel install has it: an editable install where
    PYTHONDONTWRITEBYTECODE is set would compile every module in every process of a run."""
    compileall.compile_dir(ROOT / "segmenter", quiet=1)


def print_scaling(count: int, rows: dict[int, tuple[float, float, float]]) -> None:
    """The table's rows for `count` one-minute files: one worker, then two against it."""
    (one, one_rate, one_mb), (two, two_rate, two_mb) = rows.values()
    audio = count * 60
    print(
        f"| {count} x 1 min, 1 worker | {one:.2f} | {audio / one:.0f}x real time |"
        f" {one_rate * 60:.0f}x real time | | {one_mb:.0f} |"
    )
    print(
        f"| {count} x 1 min, 2 workers | {two:.2f} | {audio / two:.0f}x real time |"
        f" {2 * two_rate * 60:.0f}x real time | {one / two:.2f}x all in,"
        f" {2 * two_rate / one_rate:.2f}x steady | {two_mb:.0f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="loky")
    ap.add_argument("--runtime", default="onnx")
    ap.add_argument("--repeat", type=int, default=5, help="runs of each worker count (median)")
    pages.add_argument(ap)
    settings = ap.parse_args()
    with pages.page(settings.markdown, __doc__):
        measure(settings)


def measure(settings: argparse.Namespace) -> None:
    """Make the files, run the batches, print the table."""
    compiled()
    batches = {count: make_files(f"batch{count}x60s", count, 60) for count in (20, 80)}
    tiny = make_files("batch1000x1s", 1000, 1)
    measured = {count: medians(folder, settings) for count, folder in batches.items()}
    resume_out = Path(tempfile.mkdtemp(prefix="segbench-"))
    thousand = timed_run(tiny, 2, settings, resume_out)
    resume = timed_run(tiny, 2, settings, resume_out)
    shutil.rmtree(resume_out)
    print(
        f"backend {settings.backend}, runtime {settings.runtime},"
        f" {' and '.join(map(str, batches))} x 60 s and 1000 x 1 s, 2 cores,"
        f" medians of {settings.repeat} runs"
    )
    print("| run | wall s | throughput, all in | steady throughput | 2 vs 1 worker | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for count, rows in measured.items():
        print_scaling(count, rows)
    mb = [f"{m:.0f}" for m in PEAK_MB]
    print(
        f"| 1000 x 1 s, 2 workers | {thousand:.1f} | {1000 / thousand:.0f} files/s | |"
        f" {thousand:.1f} ms per file, all in | {mb[0]} |"
    )
    print(
        f"| same, rerun (all done) | {resume:.1f} | | |"
        f" resume skips all in {resume:.2f} s | {mb[1]} |"
    )


if __name__ == "__main__":
    main()
