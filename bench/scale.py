"""Archive scale: `segmenter run` over N one-second recordings, and what grows with N.

usage: python bench/scale.py [--n 1000 10000] [--runs loky:1 loky:2 dask:2] [--no-report]
                            [--markdown docs/bench/scale.md]

quick:  python bench/scale.py --n 1000 10000
full:   python bench/scale.py --n 10000 100000 --runs loky:2 dask:2   (35 min on a busy 2 cores)

Makes (once, under bench/data/scale-N/) N recordings as hard links to one 1-s WAV of speech,
1,000 to a folder (a copy of the WAV per 50,000 links: ext4 allows 65,000 per file), so a
10^5 tree costs 100 folders and three files of disk. Outputs are keyed by name, not inode, so
every link is its own recording. Then measures, in fresh output folders:

- discovery: walking the tree (`walk`, in this process);
- a full run per backend:jobs, as a user runs it (worker start-up included): files/s all in,
  and the steady files/s between the first and the last commit (from the log);
- the coordinator's peak RSS and CPU (getrusage of a process running the CLI in-process;
  workers are its children and not counted), and its costs line: the per-file milliseconds
  of the workers' segmenting and the coordinator's dispatch, writes (render, sync) and
  manifest commits;
- a no-op rerun of the finished batch, `status`, `report`, and the manifest's size.

With two sizes, each measure is fitted to a power of N (t = a N^b, from the two points) and
extrapolated to 10^6, saying how it grows.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pages  # bench/pages.py, same folder
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
SPEECH = ROOT / "tests" / "data" / "golden" / "dev00_clean.flac"
PER_FOLDER = 1000
LINKS_PER_SEED = 50_000

# Runs the CLI in this process and prints the coordinator's own peak RSS (KiB) and CPU seconds.
COORDINATOR = (
    "import resource, sys; from segmenter.cli import main; code = main(sys.argv[1:]);"
    " ru = resource.getrusage(resource.RUSAGE_SELF);"
    " print(f'COORDINATOR {ru.ru_maxrss} {ru.ru_utime + ru.ru_stime}', file=sys.stderr);"
    " sys.exit(code)"
)


def make_tree(n: int) -> Path:
    """N hard links to a 1-s WAV of speech, PER_FOLDER to a folder (made once)."""
    root = DATA / f"scale-{n}"
    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    seeds = root / ".seeds"
    seeds.mkdir(parents=True)
    audio = sf.read(SPEECH, dtype="int16")[0][16000 * 5 : 16000 * 6]  # one second of speech
    for i in range(n):
        seed = seeds / f"seed{i // LINKS_PER_SEED}.wav"
        if i % LINKS_PER_SEED == 0:
            sf.write(seed, audio, 16000)
        folder = root / f"d{i // PER_FOLDER:04d}"
        if i % PER_FOLDER == 0:
            folder.mkdir()
        os.link(seed, folder / f"r{i:07d}.wav")
    old = time.time() - 3600  # settled: no --settle-seconds needed, but given anyway
    os.utime(seeds, (old, old))
    done.touch()
    return root


@dataclass
class Run:
    """One `segmenter` command: wall seconds, and the coordinator's peak RSS, CPU and costs."""

    wall_s: float
    rss_mb: float = 0.0
    cpu_s: float = 0.0
    costs: dict[str, float] = field(default_factory=dict)
    steady: float = 0.0


def segmenter(*args: str | Path) -> Run:
    """Run a CLI command with the coordinator measured; fails loudly."""
    cmd = [sys.executable, "-c", COORDINATOR, *map(str, args)]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))}: exit {done.returncode}\n{done.stderr}")
    rss, cpu = re.search(r"COORDINATOR (\d+) ([\d.]+)", done.stderr).groups()
    return Run(wall, int(rss) / 1024, float(cpu))


def read_log(out: Path, run: Run) -> None:
    """The costs line of the last run in OUT's log, and its steady rate (first to last commit)."""
    lines = (out / "segmenter.log").read_text().splitlines()
    costs = [line for line in lines if " costs: " in line][-1]
    run.costs = {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)s", costs)}
    run.costs["files"] = float(re.search(r"files=(\d+)", costs).group(1))
    stamps = sorted(
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
        for line in lines
        if " segments, " in line
    )
    span = (stamps[-1] - stamps[0]).total_seconds()
    run.steady = (len(stamps) - 1) / span if span > 0 else 0.0


def discovery_seconds(root: Path) -> float:
    """Seconds to walk the tree (stat included), best of two."""
    sys.path.insert(0, str(ROOT))  # this checkout's package, as the runs below use
    from segmenter.batch.discovery import walk

    best = math.inf
    for _ in range(2):
        began = time.perf_counter()
        count = sum(1 for _ in walk([root]))
        best = min(best, time.perf_counter() - began)
    assert count > 0
    return best


@dataclass
class Size:
    """Everything measured at one N."""

    n: int
    discovery_s: float = 0.0
    runs: dict[str, Run] = field(default_factory=dict)
    noop: Run | None = None
    status: Run | None = None
    report: Run | None = None
    manifest_mb: float = 0.0


