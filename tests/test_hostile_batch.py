"""Batches an unlucky archive or an attacker makes (issue 24): names that are not UTF-8, too long
or full of newlines, layouts whose outputs would collide, inputs inside OUT, symlinks that lead
nowhere, a stop with one worker, manifests that are read-only, newer or reshaped. A per-file
problem fails that file with one line and the batch goes on; a run-wide one is one line."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from .test_batch import SEGMENTER, SPEECH, rows, run, twenty_seconds, unstamped
from .test_cli import holds_open
from .test_faults import minutes, start, statuses, wait_for
from .test_report import readonly


def planned(out: Path) -> bool:
    """Whether the run has planned (its rows are in the manifest; False while it is made)."""
    try:
        with sqlite3.connect(f"file:{out / 'manifest.sqlite'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM files").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def test_a_stop_past_the_grace_leaves_the_file_in_flight_to_do_with_one_worker(tmp_path):
    """With --jobs 1 the coordinator segments the files itself: the grace period's end must
    leave the file in flight to do, as with several workers, not record it failed."""
    src = tmp_path / "in"
    for i in range(2):
        minutes(src, f"f{i}.wav", 10, offset=i)
    out = tmp_path / "out"
    batch = start(src, out, "--jobs", "1", "--stop-grace", "0.2")
    wait_for(lambda: planned(out) and any(map(holds_open, src.iterdir())), batch)
    batch.send_signal(signal.SIGTERM)
    stdout, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 143, stderr
    said = "the 0.2 s grace period is over: stopping now; the files in flight are left to do"
    assert said in stderr
    assert set(statuses(out).values()) <= {"pending", "running"}, rows(out)  # none failed
    assert "2 left to do" in stdout
    again = run(src, "-o", out, "--jobs", "1")
    assert again.returncode == 0, again.stdout
    assert set(statuses(out).values()) == {"done"}


def summary_failures(stdout: str) -> dict[str, str]:
    """The summary's `failed: NAME: REASON` lines, by name (names as printed, escaped)."""
    found = {}
    for line in unstamped(stdout).splitlines():
        if line.startswith("failed: "):
            name, _, reason = line.removeprefix("failed: ").partition(": ")
            found[name] = reason
    return found


def raw_name(text: bytes) -> str:
    """A file name from its bytes, as Python's os functions carry it."""
    return os.fsdecode(text)


