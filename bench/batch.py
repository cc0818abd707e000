"""Batch scaling: `segmenter run` with 1 and 2 workers, and the per-file overhead on tiny files.

usage: python bench/batch.py [--backend loky]

Makes (once, under bench/data/) 20 one-minute files and 1,000 one-second files cut from the
golden recordings, then times whole `segmenter run` invocations into fresh output folders, as a
user would run them (worker start-up included), plus a resume over the finished output.
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


def timed_run(inputs: Path, jobs: int, backend: str, out: Path) -> float:
    cmd = [SEGMENTER, "run", str(inputs), "-o", str(out), "--jobs", str(jobs), "--quiet"]
    start = time.perf_counter()
    subprocess.run([*cmd, "--settle-seconds", "0", "--backend", backend], check=True)
    return time.perf_counter() - start


def steady_rate(out: Path) -> float:
    """Files per second between the first and the last result (worker start-up excluded)."""
    stamps = [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in (out / "segmenter.log").read_text().splitlines()
        if " segments, " in line
    ]
    return (len(stamps) - 1) / (max(stamps) - min(stamps)).total_seconds()


def scaling(inputs: Path, jobs: int, backend: str) -> tuple[float, float]:
    """(wall seconds, steady files/s) of one fresh run."""
    out = Path(tempfile.mkdtemp(prefix="segbench-"))
    try:
        return timed_run(inputs, jobs, backend, out), steady_rate(out)
    finally:
        shutil.rmtree(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="loky")
    backend = ap.parse_args().backend
    minutes = make_files("batch20x60s", 20, 60)
    tiny = make_files("batch1000x1s", 1000, 1)
    (one, one_rate), (two, two_rate) = scaling(minutes, 1, backend), scaling(minutes, 2, backend)
    resume_out = Path(tempfile.mkdtemp(prefix="segbench-"))
    thousand = timed_run(tiny, 2, backend, resume_out)
    resume = timed_run(tiny, 2, backend, resume_out)
    shutil.rmtree(resume_out)
    print(f"backend {backend}, {len(list(minutes.glob('*.wav')))} x 60 s and 1000 x 1 s, 2 cores")
    print("| run | wall s | throughput, all in | steady throughput | 2 vs 1 worker |")
    print("| --- | ---: | ---: | ---: | --- |")
    print(
        f"| 20 x 1 min, 1 worker | {one:.1f} | {1200 / one:.0f}x real time |"
        f" {one_rate * 60:.0f}x real time | |"
    )
    print(
        f"| 20 x 1 min, 2 workers | {two:.1f} | {1200 / two:.0f}x real time |"
        f" {two_rate * 60:.0f}x real time | {one / two:.2f}x all in,"
        f" {two_rate / one_rate:.2f}x steady |"
    )
    print(
        f"| 1000 x 1 s, 2 workers | {thousand:.1f} | {1000 / thousand:.0f} files/s | |"
        f" {thousand:.1f} ms per file, all in |"
    )
    print(f"| same, rerun (all done) | {resume:.1f} | | | resume skips all in {resume:.2f} s |")


if __name__ == "__main__":
    main()
