"""What a user reads about a recording: the failure reasons `status`, the summary and the log
give (the name once, plain words for ffmpeg's), one way of naming files in segmenter.log, and
--channel's refusal counting from 0."""

import os
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf

from segmenter.batch.reasons import plain_reason

from .test_batch import SEGMENTER, SPEECH, run
from .test_cli import run as run_cli


def ffmpeg(*args) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], check=True)


@pytest.fixture
def failing(tmp_path):
    """A finished batch in which a text file named .wav and a cut-short M4A failed."""
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "sub" / "notes.wav").write_text("not a recording\n")
    whole = tmp_path / "whole.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=f=440:d=20", "-movflags", "+faststart", whole)
    data = whole.read_bytes()
    (inputs / "cut.m4a").write_bytes(data[: data.find(b"mdat") + 40])  # index, then 32 bytes
    out = tmp_path / "out"
    done = run(inputs, "-o", out, "--jobs", "1")
    assert done.returncode == 1, done.stderr
    return inputs, out, done


def test_failure_lines_name_the_file_once_in_plain_words(failing):
    inputs, out, done = failing
    status = subprocess.run([SEGMENTER, "status", str(out)], capture_output=True, text=True)
    lines = [line for line in status.stdout.splitlines() if line.startswith("failed:")]
    assert lines == [
        "failed: cut.m4a: it is cut short (an unfinished copy?) (ffmpeg: partial file)",
        "failed: sub/notes.wav: not audio (a text file)",
    ]
    assert str(inputs) not in status.stdout and str(inputs) not in done.stdout
    log = (out / "segmenter.log").read_text()
    assert "cut.m4a: failed: it is cut short" in log and str(inputs) not in log


def test_ffmpegs_wording_is_put_plainly_and_the_path_dropped():
    error = "/in/a b/x.m4a: ffmpeg failed while decoding (Error configuring filter graph)"
    assert plain_reason(error, "a b/x.m4a", "/in/a b/x.m4a") == (
        "no audio in it could be decoded: ffmpeg found an audio stream but not one frame of it"
        " decoded (ffmpeg: Error configuring filter graph)"
    )
    moved = "/elsewhere/x.wav: deleted while it was read"  # a path the row no longer has
    assert plain_reason(moved, "sub/x.wav", "sub/x.wav") == "deleted while it was read"
    odd = "/in/x.wav: ffmpeg failed while decoding (some other wording)"
    assert plain_reason(odd, "x.wav") == "ffmpeg failed while decoding (some other wording)"
    assert plain_reason(None, "x.wav") == ""


def test_the_log_names_every_file_by_its_name_under_out(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    (inputs / "sub").mkdir(parents=True)
    sf.write(inputs / "sub" / "old.wav", SPEECH[: 16000 * 5], 16000)
    old = time.time() - 600
    os.utime(inputs / "sub" / "old.wav", (old, old))
    sf.write(inputs / "sub" / "new.wav", SPEECH[: 16000 * 5], 16000)  # just copied
    assert run(inputs, "-o", out, "--jobs", "1", "--settle-seconds", "60").returncode == 0
    log = (out / "segmenter.log").read_text()
    assert "sub/new.wav: still changing" in log and "sub/old.wav: " in log
    assert str(inputs) not in log


@pytest.mark.parametrize(
    "name, channels, said",
    [
        ("two.wav", 2, "no channel 2: it has channels 0 and 1 (they count from 0)"),
        ("two.m4a", 2, "no channel 2: it has channels 0 and 1 (they count from 0)"),
        ("one.flac", 1, "no channel 2: it has one channel, 0 (mono)"),
        ("six.wav", 6, None),
    ],
)
def test_a_channel_the_file_lacks_is_named_counting_from_0(tmp_path, name, channels, said):
    path = tmp_path / name
    samples = np.stack([SPEECH[: 16000 * 3]] * channels, axis=1)
    if name.endswith(".m4a"):
        sf.write(tmp_path / "source.wav", samples, 16000)
        ffmpeg("-i", tmp_path / "source.wav", path)
    else:
        sf.write(path, samples, 16000)
    done = run_cli("segment", str(path), "--channel", "2")
    if said is None:  # six channels: 2 is there
        assert done.returncode == 0, done.stderr
        return
    assert done.returncode == 1 and done.stderr == f"segmenter: {path}: {said}\n"


def test_a_note_or_a_summary_line_stays_one_line(capsys):
    """The run's notes and summary lines (the changed-settings line, gone and failure lines)
    pass through names.shown: a newline in what they quote cannot forge another line."""
    from segmenter.batch import notes

    notes.note("settings differ\nsegmenter: forged")
    notes.summary(["failed: a\nfailed: b.wav: why", "files: 1 done"])
    said = capsys.readouterr()
    assert said.err.count("\n") == 1 and "settings differ\\nsegmenter: forged" in said.err
    assert said.out.count("\n") == 2 and "failed: a\\nfailed: b.wav: why" in said.out
