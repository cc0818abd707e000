"""Every setting a user gives, checked in one place: the command line, job files and the library.

A rule says what a setting holds (a number in a range, text, a flag, a list of text, a choice).
The command line parses its numbers through the rules (`parse_as`), a TOML job file is read and
checked by `read_job`, and the library's `ChunkOptions` and decision overrides check their
values with the same rules (`check`). A value out of range raises `SettingError`, a ValueError
whose message names the setting and what it accepts.
"""

from __future__ import annotations

import argparse
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engines import ENGINES
from .engines.model import PRECISIONS, RUNTIMES


class SettingError(ValueError):
    """A setting given a value it does not accept; the message names both."""


@dataclass(frozen=True)
class Number:
    """A finite number (whole or not) within [low, high]; `above` makes low itself refused."""

    whole: bool
    low: float | None = None
    high: float | None = None
    unit: str = ""
    above: bool = False

    def describe(self) -> str:
        """What the setting accepts, in words: 'a whole number from 1 to 65535'."""
        kind = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            span = f"from {_plain(self.low)} to {_plain(self.high)}"
        elif self.low is not None:
            span = f"{'>' if self.above else '>='} {_plain(self.low)}"
        else:
            span = f"<= {_plain(self.high)}"
        return f"{kind} {span}" + (f" ({self.unit})" if self.unit else "")

    def fits(self, value: Any) -> bool:
        """Whether a parsed value (TOML, Python) is of the right kind and in range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.whole and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or value <= self.high

    def parse(self, text: str) -> int | float | None:
        """The number a command-line word spells, or None if it spells none."""
        try:
            return int(text) if self.whole else float(text)
        except ValueError:
            return None


def _plain(number: float) -> str:
    """A bound as people write it: 3600000, not 3.6e+06."""
    return str(int(number)) if float(number).is_integer() else str(number)


@dataclass(frozen=True)
class Text:
    """A string; with `choices`, one of them."""

    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"one of {', '.join(self.choices)}" if self.choices else "a string"

    def fits(self, value: Any) -> bool:
        return isinstance(value, str) and (not self.choices or value in self.choices)


@dataclass(frozen=True)
class Texts:
    """A list of strings (with `single`, one string is accepted too)."""

    single: bool = False

    def describe(self) -> str:
        return "a string or a list of strings" if self.single else "a list of strings"

    def fits(self, value: Any) -> bool:
        if self.single and isinstance(value, str):
            return True
        return isinstance(value, list) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def describe(self) -> str:
        return "true or false"

    def fits(self, value: Any) -> bool:
        return isinstance(value, bool)


Rule = Number | Text | Texts | Flag

# FunASR's other decision settings (VadOptions, profiles/funasr_options.py), for --profile funasr
_FUNASR_NUMBERS: dict[str, Number] = {
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
    "max_end_silence_time": Number(whole=True, low=100, high=60000, unit="ms"),
    "max_single_segment_time": Number(whole=True, low=1000, high=3600000, unit="ms"),
    **_FUNASR_NUMBERS,
    "port": Number(whole=True, low=1, high=65535),
    "max_upload_mb": Number(whole=False, low=0, above=True, unit="MB"),
    "seconds": Number(whole=False, low=1, high=86400, unit="seconds"),
    "prune_amount": Number(whole=False, low=0, high=0.99),  # quantize --prune
    "collar": Number(whole=False, low=0, high=10, unit="seconds"),
    # the precise profile's settings (segmenter/profiles/precise.py), as --precise-* / precise_*
    "precise_enter_threshold": Number(whole=False, low=0, high=1),
    "precise_leave_threshold": Number(whole=False, low=0, high=1),
    "precise_min_speech_ms": Number(whole=True, low=0, high=60000, unit="ms"),
    "precise_min_silence_ms": Number(whole=True, low=0, high=60000, unit="ms"),
    "precise_pad_ms": Number(whole=True, low=0, high=10000, unit="ms"),
    "precise_floor_weight": Number(whole=False, low=0, high=1),
    "precise_floor_quantile": Number(whole=False, low=0, high=100, unit="percent"),
    "precise_floor_window_ms": Number(whole=True, low=1000, high=600000, unit="ms"),
    "precise_trim_db": Number(whole=False, low=0, high=60, unit="dB"),
    "precise_trim_start_ms": Number(whole=True, low=0, high=10000, unit="ms"),
    "precise_trim_end_ms": Number(whole=True, low=0, high=10000, unit="ms"),
    "precise_trim_quantile": Number(whole=False, low=0, high=100, unit="percent"),
}

# The funasr profile's settings (FunASR's names); the longest segment applies to every profile.
FUNASR_KEYS = ("max_end_silence_time", *_FUNASR_NUMBERS, "dynamic_silence")
DECISION_KEYS = (*FUNASR_KEYS, "max_single_segment_time")
PRECISE_KEYS = tuple(k for k in NUMBERS if k.startswith("precise_"))
PROFILE_NAMES = ("funasr", "precise")  # segmenter.profiles.PROFILES; a test keeps them equal

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
    "dynamic_silence": Flag(),
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
    rule = NUMBERS.get(name) or JOB_RULES[name]
    if not rule.fits(value):
        raise SettingError(f"{label or name} must be {rule.describe()}, got {value!r}")
    return value


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
