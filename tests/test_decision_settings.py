"""One typed decision (engine, profile, that profile's settings): `DecisionSettings`, built by
`settings.decision_settings` from the command line or a job file, taken by segment, run, serve and
`Vad.load(settings=...)`; the batch config hash it feeds is pinned; `merge_for_asr_s` is the one
name of merge-for-ASR, its old spellings still taken (issue 27)."""

import argparse
import importlib.metadata
import pickle
from pathlib import Path

import pytest

from segmenter.batch.manifest import config_hash
from segmenter.batch.settings import BatchSettings
from segmenter.cli import build_parser
from segmenter.cli_commands import batch_settings
from segmenter.errors import UsageError
from segmenter.profiles import FunasrOptions, PreciseOptions
from segmenter.profiles.base import ProfileError
from segmenter.profiles.precise_options import precise_defaults
from segmenter.settings import (
    DecisionSettings,
    Overrides,
    SettingError,
    decision_settings,
    read_job,
)
from segmenter.vad import Vad

from .test_settings import refused, segmenter

# The config hash of each setting combination, computed on main 37ee494 (before DecisionSettings
# and the merge_for_asr_s name) by this file's CASES through the command line. They must never
# change: a batch's manifest keeps them, and a changed hash makes every existing OUT say
# "settings changed" after an upgrade. (silero-vad's version is part of the hash of the other
# engines: main read the installed package's, 6.2.3 in its venv; now the shipped graph's,
# engines.silero.UPSTREAM_VERSION, 6.2.3. A new shipped graph changes those hashes, rightly.)
MAIN_37EE494_HASHES = {
    "default": "479b85aaa2f58a2b",
    "silero": "7b68ce3cbc14bf49",
    "fusion": "04f2e4071757db2f",
    "precise": "80eb19c085b4ba84",
    "funasr_end_silence": "988b4a8a21d01b4c",
    "funasr_many": "11d398ba22d1f952",
    "silero_tuned": "9afe481805e31074",
    "fusion_precise_profile": "032ca644c86623a1",
    "merge_for_asr": "4029a6c3ed49dffe",
    "chunks_all": "21c34f7f31e80324",
    "torch_fp32_clips": "6b0fc091a217d76b",
}
# A job file's whole number of seconds (`merge_for_asr = 30`) is an int where the command line
# gives a float (30.0), and main 37ee494 hashed the two apart; kept so (a batch run from a job file
# keeps its hash too). The job files of the other cases hash as the command line does.
MAIN_37EE494_JOB_HASHES = {
    **MAIN_37EE494_HASHES,
    "merge_for_asr": "9270c24f784cc1e6",
    "chunks_all": "64370755db6ed860",
}
PRECISE = ["--profile", "precise", "--precise-pad-ms", "60", "--precise-enter-threshold", "0.6"]
FUNASR_MANY = ["--speech-noise-thres", "0.7", "--no-dynamic-silence"]
FUNASR_MANY += ["--max-single-segment-time", "30000", "--lookahead-time-end-point", "300"]
SILERO_TUNED = ["--engine", "silero", "--precise-leave-threshold", "0.25"]
SILERO_TUNED += ["--max-single-segment-time", "20000"]
CHUNKS_ALL = ["--max-segment-s", "20", "--merge-for-asr", "30", "--max-merge-gap-s", "2"]
CHUNKS_ALL += ["--pad-ms", "100", "--formats", "json,whisper"]
CASES = {
    "default": [],
    "silero": ["--engine", "silero"],
    "fusion": ["--engine", "fusion"],
    "precise": PRECISE,
    "funasr_end_silence": ["--max-end-silence-time", "500"],
    "funasr_many": FUNASR_MANY,
    "silero_tuned": SILERO_TUNED,
    "fusion_precise_profile": ["--engine", "fusion", "--profile", "precise"]
    + ["--precise-bridge-ms", "500"],
    "merge_for_asr": ["--merge-for-asr", "30", "--pad-ms", "200"],
    "chunks_all": CHUNKS_ALL,
    "torch_fp32_clips": ["--runtime", "torch", "--precision", "fp32", "--clips"]
    + ["--clip-pad-ms", "100", "--channel", "0"],
}
# the same settings as job-file lines (the old key merge_for_asr among them)
JOBS = {
    "default": "",
    "silero": 'engine = "silero"',
    "fusion": 'engine = "fusion"',
    "precise": 'profile = "precise"\nprecise_pad_ms = 60\nprecise_enter_threshold = 0.6',
    "funasr_end_silence": "max_end_silence_time = 500",
    "funasr_many": "speech_noise_thres = 0.7\ndynamic_silence = false\n"
    "max_single_segment_time = 30000\nlookahead_time_end_point = 300",
    "silero_tuned": 'engine = "silero"\nprecise_leave_threshold = 0.25\n'
    "max_single_segment_time = 20000",
    "fusion_precise_profile": 'engine = "fusion"\nprofile = "precise"\nprecise_bridge_ms = 500',
    "merge_for_asr": "merge_for_asr = 30\npad_ms = 200",
    "chunks_all": "max_segment_s = 20\nmerge_for_asr_s = 30\nmax_merge_gap_s = 2\npad_ms = 100\n"
    'formats = ["json", "whisper"]',
    "torch_fp32_clips": 'runtime = "torch"\nprecision = "fp32"\nclips = true\nclip_pad_ms = 100\n'
    "channel = 0",
}


