"""The model tools on this box: `segmenter bench`, `quantize --prune`, `run` and `eval`, one table.

usage: python bench/model_tools.py [--audio FILE] [--prune 0.3]
                                  [--markdown docs/bench/model_tools.md]

Runs the real commands, as the small-box page tells a user to, and gathers what they print:

- `segmenter bench FILE --json` (default FILE: the 60-minute recording of bench/engine.py) and
  `segmenter bench --seconds 10 --json` (the bundled clip looped to 10 s): each runtime and
  precision in a fresh one-thread process set up as a batch worker is; model size, load time,
  RSS after the load and at the end, processing time, segments, and the share of FP32's
  boundaries within 10 ms (torch FP32 is the reference);
- `segmenter quantize -o DIR --prune P --eval tests/data/golden` (a pruned INT8 folder, and
  F1 of torch FP32, torch INT8 and the pruned folder on the 12 golden recordings against their
  ground-truth RTTMs), then `segmenter bench` with `--model DIR` on both files;
- for the onnx rows' F1, `segmenter run tests/data/golden -o OUT --runtime onnx --precision P`
  then `segmenter eval tests/data/golden OUT --json` (frame-level, no collar).

The zipped sizes are those `quantize` prints (what pruning can shrink: the dense file keeps
its size). One run of each: the process times vary by about 10% from run to run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pages  # bench/pages.py, same folder
from engine import long_recording  # bench/engine.py, same folder

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
SEGMENTER = str(Path(sys.executable).parent / "segmenter")
NAMES = {
    ("torch", "fp32"): "torch FP32",
    ("torch", "int8"): "torch INT8",
    ("onnx", "fp32"): "ONNX FP32",
    ("onnx", "int8"): "ONNX INT8 (default)",
}


def segmenter(*args: str) -> str:
    """Run the real command; its stdout."""
    print(f"  segmenter {' '.join(args)}", file=sys.stderr, flush=True)
    return subprocess.run([SEGMENTER, *args], capture_output=True, text=True, check=True).stdout


def bench(audio: Path | None, model: Path | None = None) -> dict[tuple[str, str], dict]:
    """`segmenter bench --json` rows by (runtime, precision)."""
    args = [str(audio)] if audio else ["--seconds", "10"]
    args += ["--model", str(model)] if model else []
    rows = json.loads(segmenter("bench", *args, "--json"))
    return {(r["runtime"], r["precision"]): r for r in rows}


def onnx_f1(precision: str, out: Path) -> float:
    """F1 of the onnx runtime's batch output on the golden set (`run`, then `eval`)."""
    segmenter("run", str(GOLDEN), "-o", str(out), "--runtime", "onnx", "--precision", precision)
    return json.loads(segmenter("eval", str(GOLDEN), str(out), "--json"))["overall"]["f1"]


def quantized(folder: Path, prune: float) -> tuple[list[str], dict[str, float]]:
    """`quantize --prune --eval`: its size line, and F1 by label (fp32, int8, pruned)."""
    printed = segmenter(
        "quantize", "-o", str(folder), "--prune", str(prune), "--eval", str(GOLDEN)
    ).splitlines()
    f1 = {}
    for line in printed:
        if line.startswith("F1 on "):
            label = line[line.index("(") + 1 : line.rindex(")")]
            f1[label] = float(line.rsplit(":", 1)[1])
    return [line for line in printed if not line.startswith("F1 on ")], f1


def row(name: str, long: dict, short: dict, f1: float) -> str:
    """One configuration's cells."""
    within = "-" if long["agreement"] is None else f"{100 * long['agreement']:.1f}%"
    return (
        f"| {name} | {long['model_mb']:.2f} | {long['load_s']:.2f} | {long['rss_load_mb']:.0f}"
        f" | {long['rss_peak_mb']:.0f} | {short['process_s']:.2f} | {long['process_s']:.2f}"
        f" | {long['x_real_time']:.0f}x | {f1:.4f} | {long['n_segments']} | {within} |"
    )


def measure(args: argparse.Namespace) -> None:
    """Run the commands and print the table."""
    audio = args.audio or long_recording(60)
    with tempfile.TemporaryDirectory(prefix="segbench-") as tmp:
        folder = Path(tmp) / f"q8p{round(args.prune * 100)}"
        sizes, torch_f1 = quantized(folder, args.prune)
        long, short = bench(audio), bench(None)
        pruned_long, pruned_short = bench(audio, folder), bench(None, folder)
        f1 = {
            ("torch", "fp32"): torch_f1["fp32"],
            ("torch", "int8"): torch_f1["int8"],
            **{("onnx", p): onnx_f1(p, Path(tmp) / f"out-{p}") for p in ("fp32", "int8")},
        }
    minutes = next(iter(long.values()))["audio_s"] / 60
    print(
        f"{audio.name} ({minutes:.0f} min) and the bundled clip looped to 10 s; one thread;"
        f" F1 on the {len(list(GOLDEN.glob('*.rttm')))} golden recordings"
    )
    print(
        f"| configuration | model MB | load s | RSS after load MB | peak RSS, {minutes:.0f} min MB"
        f" | 10 s file, process s | {minutes:.0f} min, process s | x real time | F1 golden"
        f" | segments ({minutes:.0f} min) | boundaries within 10 ms of FP32 ({minutes:.0f} min) |"
    )
    print("| --- |" + " ---: |" * 10)
    pruned_name = f"torch INT8, pruned {args.prune:.0%}"
    for key, name in NAMES.items():
        if key in long:
            print(row(name, long[key], short[key], f1[key]))
        if key == ("torch", "int8"):
            p_long, p_short = pruned_long[key], pruned_short[key]  # the folder is INT8 only
            print(row(pruned_name, p_long, p_short, torch_f1[f"int8, pruned {args.prune:g}"]))
    print(f"\n`segmenter quantize --prune {args.prune:g}` printed: " + "; ".join(sizes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path, help="default: bench/data/long60.wav (made once)")
    ap.add_argument("--prune", type=float, default=0.3)
    pages.add_argument(ap)
    args = ap.parse_args()
    with pages.page(args.markdown, __doc__):
        measure(args)


if __name__ == "__main__":
    main()
