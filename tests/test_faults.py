"""Faults a nightly job meets, made for real: stop signals, inputs that change while they are
read, a full output disk, a damaged manifest. Each ends with nothing lost and a batch that goes
on (docs/faults.md)."""

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter.writers import write_formats

from .conftest import alive
from .test_batch import SEGMENTER, SPEECH, loky_workers, outputs, rows, run, unstamped
from .test_cli import holds_open


def minutes(folder: Path, name: str, n: int, offset: int = 0) -> Path:
    """A WAV of `n` minutes of speech in `folder` (made); `offset` seconds make it unlike others."""
    folder.mkdir(exist_ok=True)
    sf.write(folder / name, np.tile(np.roll(SPEECH, 16000 * offset), n), 16000)
    return folder / name


def start(src: Path, out: Path, *args: str) -> subprocess.Popen:
    """`segmenter run` in its own process group, as a service manager or a terminal starts it."""
    cmd = [SEGMENTER, "run", str(src), "-o", str(out), "--quiet", "--settle-seconds", "0", *args]
    return subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(condition, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until `condition()` while the run goes on; fails if the run ended first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def lock_is_free(out: Path) -> bool:
    """Whether OUT's lock can be taken: the run released it."""
    fd = os.open(out / ".segmenter.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def statuses(out: Path) -> dict[str, str]:
    return {rel: row["status"] for rel, row in rows(out).items()}


@pytest.fixture(scope="module")
def long_batch(tmp_path_factory) -> Path:
    """Four recordings of 10 minutes: a worker is busy with each for a few seconds."""
    src = tmp_path_factory.mktemp("signals") / "in"
    for i in range(4):
        minutes(src, f"f{i}.wav", 10, offset=i)
    return src


@pytest.mark.slow
def test_sigterm_finishes_the_files_in_flight_and_leaves_the_rest_to_do(long_batch, tmp_path):
    out = tmp_path / "out"
    batch = start(long_batch, out, "--jobs", "1")
    wait_for(lambda: any(out.glob("*.json")), batch)
    workers = loky_workers(batch.pid)
    batch.send_signal(signal.SIGTERM)  # the coordinator alone, as systemd's KillMode=mixed does
    stdout, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 143, stderr
    assert stderr.startswith("segmenter: SIGTERM: stopping; files in flight get up to 30 s")
    assert "stopped by SIGTERM" in stdout and "left to do" in stdout
    assert lock_is_free(out) and not list(out.rglob(".tmp-*"))
    assert not any(map(alive, workers))
    before = statuses(out)
    done = {rel for rel, status in before.items() if status == "done"}
    assert done and len(done) < 4  # the file in flight finished; the rest were not started
    assert set(before.values()) <= {"done", "pending", "running"}  # none failed
    assert f"{4 - len(done)} left to do" in stdout
    again = run(long_batch, "-o", out, "--jobs", "1")
    assert again.returncode == 0, again.stderr
    after = rows(out)
    assert all(row["status"] == "done" for row in after.values()) and len(after) == 4
    assert all(after[rel]["attempts"] == 1 for rel in done)  # nothing done twice


@pytest.mark.slow
@pytest.mark.parametrize("how", ["second signal", "grace period over"])
def test_ctrl_c_abandons_the_files_in_flight_when_told_or_at_the_end_of_the_grace(
    how, long_batch, tmp_path
):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it: the workers ignore
    it and keep their files until the coordinator gives up on them."""
    out = tmp_path / "out"
    grace = "600" if how == "second signal" else "0.2"  # each file takes seconds
    batch = start(long_batch, out, "--jobs", "2", "--clips", "--stop-grace", grace)
    wait_for(lambda: sum(map(holds_open, long_batch.iterdir())) == 2, batch)  # both at work
    workers = loky_workers(batch.pid)
    os.killpg(batch.pid, signal.SIGINT)
    if how == "second signal":
        time.sleep(0.2)
        assert all(map(alive, workers)), "a worker died of the first Ctrl-C"
        os.killpg(batch.pid, signal.SIGINT)
    stdout, stderr = batch.communicate(timeout=60)
    assert batch.returncode == 130, stderr
    expected = {
        "second signal": "segmenter: second SIGINT: stopping now",
        "grace period over": "segmenter: the 0.2 s grace period is over: stopping now",
    }[how]
    assert expected + "; the files in flight are left to do" in stderr.splitlines()
    assert "stopped by SIGINT" in stdout
    assert lock_is_free(out) and not list(out.rglob(".tmp-*"))
    deadline = time.monotonic() + 5
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, workers))
    left = [status for status in statuses(out).values() if status != "done"]
    assert left and set(left) <= {"pending", "running"}  # to do, not failed
    assert run(long_batch, "-o", out, "--jobs", "2", "--clips").returncode == 0
    assert set(statuses(out).values()) == {"done"}


def test_inputs_deleted_truncated_or_replaced_while_read_are_recorded(tmp_path):
    """One worker: while it reads the long file first, the test truncates it, deletes the next
    one and replaces the last; the run records each and a rerun takes each as it is now."""
    src = tmp_path / "in"
    long = minutes(src, "a_long.wav", 30)
    minutes(src, "b_deleted.wav", 2, offset=1)
    replaced = minutes(src, "c_replaced.wav", 1, offset=2)
    out = tmp_path / "out"
    batch = start(src, out, "--jobs", "1")
    wait_for(lambda: holds_open(long), batch)
    os.truncate(long, long.stat().st_size // 2)  # 15 minutes are left
    (src / "b_deleted.wav").unlink()
    sf.write(tmp_path / "new.wav", SPEECH[: 16000 * 20], 16000)
    os.replace(tmp_path / "new.wav", replaced)
    stdout, stderr = batch.communicate(timeout=300)
    assert batch.returncode == 1, stderr  # the deleted file failed; the batch went on
    assert "1 failed, 2 changed while read (redone by the next run)" in stdout
    assert "failed: b_deleted.wav: deleted while it was read" in stdout
    first = rows(out)
    assert first["a_long.wav"]["status"] == first["c_replaced.wav"]["status"] == "pending"
    assert "changed while it was read" in first["a_long.wav"]["error"]
    assert not (out / "a_long.wav.json").exists()  # no results from half a file
    again = run(src, "-o", out, "--jobs", "1")  # each redone as it is now
    assert again.returncode == 1, again.stderr
    assert "files: 1 done, 0 already done, 1 failed" in again.stdout
    assert "failed: a_long.wav: truncated WAV: data chunk declares" in again.stdout
    assert outputs(out)["c_replaced.wav.json"]["audio"]["duration"] == 20


@contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `mount` (made) for the block (root only; else a skip)."""
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs for the test."""
    with tmpfs(tmp_path / "disk", "2m") as mount:
        yield mount


def test_a_recordings_outputs_are_written_all_or_none(tmp_path):
    """One page left on the disk: the JSON fits, the RTTM does not, and the JSON goes again."""
    with tmpfs(tmp_path / "disk", "64k") as disk:
        filler = disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4096"], capture_output=True)
        os.truncate(filler, filler.stat().st_size - 4096)
        document = {"segments": [{"start": 0.5, "end": 1.5}]}
        with pytest.raises(OSError) as failure:
            write_formats(disk / "x.wav", document, ("json", "rttm"))
        assert failure.value.errno == errno.ENOSPC
        assert [p.name for p in disk.iterdir()] == ["filler"]


def twenty_second_files(src: Path, n: int) -> Path:
    """`n` different 20-second recordings: a few hundred KiB of clips each."""
    src.mkdir()
    for i in range(n):
        sf.write(src / f"f{i}.wav", np.roll(SPEECH, 16000 * 7 * i)[: 16000 * 20], 16000)
    return src


def assert_consistent(out: Path) -> set[str]:
    """The manifest passes SQLite's integrity check, every file it says is done has all its
    outputs, and no temporary file is left; returns the files done."""
    import sqlite3

    with sqlite3.connect(out / "manifest.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    done = {rel for rel, status in statuses(out).items() if status == "done"}
    for rel in done:
        segments = len(outputs(out)[f"{rel}.json"]["segments"])
        assert (out / f"{rel}.rttm").read_text().count("\n") == segments
        assert len(list((out / f"{rel}.clips").glob("*.wav"))) == segments
    assert not list(out.rglob(".tmp-*"))
    return done


@pytest.mark.slow
def test_disk_full_of_clips_stops_the_run_and_a_rerun_with_room_finishes_it(small_disk, tmp_path):
    src = twenty_second_files(tmp_path / "in", 8)
    reference = tmp_path / "ref"
    assert run(src, "-o", reference, "--clips", "--jobs", "2").returncode == 0
    out = small_disk / "out"
    first = run(src, "-o", out, "--clips", "--jobs", "2")
    assert first.returncode == 4, first.stderr
    line = first.stderr.strip()
    assert "\n" not in line, first.stderr
    assert line.startswith(f"segmenter: {out} is on a full disk (tmpfs mounted on {small_disk}")
    assert "file(s) left need about" in line and "free some space and run again" in line
    done = assert_consistent(out)
    assert 0 < len(done) < 8 and "left to do" in first.stdout
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run(src, "-o", out, "--clips", "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert set(statuses(out).values()) == {"done"}
    assert all(rows(out)[rel]["attempts"] == 1 for rel in done)  # done stayed done
    assert outputs(out) == outputs(reference)


def test_disk_full_under_the_manifest_keeps_it_whole(small_disk, tmp_path):
    """The disk fills (a filler file) after a first run: the manifest cannot grow, the run says
    so, and nothing done is lost; with the filler gone the batch goes on."""
    src = twenty_second_files(tmp_path / "in", 3)  # the clips of three fit in 2 MiB
    reference = tmp_path / "ref"
    assert run(src, "-o", reference, "--clips", "--jobs", "1").returncode == 0
    out = small_disk / "out"
    assert run(src / "f0.wav", "-o", out, "--clips").returncode == 0
    before = outputs(out)
    filler = small_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    full = run(src, "-o", out, "--clips", "--jobs", "1")
    assert full.returncode == 4, full.stderr
    assert full.stderr.startswith(f"segmenter: {out} is on a full disk (tmpfs mounted on")
    assert full.stderr.count("\n") == 1
    status = subprocess.run([SEGMENTER, "status", str(out)], capture_output=True, text=True)
    assert status.stdout.startswith("1 done, 0 failed, 0 to do"), status.stderr  # reads only
    filler.unlink()
    assert statuses(out) == {"f0.wav": "done"} and assert_consistent(out) == {"f0.wav"}
    assert outputs(out) == before
    again = run(src, "-o", out, "--clips", "--jobs", "1")
    assert again.returncode == 0, again.stderr
    assert "files: 2 done, 1 already done" in again.stdout
    assert outputs(out) == outputs(reference)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(inputs, OUT) of a finished batch with clips: three recordings done, a broken one failed."""
    root = tmp_path_factory.mktemp("finished")
    src = twenty_second_files(root / "in", 3)
    (src / "broken.wav").write_text("not a recording\n")
    out = root / "out"
    assert run(src, "-o", out, "--clips", "--jobs", "2").returncode == 1
    return src, out


def raw(out: Path) -> dict[str, bytes]:
    """Every output's bytes (JSON, RTTM, clips)."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.suffix in (".json", ".rttm", ".wav")
    }


DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "zeroed": lambda data: bytes(len(data)),
    "random bytes": lambda data: np.random.default_rng(16).bytes(len(data)),
    "emptied": lambda data: b"",
}
REASONS = {
    "truncated": "database disk image is malformed",
    "zeroed": "file is not a database",
    "random bytes": "file is not a database",
    "emptied": "empty, though the folder holds outputs",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_manifest_is_named_and_rebuilt_from_the_outputs(damage, finished, tmp_path):
    src, batch = finished
    out = tmp_path / "out"
    shutil.copytree(batch, out)
    before, files = raw(out), rows(out)
    manifest = out / "manifest.sqlite"
    damaged = DAMAGE[damage](manifest.read_bytes())
    manifest.write_bytes(damaged)
    expected = (
        f"segmenter: {manifest} is damaged ({REASONS[damage]}); run the batch again with"
        f" --rebuild-manifest ('segmenter run INPUT... -o {out} --rebuild-manifest') to rebuild"
        " it from the outputs on disk\n"
    )
    for command in (["status", str(out)], ["run", str(src), "-o", str(out)]):
        refused = subprocess.run([SEGMENTER, *command], capture_output=True, text=True)
        assert (refused.returncode, refused.stderr) == (5, expected), refused.stderr
    rebuilt = run(src, "-o", out, "--clips", "--rebuild-manifest")
    assert rebuilt.returncode == 1, rebuilt.stderr  # the broken file, tried again
    aside = list(out.glob("manifest.sqlite.damaged-*[0-9]"))  # beside its -wal, -shm if any
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert unstamped(rebuilt.stdout).startswith(
        f"manifest: rebuilt from 3 finished file(s) on disk; the damaged one is {aside[0]}\n"
        "files: 0 done, 3 already done, 1 failed"
    )
    assert raw(out) == before  # nothing redone
    now = rows(out)
    keep = ("status", "size", "mtime", "fingerprint", "config", "outputs", "segments", "speech")
    for rel, row in files.items():
        if row["status"] == "done":
            assert {k: now[rel][k] for k in keep} == {k: row[k] for k in keep}
    again = run(src, "-o", out, "--clips")
    assert "files: 0 done, 3 already done, 1 failed" in again.stdout
