"""Decision settings of FunASR's FSMN-VAD endpoint detector, as one typed options object.

Defaults are FunASR's; a model folder's `model_conf` (config.yaml) replaces them, and every field
can be overridden per call. Times are in milliseconds. Each setting a user may give carries its
help and its rule (rules.py) in its field's metadata: the one source of the command line's
option, the job file's key and the library's check (settings.py derives them).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..rules import Flag, Number, check_value, field_rules

# FunASR's names, in ms: the ranges refuse a value in seconds given by mistake. The longest
# segment is every profile's (PreciseOptions takes this rule too).
LONGEST_SEGMENT = Number(whole=True, low=1000, high=3600000, unit="ms")

# FunASR 1.4's offline end-silence schedule: (speech accumulated so far, end silence), in ms.
# It is re-evaluated every `schedule_chunk_ms` of audio; see `FunasrOptions.dynamic_silence`.
FUNASR_SILENCE_SCHEDULE: tuple[tuple[float, int], ...] = (
    (10000, 2000),
    (20000, 1000),
    (30000, 800),
    (40000, 600),
    (50000, 400),
    (60000, 200),
    (float("inf"), 100),
)

# Settings that decide which frames are speech; set explicitly, they imply a fixed threshold.
_FIXED_THRESHOLD_KEYS = ("max_end_silence_time", "speech_noise_thres")


@dataclass(frozen=True)
class FunasrOptions:
    """Every setting of the endpoint state machine (FunASR's `model_conf` names and meanings).

    dynamic_silence: FunASR 1.4's offline default. Every `schedule_chunk_ms` of audio the end
        silence is taken from `silence_schedule` by how long the open segment has run, and the
        speech/noise threshold is `schedule_speech_noise_thres`. When False, `max_end_silence_time`
        and `speech_noise_thres` apply throughout (FunASR's behaviour when `max_end_silence_time`
        is passed to `generate()`). Overriding either of those two turns the schedule off.
    """

    sample_rate: int = 16000
    detect_mode: int = field(
        default=1,
        metadata={
            "help": "1: many utterances; 0: stop after the first one",
            "rule": Number(whole=True, low=0, high=1),
        },
    )
    max_end_silence_time: int = field(
        default=800,
        metadata={
            "help": "fixed end silence in ms",
            "rule": Number(whole=True, low=100, high=60000, unit="ms"),
        },
    )
    max_start_silence_time: int = field(
        default=3000,
        metadata={
            "help": "leading silence that ends detection (detect_mode 0 only)",
            "rule": Number(whole=True, low=0, high=3600000, unit="ms"),
        },
    )
    window_size_ms: int = field(
        default=200,
        metadata={
            "help": "window of frames the speech/silence vote is taken over",
            "rule": Number(whole=True, low=10, high=10000, unit="ms"),
        },
    )
    sil_to_speech_time_thres: int = field(
        default=150,
        metadata={
            "help": "speech in the window that starts speech",
            "rule": Number(whole=True, low=10, high=10000, unit="ms"),
        },
    )
    speech_to_sil_time_thres: int = field(
        default=150,
        metadata={
            "help": "silence in the window that starts silence",
            "rule": Number(whole=True, low=10, high=10000, unit="ms"),
        },
    )
    speech_2_noise_ratio: float = field(
        default=1.0,
        metadata={
            "help": "exponent on the silence posterior before the comparison",
            "rule": Number(whole=False, low=0, high=10),
        },
    )
    do_extend: int = field(
        default=1,
        metadata={
            "help": "1: widen segments by the lookback and lookahead; 0: do not",
            "rule": Number(whole=True, low=0, high=1),
        },
    )
    lookback_time_start_point: int = field(
        default=200,
        metadata={
            "help": "how far a segment's start is moved back",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    lookahead_time_end_point: int = field(
        default=100,
        metadata={
            "help": "how far a segment's end is moved on",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    max_single_segment_time: int = field(
        default=60000, metadata={"help": "FunASR's longest segment in ms", "rule": LONGEST_SEGMENT}
    )
    snr_thres: float = field(
        default=-100.0,
        metadata={
            "help": "frames under this SNR against the running noise level are silence",
            "rule": Number(whole=False, low=-100, high=100, unit="dB"),
        },
    )
    noise_frame_num_used_for_snr: int = field(
        default=100,
        metadata={
            "help": "frames the running noise level averages over",
            "rule": Number(whole=True, low=1, high=100000),
        },
    )
    decibel_thres: float = field(
        default=-100.0,
        metadata={
            "help": "frames quieter than this are silence",
            "rule": Number(whole=False, low=-100, high=100, unit="dB"),
        },
    )
    speech_noise_thres: float = field(
        default=0.6,
        metadata={
            "help": "speech if P(speech) >= P(silence) + this (fixed: schedule off)",
            "rule": Number(whole=False, low=-1, high=1),
        },
    )
    fe_prior_thres: float = field(
        default=1e-4,
        metadata={
            "help": "FunASR's prior threshold (kept for its config; no effect)",
            "rule": Number(whole=False, low=0, high=1),
        },
    )
    sil_pdf_ids: tuple[int, ...] = (0,)
    frame_in_ms: int = 10
    frame_length_ms: int = 25
    dynamic_silence: bool = field(
        default=True,
        metadata={
            "help": "FunASR 1.4's end silence by segment age, 2000 down to 100 ms",
            "rule": Flag(),
        },
    )
    silence_schedule: tuple[tuple[float, int], ...] = field(default=FUNASR_SILENCE_SCHEDULE)
    schedule_speech_noise_thres: float = field(
        default=0.5,
        metadata={
            "help": "the speech/silence threshold while the schedule is on",
            "rule": Number(whole=False, low=-1, high=1),
        },
    )
    schedule_chunk_ms: int = field(
        default=60000,
        metadata={
            "help": "how often the schedule is re-read (FunASR's offline chunk)",
            "rule": Number(whole=True, low=15000, high=3600000, unit="ms"),
        },
    )

    @classmethod
    def from_config(cls, model_conf: dict[str, Any]) -> FunasrOptions:
        """Options from a config.yaml `model_conf`; keys FunASR never reads are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in model_conf.items() if k in names}
        if "sil_pdf_ids" in known:
            known["sil_pdf_ids"] = tuple(known["sil_pdf_ids"])
        return cls(**known)

    def with_overrides(self, **overrides: Any) -> FunasrOptions:
        """A copy with some settings replaced; unknown names raise TypeError.

        A fixed end silence or threshold, given without `dynamic_silence`, turns the schedule
        off: the caller asked for that value to hold. Every setting the command line offers is
        range-checked (SettingError, a ValueError) by the same rule as there.
        """
        if not overrides:
            return self
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown VAD option(s): {', '.join(unknown)}")
        rules = field_rules(FunasrOptions)
        for key in set(rules) & set(overrides):
            check_value(rules[key], overrides[key], key)
        if "dynamic_silence" not in overrides and any(
            k in overrides for k in _FIXED_THRESHOLD_KEYS
        ):
            overrides = {**overrides, "dynamic_silence": False}
        if "sil_pdf_ids" in overrides:
            overrides["sil_pdf_ids"] = tuple(overrides["sil_pdf_ids"])
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready settings (the schedule's infinity written as null), a fresh copy."""
        return json.loads(_settings_json(self))


VadOptions = FunasrOptions  # the old name (before FunasrOptions said whose settings these are)


@lru_cache(maxsize=64)
def _settings_json(options: FunasrOptions) -> str:
    """FunasrOptions.to_dict's content as JSON, made once per options (every file of a batch
    writes it into its document; dataclasses.asdict took a quarter of a 1-s file's time)."""
    data = dataclasses.asdict(options)
    data["sil_pdf_ids"] = list(options.sil_pdf_ids)
    data["silence_schedule"] = [
        [None if limit == float("inf") else limit, ms] for limit, ms in options.silence_schedule
    ]
    return json.dumps(data)