@pytest.fixture
def no_silero_package(monkeypatch):
    """An install without the silero-vad package, as the plain install is (the graph ships
    inside segmenter): its version cannot be read."""
    real = importlib.metadata.version

    def version(name: str) -> str:
        if name == "silero-vad":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)


def _run_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", "in", "-o", "out", *argv])


def _job(tmp_path: Path, body: str) -> argparse.Namespace:
    job = tmp_path / "job.toml"
    job.write_text(f'inputs = ["in"]\nout = "out"\n{body}\n')
    return build_parser().parse_args(["run", "--job", str(job)])


@pytest.mark.parametrize("case", CASES)
def test_the_config_hash_of_every_setting_is_main_37ee494s(case, tmp_path, no_silero_package):
    from_cli = batch_settings(_run_args(*CASES[case]))
    assert config_hash(from_cli.result_config()) == MAIN_37EE494_HASHES[case]
    from_job = batch_settings(_job(tmp_path, JOBS[case]))
    assert from_job.decision == from_cli.decision and from_job.chunking == from_cli.chunking
    assert config_hash(from_job.result_config()) == MAIN_37EE494_JOB_HASHES[case]


def test_the_library_form_gives_the_same_hash(tmp_path, no_silero_package):
    tuned = DecisionSettings("silero", overrides={"leave_threshold": 0.25})
    tuned = DecisionSettings(
        "silero", overrides={**tuned.overrides, "max_single_segment_time": 20000}
    )
    settings = BatchSettings(inputs=["in"], out=tmp_path, decision=tuned)
    assert config_hash(settings.result_config()) == MAIN_37EE494_HASHES["silero_tuned"]


DECIDING = [c for c in CASES if c not in ("merge_for_asr", "chunks_all", "torch_fp32_clips")]


@pytest.mark.parametrize("case", DECIDING)
def test_each_command_line_shape_gives_the_job_files_decision(case, tmp_path):
    """segment, run and serve parse the same options into the same object a job file gives."""
    expected = decision_settings(read_job(_job_file(tmp_path, JOBS[case])))
    assert expected == DecisionSettings(**EXPECTED.get(case, {}))
    parser = build_parser()
    for command in (["segment", "x.wav"], ["run", "in", "-o", "out"], ["serve"]):
        args = parser.parse_args([*command, *CASES[case]])
        assert decision_settings(vars(args)) == expected, command
    assert batch_settings(_run_args(*CASES[case])).decision == expected


EXPECTED = {  # the objects, written out
    "silero": {"engine": "silero", "profile": "precise"},
    "fusion": {"engine": "fusion"},
    "precise": {"profile": "precise", "overrides": {"pad_ms": 60, "enter_threshold": 0.6}},
    "funasr_end_silence": {"overrides": {"max_end_silence_time": 500}},
    "funasr_many": {
        "profile": "funasr",
        "overrides": {
            "speech_noise_thres": 0.7,
            "dynamic_silence": False,
            "max_single_segment_time": 30000,
            "lookahead_time_end_point": 300,
        },
    },
    "silero_tuned": {
        "engine": "silero",
        "overrides": {"leave_threshold": 0.25, "max_single_segment_time": 20000},
    },
    "fusion_precise_profile": {"engine": "fusion", "overrides": {"bridge_ms": 500}},
}


def _job_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "decision.toml"
    path.write_text(body + "\n")
    return path


def test_the_decision_is_typed_ordered_immutable_and_checked():
    silero = DecisionSettings("silero")
    assert silero.profile == "precise"  # the engine's default, resolved
    assert DecisionSettings().profile == "funasr"
    given = DecisionSettings(profile="precise", overrides={"trim_db": 3.0, "pad_ms": 60})
    assert list(given.overrides) == ["pad_ms", "trim_db"]  # PreciseOptions' field order
    assert isinstance(given.overrides, Overrides) and given.overrides == {
        "pad_ms": 60,
        "trim_db": 3,
    }
    with pytest.raises(TypeError):
        given.overrides["pad_ms"] = 0  # type: ignore[index]
    same = DecisionSettings(profile="precise", overrides={"pad_ms": 60, "trim_db": 3.0})
    assert same == given and hash(same) == hash(given)
    assert pickle.loads(pickle.dumps(given)) == given  # as the workers get it
    with pytest.raises(ProfileError, match="fsmn"):
        DecisionSettings("silero", "funasr")
    with pytest.raises(TypeError, match="unknown precise option"):
        DecisionSettings(profile="precise", overrides={"speech_noise_thres": 0.5})
    with pytest.raises(SettingError, match="pad_ms"):
        DecisionSettings(profile="precise", overrides={"pad_ms": -1})
    with pytest.raises(SettingError, match="leave_threshold <= enter_threshold"):
        DecisionSettings("fusion", overrides={"leave_threshold": 0.9})  # fusion enters at 0.3
    with pytest.raises(SettingError, match="engine"):
        DecisionSettings("whisper")


