"""Batch scaling: `segmenter run` with 1 and 2 workers, and the per-file overhead on tiny files.

usage: python bench/batch.py [--backend loky] [--runtime onnx|torch]

Makes (once, under bench/data/) 20 one-minute files and 1,000 one-second files cut from the
golden recordings, then times whole `segmenter run` invocations into fresh output folders, as a
user would run them (worker start-up included), plus a resume over the finished output. The
peak RSS is that of the largest process of the run (a worker: the coordinator loads no model).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

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
PEAK = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


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
    """Files per second between the first and the last result (worker start-up excluded)."""
    stamps = [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in (out / "segmenter.log").read_text().splitlines()
        if " segments, " in line
    ]
    return (len(stamps) - 1) / (max(stamps) - min(stamps)).total_seconds()


def scaling(inputs: Path, jobs: int, settings: argparse.Namespace) -> tuple[float, float]:
    """(wall seconds, steady files/s) of one fresh run."""
    out = Path(tempfile.mkdtemp(prefix="segbench-"))
    try:
        return timed_run(inputs, jobs, settings, out), steady_rate(out)
    finally:
        shutil.rmtree(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="loky")
    ap.add_argument("--runtime", default="onnx")
    settings = ap.parse_args()
    minutes = make_files("batch20x60s", 20, 60)
    tiny = make_files("batch1000x1s", 1000, 1)
    (one, one_rate), (two, two_rate) = scaling(minutes, 1, settings), scaling(minutes, 2, settings)
    resume_out = Path(tempfile.mkdtemp(prefix="segbench-"))
    thousand = timed_run(tiny, 2, settings, resume_out)
    resume = timed_run(tiny, 2, settings, resume_out)
    shutil.rmtree(resume_out)
    print(
        f"backend {settings.backend}, runtime {settings.runtime}, "
        f"{len(list(minutes.glob('*.wav')))} x 60 s and 1000 x 1 s, 2 cores"
    )
    print("| run | wall s | throughput, all in | steady throughput | 2 vs 1 worker | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    mb = [f"{m:.0f}" for m in PEAK_MB]
    print(
        f"| 20 x 1 min, 1 worker | {one:.1f} | {1200 / one:.0f}x real time |"
        f" {one_rate * 60:.0f}x real time | | {mb[0]} |"
    )
    print(
        f"| 20 x 1 min, 2 workers | {two:.1f} | {1200 / two:.0f}x real time |"
        f" {two_rate * 60:.0f}x real time | {one / two:.2f}x all in,"
        f" {two_rate / one_rate:.2f}x steady | {mb[1]} |"
    )
    print(
        f"| 1000 x 1 s, 2 workers | {thousand:.1f} | {1000 / thousand:.0f} files/s | |"
        f" {thousand:.1f} ms per file, all in | {mb[2]} |"
    )
    print(
        f"| same, rerun (all done) | {resume:.1f} | | |"
        f" resume skips all in {resume:.2f} s | {mb[3]} |"
    )


if __name__ == "__main__":
    main()