def test_names_that_are_not_utf8_are_recorded_and_shown_escaped(tmp_path):
    src = twenty_seconds(tmp_path / "in", "good.wav")
    bad = src / raw_name(b"bad\xff\xfe.wav")
    shutil.copy(src / "good.wav", bad)
    (src / raw_name(b"notes\xff.wav")).write_text("not a recording\n")
    out = tmp_path / "out"
    first = run(src, "-o", out, "--jobs", "1", "--clips")
    assert first.returncode == 1, first.stderr  # the text file failed; the batch went on
    assert first.stderr == ""
    assert "files: 2 done, 0 already done, 1 failed" in first.stdout
    assert summary_failures(first.stdout) == {"notes\\xff.wav": "not audio (a text file)"}
    document = json.loads((out / raw_name(b"bad\xff\xfe.wav.json")).read_bytes())
    assert document["audio"]["path"] == str(bad.absolute())  # exact, through JSON's escapes
    assert document["batch"]["rel"] == bad.name
    assert list((out / raw_name(b"bad\xff\xfe.wav.clips")).glob("*.wav"))
    status = subprocess.run([SEGMENTER, "status", str(out)], capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    assert "failed: notes\\xff.wav: " in status.stdout
    log = (out / "segmenter.log").read_text(encoding="utf-8")
    assert "bad\\xff\\xfe.wav: " in log and "Logging error" not in first.stderr
    again = run(src, "-o", out, "--jobs", "1", "--clips")
    assert "files: 0 done, 2 already done, 1 failed" in again.stdout
    report = subprocess.run([SEGMENTER, "report", str(out)], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert "bad\\xff\\xfe.wav" in (out / "report.html").read_text(encoding="utf-8")


def test_a_newline_in_a_name_cannot_forge_a_line_of_the_log_or_of_status(tmp_path):
    src = twenty_seconds(tmp_path / "in", "good.wav")
    (src / "a\nfailed: forged.wav: it was me\nz.wav").write_text("text\n")
    (src / "bell\x07\x1b[31m.wav").write_text("text\n")
    out = tmp_path / "out"
    done = run(src, "-o", out, "--jobs", "1")
    assert done.returncode == 1, done.stderr
    status = subprocess.run([SEGMENTER, "status", str(out)], capture_output=True, text=True)
    for printed in (unstamped(done.stdout), status.stdout):
        lines = printed.splitlines()
        assert not [line for line in lines if line.startswith("failed: forged.wav")]
        assert any(
            line.startswith("failed: a\\nfailed: forged.wav: it was me\\nz.wav: ") for line in lines
        )
        assert any(line.startswith("failed: bell\\x07\\x1b[31m.wav: ") for line in lines)
        assert "\x1b" not in printed and "\x07" not in printed
    log = (out / "segmenter.log").read_text().splitlines()
    assert all(line[:4].isdigit() for line in log)  # every line is a record's own (its time)
    assert sum("forged.wav" in line for line in log) == 1


def test_output_names_too_long_for_the_filesystem_fail_that_file_alone(tmp_path):
    src = twenty_seconds(tmp_path / "in", "good.wav")
    long_name = "n" * 250 + ".wav"  # 254 bytes: the file can be, its outputs cannot
    shutil.copy(src / "good.wav", src / long_name)
    out = tmp_path / "out"
    done = run(src, "-o", out, "--jobs", "1", "--clips")
    assert done.returncode == 1, done.stderr
    assert "files: 1 done, 0 already done, 1 failed" in done.stdout
    [(name, reason)] = summary_failures(done.stdout).items()
    assert name == long_name
    assert reason.startswith("its output name nnnn") and "would be 260 bytes long" in reason
    assert reason.endswith("the filesystem of OUT takes 255: rename the recording")
    assert rows(out)["good.wav"]["status"] == "done" and (out / "good.wav.json").is_file()


def test_a_folder_in_the_way_of_an_output_fails_that_file_alone(tmp_path):
    """An input folder named like an output, and a folder a user made in OUT."""
    src = twenty_seconds(tmp_path / "in", "x.wav")
    for name in ("y.wav", "z.wav"):
        shutil.copy(src / "x.wav", src / name)
    (src / "x.wav.json").mkdir()
    shutil.copy(src / "x.wav", src / "x.wav.json" / "inner.wav")
    out = tmp_path / "out"
    (out / "z.wav.rttm").mkdir(parents=True)
    done = run(src, "-o", out, "--jobs", "1")
    assert done.returncode == 1, done.stderr
    assert "files: 2 done, 0 already done, 2 failed" in done.stdout
    failed = summary_failures(done.stdout)
    assert failed["x.wav"].startswith(
        "an output of it, x.wav.json, is the folder where the outputs of x.wav.json/inner.wav go"
    )
    assert failed["z.wav"].startswith(f"cannot write {out / 'z.wav.rttm'}: is a folder")
    assert json.loads((out / "x.wav.json" / "inner.wav.json").read_text())["segments"]
    assert (out / "y.wav.json").is_file() and not (out / "z.wav.json").exists()  # all or none
    assert rows(out)["x.wav.json/inner.wav"]["status"] == "done"


def test_an_input_folder_named_like_a_clips_folder_keeps_its_outputs(tmp_path):
    """Redoing x.wav without clips once removed OUT/x.wav.clips: the outputs of the input
    folder x.wav.clips/. With clips, x.wav fails instead of replacing that folder."""
    src = twenty_seconds(tmp_path / "in", "x.wav")
    (src / "x.wav.clips").mkdir()
    shutil.copy(src / "x.wav", src / "x.wav.clips" / "y.wav")
    out = tmp_path / "out"
    assert run(src, "-o", out, "--jobs", "1").returncode == 0
    inner = out / "x.wav.clips" / "y.wav.json"
    assert inner.is_file()
    sf.write(src / "x.wav", SPEECH[16000 * 20 : 16000 * 40], 16000)  # rewritten: redone
    os.utime(src / "x.wav", (1, 1))  # and settled
    again = run(src, "-o", out, "--jobs", "1")
    assert again.returncode == 0, again.stdout
    assert "1 done, 1 already done" in again.stdout
    assert inner.is_file() and rows(out)["x.wav.clips/y.wav"]["status"] == "done"
    clips = run(src, "-o", out, "--jobs", "1", "--clips", "--redo-changed")  # clips: a change
    assert clips.returncode == 1, clips.stdout
    failed = summary_failures(clips.stdout)
    assert failed == {
        "x.wav": "the clips folder of it, x.wav.clips, is the folder where the outputs of"
        " x.wav.clips/y.wav go (an input folder of that name): rename one of them, or run them"
        " into different OUTs"
    }
    assert inner.is_file() and rows(out)["x.wav.clips/y.wav"]["status"] == "done"


def test_explicit_inputs_whose_formats_would_write_one_file(tmp_path):
    """x.wav's whisper file and x.wav.whisper's JSON are both x.wav.whisper.json."""
    src = twenty_seconds(tmp_path / "in", "x.wav")
    other = src / "x.wav.whisper"
    sf.write(other, SPEECH[16000 * 20 : 16000 * 40], 16000, format="WAV")
    out = tmp_path / "out"
    done = run(src / "x.wav", other, "-o", out, "--jobs", "1", "--formats", "json,whisper")
    assert done.returncode == 1, done.stdout
    assert summary_failures(done.stdout) == {
        "x.wav": "its output x.wav.whisper.json is also an output of x.wav.whisper: rename one"
        " of them, or run them into different OUTs"
    }
    document = json.loads((out / "x.wav.whisper.json").read_text())
    assert document["audio"]["path"] == str(other.absolute())


def test_inputs_inside_out_are_refused(tmp_path):
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "b").mkdir()
    inside = run(out / "a", out / "b", "-o", out)
    assert inside.returncode == 2
    assert inside.stderr == (
        f"segmenter: input {out / 'a'} is inside the output folder {out}: a run would segment"
        " its own outputs; give an OUT outside the inputs (an OUT inside an input is fine)\n"
    )
    itself = run(out, "-o", out)
    assert itself.returncode == 2 and itself.stderr.count("\n") == 1
    assert f"input {out} is the output folder itself {out}" in itself.stderr
    link = tmp_path / "link"
    link.symlink_to(out / "a")
    assert run(link, "-o", out).returncode == 2  # resolved


def test_start_up_clean_up_removes_only_the_temporary_names_it_made(tmp_path):
    src = twenty_seconds(tmp_path / "in", "talk.wav")
    out = tmp_path / "out"
    assert run(src, "-o", out, "--jobs", "1").returncode == 0
    users = [out / ".tmp-notes.txt", out / ".tmp-keep" / "mine.txt", out / ".tmp-1-2.json.bak"]
    for path in users:
        path.parent.mkdir(exist_ok=True)
        path.write_text("mine\n")
    leftovers = [out / ".tmp-4242-7.json", out / ".tmp-4242-abcd_123", out / ".tmp-0k1ju2_x"]
    leftovers[0].write_text("{")
    for folder in leftovers[1:]:
        folder.mkdir()
        (folder / "0000_0.000-1.000.wav").write_bytes(b"")
    assert run(src, "-o", out, "--jobs", "1").returncode == 0
    assert all(path.exists() for path in users)
    assert not any(path.exists() for path in leftovers)


def test_symlinks_that_lead_nowhere_are_named_as_such(tmp_path):
    src = twenty_seconds(tmp_path / "in", "good.wav")
    (src / "dangling.wav").symlink_to("moved_away.wav")
    (src / "loop.wav").symlink_to("loop.wav")
    out = tmp_path / "out"
    done = run(src, "-o", out, "--jobs", "1")
    assert done.returncode == 1, done.stderr
    assert summary_failures(done.stdout) == {
        "dangling.wav": "a symlink to moved_away.wav, which does not exist",
        "loop.wav": "a symlink loop (it leads back to itself)",
    }
    dangling_out = tmp_path / "out_link"
    dangling_out.symlink_to(tmp_path / "unmounted" / "segments")
    refused = run(src, "-o", dangling_out)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"segmenter: {dangling_out}: a symlink to {tmp_path / 'unmounted' / 'segments'}, which"
        " does not exist: make that folder, or give another OUT\n"
    )


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(inputs, OUT) of a finished batch of one recording."""
    root = tmp_path_factory.mktemp("finished")
    src = twenty_seconds(root / "in", "talk.wav")
    out = root / "out"
    assert run(src, "-o", out, "--jobs", "1").returncode == 0
    return src, out


def copy_of(finished: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    src, out = finished
    shutil.copytree(out, tmp_path / "out")
    return src, tmp_path / "out"


def every_command(src: Path, out: Path, *args: str) -> dict[str, subprocess.CompletedProcess]:
    """`run`, `status` and `report` of OUT."""
    commands = {
        "run": ["run", str(src), "-o", str(out), "--settle-seconds", "0", "--quiet", *args],
        "status": ["status", str(out)],
        "report": ["report", str(out)],
    }
    return {
        name: subprocess.run([SEGMENTER, *cmd], capture_output=True, text=True, timeout=300)
        for name, cmd in commands.items()
    }


def test_a_newer_manifest_is_refused_in_one_line_naming_its_version(finished, tmp_path):
    src, out = copy_of(finished, tmp_path)
    with sqlite3.connect(out / "manifest.sqlite") as db:
        db.execute("PRAGMA user_version = 9")
    db.close()
    before = (out / "manifest.sqlite").read_bytes()
    for name, done in every_command(src, out).items():
        assert done.returncode == 2, (name, done.stderr)
        assert done.stderr == (
            f"segmenter: {out / 'manifest.sqlite'} has schema version 9, newer than this"
            " segmenter's (2): run the segmenter that wrote it (or a newer one), or another OUT\n"
        ), name
    assert (out / "manifest.sqlite").read_bytes() == before  # not written to


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            "ALTER TABLE files RENAME COLUMN fingerprint TO fp",
            "its files table lacks the column(s) fingerprint",
        ),
        ("ALTER TABLE files DROP COLUMN outputs", "its files table lacks the column(s) outputs"),
        ("not null", "its files table has column(s) owner this segmenter cannot fill"),
        ("DROP TABLE configs", "it lacks its configs table"),  # version 2's
    ],
    ids=["renamed column", "dropped column", "extra NOT NULL column", "dropped table"],
)
def test_a_reshaped_manifest_is_one_line_in_every_command(finished, tmp_path, change, reason):
    src, out = copy_of(finished, tmp_path)
    with sqlite3.connect(out / "manifest.sqlite") as db:
        if change == "not null":  # SQLite adds such a column only to a new table
            table = db.execute("SELECT sql FROM sqlite_master WHERE name = 'files'").fetchone()[0]
            db.execute("ALTER TABLE files RENAME TO old")
            db.execute(table.replace("(", "(owner TEXT NOT NULL, ", 1))
            db.execute("INSERT INTO files SELECT 'me', * FROM old")
            db.execute("DROP TABLE old")
        else:
            db.execute(change)
    db.close()
    for name, done in every_command(src, out).items():
        assert done.returncode == 5, (name, done.stderr)
        assert done.stderr.startswith(f"segmenter: {out / 'manifest.sqlite'} is damaged ({reason}")
        assert done.stderr.count("\n") == 1 and "--rebuild-manifest" in done.stderr
    rebuilt = run(src, "-o", out, "--rebuild-manifest")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "0 done, 1 already done" in rebuilt.stdout


def test_an_unversioned_manifest_is_brought_to_the_current_version(finished, tmp_path):
    src, out = copy_of(finished, tmp_path)
    with sqlite3.connect(out / "manifest.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        db.execute("DROP TABLE configs")  # as every manifest before versions: no configs,
        db.execute("PRAGMA user_version = 0")  # no version
    db.close()
    again = run(src, "-o", out)
    assert again.returncode == 0 and "0 done, 1 already done" in again.stdout
    with sqlite3.connect(out / "manifest.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM configs").fetchone()[0] == 1
    db.close()


def as_version_1(out: Path, relative_to: Path) -> None:
    """Make OUT's manifest what a version 1 segmenter left: no configs table, input paths as
    they were given (here relative to `relative_to`), user_version 1."""
    with sqlite3.connect(out / "manifest.sqlite") as db:
        db.execute("DROP TABLE configs")
        for rel, path in db.execute("SELECT rel, path FROM files").fetchall():
            relative = os.path.relpath(path, relative_to)
            db.execute("UPDATE files SET path = ? WHERE rel = ?", (relative, rel))
        db.execute("PRAGMA user_version = 1")
    db.close()


def test_a_version_1_manifest_is_upgraded_and_its_finished_files_stay_done(tmp_path):
    """Version 2 (the configs table, the status gone, absolute input paths): a version 1
    manifest is upgraded as a run opens it; its finished files stay done (not redone, no
    settings question), and its relative paths, taken from the folder the run starts in, tell
    a recording deleted before the upgrade as gone. `status` reads it before, unwritten."""
    src = twenty_seconds(tmp_path / "in", "talk.wav")
    shutil.copy(src / "talk.wav", src / "old.wav")
    out = tmp_path / "out"
    command = [SEGMENTER, "run", "in", "-o", "out", "--quiet", "--settle-seconds", "0"]
    command += ["--jobs", "1"]

    def run_in_tmp() -> subprocess.CompletedProcess:  # relative paths: from tmp_path
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)

    first = run_in_tmp()  # the batch, as version 2 writes it
    assert first.returncode == 0, first.stderr
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    as_version_1(out, tmp_path)
    (src / "old.wav").unlink()
    before = (out / "manifest.sqlite").read_bytes()
    status = subprocess.run([SEGMENTER, "status", str(out)], capture_output=True, text=True)
    assert status.returncode == 0 and status.stdout.startswith("2 done, 0 failed"), status
    assert (out / "manifest.sqlite").read_bytes() == before  # read as it is

    again = run_in_tmp()  # the same run on the version 1 manifest: the upgrade
    assert again.returncode == 0, again.stderr
    assert "files: 0 done, 1 already done, 0 failed, 1 gone" in again.stdout
    assert "settings differ" not in again.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")} == written  # not redone
    with sqlite3.connect(out / "manifest.sqlite") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert db.execute("SELECT COUNT(*) FROM configs").fetchone()[0] == 1
        found = dict(db.execute("SELECT rel, path FROM files"))
    db.close()
    assert found == {"talk.wav": str(src / "talk.wav"), "old.wav": str(src / "old.wav")}
    assert {rel: row["status"] for rel, row in rows(out).items()} == {
        "talk.wav": "done",
        "old.wav": "gone",
    }


def test_a_read_only_manifest_is_one_line_and_status_still_reads_it(finished, tmp_path):
    src, out = copy_of(finished, tmp_path)
    manifest = out / "manifest.sqlite"
    cmd = [SEGMENTER, "run", str(src), "-o", str(out), "--settle-seconds", "0", "--jobs", "1"]
    refused = readonly(manifest, *cmd)
    assert refused.returncode == 6, refused.stderr
    assert refused.stderr.startswith(
        f"segmenter: {manifest} cannot be written (attempt to write a readonly database):"
    )
    assert refused.stderr.count("\n") == 1
    status = readonly(manifest, SEGMENTER, "status", str(out))
    assert status.returncode == 0 and status.stdout.startswith("1 done, 0 failed")


@pytest.mark.slow
def test_an_error_that_is_no_files_own_stops_the_run_with_its_own_code(tmp_path):
    """OUT stops taking new files mid-run (made immutable: not even root may add an entry):
    one line and exit 6 (not 2, a usage error); the rerun on a writable OUT goes on."""
    src = tmp_path / "in"
    for i in range(4):
        minutes(src, f"f{i}.wav", 5, offset=i)
    out = tmp_path / "out"
    batch = start(src, out, "--jobs", "1")
    wait_for(lambda: any(out.glob("*.json")), batch)
    frozen = subprocess.run(["chattr", "+i", str(out)], capture_output=True, text=True)
    if frozen.returncode != 0:
        batch.kill()
        batch.communicate()
        pytest.skip(f"chattr +i does not work here: {frozen.stderr.strip()}")
    try:
        stdout, stderr = batch.communicate(timeout=300)
    finally:
        subprocess.run(["chattr", "-i", str(out)], check=True)
    assert batch.returncode == 6, (stdout, stderr)
    assert stderr.startswith("segmenter: the run stopped: cannot write ")
    assert stderr.count("\n") == 1
    assert "Operation not permitted" in stderr
    assert "failed" not in set(statuses(out).values())  # no file took the blame
    again = run(src, "-o", out, "--jobs", "1")
    assert again.returncode == 0, again.stderr
    assert set(statuses(out).values()) == {"done"}
