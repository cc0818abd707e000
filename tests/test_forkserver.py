"""Batch workers forked from a fork server that has their imports done (batch/forkserver.py)."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from segmenter.batch import forkserver, pool
from segmenter.batch.worker import process_alive

from .conftest import SEGMENTER
from .test_batch import SPEECH, fork_servers, loky_workers


@pytest.mark.parametrize(
    ("argv", "cores", "available_mb", "starts"),
    [
        (["in", "-o", "out"], 2, 4000, True),
        (["in", "-o", "out", "--jobs", "2"], 2, 4000, True),
        (["in", "-o", "out", "--job", "nightly.toml"], 4, None, True),  # memory unknown
        (["in", "-o", "out", "--jobs", "1"], 2, 4000, False),
        (["in", "-o", "out", "--jobs=1"], 2, 4000, False),
        (["in", "-o", "out", "-j", "1"], 2, 4000, False),
        (["in", "-o", "out", "-j1"], 2, 4000, False),
        (["in", "-o", "out", "--backend", "loky"], 2, 4000, True),
        (["in", "-o", "out", "--backend", "dask"], 2, 4000, False),
        (["in", "-o", "out", "--backend=dask"], 2, 4000, False),
        (["in", "-o", "out", "--scheduler=tcp://10.0.0.1:8786"], 2, 4000, False),
        (["in", "-o", "out"], 1, 4000, False),  # one core: one worker, in the coordinator
        (["in", "-o", "out"], 4, 500, False),  # memory for one worker only
    ],
)
def test_the_fork_server_starts_only_for_a_pool_of_two_or_more(
    argv, cores, available_mb, starts, monkeypatch
):
    started = []
    monkeypatch.setattr(forkserver, "start", lambda: started.append(True))
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(cores)))
    monkeypatch.setattr(pool, "available_memory_mb", lambda: available_mb)
    assert forkserver.start_for(argv) is starts
    assert started == ([True] if starts else [])


def test_a_worker_sees_a_killed_coordinator_as_gone_before_it_is_reaped():
    assert process_alive(os.getpid())
    child = subprocess.Popen(["sleep", "30"])
    assert process_alive(child.pid)
    child.kill()
    deadline = time.monotonic() + 10
    while process_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(child.pid)  # a zombie: killed, not yet reaped
    child.wait()
    assert not process_alive(child.pid)


@pytest.mark.slow
def test_run_forks_its_workers_from_the_fork_server_with_the_same_segments(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("a.wav", "b.wav", "c.wav")):
        sf.write(src / name, np.roll(np.tile(SPEECH, 8), i * 16000), 16000)  # 8 min each
    outs = {jobs: tmp_path / f"out{jobs}" for jobs in (1, 2)}
    base = ["--quiet", "--settle-seconds", "0"]
    batch = subprocess.Popen([SEGMENTER, "run", str(src), "-o", str(outs[2]), "-j", "2", *base])
    seen: set[int] = set()
    servers: list[int] = []
    threads: set[str] = set()  # of the fork server once it forks (its preload is done)
    while batch.poll() is None:
        servers = servers or fork_servers(batch.pid)
        seen |= set(loky_workers(batch.pid))
        if seen:
            threads |= {status_of(s).get("Threads", "gone") for s in servers} - {"gone"}
        time.sleep(0.05)
    assert batch.returncode == 0
    assert servers, "no fork server was started"
    assert threads == {"1"}, "the fork server forks with other threads running"
    parents = {int(status_of(w).get("PPid", -1)) for w in seen} - {-1}
    assert seen and parents <= set(servers), "workers were not forked by the fork server"
    single = subprocess.run([SEGMENTER, "run", str(src), "-o", str(outs[1]), "-j", "1", *base])
    assert single.returncode == 0
    for name in ("a.wav", "b.wav", "c.wav"):
        docs = [json.loads((outs[j] / f"{name}.json").read_text()) for j in (1, 2)]
        assert docs[0]["segments"] == docs[1]["segments"]


def status_of(pid: int) -> dict[str, str]:
    """A process's /proc status fields (empty once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return dict(line.split(":\t", 1) for line in status.read().splitlines())
    except OSError:
        return {}


@pytest.mark.parametrize(
    ("telemetry_off", "onnxruntime"), [("1", True), ("0", False), (None, False)]
)
def test_the_fork_server_preloads_onnxruntime_only_where_its_import_starts_no_thread(
    telemetry_off, onnxruntime, monkeypatch
):
    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    if telemetry_off is not None:
        monkeypatch.setenv("ORT_DISABLE_TELEMETRY", telemetry_off)
    assert ("onnxruntime" in forkserver.preload()) is onnxruntime
    assert forkserver.preload()[-1] == "segmenter.batch.in_fork_server"


def test_the_fork_server_freezes_its_imports_and_exits_at_once():
    """Its last preload: the imported objects frozen (no collection walks them in a worker),
    and an exit that skips the interpreter's teardown, whatever the exit asked."""
    code = "import gc, numpy, segmenter.batch.in_fork_server; print(gc.get_freeze_count()); exit(3)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 10_000  # what was imported before it: numpy alone has ~20,000


# A worker started as a run starts its pool (the fork server, then dispatch.pool), in a fresh
# interpreter (the fork server is per process), answering with the modules it has imported.
WORKER_MODULES = """
import json, os
from segmenter.batch import dispatch, forkserver
from segmenter.batch.settings import BatchSettings

forkserver.start()
pool = dispatch.pool(BatchSettings(inputs=[], out=__import__("pathlib").Path("out"), jobs=2))
modules = pool.submit(eval, "sorted(__import__('sys').modules)").result()
pid = pool.submit(os.getpid).result()
pool.shutdown(kill_workers=True)
print(json.dumps({"modules": modules, "worker": pid, "probe": os.getpid()}))
"""
# what runs in a worker: the engine, the writers and these pieces of batch/
WORKER_BATCH = {"", ".worker", ".tasks", ".settings", ".records", ".diskfull", ".stopping"}
WORKER_BATCH |= {".in_fork_server"}


def test_a_pool_worker_imports_the_worker_side_only(tmp_path):
    """The fork server preloads batch/worker.py, not the coordinator's modules: a worker holds
    no views, toolkit, manifest, recorder, dispatch, rebuild or report code."""
    done = subprocess.run(
        [sys.executable, "-c", WORKER_MODULES], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    modules = answer["modules"]
    assert "segmenter.batch.worker" in modules and "segmenter.vad" in modules  # preloaded
    assert "onnxruntime" in modules
    assert answer["worker"] != answer["probe"]  # the modules are a worker's
    for banned in ("segmenter.views", "segmenter.toolkit", "segmenter.batch.manifest"):
        assert not [m for m in modules if m == banned or m.startswith(banned + ".")], banned
    batch = {m.removeprefix("segmenter.batch") for m in modules if m.startswith("segmenter.batch")}
    assert batch <= WORKER_BATCH, sorted(batch - WORKER_BATCH)
