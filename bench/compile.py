"""Does torch.compile speed up the FSMN network? Eager vs compiled, FP32 and INT8, one thread.

usage: python bench/compile.py [--batches 60] [--markdown docs/bench/compile.md]

Times the network alone on batches of 1000 feature frames (the engine's batch size), with the
FSMN memory carried, and prints seconds per hour of audio. Compilation time is reported apart.
The onnxruntime session on the bundled model.onnx is the peer in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pages  # bench/pages.py, same folder
import torch

from segmenter.engines.fsmn_onnx import OnnxStream, load_session
from segmenter.vad import Vad

BATCH = 1000  # frames, as fsmn_features.py makes them
HOUR = 360_000  # frames of 10 ms


def seconds_per_hour(step, feats: np.ndarray, batches: int) -> float:
    step(feats)  # warm up (and compile)
    start = time.perf_counter()
    for _ in range(batches):
        step(feats)
    return (time.perf_counter() - start) / (batches * BATCH) * HOUR


def torch_step(encoder):
    state = encoder.initial_state()

    def step(feats):
        nonlocal state
        with torch.inference_mode():
            _, state = encoder(torch.from_numpy(feats), state)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    pages.add_argument(parser)
    args = parser.parse_args()
    with pages.page(args.markdown, __doc__):
        measure(args)


def measure(args: argparse.Namespace) -> None:
    """Eager, compiled and onnxruntime, timed in this process; print the table."""
    torch.set_num_threads(1)
    feats = np.random.default_rng(0).normal(size=(BATCH, 400)).astype(np.float32)
    rows = []
    for precision in ("fp32", "int8"):
        encoder = Vad.load(precision=precision, runtime="torch").encoder
        rows.append(
            (
                f"torch {precision} eager",
                seconds_per_hour(torch_step(encoder), feats, args.batches),
                0.0,
            )
        )
        start = time.perf_counter()
        compiled = torch.compile(encoder, dynamic=False)
        step = torch_step(compiled)
        step(feats)
        took = time.perf_counter() - start
        rows.append(
            (f"torch {precision} compiled", seconds_per_hour(step, feats, args.batches), took)
        )
    vad = Vad.load(precision="fp32", runtime="onnx")
    onnx = OnnxStream(load_session(vad.files.onnx_file("fp32")), (0,))
    rows.append(("onnxruntime fp32", seconds_per_hour(onnx, feats, args.batches), 0.0))
    print("| network | s per hour of audio | compile s |\n| --- | ---: | ---: |")
    for name, per_hour, took in rows:
        print(f"| {name} | {per_hour:.2f} | {took:.1f} |")


if __name__ == "__main__":
    main()
