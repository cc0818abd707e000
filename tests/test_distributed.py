"""The same batch on a real dask.distributed cluster on loopback, through joblib: no mocks."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf
from distributed import Client, LocalCluster

from .test_batch import SEGMENTER, SPEECH, outputs, rows, run

pytestmark = pytest.mark.slow  # each test runs a Dask cluster on loopback (~15-25 s)


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    with cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Twelve recordings and the outputs of a plain local (loky) run of them."""
    root = tmp_path_factory.mktemp("dask")
    src = root / "in"
    (src / "sub dir").mkdir(parents=True)
    audio = np.concatenate([SPEECH] * 3)  # three minutes per file: still running at a kill
    for i in range(12):
        folder = src / "sub dir" if i % 3 == 0 else src
        sf.write(folder / f"r{i:02d}.wav", audio[i * 1601 :], 16000)
    assert run(src, "-o", root / "loky", "--jobs", "2").returncode == 0
    return src, outputs(root / "loky")


def dask_run(client, src, out):
    address = client.scheduler.address
    return run(src, "-o", out, "--backend", "dask", "--scheduler", address)


def test_cluster_gives_the_local_outputs(client, batch, tmp_path):
    src, expected = batch
    assert dask_run(client, src, tmp_path / "out").returncode == 0
    assert outputs(tmp_path / "out") == expected


def test_local_cluster_without_scheduler(batch, tmp_path):
    src, expected = batch
    assert run(src, "-o", tmp_path / "out", "--backend", "dask", "--jobs", "2").returncode == 0
    assert outputs(tmp_path / "out") == expected


def wait_for_done(out, count, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (out / "manifest.sqlite").exists():
            try:
                if sum(r["status"] == "done" for r in rows(out).values()) >= count:
                    return
            except Exception:  # noqa: BLE001 - the coordinator may hold a write lock
                pass
        time.sleep(0.02)
    raise AssertionError("batch made no progress")


def test_killed_worker_costs_nothing(client, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(10):  # three minutes each, so the batch is still running at the kill
        sf.write(src / f"long{i}.wav", np.concatenate([SPEECH] * 3)[i * 160 :], 16000)
    out = tmp_path / "out"
    address = client.scheduler.address
    cmd = [SEGMENTER, "run", str(src), "-o", str(out), "--quiet", "--settle-seconds", "0"]
    coordinator = subprocess.Popen([*cmd, "--backend", "dask", "--scheduler", address])
    wait_for_done(out, 2)
    pid = next(iter(client.run(os.getpid).values()))
    os.kill(pid, signal.SIGKILL)  # as the OOM killer would; the nanny starts a new one
    assert coordinator.poll() is None, "the batch ended before the kill"
    assert sum(r["status"] == "done" for r in rows(out).values()) < 10
    assert coordinator.wait(timeout=300) == 0
    final = rows(out)
    assert len(final) == 10 and all(r["status"] == "done" for r in final.values())
    for rel in final:
        assert (out / f"{rel}.json").exists() and (out / f"{rel}.rttm").exists()


def test_interrupted_coordinator_resumes(client, batch, tmp_path):
    src, expected = batch
    out = tmp_path / "out"
    address = client.scheduler.address
    cmd = [SEGMENTER, "run", str(src), "-o", str(out), "--quiet", "--settle-seconds", "0"]
    coordinator = subprocess.Popen(
        [*cmd, "--backend", "dask", "--scheduler", address], start_new_session=True
    )
    wait_for_done(out, 3)
    os.killpg(coordinator.pid, signal.SIGKILL)
    coordinator.wait()
    done_before = {rel for rel, r in rows(out).items() if r["status"] == "done"}
    assert 3 <= len(done_before) < 12
    assert dask_run(client, src, out).returncode == 0
    final = rows(out)
    assert all(final[rel]["attempts"] == 1 for rel in done_before)
    assert all(r["status"] == "done" for r in final.values())
    assert outputs(out) == expected
