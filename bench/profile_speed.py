"""CPU time per engine and profile, and `segmenter segment` with and without its one-core setup.

usage: python bench/profile_speed.py [--audio FILE] [--minutes 20] [--repeat 3]
                                    [--segment-minutes 30] [--markdown docs/bench/profile_speed.md]

First table: the first `minutes` of FILE (default: a 20-minute recording made by
bench/engine.py) are held in memory; each run is a fresh one-thread process that loads the
model, then streams the samples in 10 s blocks through `Vad.stream` (engine and decision, no
decoding), timed with `time.process_time` so that other work on the machine counts less than in
wall time. The runs are interleaved (every configuration once, then again) and the table gives
each one's median.

Second table: the whole command `segmenter segment FILE` (default engine and profile, decoding
and the JSON included) on the first `segment-minutes` of FILE (default: the 60-minute
recording of bench/engine.py), written once as a WAV file, each run a fresh process whose CPU
time (user + system, every thread) and peak RSS are taken from its resource usage,
interleaved, medians. "one core" is the command as it ships (`one_core_process`: one BLAS
thread, glibc's thresholds, as a batch worker is); "without" is the same command with that
setup replaced by a no-op, so numpy's OpenBLAS starts a thread per core beside the engine.
No thread-count variables are set for either.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pages  # bench/pages.py, same folder
import soundfile as sf
from engine import DATA, ONE_THREAD, long_recording  # bench/engine.py, same folder

CONFIGURATIONS = (
    ("fsmn", "funasr"),
    ("fsmn", "precise"),
    ("silero", "precise"),
    ("fusion", "precise"),
)
BLOCK = 160_000  # 10 s, the block segmenter's reader gives


def child(engine: str, profile: str, audio: Path, minutes: float) -> dict:
    """CPU seconds of one pass over the audio, in this process (model loaded first)."""
    from segmenter.vad import Vad, one_core_process

    one_core_process()
    samples, rate = sf.read(audio, dtype="float32", frames=int(minutes * 60 * 16000))
    vad = Vad.load(engine=engine, profile=profile)
    start = time.process_time()
    stream = vad.stream()
    found = [s for i in range(0, len(samples), BLOCK) for s in stream.feed(samples[i : i + BLOCK])]
    found += stream.finish()
    return {
        "cpu_s": time.process_time() - start,
        "seconds": len(samples) / rate,
        "segments": len(found),
    }


def measure(engine: str, profile: str, audio: Path, minutes: float) -> dict:
    """One run in a fresh one-thread process."""
    cmd = [sys.executable, __file__, "--child", f"{engine}:{profile}", "--audio", str(audio)]
    cmd += ["--minutes", str(minutes)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    if out.returncode:
        sys.exit(f"{engine}+{profile}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# Runs `segmenter segment FILE` in this child of the bench and prints its resource usage; with
# "without", the command's one-core setup is a no-op (the module attribute the command imports).
SEGMENT = """
import json, resource, subprocess, sys
setup, audio = sys.argv[1:3]
code = "import sys, segmenter.vad as v\\n"
if setup == "without":
    code += "v.one_core_process = lambda: None\\n"
code += "from segmenter.__main__ import main\\nsys.argv = ['segmenter', 'segment', sys.argv[1]]\\n"
code += "sys.exit(main())"
subprocess.run([sys.executable, "-c", code, audio], check=True, stdout=subprocess.DEVNULL)
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"cpu_s": use.ru_utime + use.ru_stime, "rss_mb": use.ru_maxrss / 1024}))
"""


def segment_file(audio: Path, minutes: float) -> Path:
    """The first `minutes` of the recording as a WAV file of its own (made once)."""
    path = DATA / f"{audio.stem}_first{minutes:g}min.wav"
    if not path.exists():
        samples, rate = sf.read(audio, dtype="int16", frames=int(minutes * 60 * 16000))
        sf.write(path, samples, rate)
    return path


def segment_runs(audio: Path, repeat: int) -> None:
    """`segmenter segment` with and without its one-core setup, interleaved; print the table."""
    runs: dict[str, list[dict]] = {"one core": [], "without": []}
    for _ in range(repeat):
        for setup in runs:
            cmd = [sys.executable, "-c", SEGMENT, setup.split()[0], str(audio)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[setup].append(json.loads(done.stdout.strip().splitlines()[-1]))
    seconds = sf.info(str(audio)).duration
    print(
        f"\n`segmenter segment` on {audio.name}, {seconds / 60:.0f} min;"
        f" {os.cpu_count()} cores; median of {repeat}"
    )
    print("| setup | CPU s | x real time per CPU s | peak RSS MB |")
    print("| --- | ---: | ---: | ---: |")
    for setup, done in runs.items():
        cpu = statistics.median(r["cpu_s"] for r in done)
        rss = statistics.median(r["rss_mb"] for r in done)
        name = "one core (as shipped)" if setup == "one core" else "without the one-core setup"
        print(f"| {name} | {cpu:.2f} | {seconds / cpu:.0f}x | {rss:.0f} |")


def main() -> None:
    """Measure every configuration, interleaved, and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--segment-minutes", type=float, default=30)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    pages.add_argument(ap)
    args = ap.parse_args()
    if args.child:
        audio = args.audio or long_recording(20)
        print(json.dumps(child(*args.child.split(":"), audio, args.minutes)))
        return
    with pages.page(args.markdown, __doc__):
        profiles(args)
        source = args.audio or long_recording(60)
        segment_runs(segment_file(source, args.segment_minutes), args.repeat)


def profiles(args: argparse.Namespace) -> None:
    """The engine x profile table."""
    audio = args.audio or long_recording(20)
    runs: dict[tuple[str, str], list[dict]] = {c: [] for c in CONFIGURATIONS}
    for _ in range(args.repeat):
        for config in CONFIGURATIONS:
            runs[config].append(measure(*config, audio, args.minutes))
    seconds = runs[CONFIGURATIONS[0]][0]["seconds"]
    base = statistics.median(r["cpu_s"] for r in runs[CONFIGURATIONS[0]])
    print(f"{audio.name}, first {seconds / 60:.1f} min; one thread; median of {args.repeat}")
    print("| engine + profile | CPU s | x real time | vs fsmn + funasr | segments |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for (engine, profile), done in runs.items():
        cpu = statistics.median(r["cpu_s"] for r in done)
        print(
            f"| {engine} + {profile} | {cpu:.2f} | {seconds / cpu:.0f}x | {cpu / base - 1:+.1%}"
            f" | {done[0]['segments']} |"
        )


if __name__ == "__main__":
    main()
