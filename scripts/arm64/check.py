"""The checks `make test-arm64` runs inside the emulated arm64 Python (scripts/arm64/run.sh).

FP32 parity with FunASR's golden segments and INT8 agreement on both runtimes, a two-worker
`segmenter run`, and whether onnxruntime imports when /proc/cpuinfo is the x86 host's (as
qemu-user 7.2 shows it). Prints a table; exits 1 if a check failed.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segmenter.vad import Vad

GOLDEN = Path(__file__).parents[2] / "tests" / "data" / "golden"
# FP32 parity on three short golden files (two real 30 s recordings, 20 s of noise); INT8
# agreement on all twelve (11 min of audio), comparable with tests/test_parity.py's figure on x86.
FILES = ("ami_dev00.wav", "pyannote_sample.wav", "dev07_silentpink30db.flac")
INT8_FILES = tuple(sorted(p.name for p in GOLDEN.iterdir() if p.suffix in (".flac", ".wav")))
BATCH_FILES = ("ami_dev00.wav", "ami_dev01.wav", "dev08_edgespink30db.flac")
RUNTIMES = ("torch", "onnx")
WITHIN_MS = 10
# INT8 bars (share of boundaries within 10 ms of FunASR's, largest offset in ms), held so that
# they cannot silently get worse. onnxruntime: tests/test_onnx.py's bar on x86 (96.0% and 90 ms
# here; 96.0% on x86). torch: qnnpack on ARM measured 93.7% and 30 ms, under the 95% that
# tests/test_parity.py holds for x86's kernels (95.2%), so ARM has a bar of its own.
BARS = {"onnx": (0.95, 100), "torch": (0.93, 50)}


@dataclass
class Row:
    """One line of the results table."""

    check: str
    result: str
    ok: bool
    seconds: float


def reference(name: str) -> list[tuple[int, int]]:
    """FunASR 1.4.16's segments (ms) for a golden file."""
    doc = json.loads((GOLDEN / name).with_suffix(".funasr.json").read_text())
    return [tuple(s) for s in doc["segments_ms"]]


def segments_ms(vad: Vad, name: str) -> list[tuple[int, int]]:
    """This package's segments (ms) for a golden file."""
    return [(s.start, s.end) for s in vad.segments(GOLDEN / name)]


def timed(check: str, run: Callable[[], tuple[str, bool]]) -> Row:
    """Run one check and time it; an exception is a failed check, reported in one line."""
    start = time.perf_counter()
    try:
        result, ok = run()
    except Exception as exc:  # any failure belongs in the table, in one line
        result, ok = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}", False
    return Row(check, result, ok, time.perf_counter() - start)


def engine_name(vad: Vad) -> str:
    """The kernels an INT8 model runs on: torch's quantized engine, or onnxruntime's version."""
    if vad.runtime == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    import torch

    return f"torch {torch.__version__.split('+')[0]} {torch.backends.quantized.engine}"


def fp32_parity(runtime: str) -> tuple[str, bool]:
    """FP32 segments equal FunASR's on every file."""
    vad = Vad.load(precision="fp32", runtime=runtime)
    exact = sum(segments_ms(vad, name) == reference(name) for name in FILES)
    return f"{exact}/{len(FILES)} files identical to FunASR", exact == len(FILES)


def int8_agreement(runtime: str) -> tuple[str, bool]:
    """INT8 boundaries against FunASR's: same count per file, share within 10 ms, largest offset."""
    vad = Vad.load(precision="int8", runtime=runtime)
    offsets, counts_match = [], True
    for name in INT8_FILES:
        got, ref = np.array(segments_ms(vad, name)).ravel(), np.array(reference(name)).ravel()
        counts_match &= len(got) == len(ref)
        if len(got) == len(ref):
            offsets += list(np.abs(got - ref))
    offsets = np.array(offsets or [0])
    share, worst = (offsets <= WITHIN_MS).mean(), int(offsets.max())
    result = f"{len(INT8_FILES)} files, {'same' if counts_match else 'different'} segment counts, "
    result += f"{100 * share:.1f}% of boundaries within {WITHIN_MS} ms, max {worst} ms"
    result += f" ({engine_name(vad)})"
    least, most = BARS[runtime]
    return result, counts_match and share >= least and worst <= most


