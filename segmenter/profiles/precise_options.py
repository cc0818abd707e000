"""The `precise` profile's settings (`PreciseOptions`: each field's default, help and range rule,
the one source of the CLI's `--precise-*` options and the job file's `precise_*` keys) and each
engine's tuned defaults (`ENGINE_DEFAULTS`, chosen by bench/tune_cv.py; docs/farfield.md).
The decision that reads them is profiles/precise.py."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..engines.base import FRAME_MS
from ..rules import Number, SettingError, check_value, field_rules
from .base import replace_checked
from .funasr_options import LONGEST_SEGMENT

FLOOR_STEP = 100  # frames (1 s) sharing one noise floor


@dataclass(frozen=True)
class PreciseOptions:
    """Settings of the `precise` decision (times in ms; scores in [0, 1]); each field's help and
    range rule are in its metadata (the CLI's `--precise-*` options and the job file's
    `precise_*` keys are derived from them). Defaults: bench/tune_precise.py."""

    enter_threshold: float = field(
        default=0.5,
        metadata={
            "help": "a frame scoring this (+ the floor term) or more starts speech",
            "rule": Number(whole=False, low=0, high=1),
        },
    )
    leave_threshold: float = field(
        default=0.4,
        metadata={
            "help": "speech goes on until a frame scores below this (+ floor term)",
            "rule": Number(whole=False, low=0, high=1),
        },
    )
    min_speech_ms: int = field(
        default=100,
        metadata={
            "help": "shorter speech (after bridging pauses) is dropped",
            "rule": Number(whole=True, low=0, high=60000, unit="ms"),
        },
    )
    min_silence_ms: int = field(
        default=100,
        metadata={
            "help": "shorter pauses are bridged",
            "rule": Number(whole=True, low=0, high=60000, unit="ms"),
        },
    )
    pad_ms: int = field(
        default=30,
        metadata={
            "help": "added on each side, within the file and the gap",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    max_single_segment_time: int = field(
        default=60000,
        metadata={
            "help": "longest segment, padding included (FunASR's name)",
            "rule": LONGEST_SEGMENT,
        },
    )
    floor_weight: float = field(
        default=0.0,
        metadata={
            "help": "thresholds rise by this times the noise floor (0: off)",
            "rule": Number(whole=False, low=0, high=1),
        },
    )
    floor_quantile: float = field(
        default=25.0,
        metadata={
            "help": "noise floor: this percentile of the window's scores",
            "rule": Number(whole=False, low=0, high=100, unit="percent"),
        },
    )
    floor_window_ms: int = field(
        default=30000,
        metadata={
            "help": "noise floor: scores (and energies) of this much audio",
            "rule": Number(whole=True, low=1000, high=600000, unit="ms"),
        },
    )
    trim_db: float = field(
        default=2.0,
        metadata={
            "help": "edges are trimmed past frames less loud than this (dB) above the energy floor",
            "rule": Number(whole=False, low=0, high=60, unit="dB"),
        },
    )
    trim_start_ms: int = field(
        default=100,
        metadata={
            "help": "a segment's start moves at most this much later (0: off)",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    trim_end_ms: int = field(
        default=200,
        metadata={
            "help": "a segment's end moves at most this much earlier (0: off)",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    trim_quantile: float = field(
        default=10.0,
        metadata={
            "help": "energy floor: this percentile of the window's energies",
            "rule": Number(whole=False, low=0, high=100, unit="percent"),
        },
    )
    bridge_ms: int = field(
        default=1000,
        metadata={
            "help": "longer pauses up to this are bridged where sound goes on (0: off)",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    bridge_db: float = field(
        default=8.0,
        metadata={
            "help": "a pause is bridged if its mean energy is this (dB) above the floor",
            "rule": Number(whole=False, low=0, high=60, unit="dB"),
        },
    )

    def __post_init__(self):
        """Refuse settings the decision cannot honour, naming them (SettingError: a ValueError)."""
        if not 0.0 <= self.leave_threshold <= self.enter_threshold <= 1.0:
            raise SettingError("precise: need 0 <= leave_threshold <= enter_threshold <= 1")
        if min(self.min_speech_ms, self.min_silence_ms, self.pad_ms) < 0:
            raise SettingError("precise: min_speech_ms, min_silence_ms and pad_ms must be >= 0")
        if self.max_single_segment_time < 2 * self.pad_ms + 2 * FRAME_MS:
            raise SettingError("precise: max_single_segment_time must exceed 2 pad_ms + 20 ms")
        if self.min_speech_ms > self.max_single_segment_time - 2 * self.pad_ms:
            raise SettingError("precise: min_speech_ms must not exceed the longest segment")
        if self.floor_weight < 0 or not 0 <= self.floor_quantile <= 100:
            raise SettingError("precise: need floor_weight >= 0 and 0 <= floor_quantile <= 100")
        if min(self.trim_db, self.trim_start_ms, self.trim_end_ms) < 0:
            raise SettingError("precise: trim_db, trim_start_ms and trim_end_ms must be >= 0")
        if self.bridge_ms < 0 or self.bridge_db < 0:
            raise SettingError("precise: bridge_ms and bridge_db must be >= 0")
        if not 0 <= self.trim_quantile <= 100:
            raise SettingError("precise: need 0 <= trim_quantile <= 100")
        if self.floor_window_ms < FLOOR_STEP * FRAME_MS:
            raise SettingError(f"precise: floor_window_ms must be at least {FLOOR_STEP * FRAME_MS}")

    def with_overrides(self, **overrides: Any) -> PreciseOptions:
        """A copy with some settings replaced; unknown names raise TypeError, values out of
        range SettingError (a ValueError), by the fields' rules (the command line's too)."""
        return replace_checked(self, "precise", overrides, check_setting)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready settings."""
        return dataclasses.asdict(self)


def check_setting(name: str, value: Any) -> None:
    """A precise setting's value by its field's rule (the command line's, too)."""
    check_value(field_rules(PreciseOptions)[name], value, name)


# Each engine's scores have their own shape, so each has its own defaults: the fields' defaults
# are FSMN's; these replace some of them for the other engines. All chosen by
# bench/tune_cv.py --engine NAME: the plateau of its grid ranked on every group (README,
# "Far-field meetings"); the trimming as bench/tune_precise.py chose it before.
ENGINE_DEFAULTS: dict[str, dict[str, Any]] = {
    "fsmn": {},
    "silero": {
        "enter_threshold": 0.3,
        "leave_threshold": 0.2,
        "pad_ms": 50,
        "trim_db": 4.0,
        "trim_end_ms": 300,
        "bridge_ms": 2000,
        "bridge_db": 6.0,
    },
    "fusion": {
        "enter_threshold": 0.3,
        "leave_threshold": 0.3,
        "min_speech_ms": 200,
        "trim_db": 4.0,
        "trim_end_ms": 300,
        "bridge_ms": 2000,
    },
}


def precise_defaults(config: dict[str, Any], engine: str = "fsmn") -> PreciseOptions:
    """The precise settings tuned for `engine`'s scores (the model's config is not read)."""
    return PreciseOptions(**ENGINE_DEFAULTS[engine])
