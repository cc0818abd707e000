"""CPU time of each engine x profile on one thread (the README's Profiles section quotes it).

usage: python bench/profile_speed.py [--audio FILE] [--minutes 20] [--repeat 3]

The first `minutes` of FILE (default: a 20-minute recording made by bench/engine.py) are held in
memory; each run is a fresh one-thread process that loads the model, then streams the samples in
10 s blocks through `Vad.stream` (engine and decision, no decoding), timed with
`time.process_time` so that other work on the machine counts less than in wall time. The runs
are interleaved (every configuration once, then again) and the table gives each one's median.
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

import soundfile as sf
from engine import ONE_THREAD, long_recording  # bench/engine.py, same folder

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


def main() -> None:
    """Measure every configuration, interleaved, and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    audio = args.audio or long_recording(20)
    if args.child:
        print(json.dumps(child(*args.child.split(":"), audio, args.minutes)))
        return
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
