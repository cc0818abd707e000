"""`segmenter bench`: the baseline on this box, for each runtime and precision, one thread.

Each configuration runs in a fresh subprocess, so load time and peak RSS are its own (importing
torch alone is ~220 MB; the onnx runtime never imports it). Segments are compared with FP32's
(torch's where torch is installed, else onnxruntime's; both equal FunASR's).
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import soundfile as sf

from ..engines.model import ONNX_FILES, resolve_model

CLIP = "bench_clip.ogg"  # 20 s of samples/standup_meeting.wav, looped to the length asked
BASELINES = (("torch", "fp32"), ("onnx", "fp32"))  # the first one measured is the reference


def bundled_clip() -> Path:
    return Path(str(resources.files("segmenter") / "data" / CLIP))


def make_recording(path: Path, seconds: float) -> Path:
    """Loop the bundled clip into a 16 kHz WAV of `seconds`."""
    clip, rate = sf.read(bundled_clip(), dtype="int16")
    reps = int(np.ceil(seconds * rate / len(clip)))
    sf.write(path, np.tile(clip, reps)[: round(seconds * rate)], rate, subtype="PCM_16")
    return path


def configurations(model: str | None) -> list[tuple[str, str]]:
    """(runtime, precision) pairs this model and this install can run."""
    files = resolve_model(model)
    precisions = ["int8"] if files.int8_only else ["fp32", "int8"]
    found = [("torch", p) for p in precisions] if find_spec("torch") else []  # the torch extra
    return found + [("onnx", p) for p in precisions if (files.directory / ONNX_FILES[p]).is_file()]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model_bytes(vad) -> int:
    """Bytes of the network as stored: the file loaded, or INT8 weights as `quantize` saves them."""
    if vad.runtime == "onnx":
        return vad.files.onnx_file(vad.precision).stat().st_size
    if vad.precision == "fp32" or vad.files.int8_only:
        return vad.files.weights.stat().st_size
    import torch

    buffer = io.BytesIO()
    torch.save(vad.encoder.state_dict(), buffer)
    return buffer.tell()


def measure(runtime: str, precision: str, model: str | None, audio: str) -> dict:
    """Load and run one configuration in this process; its measurements."""
    from ..vad import Vad, one_core_process

    one_core_process()  # set up as a batch worker is, so the numbers are a worker's
    start = time.perf_counter()
    vad = Vad.load(model or None, precision=precision, threads=1, runtime=runtime)
    loaded = time.perf_counter()
    load_mb = _peak_mb()
    result = vad.process_file(audio)
    done = time.perf_counter()
    duration = result.info.duration
    return {
        "runtime": runtime,
        "precision": vad.precision,
        "model_mb": _model_bytes(vad) / 1e6,
        "load_s": loaded - start,
        "rss_load_mb": load_mb,
        "rss_peak_mb": _peak_mb(),
        "process_s": done - loaded,
        "x_real_time": duration / max(done - loaded, 1e-9),
        "audio_s": duration,
        "segments": [[s.start, s.end] for s in result.segments],
        "torch_imported": "torch" in sys.modules,
    }


def agreement(segments: list, baseline: list) -> float:
    """Share of the baseline's boundaries that have a boundary here within 10 ms."""
    ours, theirs = np.array(segments, float).ravel(), np.array(baseline, float).ravel()
    if len(theirs) == 0 or len(ours) == 0:
        return float(len(theirs) == len(ours))
    nearest = np.abs(theirs[:, None] - ours[None, :]).min(axis=1)
    return float((nearest <= 10).mean())


def run(audio: Path | None, model: str | None, seconds: float) -> list[dict]:
    """Measure every configuration on `audio` (or a looped bundled clip) in subprocesses."""
    with tempfile.TemporaryDirectory() as tmp:
        path = audio or make_recording(Path(tmp) / "bench.wav", seconds)
        rows = [
            _child(runtime, precision, model, path) for runtime, precision in configurations(model)
        ]
    baseline = next((r for r in rows if (r["runtime"], r["precision"]) in BASELINES), None)
    reference = baseline["segments"] if baseline else None  # an INT8-only folder has none
    for row in rows:
        row["agreement"] = None if reference is None else agreement(row["segments"], reference)
        row["n_segments"] = len(row.pop("segments"))
    return rows


def _child(runtime: str, precision: str, model: str | None, audio: Path) -> dict:
    args = [
        sys.executable,
        "-m",
        "segmenter.toolkit.benchmark",
        runtime,
        precision,
        model or "",
        str(audio),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"{runtime} {precision}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.splitlines()[-1])


def format_table(rows: list[dict]) -> str:
    """The measurements as a Markdown table."""
    head = (
        "| runtime | precision | model MB | load s | RSS after load MB | peak RSS MB "
        "| process s | x real time | segments | boundaries within 10 ms of torch fp32 |"
    )
    lines = [head, "| --- | --- |" + " ---: |" * 8]
    for r in rows:
        lines.append(
            f"| {r['runtime']} | {r['precision']} | {r['model_mb']:.2f} | {r['load_s']:.2f} "
            f"| {r['rss_load_mb']:.0f} | {r['rss_peak_mb']:.0f} | {r['process_s']:.2f} "
            f"| {r['x_real_time']:.0f}x | {r['n_segments']} | "
            + ("-" if r["agreement"] is None else f"{100 * r['agreement']:.1f}%")
            + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # one configuration, for run()'s subprocesses
    print(json.dumps(measure(*sys.argv[1:])))
