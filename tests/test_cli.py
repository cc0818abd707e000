"""`segmenter segment` end to end through the installed console script."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter import cli

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


def holds_open(path: Path) -> bool:
    """Whether any process has `path` open (the command is decoding it)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:  # a process may end while it is looked at
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                    return True
            except OSError:
                continue
    return False


@pytest.fixture(scope="module")
def half_hour(tmp_path_factory) -> Path:
    """30 min of speech: long enough to be interrupted while it is being segmented."""
    folder = tmp_path_factory.mktemp("long") / "in"
    folder.mkdir()
    speech, _ = sf.read(GOLDEN / "dev00_clean.flac", dtype="float32")
    sf.write(folder / "long.wav", np.tile(speech, 30), 16000)
    return folder / "long.wav"


@pytest.mark.parametrize("command", ["segment", "run"])
def test_ctrl_c_is_one_line_and_exit_130(command, half_hour, tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, mid-file."""
    out = tmp_path / "out"
    args = {
        "segment": ["segment", str(half_hour)],
        "run": ["run", str(half_hour.parent), "-o", str(out), "--settle-seconds", "0", "-j", "1"],
    }[command]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    proc = subprocess.Popen([SEGMENTER, *args], start_new_session=True, **pipes)
    while proc.poll() is None and not holds_open(half_hour):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    expected = {  # a run lets the file in flight finish (tests/test_faults.py)
        "segment": "segmenter: interrupted\n",
        "run": "segmenter: SIGINT: stopping; files in flight get up to 30 s to finish"
        " (send SIGINT again to stop now)\n",
    }[command]
    assert (proc.returncode, stderr) == (130, expected)
    if command == "run":
        assert json.loads((out / "long.wav.json").read_text())["audio"]["duration"] == 1800


def test_segment_runs_one_blas_thread_like_a_worker():
    """numpy's OpenBLAS would spin a thread per core beside the engine (1.6-1.9x the CPU)."""
    probe = (
        "import sys\nfrom threadpoolctl import threadpool_info\nfrom segmenter.cli import main\n"
        f"main(['segment', {str(GOLDEN / 'dev08_edgespink30db.flac')!r}])\n"
        "print(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[1]"


def test_segment_input_and_output_mistakes_are_usage_errors(tmp_path):
    missing = run("segment", str(tmp_path / "nowhere.wav"))
    assert missing.returncode == 2
    assert missing.stderr == f"segmenter: input not found: {tmp_path / 'nowhere.wav'}\n"
    (tmp_path / "file").write_text("")
    source = str(GOLDEN / "dev08_edgespink30db.flac")
    not_a_folder = run("segment", source, "--formats", "json", "-o", str(tmp_path / "file"))
    assert not_a_folder.returncode == 2
    assert not_a_folder.stderr == (
        f"segmenter: {tmp_path / 'file'}: is a file, not a folder (the output folder goes there)\n"
    )


def test_a_scheduler_without_the_dask_backend_is_a_usage_error(tmp_path):
    """One line and exit 2 before OUT is made (it was a traceback from the pool)."""
    out = tmp_path / "out"
    cmd = [SEGMENTER, "run", str(GOLDEN), "-o", str(out), "--scheduler", "tcp://127.0.0.1:1"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2
    assert (
        done.stderr
        == "segmenter: scheduler tcp://127.0.0.1:1 is a Dask scheduler: add --backend dask\n"
    )
    assert not out.exists()


def test_exit_codes_are_distinct_and_each_in_the_table():
    """One code, one meaning (6: the run stopped on an error that is no one file's; 7: the
    settings differ from the batch's), each listed in the table --help prints."""
    codes = {k: v for k, v in vars(cli).items() if k.startswith("EXIT_") and isinstance(v, int)}
    assert len(set(codes.values())) == len(codes), codes
    assert codes["EXIT_RUN_FAILED"] == 6 and codes["EXIT_SETTINGS_CHANGED"] == 7
    for name, code in codes.items():
        assert f"; {code} " in cli.EXIT_CODES or f": {code} " in cli.EXIT_CODES, name
