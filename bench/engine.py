"""Engine speed and memory on a 60-minute recording, one thread, against FunASR's AutoModel.

usage: python bench/engine.py [--audio FILE] [--skip-funasr] [--funasr-python PATH] [--json]
                             [--markdown docs/bench/engine.md]

Each configuration runs in a fresh one-thread subprocess (wall time of load and of processing,
x real time, peak RSS); segmenter's as a batch worker runs it (`worker_vad`, the file decoded
and streamed block by block), "int8" and "fp32" on the torch runtime, "onnx fp32" on
onnxruntime. Without --audio it makes bench/data/long60.wav once: with the project's devset
tool `../shared/tools/make_devset.py` where it exists, else by looping the golden test
recordings. FunASR's AutoModel (1.4.16, not a dependency of segmenter) runs in the Python of
`--funasr-python` (else $FUNASR_PYTHON, else bench/data/funasr-venv/bin/python, else this
Python if it imports funasr), on the same file and the same bundled model, and is the reference
the segments are compared with. The last row streams the same file three times through one
stream (a 3-hour recording without a 3-hour file), for the memory of a longer recording.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pages  # bench/pages.py, same folder
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
MODEL_DIR = ROOT / "segmenter" / "models" / "fsmn-vad"
DEVSET_TOOL = ROOT.parent / "shared" / "tools" / "make_devset.py"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def long_recording(minutes: int = 60) -> Path:
    """A 16 kHz meeting-like recording of `minutes` (and its RTTM if the devset tool made it)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"long{minutes}.wav"
    if path.exists():
        return path
    if DEVSET_TOOL.exists():
        tmp = DATA / "make"
        cmd = [sys.executable, str(DEVSET_TOOL), str(tmp), "--files", "1"]
        subprocess.run([*cmd, "--seconds", str(minutes * 60), "--prefix", "long"], check=True)
        made = next(tmp.glob("long00*.wav"))
        made.with_suffix(".rttm").rename(path.with_suffix(".rttm"))  # truth, for bench/quality.py
        made.rename(path)
        return path
    golden = sorted((ROOT / "tests" / "data" / "golden").glob("dev0*.flac"))
    with sf.SoundFile(path, "w", 16000, 1, "PCM_16") as out:
        written = 0
        while written < minutes * 60 * 16000:
            for g in golden:
                block = sf.read(g, dtype="int16")[0][: minutes * 60 * 16000 - written]
                out.write(block)
                written += len(block)
    return path


def child(kind: str, audio: str, repeat: int) -> dict:
    """Run one configuration in this process; returns its measurements."""
    import resource

    start = time.perf_counter()
    if kind == "funasr":
        from funasr import AutoModel

        model = AutoModel(
            model=str(MODEL_DIR), disable_update=True, disable_pbar=True, log_level="ERROR", ncpu=1
        )
        loaded = time.perf_counter()
        segments = [list(s) for s in model.generate(input=audio)[0]["value"]]
    else:
        from segmenter.audio import open_audio
        from segmenter.batch.worker import worker_vad

        runtime, _, precision = kind.rpartition("-")  # "int8", "fp32", "onnx-fp32"
        vad = worker_vad(None, precision, runtime or "torch")  # as a batch worker runs it
        loaded = time.perf_counter()
        stream, found = vad.stream(), []
        for _ in range(repeat):  # a longer recording without a longer file
            with open_audio(audio) as blocks:
                for block in blocks:
                    found += stream.feed(block)
        segments = [[s.start, s.end] for s in found + stream.finish()]
    done = time.perf_counter()
    return {
        "load_s": loaded - start,
        "process_s": done - loaded,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "segments": segments,
    }


def funasr_python(given: str | None) -> str | None:
    """The Python that has FunASR: given, $FUNASR_PYTHON, bench/data/funasr-venv, or this one."""
    candidates = [given, os.environ.get("FUNASR_PYTHON"), DATA / "funasr-venv" / "bin" / "python"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    probe = subprocess.run([sys.executable, "-c", "import funasr"], capture_output=True)
    return sys.executable if probe.returncode == 0 else None


def measure(kind: str, audio: Path, repeat: int = 1, python: str = sys.executable) -> dict:
    """One configuration in a fresh one-thread process (this script's --child, in `python`)."""
    cmd = [python, __file__, "--child", kind, "--audio", str(audio), "--repeat", str(repeat)]
    env = {**os.environ, **ONE_THREAD}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def agreement(a: list, b: list, tol_ms: int = 10) -> str:
    """'same' or the share of a's boundaries that b has within tol_ms."""
    if a == b:
        return "same"
    if len(a) != len(b):
        return f"{len(b)} vs {len(a)} segments"
    diff = np.abs(np.array(a).ravel() - np.array(b).ravel())
    return f"{(diff <= tol_ms).mean():.1%} within {tol_ms} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path)
    ap.add_argument("--skip-funasr", action="store_true")
    ap.add_argument("--funasr-python", help="a Python with funasr 1.4.16 (see the docstring)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=1, help=argparse.SUPPRESS)
    pages.add_argument(ap)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, str(args.audio), args.repeat)))
        return
    if args.json:
        report(args)
        return
    with pages.page(args.markdown, __doc__):
        report(args)


def report(args: argparse.Namespace) -> None:
    """Run every configuration and print the table (or the JSON)."""
    audio = args.audio or long_recording()
    minutes = sf.info(str(audio)).duration / 60
    runs = {
        "segmenter int8": measure("int8", audio),
        "segmenter fp32": measure("fp32", audio),
        "segmenter onnx fp32": measure("onnx-fp32", audio),
    }
    python = None if args.skip_funasr else funasr_python(args.funasr_python)
    if python:
        runs["FunASR AutoModel"] = measure("funasr", audio, python=python)
    runs[f"segmenter int8, {3 * minutes:.0f} min"] = measure("int8", audio, repeat=3)
    reference = runs.get("FunASR AutoModel", runs["segmenter fp32"])
    if args.json:
        print(json.dumps({"minutes": minutes, "runs": runs}, indent=1))
        return
    print(f"{audio.name}: {minutes:.1f} min, 16 kHz; one thread each; reference: FunASR if run")
    print("| configuration | load s | process s | x real time | peak RSS MB | segments |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, r in runs.items():
        audio_s = minutes * 60 * (3 if name.endswith(" min") else 1)
        same = "-" if name.endswith(" min") else agreement(reference["segments"], r["segments"])
        print(
            f"| {name} | {r['load_s']:.2f} | {r['process_s']:.2f} | "
            f"{audio_s / r['process_s']:.0f}x | {r['peak_rss_mb']:.0f} | {same} |"
        )
    if "FunASR AutoModel" in runs:
        ratio = runs["FunASR AutoModel"]["process_s"] / runs["segmenter int8"]["process_s"]
        print(f"\nsegmenter int8 is {ratio:.1f}x faster than FunASR AutoModel on this file.")


if __name__ == "__main__":
    main()
