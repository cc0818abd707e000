"""Every setting a user gives, checked in one place: the command line, job files and the library.

A rule (rules.py) says what a setting holds (a number in a range, text, a flag, a list of text, a
choice). A decision setting's rule and help are its options field's metadata (FunasrOptions,
PreciseOptions); the other settings' rules are here.
The command line parses its numbers through the rules (`parse_as`), a TOML job file is read and
checked by `read_job`, and the library's `ChunkOptions` and decision overrides check their
values with the same rules (`check`). A value out of range raises `SettingError`, a ValueError
whose message names the setting and what it accepts.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from .engines import ENGINES
from .engines.model import PRECISIONS, RUNTIMES
from .profiles import PROFILES, FunasrOptions, PreciseOptions
from .rules import (  # noqa: F401 - the rule classes and SettingError, importable from here too
    Flag,
    Number,
    Rule,
    SettingError,
    Text,
    Texts,
    check_value,
    field_rules,
)

# The decision settings' rules are their options fields' (profiles/): FunASR's under its own names,
# the precise profile's as precise_<field>; the longest segment is FunASR's name, every profile's.
_FUNASR_RULES = field_rules(FunasrOptions)
_FUNASR_NUMBERS: dict[str, Number] = {  # in the order the command line lists them
    name: _FUNASR_RULES[name]
    for name in (
        "speech_noise_thres",
        "schedule_speech_noise_thres",
        "speech_2_noise_ratio",
        "window_size_ms",
        "sil_to_speech_time_thres",
        "speech_to_sil_time_thres",
        "lookback_time_start_point",
        "lookahead_time_end_point",
        "max_start_silence_time",
        "detect_mode",
        "do_extend",
        "snr_thres",
        "decibel_thres",
        "noise_frame_num_used_for_snr",
        "fe_prior_thres",
        "schedule_chunk_ms",
    )
}
_PRECISE_NUMBERS: dict[str, Number] = {
    f"precise_{name}": rule
    for name, rule in field_rules(PreciseOptions).items()
    if name != "max_single_segment_time"  # --max-single-segment-time, every profile's
}

NUMBERS: dict[str, Number] = {
    "speech_noise_thres": Number(whole=False, low=-1, high=1),
    "schedule_speech_noise_thres": Number(whole=False, low=-1, high=1),
    "speech_2_noise_ratio": Number(whole=False, low=0, high=10),
    "window_size_ms": Number(whole=True, low=10, high=10000, unit="ms"),
    "sil_to_speech_time_thres": Number(whole=True, low=10, high=10000, unit="ms"),
    "speech_to_sil_time_thres": Number(whole=True, low=10, high=10000, unit="ms"),
    "lookback_time_start_point": Number(whole=True, low=0, high=10000, unit="ms"),
    "lookahead_time_end_point": Number(whole=True, low=0, high=10000, unit="ms"),
    "max_start_silence_time": Number(whole=True, low=0, high=3600000, unit="ms"),
    "detect_mode": Number(whole=True, low=0, high=1),
    "do_extend": Number(whole=True, low=0, high=1),
    "snr_thres": Number(whole=False, low=-100, high=100, unit="dB"),
    "decibel_thres": Number(whole=False, low=-100, high=100, unit="dB"),
    "noise_frame_num_used_for_snr": Number(whole=True, low=1, high=100000),
    "fe_prior_thres": Number(whole=False, low=0, high=1),
    "schedule_chunk_ms": Number(whole=True, low=15000, high=3600000, unit="ms"),
}

NUMBERS: dict[str, Number] = {
    "jobs": Number(whole=True, low=1),
    "channel": Number(whole=True, low=0),
    "clip_pad_ms": Number(whole=True, low=0, high=60000, unit="ms"),
    "clip_rate": Number(whole=True, low=8000, high=192000, unit="Hz"),
    "settle_seconds": Number(whole=False, low=0, unit="seconds"),
    "stop_grace": Number(whole=False, low=0, high=3600, unit="seconds"),
    "max_segment_s": Number(whole=False, low=1, unit="seconds"),
    "merge_for_asr": Number(whole=False, low=1, unit="seconds"),
    "max_merge_gap_s": Number(whole=False, low=0, unit="seconds"),
    "pad_ms": Number(whole=True, low=0, high=60000, unit="ms"),
    # FunASR's own names, in ms: the ranges refuse a value in seconds given by mistake
    "max_end_silence_time": _FUNASR_RULES["max_end_silence_time"],
    "max_single_segment_time": _FUNASR_RULES["max_single_segment_time"],
    **_FUNASR_NUMBERS,
    "port": Number(whole=True, low=1, high=65535),
    "max_upload_mb": Number(whole=False, low=0, above=True, unit="MB"),
    "seconds": Number(whole=False, low=1, high=86400, unit="seconds"),
    "prune_amount": Number(whole=False, low=0, high=0.99),  # quantize --prune
    "collar": Number(whole=False, low=0, high=10, unit="seconds"),
    **_PRECISE_NUMBERS,  # segmenter/profiles/precise.py, as --precise-* / precise_*
}

# The funasr profile's settings (FunASR's names); the longest segment applies to every profile.
FUNASR_KEYS = ("max_end_silence_time", *_FUNASR_NUMBERS, "dynamic_silence")
DECISION_KEYS = (*FUNASR_KEYS, "max_single_segment_time")
PRECISE_KEYS = tuple(k for k in NUMBERS if k.startswith("precise_"))
PROFILE_NAMES = tuple(PROFILES)

JOB_RULES: dict[str, Rule] = {
    "inputs": Texts(),
    "out": Text(),
    "model": Text(),
    "precision": Text(PRECISIONS),
    "runtime": Text(RUNTIMES),
    "backend": Text(("loky", "dask")),
    "scheduler": Text(),
    "formats": Texts(single=True),
    "include": Texts(),
    "exclude": Texts(),
    **{
        k: Flag()
        for k in ("clips", "retry_failed", "force", "redo_changed", "quiet", "report", "prune")
    },
    **{k: NUMBERS[k] for k in ("jobs", "channel", "clip_pad_ms", "clip_rate", "settle_seconds")},
    "stop_grace": NUMBERS["stop_grace"],
    **{k: NUMBERS[k] for k in ("max_segment_s", "merge_for_asr", "max_merge_gap_s", "pad_ms")},
    **{k: NUMBERS[k] for k in DECISION_KEYS if k in NUMBERS},
    "dynamic_silence": _FUNASR_RULES["dynamic_silence"],
    "engine": Text(ENGINES),
    "profile": Text(PROFILE_NAMES),
    **{k: NUMBERS[k] for k in PRECISE_KEYS},
}

# Old spellings that are refused with the new name, not silently taken.
RENAMED = {
    "max_end_silence": "max_end_silence_time",
    "max_segment": "max_single_segment_time",
}


def check(name: str, value: Any, label: str | None = None) -> Any:
    """`value` if setting `name` accepts it; else SettingError naming `label` (default: name)."""
    return check_value(NUMBERS.get(name) or JOB_RULES[name], value, label or name)


def parse_as(name: str):
    """An argparse type for numeric setting `name`: parses and range-checks in one step."""
    rule = NUMBERS[name]

    def parse(text: str) -> int | float:
        value = rule.parse(text)
        if value is None or not rule.fits(value):
            raise argparse.ArgumentTypeError(f"must be {rule.describe()}, got {text!r}")
        return value

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def renamed_message(old: str, new: str) -> str:
    """The refusal of an old option spelling, naming the one to use."""
    return f"{old} was renamed: use {new} (FunASR's name; milliseconds)"


def read_job(path: Path) -> dict[str, Any]:
    """A job file's settings, each checked; errors name the file (and the line for bad TOML)."""
    try:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SettingError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SettingError(f"{path}: cannot read the job file ({exc.strerror})") from None
    for key, value in values.items():
        if key in RENAMED:
            raise SettingError(f"{path}: {renamed_message(key, RENAMED[key])}")
        if key not in JOB_RULES:
            raise SettingError(f"{path}: unknown setting {key!r} (see segmenter run --help)")
        check(key, value, f"{path}: {key}")
    return values
