"""Memory-aware pools: no more workers than the available memory holds, said in one line."""

import re
import subprocess

import pytest

from segmenter.batch.pool import HEADROOM_MB, WORKER_MB, available_memory_mb, choose_workers

from .conftest import SEGMENTER
from .test_batch import unstamped
from .test_lean import recordings

MEMINFO = """MemTotal:        4015932 kB
MemFree:          402112 kB
MemAvailable:    3204412 kB
Buffers:           81232 kB
"""


def test_available_memory_is_meminfos_memavailable(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(MEMINFO)
    assert available_memory_mb(meminfo) == pytest.approx(3204412 / 1024)


def test_without_memavailable_the_free_pages_count(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        4015932 kB\n")  # kernels before 3.14
    assert 0 < available_memory_mb(meminfo) < float("inf")
    assert available_memory_mb(tmp_path / "absent") > 0


def test_the_cores_when_memory_holds_them():
    choice = choose_workers("fsmn", "onnx", cores=2, available_mb=3204412 / 1024)
    assert choice.workers == 2
    assert choice.line == "2 workers (2 cores; 3.1 GB available allows 23 at ~120 MB each)"


@pytest.mark.parametrize(
    ("engine", "runtime", "workers"),
    [("fsmn", "onnx", 6), ("fsmn", "torch", 2), ("fusion", "onnx", 4), ("silero", "onnx", 6)],
)
def test_fewer_workers_where_memory_is_short(engine, runtime, workers):
    """8 cores and 1 GB available: each runtime gets what its workers' memory allows."""
    choice = choose_workers(engine, runtime, cores=8, available_mb=1000)
    assert choice.workers == workers == (1000 - HEADROOM_MB) // WORKER_MB[(engine, runtime)]
    assert choice.line.startswith(f"{workers} workers (8 cores; 1.0 GB available allows")


def test_at_least_one_worker():
    choice = choose_workers("fsmn", "torch", cores=4, available_mb=200)
    assert choice.line == "1 worker (4 cores; 0.2 GB available allows 1 at ~300 MB each)"


def test_a_run_says_what_it_chose_and_jobs_overrides(tmp_path):
    inputs = str(recordings(tmp_path / "in"))
    cmd = [SEGMENTER, "run", inputs, "--settle-seconds", "0", "--quiet", "-o"]
    chosen = subprocess.run([*cmd, str(tmp_path / "a")], capture_output=True, text=True)
    assert chosen.returncode == 0, chosen.stderr
    line = r"segmenter: \d+ workers? \(\d+ cores; \d+\.\d GB available allows \d+ at ~120 MB each\)"
    assert re.fullmatch(line + "\n", unstamped(chosen.stderr))  # dated outside a terminal
    given = subprocess.run([*cmd, str(tmp_path / "b"), "--jobs", "1"], capture_output=True)
    assert given.returncode == 0 and given.stderr == b""
