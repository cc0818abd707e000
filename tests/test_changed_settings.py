"""A rerun whose result-changing settings differ from the batch's (batch/changed.py): one line
saying how many files it would redo and which settings changed, then nothing overwritten unless
the user said so (--redo-changed, its job key, --force, or a yes at a terminal)."""

import os
import pty
import sqlite3
import subprocess

import pytest

from segmenter.batch.changed import changes
from segmenter.batch.runner import BatchSettings
from segmenter.profiles.precise import PreciseOptions
from segmenter.settings import DecisionSettings

from .test_batch import SEGMENTER, rows, run, unstamped
from .test_gone import recording

REFUSED = 7  # cli.EXIT_SETTINGS_CHANGED (6 is a run stopped by an error that is no file's)


@pytest.fixture
def batch(tmp_path):
    """A finished batch of two recordings with the default settings: (inputs, OUT)."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    recording(inputs / "a.wav", at=0)
    recording(inputs / "b.wav", at=20)
    done = run(inputs, "-o", out, "--jobs", "1")
    assert done.returncode == 0, done.stderr
    return inputs, out


def written(out):
    """Each output's modification time."""
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.wav.*")}


def test_a_run_with_other_settings_says_so_and_writes_nothing_unless_told(batch, tmp_path):
    inputs, out = batch
    before, outputs = rows(out), written(out)
    refused = run(inputs, "-o", out, "--jobs", "1", "--profile", "precise")
    assert refused.returncode == REFUSED
    (line,) = unstamped(refused.stderr).splitlines()
    assert line.startswith(
        "segmenter: settings differ from the batch's: 2 file(s) done with other settings would"
        " be redone (profile: funasr -> precise); nothing done: run again with --redo-changed"
    )
    assert rows(out) == before and written(out) == outputs and refused.stdout == ""
    assert "settings differ" in (out / "segmenter.log").read_text()

    job = tmp_path / "job.toml"
    job.write_text(f'inputs = ["{inputs}"]\nout = "{out}"\nredo_changed = true\njobs = 1\n')
    told = run("--job", job, "--max-end-silence-time", "300")
    assert told.returncode == 0, told.stderr
    assert (
        "(max_end_silence_time: 800 -> 300, dynamic_silence: true -> false): redoing them"
        " (--redo-changed)" in told.stderr
    )
    assert {r["attempts"] for r in rows(out).values()} == {2}
    assert run("--job", job, "--max-end-silence-time", "300").stderr == ""  # now the batch's

    forced = run(inputs, "-o", out, "--jobs", "1", "--force")  # --force keeps its meaning
    assert forced.returncode == 0 and "redoing them (--force)" in forced.stderr
    assert {r["attempts"] for r in rows(out).values()} == {3}


@pytest.mark.parametrize("answer, code, attempts", [("n", REFUSED, 1), ("y", 0, 2)])
def test_at_a_terminal_it_asks(batch, answer, code, attempts):
    inputs, out = batch
    leader, follower = pty.openpty()
    args = [SEGMENTER, "run", str(inputs), "-o", str(out), "--jobs", "1", "--settle-seconds", "0"]
    process = subprocess.Popen(
        [*args, "--quiet", "--precise-pad-ms", "50", "--profile", "precise"],
        stdin=follower,
        stderr=follower,
        stdout=subprocess.PIPE,
    )
    os.close(follower)
    shown = b""
    while b"[y/N]" not in shown:
        shown += os.read(leader, 1024)
    os.write(leader, answer.encode() + b"\n")
    assert process.wait(timeout=300) == code
    os.close(leader)
    assert b"2 file(s) done with other settings would be redone (profile: funasr -> precise)" in (
        shown
    )
    assert {r["attempts"] for r in rows(out).values()} == {attempts}


def test_a_batch_from_before_the_record_still_says_how_many(batch):
    inputs, out = batch
    with sqlite3.connect(out / "manifest.sqlite") as db:
        db.execute("DELETE FROM configs")
    refused = run(inputs, "-o", out, "--jobs", "1", "--formats", "json")
    assert refused.returncode == REFUSED
    assert "2 file(s) done with other settings would be redone (which settings changed is not" in (
        refused.stderr
    )


def test_the_line_names_settings_as_options_and_keeps_short(tmp_path):
    base = BatchSettings(inputs=[], out=tmp_path)
    other = BatchSettings(
        inputs=[],
        out=tmp_path,
        clips=True,
        clip_pad_ms=200,
        decision=DecisionSettings(overrides={"max_end_silence_time": 500}),
        formats=("json", "srt"),
    )
    assert changes(base.result_config(), other.result_config()) == [
        "clips: off -> pad 200 ms, rate source",
        "formats: json,rttm -> json,srt",
        "max_end_silence_time: 800 -> 500",
        "dynamic_silence: true -> false",  # a fixed end silence turns FunASR's schedule off
    ]
    precise = BatchSettings(inputs=[], out=tmp_path, decision=DecisionSettings(profile="precise"))
    tuned = BatchSettings(
        inputs=[],
        out=tmp_path,
        precision="fp32",
        decision=DecisionSettings(
            profile="precise",
            overrides={"pad_ms": 60, "min_speech_ms": 50, "trim_db": 3.0, "enter_threshold": 0.6},
        ),
    )
    shown = changes(precise.result_config(), tuned.result_config())
    pad = f"precise_pad_ms: {PreciseOptions().pad_ms} -> 60"  # from the default, whatever it is
    assert shown[0] == "precision: int8 -> fp32" and pad in shown
    assert len(shown) == 5 and shown[-1] == "and 1 more"
