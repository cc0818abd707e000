"""`segmenter segment` end to end through the installed console script."""

import json
import subprocess
import sys
from pathlib import Path

from .conftest import GOLDEN

SEGMENTER = str(Path(sys.executable).parent / "segmenter")  # the venv's console script


def run(*args):
    return subprocess.run([SEGMENTER, *args], capture_output=True, text=True, timeout=120)


def test_segment_prints_one_json_document():
    out = run("segment", str(GOLDEN / "dev08_edgespink30db.flac"), "--precision", "fp32")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["segments"] == [
        {"start": 0.0, "end": 6.75},
        {"start": 13.74, "end": 18.42},
        {"start": 20.41, "end": 29.98},
    ]
    assert doc["audio"]["duration"] == 30.0 and doc["model"]["precision"] == "fp32"


def test_bad_file_is_one_line_error(tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"not audio at all")
    out = run("segment", str(bad))
    assert out.returncode == 1
    assert out.stderr.startswith("segmenter: ") and out.stderr.count("\n") == 1
