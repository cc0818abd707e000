"""`segmenter run` / `status` end to end through the console script, with real files and kills."""

import fcntl
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from pyannote.database.util import load_rttm

from .conftest import GOLDEN, alive

SEGMENTER = str(Path(sys.executable).parent / "segmenter")
SPEECH = sf.read(GOLDEN / "dev00_clean.flac", dtype="float32")[0]  # 60 s, five segments


def twenty_seconds(folder: Path, name: str) -> Path:
    """`folder` (made) holding `name`: the first 20 s of SPEECH, two segments' worth."""
    folder.mkdir()
    sf.write(folder / name, SPEECH[: 16000 * 20], 16000)
    return folder


def run(*args, timeout=300):
    return subprocess.run(
        [SEGMENTER, "run", "--quiet", "--settle-seconds", "0", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def unstamped(text: str) -> str:
    """A run's printed lines without the date and time they start with outside a terminal."""
    return re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", "", text, flags=re.M)


def rows(out):
    with sqlite3.connect(out / "manifest.sqlite") as db:
        db.row_factory = sqlite3.Row
        return {r["rel"]: dict(r) for r in db.execute("SELECT * FROM files")}


def done_count(out: Path) -> int:
    """Rows marked done so far (0 while the manifest is not there or is being made)."""
    try:
        with sqlite3.connect(f"file:{out / 'manifest.sqlite'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM files WHERE status = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def outputs(out):
    """Every output file's content, the JSON without its creation time."""
    found = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.suffix == ".json":
            doc = json.loads(path.read_text())
            doc.pop("created")
            found[rel] = doc
        elif path.suffix in (".rttm", ".wav"):
            found[rel] = path.read_bytes()
    return found


@pytest.fixture
def tree(tmp_path):
    """Nested folders, unicode and spaces in names, bad files mixed in."""
    root = tmp_path / "in"
    (root / "2024" / "board meetings").mkdir(parents=True)
    (root / "会议").mkdir()
    (root / ".hidden").mkdir()
    sf.write(root / "2024" / "board meetings" / "q1 review.wav", SPEECH[: 16000 * 30], 16000)
    sf.write(root / "会议" / "周会.flac", SPEECH[16000 * 25 :], 16000)
    sf.write(root / "short.WAV", SPEECH[16000 * 28 : 16000 * 38], 16000)
    sf.write(root / ".hidden" / "skip.wav", SPEECH[:16000], 16000)
    (root / "notes.txt").write_text("not audio, not taken")
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (root / "empty.mp3").write_bytes(b"")
    return root


def test_tree_with_bad_files(tree, tmp_path):
    out = tmp_path / "out"
    result = run(tree, "-o", out, "--precision", "fp32")
    assert result.returncode == 1, result.stderr
    state = rows(out)
    assert sorted(state) == [
        "2024/board meetings/q1 review.wav",
        "broken.wav",
        "empty.mp3",
        "short.WAV",
        "会议/周会.flac",
    ]
    assert state["broken.wav"]["status"] == "failed" and state["empty.mp3"]["status"] == "failed"
    assert all(
        "\n" not in state[f]["error"] and state[f]["error"] for f in ("broken.wav", "empty.mp3")
    )
    doc = json.loads((out / "会议" / "周会.flac.json").read_text())
    assert doc["audio"]["duration"] == 35.0 and doc["model"]["precision"] == "fp32"
    assert set(doc) >= {"audio", "model", "options", "segments", "speech_duration", "created"}
    status = subprocess.run(
        [SEGMENTER, "status", str(out), "--json"], capture_output=True, text=True
    )
    report = json.loads(status.stdout)
    assert report["counts"]["done"] == 3 and report["counts"]["failed"] == 2
    assert {f["file"] for f in report["failures"]} == {"broken.wav", "empty.mp3"}


def test_rttm_loads_with_pyannote(tree, tmp_path):
    out = tmp_path / "out"
    run(tree, "-o", out)
    rttm = out / "2024" / "board meetings" / "q1 review.wav.rttm"
    annotations = load_rttm(rttm)
    doc = json.loads(rttm.with_suffix(".json").read_text())
    ((uri, annotation),) = annotations.items()
    assert uri == "q1_review"
    spans = [(round(s.start, 3), round(s.end, 3)) for s in annotation.get_timeline()]
    assert spans == [(s["start"], s["end"]) for s in doc["segments"]]


@pytest.mark.slow
def test_rerun_skips_done_and_redoes_on_change(tree, tmp_path):
    out = tmp_path / "out"
    run(tree, "-o", out)
    first = rows(out)
    run(tree, "-o", out)
    assert rows(out) == first  # nothing redone, failures not retried
    retried = run(tree, "-o", out, "--retry-failed")
    assert retried.returncode == 1
    assert rows(out)["broken.wav"]["attempts"] == 2
    assert rows(out)["short.WAV"]["attempts"] == 1
    refused = run(tree, "-o", out, "--max-end-silence-time", "300")  # changes results
    assert refused.returncode == 7 and rows(out) == rows(out) | {"short.WAV": first["short.WAV"]}
    run(tree, "-o", out, "--max-end-silence-time", "300", "--redo-changed")
    changed = rows(out)
    assert changed["short.WAV"]["attempts"] == 2 and changed["short.WAV"]["status"] == "done"
    sf.write(tree / "short.WAV", SPEECH[: 16000 * 12], 16000)  # new content
    os.utime(tree / "short.WAV", (time.time() - 60, time.time() - 60))
    run(tree, "-o", out, "--max-end-silence-time", "300")
    assert rows(out)["short.WAV"]["attempts"] == 3
    assert rows(out)["会议/周会.flac"]["attempts"] == 2


def test_clips_have_the_segment_lengths(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "stereo.wav", np.stack([SPEECH[: 16000 * 40]] * 2, axis=1), 16000)
    out = tmp_path / "out"
    assert run(src, "-o", out, "--clips", "--clip-pad-ms", "100").returncode == 0
    doc = json.loads((out / "stereo.wav.json").read_text())
    clips = sorted((out / "stereo.wav.clips").iterdir())
    assert len(clips) == len(doc["segments"]) > 1
    for clip, seg in zip(clips, doc["segments"], strict=True):
        info = sf.info(clip)
        expected = min(40.0, seg["end"] + 0.1) - max(0.0, seg["start"] - 0.1)
        assert info.channels == 2 and abs(info.duration - expected) < 0.001, clip.name
        start = max(0.0, seg["start"] - 0.1)  # where the clip starts: its padding named too
        assert clip.name.startswith(f"{clips.index(clip):04d}_{start:.3f}-")


def test_second_run_on_same_output_exits_3(tree, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".segmenter.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = time.monotonic()
        result = run(tree, "-o", out)
        assert time.monotonic() - started < 30
    assert result.returncode == 3 and "in use by another segmenter run" in result.stderr


def test_usage_errors_exit_2(tmp_path):
    assert run("-o", tmp_path / "out").returncode == 2
    job = tmp_path / "job.toml"
    job.write_text('inputs = ["x"]\nout = "o"\nspeed = 3\n')
    result = run("--job", job)
    assert result.returncode == 2 and "speed" in result.stderr


def test_job_file_with_flags_on_top(tree, tmp_path):
    job = tmp_path / "nightly.toml"
    job.write_text('inputs = ["in"]\nout = "job-out"\nprecision = "fp32"\nexclude = ["*.mp3"]\n')
    assert run("--job", job, "--precision", "int8").returncode == 1  # broken.wav still fails
    state = rows(tmp_path / "job-out")
    assert "empty.mp3" not in state and len(state) == 4
    doc = json.loads((tmp_path / "job-out" / "short.WAV.json").read_text())
    assert doc["model"]["precision"] == "int8"


def make_batch(root, n, seconds):
    root.mkdir()
    for i in range(n):
        start = (i * 7919) % (len(SPEECH) - 16000 * seconds)
        sf.write(root / f"f{i:03d}.wav", SPEECH[start : start + 16000 * seconds], 16000)


@pytest.mark.slow
def test_kill_9_then_resume_matches_uninterrupted_run(tmp_path):
    src = tmp_path / "in"
    make_batch(src, 24, 55)  # long enough that the batch is still running at the kill
    reference = tmp_path / "ref"
    assert run(src, "-o", reference, "--jobs", "2").returncode == 0
    out = tmp_path / "out"
    cmd = [SEGMENTER, "run", str(src), "-o", str(out), "--jobs", "2", "--quiet"]
    batch = subprocess.Popen([*cmd, "--settle-seconds", "0"], start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and done_count(out) < 3:  # outputs first, then rows
        time.sleep(0.02)
    os.killpg(batch.pid, signal.SIGKILL)  # the coordinator and its workers at once
    batch.wait()
    interrupted = rows(out)
    done_before = {r for r, row in interrupted.items() if row["status"] == "done"}
    assert 3 <= len(done_before) < 24
    for doc in out.rglob("*.json"):  # whatever is visible is whole
        assert json.loads(doc.read_text())["segments"] is not None
    assert run(src, "-o", out, "--jobs", "2").returncode == 0
    final = rows(out)
    assert all(row["status"] == "done" for row in final.values()) and len(final) == 24
    assert all(final[r]["attempts"] == 1 for r in done_before)  # none done twice
    assert outputs(out) == outputs(reference)
    assert not list(out.rglob(".tmp-*"))


def test_killed_worker_costs_nothing(tmp_path):
    src = tmp_path / "in"
    make_batch(src, 24, 55)  # 22 min: at ~600x a pool of 2 is still busy when the kill lands
    out = tmp_path / "out"
    batch = subprocess.Popen(
        [
            SEGMENTER,
            "run",
            str(src),
            "-o",
            str(out),
            "--jobs",
            "2",
            "--quiet",
            "--settle-seconds",
            "0",
        ]
    )
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        time.sleep(0.02)
        workers = loky_workers(batch.pid)
        victim = workers[0] if workers and (out / "manifest.sqlite").exists() else None
    assert victim, "no worker process seen"
    os.kill(victim, signal.SIGKILL)
    assert batch.wait(timeout=300) == 0
    final = rows(out)
    assert len(final) == 24 and all(r["status"] == "done" for r in final.values())
    assert "a worker process died" in (out / "segmenter.log").read_text()


def test_coordinator_does_not_import_torch():
    """Only workers pay for torch; the coordinator stays small and starts fast."""
    probe = "import sys, segmenter.batch.runner, segmenter.cli; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
        == "False\n"
    )


# -- inputs a new user gives: several roots, a FIFO, OUT inside an input, typos -------------------


def test_two_roots_with_the_same_layout_never_share_outputs(tmp_path):
    for year, offset in (("2024", 0), ("2025", 20)):
        (tmp_path / "dup" / year / "room1").mkdir(parents=True)
        clip = SPEECH[16000 * offset : 16000 * (offset + 12)]
        sf.write(tmp_path / "dup" / year / "room1" / "meeting.wav", clip, 16000)
    out = tmp_path / "out"
    result = run(tmp_path / "dup" / "2024", tmp_path / "dup" / "2025", "-o", out, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(rows(out)) == ["2024/room1/meeting.wav", "2025/room1/meeting.wav"]
    docs = [json.loads((out / f"{rel}.json").read_text()) for rel in sorted(rows(out))]
    assert docs[0]["audio"]["path"].endswith("2024/room1/meeting.wav")
    assert docs[1]["audio"]["path"].endswith("2025/room1/meeting.wav")
    assert docs[0]["segments"] != docs[1]["segments"]


def test_fifo_named_wav_is_failed_not_waited_for(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "good.wav", SPEECH[: 16000 * 10], 16000)
    os.mkfifo(src / "stuck.wav")
    out = tmp_path / "out"
    result = run(src, "-o", out, "--jobs", "1", timeout=120)
    assert result.returncode == 1, result.stderr
    state = rows(out)
    assert state["good.wav"]["status"] == "done"
    assert state["stuck.wav"]["status"] == "failed"
    assert "not a regular file" in state["stuck.wav"]["error"]


def test_output_inside_the_input_is_not_segmented_again(tmp_path):
    src = twenty_seconds(tmp_path / "in", "talk.wav")
    out = src / "segments"
    assert run(src, "-o", out, "--clips", "--jobs", "1").returncode == 0
    assert list((out / "talk.wav.clips").glob("*.wav"))
    again = run(src, "-o", out, "--clips", "--jobs", "1")
    assert again.returncode == 0, again.stderr
    assert list(rows(out)) == ["talk.wav"]
    assert "0 done, 1 already done" in again.stdout


def test_input_and_output_mistakes_are_usage_errors(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    out = tmp_path / "out"
    missing = run(src, tmp_path / "nowhere", "-o", out)
    assert missing.returncode == 2
    assert missing.stderr == f"segmenter: input not found: {tmp_path / 'nowhere'}\n"
    assert not out.exists()  # nothing touched
    (tmp_path / "file").write_text("")
    not_a_folder = run(src, "-o", tmp_path / "file")
    assert not_a_folder.returncode == 2 and not_a_folder.stderr.count("\n") == 1
    assert "is a file, not a folder" in not_a_folder.stderr


def test_quiet_run_prints_a_summary_that_names_failures_and_explains_skips(tree, tmp_path):
    out = tmp_path / "out"
    result = run(tree, "-o", out, "--jobs", "1")  # --quiet: no progress bar
    assert result.returncode == 1
    lines = unstamped(result.stdout).splitlines()
    assert lines[0] == "files: 3 done, 0 already done, 2 failed"
    assert [line for line in lines if line.startswith("failed:")] == [
        "failed: broken.wav: " + rows(out)["broken.wav"]["error"].split(": ", 1)[1],
        "failed: empty.mp3: empty file (0 bytes)",  # the name once, not its path again
    ]
    for old in tree.rglob("*"):
        os.utime(old, (time.time() - 120, time.time() - 120))
    sf.write(tree / "new.wav", SPEECH[: 16000 * 5], 16000)  # just copied
    again = run(tree, "-o", out, "--jobs", "1", "--settle-seconds", "60")
    assert unstamped(again.stdout).splitlines()[0] == (
        "files: 0 done, 3 already done, 2 failed, 1 still changing (left for the next run)"
    )
    assert "hint" not in again.stdout  # most files were taken: nothing to explain
    for name in ("a.wav", "b.wav"):
        sf.write(tree / name, SPEECH[: 16000 * 5], 16000)
    again = run(tree, "-o", out, "--jobs", "1", "--settle-seconds", "60")
    assert "hint: 3 file(s) changed in the last 60 s" in again.stdout
    assert "--settle-seconds 0" in again.stdout
    assert "new.wav: still changing" in (out / "segmenter.log").read_text()  # its name in OUT


def loky_workers(parent: int) -> list[int]:
    """The loky worker processes of a coordinator (not its resource trackers): its children,
    or with `segmenter run`'s fork server (batch/forkserver.py) that server's children."""
    forked = [w for server in fork_servers(parent) for w in _children(server)]
    return [c for c in _children(parent) if "LokyProcess" in _cmdline(c)] + forked


def fork_servers(parent: int) -> list[int]:
    """The fork server a coordinator started for its workers, if any."""
    return [c for c in _children(parent) if "multiprocessing.forkserver" in _cmdline(c)]


def _children(parent: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return [int(c) for c in found.stdout.split()]


def _cmdline(pid) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def test_workers_die_with_a_killed_coordinator(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    hour = np.tile(SPEECH, 60)  # an hour each: a worker is busy for seconds
    for name in ("a.wav", "b.wav"):
        sf.write(src / name, hour, 16000)
    out = tmp_path / "out"
    cmd = [SEGMENTER, "run", str(src), "-o", str(out), "--jobs", "2", "--quiet"]
    batch = subprocess.Popen([*cmd, "--settle-seconds", "0"])
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / "segmenter.log").exists():
            time.sleep(0.1)
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = loky_workers(batch.pid)
        assert len(workers) == 2, "no workers seen"
        servers = fork_servers(batch.pid)
        time.sleep(1)  # both are in the middle of their hour
        os.kill(batch.pid, signal.SIGKILL)
        batch.wait()
        gone_by = time.monotonic() + 5
        while time.monotonic() < gone_by and any(map(alive, workers + servers)):
            time.sleep(0.1)
        left = [w for w in workers + servers if alive(w)]
        assert not left, f"workers or their fork server {left} outlived their coordinator"
        assert not list(out.glob("*.json"))  # they did not finish their files either
    finally:
        for pid in filter(alive, workers):
            os.kill(pid, signal.SIGKILL)


def test_run_without_clips_removes_the_clips_of_an_earlier_run(tmp_path):
    src = twenty_seconds(tmp_path / "in", "talk.wav")
    out = tmp_path / "out"
    assert run(src, "-o", out, "--clips", "--jobs", "1").returncode == 0
    assert list((out / "talk.wav.clips").glob("*.wav"))
    redo = run(src, "-o", out, "--jobs", "1", "--redo-changed")  # redone: clips changed
    assert redo.returncode == 0
    assert not (out / "talk.wav.clips").exists()
    assert json.loads(rows(out)["talk.wav"]["outputs"]) == ["talk.wav.json", "talk.wav.rttm"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("talk")) == [
        "talk.wav.json",
        "talk.wav.rttm",
    ]


def test_outputs_get_the_modes_the_umask_gives_not_mkstemps(tmp_path):
    src = twenty_seconds(tmp_path / "in", "talk.wav")
    out = tmp_path / "out"
    cmd = [SEGMENTER, "run", src, "-o", out, "--clips", "--report", "--jobs", "1"]
    cmd += ["--settle-seconds", "0"]
    done = subprocess.run(
        list(map(str, cmd)), capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: os.umask(0o027),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    outputs = ("talk.wav.json", "talk.wav.rttm", "report.html")
    for name in (*outputs, *os.listdir(out / "talk.wav.clips")):
        path = out / name if name in outputs else out / "talk.wav.clips" / name
        assert path.stat().st_mode & 0o777 == 0o640, name
    assert (out / "talk.wav.clips").stat().st_mode & 0o777 == 0o750
