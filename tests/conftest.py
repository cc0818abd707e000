"""Shared fixtures: one loaded model per precision for the whole session, and one finished batch
of demo recordings (with a broken file) for the report and the web page."""

import atexit
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segmenter.vad import Vad

GOLDEN = Path(__file__).parent / "data" / "golden"
REPO = Path(__file__).parents[1]  # the checkout: install lines and hints name it
SAMPLES = REPO / "samples"
SEGMENTER = str(Path(sys.executable).parent / "segmenter")  # the venv's console script
BATCH_SAMPLES = ("standup_meeting.wav", "phone_interview_8k.wav")


def pytest_sessionfinish(session, exitstatus) -> None:
    """Keep pytest's exit code, which CI reads: a module that ends its own process at exit
    (the fork server's last preload registers os._exit(0); a returned `run` in __main__ exits
    with its own code), once imported into this process, would end pytest with that code
    whatever failed. Their exit handlers are taken away here."""
    atexit.unregister(os._exit)
    main = sys.modules.get("segmenter.__main__")
    if main is not None:
        atexit.unregister(main._exit_at_once)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="session")
def vad_fp32() -> Vad:
    """torch FP32 (FunASR-exact; test_onnx.py holds onnxruntime's FP32 to the same segments)."""
    return Vad.load(precision="fp32", runtime="torch")


@pytest.fixture(scope="session")
def vad_int8() -> Vad:
    """torch INT8, whose accuracy test_parity.py holds (onnxruntime's: test_onnx.py)."""
    return Vad.load(precision="int8", runtime="torch")


@pytest.fixture(scope="session")
def batch_out(tmp_path_factory) -> Path:
    """OUT of `segmenter run --report` on two demo recordings and a text file named .wav."""
    root = tmp_path_factory.mktemp("batch")
    inputs = root / "in"
    inputs.mkdir()
    for name in BATCH_SAMPLES:
        (inputs / name).write_bytes((SAMPLES / name).read_bytes())
    (inputs / "broken.wav").write_text("not a recording\n")
    out = root / "out"
    cmd = [SEGMENTER, "run", str(inputs), "-o", str(out), "--precision", "fp32", "--jobs", "1"]
    cmd += ["--settle-seconds", "0", "--quiet", "--report"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # 1: some failed (the text file)
    return out
