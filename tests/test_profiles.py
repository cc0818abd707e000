"""Profiles through every door: the API (load and per call), streaming, `segment`, `run` and its
job TOML, the manifest's config hash (their quality: test_quality.py)."""

import json

import soundfile as sf

from segmenter.profiles import PreciseOptions
from segmenter.vad import Vad

from .conftest import GOLDEN
from .test_batch import rows, twenty_seconds
from .test_batch import run as run_batch
from .test_cli import run as run_cli

CLIP = GOLDEN / "dev00_clean.flac"


def assert_separate(found):
    """Segments in order, none touching or overlapping its neighbour."""
    for a, b in zip(found, found[1:], strict=False):
        assert b.start - a.end >= 10, (a, b)


def test_precise_per_call_and_at_load_agree(vad_int8):
    default = vad_int8.segments(CLIP)
    precise = vad_int8.segments(CLIP, profile="precise")
    assert precise != default and len(precise) >= len(default)
    assert_separate(precise)
    assert vad_int8.segments(CLIP, profile="funasr") == default  # the default is funasr
    loaded = Vad.load(profile="precise", pad_ms=0, runtime="torch")  # as vad_int8
    assert loaded.settings() == PreciseOptions(pad_ms=0)
    assert loaded.segments(CLIP) == vad_int8.segments(CLIP, profile="precise", pad_ms=0)
    assert loaded.segments(CLIP, profile="funasr") == default


def test_precise_streams_block_size_invariant(vad_int8):
    samples = sf.read(CLIP, dtype="float32")[0]
    whole = vad_int8.segments(samples, profile="precise")
    for block in (160, 1234, 16000, 99991):
        stream = vad_int8.stream(profile="precise")
        found = []
        for at in range(0, len(samples), block):
            found += stream.feed(samples[at : at + block])
        assert found + stream.finish() == whole, block
    assert len(whole) > 3


def test_document_names_the_profile_and_its_settings(vad_int8):
    document = vad_int8.document(CLIP, profile="precise", min_silence_ms=300)
    assert document["profile"] == "precise"
    assert document["options"] == PreciseOptions(min_silence_ms=300).to_dict()
    assert vad_int8.document(CLIP)["profile"] == "funasr"


def test_segment_command_with_precise_settings():
    done = run_cli("segment", str(CLIP), "--profile", "precise", "--precise-pad-ms", "0")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["profile"] == "precise" and document["options"]["pad_ms"] == 0
    starts = [s["start"] for s in document["segments"]]
    ends = [s["end"] for s in document["segments"]]
    assert all(b - a >= 0.01 for a, b in zip(ends, starts[1:], strict=False))


def test_edge_trimming_on_the_command_line_keeps_segments_inside_the_untrimmed_ones():
    def spans(*settings):
        done = run_cli("segment", str(CLIP), "--profile", "precise", *settings)
        assert done.returncode == 0, done.stderr
        document = json.loads(done.stdout)
        return document["options"], [(s["start"], s["end"]) for s in document["segments"]]

    options, trimmed = spans("--precise-trim-db", "3")
    assert options["trim_db"] == 3 and options["trim_end_ms"] == 200
    _, untrimmed = spans("--precise-trim-start-ms", "0", "--precise-trim-end-ms", "0")
    assert 0 < len(trimmed) <= len(untrimmed)  # a segment with no sound at all goes
    assert all(any(a <= c < d <= b for a, b in untrimmed) for c, d in trimmed)
    assert sum(b - a for a, b in untrimmed) - sum(d - c for c, d in trimmed) > 0.5  # seconds


def test_precise_settings_without_the_profile_are_a_usage_error():
    done = run_cli("segment", str(CLIP), "--precise-pad-ms", "0")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--precise-pad-ms" in done.stderr and "--profile precise" in done.stderr
    done = run_cli("segment", str(CLIP), "--profile", "precise", "--max-end-silence-time", "300")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--max-end-silence-time" in done.stderr and "funasr profile" in done.stderr
    done = run_cli("segment", str(CLIP), "--profile", "precise", "--precise-enter-threshold", "5")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--precise-enter-threshold" in done.stderr and "from 0 to 1" in done.stderr


def test_job_profile_and_a_profile_change_redoes_files(tmp_path):
    src = twenty_seconds(tmp_path / "in", "a.wav")
    out = tmp_path / "out"
    assert run_batch(src, "-o", out).returncode == 0
    first = json.loads((out / "a.wav.json").read_text())
    job = tmp_path / "job.toml"
    redo = "redo_changed = true\n"  # a job that says yes to redoing (batch/changed.py)
    precise = 'profile = "precise"\nprecise_pad_ms = 50\n'
    job.write_text(f'inputs = ["in"]\nout = "out"\n{redo}{precise}')
    assert run_batch("--job", job).returncode == 0
    assert rows(out)["a.wav"]["attempts"] == 2  # the profile is in the config hash
    second = json.loads((out / "a.wav.json").read_text())
    assert first["profile"] == "funasr" and second["profile"] == "precise"
    assert second["options"]["pad_ms"] == 50
    assert run_batch("--job", job).returncode == 0
    assert rows(out)["a.wav"]["attempts"] == 2  # same settings: nothing redone
    assert run_batch("--job", job, "--precise-pad-ms", "20").returncode == 0
    assert rows(out)["a.wav"]["attempts"] == 3  # a precise setting is in the hash too
    job.write_text(job.read_text() + "precise_trim_end_ms = 0\n")
    assert run_batch("--job", job).returncode == 0
    assert rows(out)["a.wav"]["attempts"] == 4  # and the edge trimming's
    assert json.loads((out / "a.wav.json").read_text())["options"]["trim_end_ms"] == 0
    job.write_text('inputs = ["in"]\nout = "out"\nprofile = "exact"\n')
    done = run_batch("--job", job)
    assert done.returncode == 2 and "profile must be one of funasr, precise" in done.stderr


def test_funasr_settings_by_their_names_on_the_command_line_and_in_jobs(vad_int8, tmp_path):
    settings = ("--lookahead-time-end-point", "400", "--do-extend", "0")
    done = run_cli("segment", str(CLIP), *settings, "--runtime", "torch")  # as vad_int8
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    expected = vad_int8.segments(CLIP, lookahead_time_end_point=400, do_extend=0)
    assert [(s["start"], s["end"]) for s in document["segments"]] == [
        (s.start / 1000, s.end / 1000) for s in expected
    ]
    assert expected != vad_int8.segments(CLIP)  # the settings did something
    src = twenty_seconds(tmp_path / "in", "a.wav")
    out = tmp_path / "out"
    assert run_batch(src, "-o", out).returncode == 0
    job = tmp_path / "job.toml"
    job.write_text('inputs = ["in"]\nout = "out"\nredo_changed = true\nspeech_noise_thres = 0.8\n')
    assert run_batch("--job", job).returncode == 0
    assert rows(out)["a.wav"]["attempts"] == 2  # in the config hash
    redone = json.loads((out / "a.wav.json").read_text())["options"]
    assert redone["speech_noise_thres"] == 0.8 and redone["dynamic_silence"] is False