def test_resolve_gives_the_profiles_options_for_a_models_config():
    fixed = DecisionSettings(overrides={"max_end_silence_time": 500})
    options = fixed.resolve({"model_conf": {"lookahead_time_end_point": 250}})
    assert isinstance(options, FunasrOptions)
    assert (options.max_end_silence_time, options.dynamic_silence) == (500, False)
    assert options.lookahead_time_end_point == 250  # from the model's config
    silero = DecisionSettings("silero", overrides={"pad_ms": 10}).resolve({})
    assert silero == precise_defaults({}, "silero").with_overrides(pad_ms=10)
    assert isinstance(silero, PreciseOptions)


FOREIGN = [
    (
        ["--precise-pad-ms", "60", "--precise-trim-db", "3"],
        "--precise-pad-ms, --precise-trim-db: settings of the precise profile; add --profile"
        " precise",
    ),
    (
        ["--engine", "silero", "--speech-noise-thres", "0.7", "--no-dynamic-silence"],
        "--speech-noise-thres, --dynamic-silence: settings of the funasr profile, not of"
        " --profile precise",
    ),
    (
        ["--profile", "precise", "--max-end-silence-time", "500"],
        "--max-end-silence-time: settings of the funasr profile, not of --profile precise",
    ),
    (
        ["--profile", "funasr", "--engine", "silero"],
        "--profile funasr --engine silero: profile funasr works only with the fsmn engine (not"
        " silero): FunASR's state machine reads FSMN's silence posteriors and frame energies;"
        " use --profile precise with other engines",
    ),
]


@pytest.mark.parametrize("argv,message", FOREIGN)
def test_another_profiles_setting_is_refused_as_on_main(argv, message):
    """The messages of main 37ee494's engine_settings and decision_overrides, word for word."""
    with pytest.raises(UsageError) as refusal:
        decision_settings(vars(_run_args(*argv)))
    assert str(refusal.value) == message


def test_serve_refuses_another_profiles_setting_too():
    """serve builds the same object: a funasr setting with --profile precise is refused, as
    segment and run refuse it (it was passed to the model's funasr settings unused)."""
    assert refused(
        segmenter("serve", "--profile", "precise", "--speech-noise-thres", "0.7"),
        "--speech-noise-thres: settings of the funasr profile, not of --profile precise",
    )


def test_vad_load_takes_the_settings_object_or_the_keywords(vad_int8):
    keywords = Vad.load(engine="silero", pad_ms=10, min_silence_ms=300)
    given = Vad.load(
        settings=DecisionSettings("silero", overrides={"pad_ms": 10, "min_silence_ms": 300})
    )
    assert given.profile == keywords.profile == "precise"
    assert given.settings() == keywords.settings()
    assert given.settings().pad_ms == 10
    funasr = Vad.load(settings=DecisionSettings(overrides={"max_end_silence_time": 500}))
    assert funasr.settings() == vad_int8.settings(max_end_silence_time=500)
    with pytest.raises(TypeError, match="not both"):
        Vad.load(engine="silero", settings=DecisionSettings("silero"))


def test_merge_for_asr_s_is_the_one_name_and_the_old_spellings_are_taken(tmp_path):
    parser = build_parser()
    new = batch_settings(parser.parse_args(["run", "in", "-o", "out", "--merge-for-asr-s", "30"]))
    old = batch_settings(parser.parse_args(["run", "in", "-o", "out", "--merge-for-asr", "30"]))
    assert new.chunking == old.chunking and new.chunking.merge_for_asr_s == 30
    for command in ("segment", "run"):
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        shown = sub.choices[command].format_help()
        assert "--merge-for-asr-s SECONDS" in shown and "--merge-for-asr " not in shown
    assert read_job(_job_file(tmp_path, "merge_for_asr = 30")) == {"merge_for_asr_s": 30}
    assert read_job(_job_file(tmp_path, "merge_for_asr_s = 30")) == {"merge_for_asr_s": 30}
    with pytest.raises(SettingError, match="merge_for_asr_s and its old name merge_for_asr"):
        read_job(_job_file(tmp_path, "merge_for_asr = 30\nmerge_for_asr_s = 20"))
    with pytest.raises(SettingError, match="merge_for_asr must be a number >= 1"):
        read_job(_job_file(tmp_path, "merge_for_asr = 0"))  # named as the file names it
    assert refused(segmenter("segment", "x.wav", "--merge-for-asr", "0"), "--merge-for-asr", ">= 1")
