"""INT8 against FP32 and FunASR: boundaries, segment counts, F1 and the score drift, per runtime.

usage: python bench/int8.py [--val DIR]
       python bench/int8.py --runtimes [--schemes]  # INT8 on torch and onnxruntime
       [--markdown PATH]

--runtimes: what INT8 costs on each runtime (torch, onnxruntime; the default is marked), on the
golden set (tests/data/golden, 12 files), ../shared/devset (synthetic) and ../shared/realset
(real clips): the share of INT8's segment boundaries within 10 ms of FunASR 1.4.16's and of the
same runtime's FP32 (files whose segment count differs are left out and counted), and frame F1
against the ground-truth RTTMs, FP32's beside INT8's. One thread; every model runs in this
process.

Without --runtimes (or with --schemes as well): torch's dynamic INT8 beside two variants. Share
of segment boundaries within 10 ms of FunASR's (golden set) and of segmenter FP32's (a
validation set: DIR, else 14 x 90 s made once in bench/data/val with the devset tool and seed
4242), with the files whose segment count differs. Variants: 8-bit activations over the full
range (reduce_range off) with 7- or 6-bit symmetric per-channel weights, so AVX2's u8 x s8 pairs
cannot saturate. Then the score drift: how much torch's INT8 moves the per-frame speech score on
the golden set, and what share of frames an FP32 re-check of near-threshold frames would redo
(each run of such frames plus the network's left context).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pages  # bench/pages.py, same folder: --markdown PATH writes the output as a docs page
import torch
from torch import nn

from segmenter.engines.model import DEFAULT_RUNTIME, PRECISIONS
from segmenter.toolkit.evaluation import Score, read_rttm, score
from segmenter.vad import Vad

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
VAL = ROOT / "bench" / "data" / "val"
DEVSET_TOOL = ROOT.parent / "shared" / "tools" / "make_devset.py"
CUTS = (0.75, 0.8)  # speech score cuts of thresholds 0.5 (FunASR's schedule) and 0.6 (config)


class WideActivationLinear(nn.Module):
    """Dynamic INT8 linear: 8-bit activations, `bits`-bit symmetric per-channel weights."""

    def __init__(self, linear: nn.Linear, bits: int):
        super().__init__()
        w = linear.weight.detach()
        scale = (w.abs().amax(dim=1) / (2 ** (bits - 1) - 1)).clamp(min=1e-12).double()
        zero = torch.zeros(len(scale), dtype=torch.long)
        q = torch.quantize_per_channel(w, scale, zero, 0, torch.qint8)
        self.packed = torch.ops.quantized.linear_prepack(q, linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x, self.packed, reduce_range=False)


def wide_activation_vad(bits: int) -> Vad:
    vad = Vad.load(precision="fp32", runtime="torch")
    for module in list(vad.encoder.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear):
                setattr(module, name, WideActivationLinear(child, bits))
    return vad


def validation_set(folder: Path | None) -> list[Path]:
    if folder is None:
        folder = VAL
        if not folder.exists():
            cmd = [sys.executable, str(DEVSET_TOOL), str(folder), "--files", "14"]
            subprocess.run(
                [*cmd, "--seconds", "90", "--seed", "4242", "--prefix", "val"], check=True
            )
    return sorted(folder.glob("*.wav"))


def boundaries(vad: Vad, path: Path) -> list[int]:
    return [t for s in vad.segments(path) for t in (s.start, s.end)]


def agreement(vad: Vad, refs: dict[Path, list[int]]) -> str:
    offsets, other_count = [], 0
    for path, ref in refs.items():
        got = boundaries(vad, path)
        if len(got) != len(ref):
            other_count += 1
            continue
        offsets += list(np.abs(np.array(got) - np.array(ref)))
    share = (np.array(offsets) <= 10).mean()
    return f"{share:.1%} ({other_count} files with another count)"


def scores(vad: Vad, paths: list[Path]) -> np.ndarray:
    return np.concatenate([vad.process_file(p, keep_scores=True).speech_scores for p in paths])


def recheck_share(near: np.ndarray, context: int) -> float:
    """Frames an FP32 re-check would run: each near frame with `context` frames before it."""
    covered = np.zeros(len(near) + 1, np.int64)
    idx = np.flatnonzero(near)
    np.add.at(covered, np.maximum(idx - context, 0), 1)
    np.add.at(covered, idx + 1, -1)
    return float((np.cumsum(covered)[:-1] > 0).mean())


SETS = {  # recordings with FunASR's segments (*.funasr.json) and ground truth (*.rttm)
    "golden (12 x 20-150 s)": GOLDEN,
    "devset (synthetic)": ROOT.parent / "shared" / "devset",
    "realset (real clips)": ROOT.parent / "shared" / "realset",
}


def runtimes_table() -> None:
    """What INT8 costs on each runtime: boundaries within 10 ms of FunASR's and of the same
    runtime's FP32 (files whose segment count differs are left out and counted), and F1
    against the ground-truth RTTMs beside FP32's."""
    vads = {(r, p): Vad.load(precision=p, runtime=r) for r in ("torch", "onnx") for p in PRECISIONS}
    print("| set | runtime | INT8 within 10 ms of FunASR | INT8 within 10 ms of FP32 |", end="")
    print(" F1 FP32 | F1 INT8 |")
    print("| --- | --- | --- | --- | ---: | ---: |")
    for name, folder in SETS.items():
        paths = sorted(p for p in folder.glob("*") if p.suffix in (".wav", ".flac"))
        if not paths:
            continue
        funasr = {
            p: sum(json.loads(p.with_suffix(".funasr.json").read_text())["segments_ms"], [])
            for p in paths
        }
        for runtime in ("torch", "onnx"):
            fp32 = {p: boundaries(vads[(runtime, "fp32")], p) for p in paths}
            int8 = vads[(runtime, "int8")]
            f1 = [f1_of(vads[(runtime, p)], paths) for p in PRECISIONS[::-1]]
            label = f"{runtime} (default)" if runtime == DEFAULT_RUNTIME else runtime
            print(f"| {name}, {len(paths)} files | {label} | {agreement(int8, funasr)} |", end="")
            print(f" {agreement(int8, fp32)} | {f1[0]:.4f} | {f1[1]:.4f} |")


