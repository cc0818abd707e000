"""Every setting a user gives, checked in one place: the command line, job files and the library.

A rule (rules.py) says what a setting holds (a number in a range, text, a flag, a list of text, a
choice). A decision setting's rule and help are its options field's metadata (FunasrOptions,
PreciseOptions); the other settings' rules are here.
The command line parses its numbers through the rules (`parse_as`), a TOML job file is read and
checked by `read_job`, and the library's `ChunkOptions` and decision overrides check their
values with the same rules (`check`). A value out of range raises `SettingError`, a ValueError
whose message names the setting and what it accepts.

The decision (engine, profile and that profile's settings) travels as one `DecisionSettings`,
built from command-line or job values by `decision_settings` and taken by `segment`, `run`
(`BatchSettings.decision`), `serve` (`ServeSettings.decision`) and `Vad.load(settings=...)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engines import DEFAULT_ENGINE, ENGINES, check_available
from .engines.model import PRECISIONS, RUNTIMES, ModelError
from .errors import UsageError
from .profiles import PROFILES, FunasrOptions, PreciseOptions, default_profile, get_profile
from .profiles.base import ProfileError
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
    "jobs": Number(whole=True, low=1),
    "channel": Number(whole=True, low=0),
    "clip_pad_ms": Number(whole=True, low=0, high=60000, unit="ms"),
    "clip_rate": Number(whole=True, low=8000, high=192000, unit="Hz"),
    "settle_seconds": Number(whole=False, low=0, unit="seconds"),
    "stop_grace": Number(whole=False, low=0, high=3600, unit="seconds"),
    "max_segment_s": Number(whole=False, low=1, unit="seconds"),
    "merge_for_asr_s": Number(whole=False, low=1, unit="seconds"),
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
# The command-line and job keys that make up the decision (`decision_settings` reads them).
DECISION_VALUE_KEYS = ("engine", "profile", *DECISION_KEYS, *PRECISE_KEYS)

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
    **{k: NUMBERS[k] for k in ("max_segment_s", "merge_for_asr_s", "max_merge_gap_s", "pad_ms")},
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
# Old spellings still taken, as the new name (job files and scripts in the wild use them); the
# command line's are second option strings of the new options (cli_options.py).
ALIASES = {"merge_for_asr": "merge_for_asr_s"}


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
    for old, new in ALIASES.items():
        if old in values and new in values:
            raise SettingError(f"{path}: {new} and its old name {old} are one setting: keep {new}")
    settings = {}
    for key, value in values.items():
        if key in RENAMED:
            raise SettingError(f"{path}: {renamed_message(key, RENAMED[key])}")
        name = ALIASES.get(key, key)
        if name not in JOB_RULES:
            raise SettingError(f"{path}: unknown setting {key!r} (see segmenter run --help)")
        settings[name] = check(name, value, f"{path}: {key}")
    return settings


class Overrides(Mapping[str, Any]):
    """An immutable, hashable, picklable mapping of setting names to values (a profile's
    settings given), in its options' field order."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | tuple[tuple[str, Any], ...] = ()):
        self._items = tuple(dict(items).items())

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items))

    def __reduce__(self):
        return Overrides, (self._items,)

    def __repr__(self) -> str:
        return f"Overrides({dict(self._items)!r})"


@dataclass(frozen=True)
class DecisionSettings:
    """The decision: the engine, the profile that turns its frames into segments, and the
    settings of that profile that were given (`overrides`, by its options' field names:
    `pad_ms` for the precise profile, FunASR's names for funasr); the rest are its defaults.

    It holds the settings given, not the options they make, because the funasr profile's
    defaults are the model's config.yaml (`model_conf`), known only once the model (`--model`:
    a folder or a ModelScope id) is resolved: `resolve(model_config)` gives the options. What
    can be checked without the model is checked when it is made: the engine, the profile's fit
    to it (ProfileError), each setting's name (TypeError) and value (SettingError), and the
    precise profile's checks across settings (whose defaults read no config). `profile` None
    picks the engine's default; once made it is always a profile's name.
    """

    engine: str = DEFAULT_ENGINE
    profile: str | None = None
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=Overrides)

    def __post_init__(self) -> None:
        check("engine", self.engine)
        profile = get_profile(self.profile or default_profile(self.engine))
        profile.check_engine(self.engine)
        given = dict(self.overrides)
        profile.defaults({}, self.engine).with_overrides(**given)  # names and values checked
        order = [f.name for f in dataclasses.fields(profile.options_type)]
        given = sorted(given.items(), key=lambda item: order.index(item[0]))
        object.__setattr__(self, "profile", profile.name)
        object.__setattr__(self, "overrides", Overrides(tuple(given)))

    def resolve(self, model_config: dict[str, Any]) -> FunasrOptions | PreciseOptions:
        """The profile's options for a model's config.yaml, with the settings given on top."""
        defaults = get_profile(self.profile).defaults(model_config, self.engine)
        return defaults.with_overrides(**self.overrides)


def decision_settings(values: Mapping[str, Any]) -> DecisionSettings:
    """The decision from command-line or job values (by their keys: `engine`, `profile`,
    FunASR's names, `precise_*`; None is not given), checked before any file is touched: the
    engine's model is there, the profile reads that engine, and no setting is another profile's
    (each a usage error naming the options)."""
    given = {k: v for k in DECISION_VALUE_KEYS if (v := values.get(k)) is not None}
    engine = given.pop("engine", None) or DEFAULT_ENGINE
    try:
        check_available(engine)
    except ModelError as exc:
        raise UsageError(f"--engine {engine}: {exc}") from None
    profile = get_profile(given.pop("profile", None) or default_profile(engine)).name
    try:
        get_profile(profile).check_engine(engine)
    except ProfileError as exc:
        raise UsageError(f"--profile {profile} --engine {engine}: {exc}") from None
    precise = [k for k in given if k in PRECISE_KEYS]
    if precise and profile != "precise":
        raise UsageError(
            f"{_flags(precise)}: settings of the precise profile; add --profile precise"
        )
    funasr = [k for k in given if k in FUNASR_KEYS]
    if funasr and profile != "funasr":
        raise UsageError(
            f"{_flags(funasr)}: settings of the funasr profile, not of --profile {profile}"
        )
    overrides = {k.removeprefix("precise_"): v for k, v in given.items()}
    return DecisionSettings(engine, profile, overrides)


def _flags(keys: list[str]) -> str:
    """Setting keys as the command line spells them: '--precise-pad-ms, --precise-trim-db'."""
    return ", ".join("--" + k.replace("_", "-") for k in keys)
