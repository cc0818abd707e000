"""Decision settings of FunASR's FSMN-VAD endpoint detector, as one typed options object.

Defaults are FunASR's; a model folder's `model_conf` (config.yaml) replaces them, and every field
can be overridden per call. Times are in milliseconds.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..settings import DECISION_KEYS, check

# FunASR 1.4's offline end-silence schedule: (speech accumulated so far, end silence), in ms.
# It is re-evaluated every `schedule_chunk_ms` of audio; see `VadOptions.dynamic_silence`.
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
class VadOptions:
    """Every setting of the endpoint state machine (FunASR's `model_conf` names and meanings).

    dynamic_silence: FunASR 1.4's offline default. Every `schedule_chunk_ms` of audio the end
        silence is taken from `silence_schedule` by how long the open segment has run, and the
        speech/noise threshold is `schedule_speech_noise_thres`. When False, `max_end_silence_time`
        and `speech_noise_thres` apply throughout (FunASR's behaviour when `max_end_silence_time`
        is passed to `generate()`). Overriding either of those two turns the schedule off.
    """

    sample_rate: int = 16000
    detect_mode: int = field(
        default=1, metadata={"help": "1: many utterances; 0: stop after the first one"}
    )
    max_end_silence_time: int = 800
    max_start_silence_time: int = field(
        default=3000, metadata={"help": "leading silence that ends detection (detect_mode 0 only)"}
    )
    window_size_ms: int = field(
        default=200, metadata={"help": "window of frames the speech/silence vote is taken over"}
    )
    sil_to_speech_time_thres: int = field(
        default=150, metadata={"help": "speech in the window that starts speech"}
    )
    speech_to_sil_time_thres: int = field(
        default=150, metadata={"help": "silence in the window that starts silence"}
    )
    speech_2_noise_ratio: float = field(
        default=1.0, metadata={"help": "exponent on the silence posterior before the comparison"}
    )
    do_extend: int = field(
        default=1, metadata={"help": "1: widen segments by the lookback and lookahead; 0: do not"}
    )
    lookback_time_start_point: int = field(
        default=200, metadata={"help": "how far a segment's start is moved back"}
    )
    lookahead_time_end_point: int = field(
        default=100, metadata={"help": "how far a segment's end is moved on"}
    )
    max_single_segment_time: int = 60000
    snr_thres: float = field(
        default=-100.0,
        metadata={"help": "frames under this SNR against the running noise level are silence"},
    )
    noise_frame_num_used_for_snr: int = field(
        default=100, metadata={"help": "frames the running noise level averages over"}
    )
    decibel_thres: float = field(
        default=-100.0, metadata={"help": "frames quieter than this are silence"}
    )
    speech_noise_thres: float = field(
        default=0.6,
        metadata={"help": "speech if P(speech) >= P(silence) + this (fixed: schedule off)"},
    )
    fe_prior_thres: float = field(
        default=1e-4, metadata={"help": "FunASR's prior threshold (kept for its config; no effect)"}
    )
    sil_pdf_ids: tuple[int, ...] = (0,)
    frame_in_ms: int = 10
    frame_length_ms: int = 25
    dynamic_silence: bool = field(
        default=True,
        metadata={"help": "FunASR 1.4's end silence by segment age, 2000 down to 100 ms"},
    )
    silence_schedule: tuple[tuple[float, int], ...] = field(default=FUNASR_SILENCE_SCHEDULE)
    schedule_speech_noise_thres: float = field(
        default=0.5, metadata={"help": "the speech/silence threshold while the schedule is on"}
    )
    schedule_chunk_ms: int = field(
        default=60000,
        metadata={"help": "how often the schedule is re-read (FunASR's offline chunk)"},
    )

    @classmethod
    def from_config(cls, model_conf: dict[str, Any]) -> VadOptions:
        """Options from a config.yaml `model_conf`; keys FunASR never reads are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in model_conf.items() if k in names}
        if "sil_pdf_ids" in known:
            known["sil_pdf_ids"] = tuple(known["sil_pdf_ids"])
        return cls(**known)

    def with_overrides(self, **overrides: Any) -> VadOptions:
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
        for key in set(DECISION_KEYS) & set(overrides):
            check(key, overrides[key])
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


@lru_cache(maxsize=64)
def _settings_json(options: VadOptions) -> str:
    """VadOptions.to_dict's content as JSON, made once per options (every file of a batch
    writes it into its document; dataclasses.asdict took a quarter of a 1-s file's time)."""
    data = dataclasses.asdict(options)
    data["sil_pdf_ids"] = list(options.sil_pdf_ids)
    data["silence_schedule"] = [
        [None if limit == float("inf") else limit, ms] for limit, ms in options.silence_schedule
    ]
    return json.dumps(data)