def overlapped(manifest: Path) -> bool:
    """Whether two files were being segmented at the same time (two workers really ran)."""
    import sqlite3

    with sqlite3.connect(manifest) as db:
        spans = sorted(db.execute("SELECT started, finished FROM files WHERE status = 'done'"))
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))


def batch_two_workers() -> tuple[str, bool]:
    """`segmenter run --jobs 2` (default runtime, FP32): exit 0 and FunASR's segments."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs, out = Path(tmp) / "in", Path(tmp) / "out"
        inputs.mkdir()
        for name in BATCH_FILES:
            (inputs / name).symlink_to(GOLDEN / name)
        cmd = [str(Path(sys.executable).parent / "segmenter"), "run", str(inputs), "-o", str(out)]
        cmd += ["--jobs", "2", "--precision", "fp32", "--settle-seconds", "0", "--quiet"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
        if done.returncode != 0:
            return f"exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}", False
        exact = 0
        for name in BATCH_FILES:
            doc = json.loads((out / f"{name}.json").read_text())
            got = [(round(s["start"] * 1000), round(s["end"] * 1000)) for s in doc["segments"]]
            exact += got == reference(name)
        runtime = doc["model"]["runtime"]
        both = "files overlapped in time" if overlapped(out / "manifest.sqlite") else "no overlap"
        result = f"exit 0, {exact}/{len(BATCH_FILES)} identical ({runtime}; {both})"
        return result, exact == len(BATCH_FILES)


def bare_cpuinfo_import() -> tuple[str, bool]:
    """Whether onnxruntime imports when /proc/cpuinfo is the host's: informational, never fails.

    run.sh gives a sysroot view without the ARM /proc/cpuinfo it adds (ARM64_BARE_ROOT) and
    the emulated CPU (ARM64_CPU); onnxruntime 1.28 to 1.32 at least die there in cpuinfo's
    start-up (see README, ARM64).
    """
    bare, cpu = os.environ.get("ARM64_BARE_ROOT"), os.environ.get("ARM64_CPU", "max")
    if not bare:
        return "skipped: ARM64_BARE_ROOT not set", True
    python = Path(sys.base_prefix) / "bin" / "python3.11"
    cmd = ["qemu-aarch64", "-cpu", cpu, "-L", bare, str(python), "-c", "import onnxruntime"]
    site = next(p for p in sys.path if p.endswith("site-packages"))
    done = subprocess.run(cmd, capture_output=True, env={**os.environ, "PYTHONPATH": site})
    return ("imports" if done.returncode == 0 else f"dies (exit {done.returncode})"), True


def header() -> str:
    """The machine and library versions the checks ran on."""
    import onnxruntime
    import torch

    versions = (
        f"numpy {np.__version__}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    return f"{platform.machine()} Python {platform.python_version()}: {versions}"


def main() -> int:
    """Run every check, print the table, exit 1 if one failed."""
    print(header(), flush=True)
    checks = [(f"fp32 parity, {rt}", lambda rt=rt: fp32_parity(rt)) for rt in RUNTIMES]
    checks += [(f"int8 vs FunASR, {rt}", lambda rt=rt: int8_agreement(rt)) for rt in RUNTIMES]
    checks += [("batch, --jobs 2", batch_two_workers)]
    checks += [("onnxruntime, host /proc/cpuinfo", bare_cpuinfo_import)]
    rows = []
    for check, run in checks:
        rows.append(timed(check, run))
        row = rows[-1]
        print(f"{row.check:<32} {'ok' if row.ok else 'FAIL':<5} {row.seconds:7.1f} s  {row.result}")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
