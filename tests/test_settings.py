"""Settings are checked in one place: bad numbers, job files and old option names are usage errors
(exit 2, one line naming the option and what it accepts) before any file is touched."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from segmenter.batch.runner import BatchSettings
from segmenter.chunking import ChunkOptions
from segmenter.profiles.funasr_options import VadOptions
from segmenter.settings import DECISION_KEYS, JOB_RULES, SettingError

SEGMENTER = str(Path(sys.executable).parent / "segmenter")


def segmenter(*args, timeout=60):
    return subprocess.run(
        [SEGMENTER, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def refused(done, *words):
    """Exit 2 with one line on stderr that holds every word."""
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert all(w in done.stderr for w in words), done.stderr
    return True


RUN = ["run", "in", "-o", "out"]
BAD = [
    (["segment", "x.wav", "--max-segment-s", "-5"], "--max-segment-s", ">= 1"),
    (["segment", "x.wav", "--max-segment-s", "0.01"], "--max-segment-s", ">= 1"),
    (["segment", "x.wav", "--pad-ms", "-500"], "--pad-ms", "from 0 to 60000"),
    (["segment", "x.wav", "--merge-for-asr-s", "0"], "--merge-for-asr-s", ">= 1"),
    (["segment", "x.wav", "--max-merge-gap-s", "-1"], "--max-merge-gap-s", ">= 0"),
    (["segment", "x.wav", "--channel", "-1"], "--channel", ">= 0"),
    (["segment", "x.wav", "--max-single-segment-time", "30"], "--max-single-segment-time", "1000"),
    (["segment", "x.wav", "--max-end-silence-time", "0.5"], "--max-end-silence-time", "100"),
    ([*RUN, "--jobs", "0"], "--jobs", ">= 1"),
    ([*RUN, "-j", "two"], "--jobs", "whole number"),
    ([*RUN, "--clip-rate", "16"], "--clip-rate", "from 8000 to 192000"),
    ([*RUN, "--clip-pad-ms", "-1"], "--clip-pad-ms", "from 0"),
    ([*RUN, "--settle-seconds", "-1"], "--settle-seconds", ">= 0"),
    ([*RUN, "--max-segment-s", "nan"], "--max-segment-s", ">= 1"),
    (["segment", "x.wav", "--speech-noise-thres", "1.5"], "--speech-noise-thres", "from -1 to 1"),
    ([*RUN, "--window-size-ms", "5"], "--window-size-ms", "from 10 to 10000"),
    (["serve", "--port", "0"], "--port", "from 1 to 65535"),
    (["serve", "--max-upload-mb", "0"], "--max-upload-mb", "> 0"),
    (["bench", "--seconds", "-3"], "--seconds", "from 1"),
    (["quantize", "-o", "q", "--prune", "1.5"], "--prune", "from 0 to 0.99"),
    (["eval", "r", "o", "--collar", "-1"], "--collar", "from 0"),
]


@pytest.mark.parametrize("args,option,accepted", BAD, ids=lambda a: " ".join(a) if a else "")
def test_bad_number_is_refused_naming_option_and_range(args, option, accepted, tmp_path):
    assert refused(segmenter(*args), option, accepted)


def test_padding_that_leaves_no_room_is_refused():
    args = ["segment", "x.wav", "--merge-for-asr-s", "1", "--pad-ms", "400"]
    assert refused(segmenter(*args), "--pad-ms", "1 s")


@pytest.mark.parametrize(
    "old,new",
    [
        ("--max-segment", "--max-single-segment-time"),
        ("--max-end-silence", "--max-end-silence-time"),
    ],
)
def test_old_option_names_are_refused_with_the_new_one(old, new):
    assert refused(segmenter("segment", "x.wav", old, "30000"), old, new)
    assert refused(segmenter(*RUN, old, "800"), new)
    assert refused(segmenter("serve", old, "800"), new)


def test_option_prefixes_are_not_taken_silently():
    """`--max-seg 30` must not become --max-segment-s (argparse's abbreviations)."""
    assert refused(segmenter("segment", "x.wav", "--max-seg", "30"), "--max-seg")


@pytest.mark.parametrize(
    "text,words",
    [
        ('inputs = "/srv/in"\nout = "o"\n', ["inputs", "a list of strings", "'/srv/in'"]),
        ('inputs = ["in"]\nout = "o"\njobs = "two"\n', ["jobs", "whole number >= 1"]),
        ('inputs = ["in"]\nout = "o"\njobs = 0\n', ["jobs", ">= 1"]),
        ('inputs = ["in"]\nout = 3\n', ["out", "a string"]),
        ('inputs = ["in"]\nout = "o"\nclips = "yes"\n', ["clips", "true or false"]),
        ('inputs = ["in"]\nout = "o"\nprecision = "fp16"\n', ["precision", "int8, fp32"]),
        ('inputs = ["in"]\nout = "o"\nmax_segment_s = 0.01\n', ["max_segment_s", ">= 1"]),
        ('inputs = ["in"]\nout = "o"\nspeed = 3\n', ["unknown setting 'speed'"]),
        ('inputs = ["in"]\nout = "o"\nmax_segment = 30000\n', ["max_single_segment_time"]),
        ('inputs = ["in"]\nout = "o"\nmax_end_silence = 800\n', ["max_end_silence_time"]),
        ('inputs = ["in"]\nout = "o"\nmax_single_segment_time = 30\n', ["1000"]),
        ('inputs = ["in"]\nout = "o"\njobs 2\n', ["not valid TOML", "line 3"]),
    ],
)
def test_bad_job_file_is_refused_naming_file_and_setting(tmp_path, text, words):
    job = tmp_path / "nightly.toml"
    job.write_text(text)
    done = segmenter("run", "--job", job, timeout=30)
    assert refused(done, str(job), *words)
    assert not (tmp_path / "o").exists()  # nothing touched


def test_library_checks_the_same_values():
    with pytest.raises(SettingError, match="max_segment_s must be a number >= 1"):
        ChunkOptions(max_segment_s=-5)
    with pytest.raises(ValueError, match="pad_ms"):
        ChunkOptions(pad_ms=-500)
    with pytest.raises(ValueError, match="merge_for_asr_s"):
        ChunkOptions(merge_for_asr_s=0.01)
    with pytest.raises(ValueError, match="max_single_segment_time must be a whole number from"):
        VadOptions().with_overrides(max_single_segment_time=30)
    assert ChunkOptions(merge_for_asr_s=30, pad_ms=200).limit_ms == 30000
    with pytest.raises(ValueError, match="jobs must be a whole number >= 1, got 0"):
        BatchSettings(inputs=["in"], out=Path("out"), jobs=0)
    with pytest.raises(ValueError, match="clip_rate must be a whole number from 8000 to 192000"):
        BatchSettings(inputs=["in"], out=Path("out"), clip_rate=16)


def test_every_funasr_setting_has_an_option_a_job_key_and_a_rule():
    constants = {"sample_rate", "sil_pdf_ids", "frame_in_ms", "frame_length_ms", "silence_schedule"}
    tunable = {f.name for f in dataclasses.fields(VadOptions)} - constants
    assert tunable <= set(DECISION_KEYS) and tunable <= set(JOB_RULES)
    helps = {cmd: segmenter(cmd, "--help").stdout for cmd in ("segment", "run", "serve")}
    for name in tunable:
        assert all("--" + name.replace("_", "-") in h for h in helps.values()), name
    with pytest.raises(SettingError, match="speech_noise_thres must be a number from -1 to 1"):
        VadOptions().with_overrides(speech_noise_thres=3)


def test_funasr_settings_with_another_profile_are_refused():
    done = segmenter("segment", "x.wav", "--profile", "precise", "--speech-noise-thres", "0.5")
    assert refused(done, "--speech-noise-thres", "funasr profile")
