"""Discovery: what a batch takes from a tree, in a fixed order, and what it leaves for later."""

import os
import threading
import time

import pytest

from segmenter.batch.discovery import InputError, discover
from segmenter.batch.manifest import fingerprint
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


def test_exclude_glob_with_a_leading_star_matches_at_the_top_too(tmp_path):
    for name in ["tmp/a.wav", "2024/tmp/b.wav", "2024/c.wav"]:
        touch(tmp_path / name)
    found = discover([tmp_path], exclude=["*/tmp/*"])
    assert [s.rel for s in found.sources] == ["2024/c.wav"]


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


def test_one_root_keeps_its_layout_several_roots_keep_their_names(tmp_path):
    for year in ("2024", "2025"):
        touch(tmp_path / "dup" / year / "room1" / "meeting.wav")
    assert [s.rel for s in discover([tmp_path / "dup" / "2024"]).sources] == ["room1/meeting.wav"]
    found = discover([tmp_path / "dup" / "2024", tmp_path / "dup" / "2025"])
    assert [s.rel for s in found.sources] == [
        "2024/room1/meeting.wav",
        "2025/room1/meeting.wav",
    ]
    assert found.sources[0].path == tmp_path / "dup" / "2024" / "room1" / "meeting.wav"


def test_two_inputs_for_one_output_name_are_refused(tmp_path):
    touch(tmp_path / "a" / "x.wav")
    touch(tmp_path / "b" / "x.wav")
    with pytest.raises(InputError, match="would both be written to OUT/x.wav"):
        discover([tmp_path / "a" / "x.wav", tmp_path / "b" / "x.wav"])
    touch(tmp_path / "one" / "2024" / "x.wav")
    touch(tmp_path / "two" / "2024" / "x.wav")
    with pytest.raises(InputError, match="OUT/2024/x.wav"):
        discover([tmp_path / "one" / "2024", tmp_path / "two" / "2024"])
    same = discover([tmp_path / "a", tmp_path / "a" / ".." / "a"])  # one folder, twice
    assert [s.rel for s in same.sources] == ["a/x.wav"]


def test_missing_input_is_an_input_error(tmp_path):
    touch(tmp_path / "in" / "a.wav")
    with pytest.raises(InputError, match="input not found: .*nowhere"):
        discover([tmp_path / "in", tmp_path / "nowhere"])


def test_output_folder_inside_an_input_is_not_walked(tmp_path):
    touch(tmp_path / "in" / "a.wav")
    touch(tmp_path / "in" / "out" / "a.wav.clips" / "0000_0.000-1.000.wav")
    found = discover([tmp_path / "in"], out=tmp_path / "in" / "out")
    assert [s.rel for s in found.sources] == ["a.wav"]
    os.symlink(tmp_path / "in" / "out", tmp_path / "in" / "link")  # nor under another name
    found = discover([tmp_path / "in"], out=tmp_path / "in" / "out")
    assert [s.rel for s in found.sources] == ["a.wav"]


def test_fifo_is_found_but_never_opened_for_its_fingerprint(tmp_path):
    fifo = tmp_path / "stuck.wav"
    os.mkfifo(fifo)
    os.utime(fifo, (time.time() - 60, time.time() - 60))
    (source,) = discover([tmp_path]).sources
    outcome = []
    probe = threading.Thread(target=lambda: outcome.append(_fingerprint_error(source)))
    probe.start()
    probe.join(10)
    if probe.is_alive():  # blocked in open(): a writer releases it, then the test fails
        with open(fifo, "wb"):
            pass
        probe.join()
    assert outcome == ["not a regular file"]


def _fingerprint_error(source) -> str:
    try:
        fingerprint(source.path, source.size)
    except OSError as exc:
        return exc.strerror
    return "opened"
