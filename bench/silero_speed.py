"""silero-vad's speed on one core: its own Python loops beside segmenter's silero engine.

usage: python bench/silero_speed.py [--audio FILE] [--minutes 10] [--repeat 3]

The first `minutes` of FILE (default: bench/data/long60.wav, made by bench/engine.py) are held in
memory and each configuration runs in a fresh process with one thread (OMP 1, onnxruntime
intra-op 1, torch 1); the table gives the best of `repeat` runs. silero-vad's rows are its
`get_speech_timestamps` (window probabilities and its decision; the decision is a negligible
share), segmenter's row is its engine fed 10 s blocks as the pipeline feeds it (scores only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf
from engine import ONE_THREAD, long_recording  # bench/engine.py, same folder

CONFIGURATIONS = {
    "jit": "silero-vad get_speech_timestamps, its default model (TorchScript)",
    "onnx": "silero-vad get_speech_timestamps, load_silero_vad(onnx=True)",
    "sequence": "silero-vad get_speech_timestamps_sequence (6.2.2+)",
    "engine": "segmenter silero engine (sequence graph, blocked convolutions, 10 s blocks)",
}
BLOCK = 160_000  # 10 s, the block segmenter's reader gives


def run_once(kind: str, samples) -> float:
    """Seconds that configuration `kind` takes over `samples` (model already loaded)."""
    import silero_vad

    if kind == "engine":
        from segmenter.engines.silero import SileroEngine

        engine = SileroEngine.load(threads=1)
        start = time.perf_counter()
        stream = engine.score_stream()
        for i in range(0, len(samples), BLOCK):
            stream.feed(samples[i : i + BLOCK])
        stream.finish()
        return time.perf_counter() - start
    import torch

    model = silero_vad.load_silero_vad(onnx=kind == "onnx", sequence=kind == "sequence")
    audio = torch.from_numpy(samples)
    find = silero_vad.get_speech_timestamps_sequence if kind == "sequence" else None
    start = time.perf_counter()
    (find or silero_vad.get_speech_timestamps)(audio, model)
    return time.perf_counter() - start


def child(kind: str, audio: Path, minutes: float, repeat: int) -> dict:
    """Best of `repeat` runs of one configuration, in this process."""
    samples, rate = sf.read(audio, dtype="float32", frames=int(minutes * 60 * 16000))
    assert rate == 16000 and samples.ndim == 1, f"{audio}: not 16 kHz mono"
    return {
        "best_s": min(run_once(kind, samples) for _ in range(repeat)),
        "seconds": len(samples) / rate,
    }


def measure(kind: str, audio: Path, minutes: float, repeat: int) -> dict:
    """Run one configuration in a fresh one-thread process."""
    cmd = [sys.executable, __file__, "--child", kind, "--audio", str(audio)]
    cmd += ["--minutes", str(minutes), "--repeat", str(repeat)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    if out.returncode:
        sys.exit(f"{kind}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure every configuration and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", choices=CONFIGURATIONS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    audio = args.audio or long_recording()
    if args.child:
        print(json.dumps(child(args.child, audio, args.minutes, args.repeat)))
        return
    runs = {kind: measure(kind, audio, args.minutes, args.repeat) for kind in CONFIGURATIONS}
    seconds = runs["engine"]["seconds"]
    base = runs["jit"]["best_s"]
    print(f"{audio.name}, first {seconds / 60:.1f} min; one thread; best of {args.repeat}")
    print("| configuration | seconds | x real time | vs silero-vad default |")
    print("| --- | ---: | ---: | ---: |")
    for kind, name in CONFIGURATIONS.items():
        best = runs[kind]["best_s"]
        print(f"| {name} | {best:.2f} | {seconds / best:.0f}x | {base / best:.1f}x |")


if __name__ == "__main__":
    main()
