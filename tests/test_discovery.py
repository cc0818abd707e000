"""Discovery: what a batch takes from a tree, in a fixed order, and what it leaves for later."""

import os
import time

from segmenter.discovery import discover
from segmenter.writers import output_base


def touch(path, age_s=60):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    os.utime(path, (time.time() - age_s, time.time() - age_s))


def test_walk_takes_audio_in_order_and_skips_hidden(tmp_path):
    for name in ["b/z.MP3", "a/y.wav", "a/x.Flac", "notes.txt", ".cache/h.wav", "a/.h.wav"]:
        touch(tmp_path / name)
    found = discover([tmp_path])
    assert [s.rel for s in found.sources] == ["a/x.Flac", "a/y.wav", "b/z.MP3"]


def test_symlink_loops_are_survived(tmp_path):
    touch(tmp_path / "in" / "sub" / "a.wav")
    os.symlink(tmp_path / "in", tmp_path / "in" / "sub" / "loop")
    os.symlink(tmp_path / "in" / "sub", tmp_path / "in" / "again")
    found = discover([tmp_path / "in"])
    assert [s.rel for s in found.sources] in (["again/a.wav"], ["sub/a.wav"])


def test_files_still_changing_are_left_for_later(tmp_path):
    touch(tmp_path / "old.wav")
    touch(tmp_path / "uploading.wav", age_s=0)
    found = discover([tmp_path], settle_seconds=5)
    assert [s.rel for s in found.sources] == ["old.wav"]
    assert found.unsettled == [tmp_path / "uploading.wav"]


def test_include_and_exclude_globs(tmp_path):
    for name in ["2024/a.wav", "2024/b.mp3", "2025/c.wav", "tmp/d.wav"]:
        touch(tmp_path / name)
    found = discover([tmp_path], include=["*.wav"], exclude=["tmp/*"])
    assert [s.rel for s in found.sources] == ["2024/a.wav", "2025/c.wav"]


def test_named_file_is_taken_whatever_its_extension(tmp_path):
    touch(tmp_path / "recording.dat")
    assert [s.rel for s in discover([tmp_path / "recording.dat"]).sources] == ["recording.dat"]


def test_output_names_never_leave_out(tmp_path):
    assert output_base(tmp_path, "a/b/x.wav") == tmp_path / "a" / "b" / "x.wav"
    for bad in ("../x.wav", "/etc/x.wav", "a/../../x.wav", ""):
        try:
            output_base(tmp_path, bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
