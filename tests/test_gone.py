"""Recordings moved or deleted after they were done (batch/gone.py): reported, counted apart,
pruned only when asked, judged only under the inputs a run is given."""

import json
import shutil
import sqlite3
import subprocess

import soundfile as sf

from segmenter.batch.gone import prune
from segmenter.batch.manifest import Manifest

from .test_batch import SEGMENTER, SPEECH, rows, run


def recording(path, seconds=6, at=0):
    """`seconds` of the shared speech from second `at`, written to `path` (folders made)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, SPEECH[16000 * at : 16000 * (at + seconds)], 16000)
    return path


def status(out) -> dict:
    done = subprocess.run([SEGMENTER, "status", str(out), "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_renamed_recording_is_gone_counted_apart_and_pruned_only_when_asked(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    recording(inputs / "a.wav", at=0)
    recording(inputs / "b.wav", at=20)
    first = run(inputs, "-o", out, "--jobs", "1", "--clips")
    assert first.returncode == 0, first.stderr
    hours = status(out)["audio_hours"]
    (inputs / "later").mkdir()
    (inputs / "a.wav").rename(inputs / "later" / "a renamed.wav")

    second = run(inputs, "-o", out, "--jobs", "1", "--clips")
    assert second.returncode == 0, second.stderr
    assert "files: 1 done, 1 already done, 0 failed, 1 gone" in second.stdout
    assert "gone: 1 recording(s) whose input is no longer there" in second.stdout
    state = status(out)
    assert state["counts"]["done"] == 2 and state["counts"]["gone"] == 1
    assert state["audio_hours"] == hours  # a.wav's hours once, under its new name
    assert state["gone"] == [{"file": "a.wav", "path": str(inputs / "a.wav")}]
    assert (out / "a.wav.json").exists() and (out / "a.wav.clips").is_dir()  # never silently
    text = subprocess.run([SEGMENTER, "status", str(out)], capture_output=True, text=True).stdout
    assert "2 done, 0 failed, 0 to do; 1 gone (not in the totals)" in text
    assert f"gone: a.wav: {inputs / 'a.wav'} is no longer there (moved or deleted)" in text
    assert "gone" in (out / "segmenter.log").read_text()

    third = run(inputs, "-o", out, "--jobs", "1", "--clips", "--prune")
    assert third.returncode == 0, third.stderr
    assert "pruned: 1 gone recording(s): 3 output(s) and their manifest rows removed" in (
        third.stdout
    )
    assert not list(out.glob("a.wav*")) and "a.wav" not in rows(out)
    assert (out / "later" / "a renamed.wav.json").exists() and (out / "b.wav.clips").is_dir()
    assert status(out)["counts"] | {"done": 0} == dict.fromkeys(
        ("done", "failed", "pending", "running", "gone"), 0
    )


def test_a_run_judges_only_the_recordings_under_the_inputs_it_is_given(tmp_path):
    roots = [tmp_path / name for name in ("A", "B", "C")]
    for i, root in enumerate(roots):
        recording(root / "x.wav", at=10 * i)
    out = tmp_path / "out"
    assert run(*roots, "-o", out, "--jobs", "1").returncode == 0
    (roots[1] / "x.wav").unlink()
    (roots[0] / "x.wav").unlink()

    subset = run(roots[0], roots[2], "-o", out, "--jobs", "1", "--prune")
    assert subset.returncode == 0, subset.stderr
    state = rows(out)
    assert "A/x.wav" not in state and not (out / "A").exists()  # under the inputs: pruned
    assert state["B/x.wav"]["status"] == "done" and (out / "B" / "x.wav.json").exists()

    every = run(*roots, "-o", out, "--jobs", "1")
    assert "1 already done, 0 failed, 1 gone" in every.stdout
    assert rows(out)["B/x.wav"]["status"] == "gone"


def test_a_gone_recording_found_again_is_done_again_without_redoing(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    recording(inputs / "a.wav")
    assert run(inputs, "-o", out, "--jobs", "1").returncode == 0
    written = (out / "a.wav.json").stat().st_mtime_ns
    shutil.move(inputs / "a.wav", tmp_path / "a.wav")
    assert "1 gone" in run(inputs, "-o", out, "--jobs", "1").stdout
    shutil.move(tmp_path / "a.wav", inputs / "a.wav")
    back = run(inputs, "-o", out, "--jobs", "1")
    assert "files: 0 done, 1 already done, 0 failed" in back.stdout and "gone" not in back.stdout
    assert rows(out)["a.wav"]["status"] == "done"
    assert (out / "a.wav.json").stat().st_mtime_ns == written


def test_prune_removes_nothing_outside_out(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.json").write_text("{}")
    (out / "sub").mkdir(parents=True)
    (out / "link").symlink_to(outside)
    (out / "sub" / "x.wav.json").write_text("{}")
    manifest = Manifest.open(out)
    names = ["sub/x.wav.json", "../outside/keep.json", "link/keep.json", "/etc/hostname"]
    row = {"rel": "sub/x.wav", "path": "/gone/x.wav", "size": 1, "mtime": 0.0}
    manifest.restore([row | {"status": "gone", "outputs": json.dumps(names)}])
    assert prune(out, manifest, ["sub/x.wav"]) == 1
    manifest.close()
    assert (outside / "keep.json").exists() and not (out / "sub").exists()
    with sqlite3.connect(out / "manifest.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0


def test_prune_never_removes_another_recordings_outputs_in_the_way(tmp_path):
    """A gone recording's clips folder that now holds another recording's outputs too (those
    of an input folder named `x.wav.clips`), or a folder where its row lists a file (an input
    folder named `y.wav.json`), is left whole: only its own clips and files go."""
    out = tmp_path / "out"
    (out / "x.wav.clips").mkdir(parents=True)
    (out / "x.wav.clips" / "0000_0.000-1.000.wav").write_bytes(b"RIFF")
    (out / "x.wav.clips" / "inner.wav.json").write_text("{}")  # x.wav.clips/inner.wav's
    (out / "x.wav.json").write_text("{}")
    (out / "y.wav.json").mkdir()
    (out / "y.wav.json" / "z.wav.json").write_text("{}")  # y.wav.json/z.wav's
    (out / "y.wav.rttm").write_text("")
    manifest = Manifest.open(out)
    gone = {"status": "gone", "size": 1, "mtime": 0.0}
    manifest.restore(
        [
            gone
            | {"rel": "x.wav", "path": "/gone/x.wav", "outputs": '["x.wav.json", "x.wav.clips/"]'},
            gone
            | {"rel": "y.wav", "path": "/gone/y.wav", "outputs": '["y.wav.json", "y.wav.rttm"]'},
        ]
    )
    assert prune(out, manifest, ["x.wav", "y.wav"]) == 2  # x.wav.json, y.wav.rttm
    manifest.close()
    assert (out / "x.wav.clips" / "inner.wav.json").exists()
    assert (out / "y.wav.json" / "z.wav.json").exists()
    assert not (out / "x.wav.json").exists() and not (out / "y.wav.rttm").exists()


def test_a_gone_name_is_one_line_in_status(tmp_path):
    """A newline in a gone recording's name cannot forge a line of `status` (names.shown)."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    name = "a\nfailed: forged.wav"
    recording(inputs / name)
    assert run(inputs, "-o", out, "--jobs", "1").returncode == 0
    (inputs / name).unlink()
    assert "1 gone" in run(inputs, "-o", out, "--jobs", "1").stdout
    text = subprocess.run([SEGMENTER, "status", str(out)], capture_output=True, text=True).stdout
    assert f"gone: a\\nfailed: forged.wav: {inputs}/a\\nfailed: forged.wav is no longer" in text
    assert not any(line.startswith("failed: forged") for line in text.splitlines()), text