def f1_of(vad: Vad, paths: list[Path]) -> float:
    """Frame F1 of `vad` over the files, against their ground-truth RTTMs."""
    total = Score()
    for path in paths:
        spans = [(s.start / 1000, s.end / 1000) for s in vad.segments(path)]
        total += score(read_rttm(path.with_suffix(".rttm")), spans)
    return total.f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--val", type=Path, help="validation recordings (*.wav)")
    ap.add_argument("--runtimes", action="store_true", help="INT8 on torch and onnxruntime")
    ap.add_argument("--schemes", action="store_true", help="with --runtimes: the schemes too")
    pages.add_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with pages.page(args.markdown, __doc__):
        began = time.perf_counter()
        if args.runtimes:
            runtimes_table()
            print(f"\nthe table above: {time.perf_counter() - began:.0f} s wall\n")
        if args.schemes or not args.runtimes:
            began = time.perf_counter()
            schemes_tables(args.val)
            print(f"\nthe tables above: {time.perf_counter() - began:.0f} s wall")


def schemes_tables(val_folder: Path | None) -> None:
    """torch's dynamic INT8 and the two wide-activation variants against FunASR (golden) and
    FP32 (validation set); then the score drift and what an FP32 re-check would cost."""
    golden = sorted(p for p in GOLDEN.iterdir() if p.suffix in (".flac", ".wav"))
    fp32 = Vad.load(precision="fp32", runtime="torch")  # the variants below are torch modules
    funasr = {
        p: sum(json.loads(p.with_suffix(".funasr.json").read_text())["segments_ms"], [])
        for p in golden
    }
    val = {p: boundaries(fp32, p) for p in validation_set(val_folder)}
    print("| INT8 scheme | golden, within 10 ms of FunASR | validation, within 10 ms of FP32 |")
    print("| --- | --- | --- |")
    runs = {"dynamic, per-channel (torch)": Vad.load(precision="int8", runtime="torch")}
    runs |= {f"8-bit activations, {b}-bit weights": wide_activation_vad(b) for b in (7, 6)}
    for name, vad in runs.items():
        print(f"| {name} | {agreement(vad, funasr)} | {agreement(vad, val)} |")

    exact, rough = scores(fp32, golden), scores(runs["dynamic, per-channel (torch)"], golden)
    drift = np.abs(rough - exact)
    print(f"\nscore drift on the golden set ({len(drift)} frames): max {drift.max():.3f},")
    print(f"99.9th percentile {np.quantile(drift, 0.999):.3f}, 99th {np.quantile(drift, 0.99):.3f}")
    context = sum(b.fsmn_block.context for b in fp32.encoder.fsmn)
    print("\n| cut | frames flipped | band | frames re-run in FP32 | flips outside the band |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for cut in CUTS:
        flipped = (exact >= cut) != (rough >= cut)
        for band in (0.02, 0.05, 0.1):
            near = np.abs(rough - cut) < band
            share = recheck_share(near, context)
            print(f"| {cut} | {flipped.sum()} | {band} | {share:.0%} | {(flipped & ~near).sum()} |")


if __name__ == "__main__":
    main()