def measure(n: int, runs: list[str], report: bool) -> Size:
    """All the measures at one N; the last run's OUT serves the rerun, status and report."""
    root = make_tree(n)
    size = Size(n, discovery_seconds(root))
    base = Path(tempfile.mkdtemp(prefix="segscale-"))
    try:
        for spec in runs:
            backend, jobs = spec.split(":")
            out = base / spec.replace(":", "-")
            run = segmenter("run", root, "-o", out, "--backend", backend, "--jobs", jobs,
                            "--quiet", "--settle-seconds", "0")  # fmt: skip
            read_log(out, run)
            size.runs[spec] = run
            print(f"  N={n} {spec}: {run.wall_s:.1f} s, {n / run.wall_s:.0f} files/s", flush=True)
        backend, jobs = runs[-1].split(":")  # the same command again: all done
        size.noop = segmenter("run", root, "-o", out, "--backend", backend, "--jobs", jobs,
                              "--quiet", "--settle-seconds", "0")  # fmt: skip
        size.status = segmenter("status", out)
        if report:
            size.report = segmenter("report", out)
        size.manifest_mb = (
            sum(p.stat().st_size for p in out.glob("manifest.sqlite*") if p.is_file()) / 2**20
        )
    finally:
        shutil.rmtree(base)
    return size


def grow(small: float, large: float, n_small: int, n_large: int, target: int = 10**6):
    """(exponent b of t = a N^b through the two points, t at `target`)."""
    if small <= 0 or large <= 0:
        return 0.0, large
    b = math.log(large / small) / math.log(n_large / n_small)
    return b, large * (target / n_large) ** b


def print_tables(sizes: list[Size], runs: list[str]) -> None:
    """The results table, the per-file breakdown, and (with two sizes) the extrapolation."""
    print("\n| N | measure | value |")
    print("| ---: | --- | ---: |")
    for size in sizes:
        rows = [("discovery (walk + stat)", f"{size.discovery_s:.2f} s")]
        for spec, run in size.runs.items():
            rate = size.n / run.wall_s
            rows.append(
                (f"full run {spec}", f"{run.wall_s:.1f} s: {rate:.0f} files/s all in,"
                 f" {run.steady:.0f} files/s steady")
            )  # fmt: skip
            cpu = 1000 * run.cpu_s / size.n
            rows.append(
                (f"coordinator {spec}", f"peak RSS {run.rss_mb:.0f} MB, CPU {cpu:.2f} ms/file")
            )
        rows += [
            ("no-op rerun", f"{size.noop.wall_s:.2f} s (peak RSS {size.noop.rss_mb:.0f} MB)"),
            ("status", f"{size.status.wall_s:.2f} s"),
            ("report", f"{size.report.wall_s:.2f} s" if size.report else "not run"),
            ("manifest", f"{size.manifest_mb:.1f} MB"),
        ]
        for name, value in rows:
            print(f"| {size.n} | {name} | {value} |")
    print("\nper file, ms (sums over the run / files; worker = segmenting, in the workers;")
    print("write = render + stage + 2 syncs per group, manifest = the commits; coordinator wall)")
    print("| N | run | worker | dispatch | write | manifest | coordinator CPU |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for size in sizes:
        for spec, run in size.runs.items():
            per = 1000 / max(run.costs["files"], 1)
            parts = [
                run.costs.get(k, 0.0) * per for k in ("worker", "dispatch", "write", "manifest")
            ]
            cells = " | ".join(f"{value:.3f}" for value in [*parts, 1000 * run.cpu_s / size.n])
            print(f"| {size.n} | {spec} | {cells} |")
    if len(sizes) >= 2:
        extrapolate(sizes[-2], sizes[-1], runs)


def extrapolate(small: Size, large: Size, runs: list[str]) -> None:
    """Each measure fitted to a N^b from the two largest sizes, and its value at 10^6."""
    spec = runs[-1]
    measures = [
        ("discovery s", small.discovery_s, large.discovery_s),
        (f"full run {spec} s", small.runs[spec].wall_s, large.runs[spec].wall_s),
        (f"coordinator RSS MB ({spec})", small.runs[spec].rss_mb, large.runs[spec].rss_mb),
        ("no-op rerun s", small.noop.wall_s, large.noop.wall_s),
        ("no-op rerun RSS MB", small.noop.rss_mb, large.noop.rss_mb),
        ("status s", small.status.wall_s, large.status.wall_s),
        ("manifest MB", small.manifest_mb, large.manifest_mb),
    ]
    if small.report and large.report:
        measures.append(("report s", small.report.wall_s, large.report.wall_s))
    print(f"\nextrapolated to 10^6 from N={small.n} and N={large.n} (t = a N^b)")
    print("| measure | b | at 10^6 |")
    print("| --- | ---: | ---: |")
    for name, a, b in measures:
        exponent, value = grow(a, b, small.n, large.n)
        print(f"| {name} | {exponent:.2f} | {value:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 10000], help="tree sizes")
    ap.add_argument("--runs", nargs="+", default=["loky:1", "loky:2", "dask:2"],
                    help="backend:jobs of the full runs")  # fmt: skip
    ap.add_argument("--no-report", action="store_true", help="skip `segmenter report`")
    pages.add_argument(ap)
    args = ap.parse_args()
    with pages.page(args.markdown, __doc__):
        load = os.getloadavg()[0]
        print(f"{os.cpu_count()} cores, load average {load:.1f} at the start")
        sizes = [measure(n, args.runs, not args.no_report) for n in sorted(args.n)]
        print_tables(sizes, args.runs)
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
