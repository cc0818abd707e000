"""The peers bench/quality.py sets beside segmenter: silero-vad, ten-vad and FunASR's reference.

Each peer takes a `Recording` and gives a `Run`: its segments in milliseconds and the seconds it
took (model loading excluded; None where it was not measured here).

- silero-vad: its own `get_speech_timestamps` with every default (TorchScript model, threshold
  0.5, neg_threshold 0.35, min speech 250 ms, min silence 100 ms, padding 30 ms).
- ten-vad: probability per 16 ms hop (256 samples of 16-bit PCM), then this post-processing:
  speech where p >= 0.5, gaps under 100 ms bridged, segments under 250 ms dropped, 30 ms padding
  (stopping halfway to a neighbour and at the ends). Its library needs libc++1 (Debian).
- FunASR: the segments in the `<stem>.funasr.json` beside the recording (FunASR 1.4.16 AutoModel,
  made by ../shared/tools/funasr_ref.py), and the seconds it recorded there, where it did.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from segmenter.audio import open_audio
from segmenter.chunking import merge_close, pad
from segmenter.segments import Segment
from segmenter.toolkit.evaluation import read_rttm

RATE = 16000
TEN_HOP = 256  # samples: 16 ms
TEN_THRESHOLD = 0.5
MIN_SPEECH_MS = 250
MIN_SILENCE_MS = 100
PAD_MS = 30


class Unavailable(Exception):
    """A configuration that cannot give segments for this recording (the message says why)."""


@dataclass(frozen=True)
class Recording:
    """A labelled recording: 16 kHz mono float32 samples and the reference speech (seconds)."""

    path: Path
    samples: np.ndarray
    reference: list[tuple[float, float]]

    @classmethod
    def load(cls, path: Path, rttm: Path) -> Recording:
        """Decode `path` with segmenter's reader (any format, 16 kHz mono) and read its RTTM."""
        with open_audio(path) as blocks:
            samples = np.concatenate([*blocks, np.zeros(0, np.float32)])
        return cls(path, samples, read_rttm(rttm))

    @property
    def seconds(self) -> float:
        return len(self.samples) / RATE


@dataclass(frozen=True)
class Run:
    """What a configuration gave on one recording."""

    segments: list[Segment]  # milliseconds
    seconds: float | None  # processing time, model loading excluded


def timed(function: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """`function(*args)` and the wall seconds it took."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def speech_runs(speech: np.ndarray, hop_ms: int) -> list[Segment]:
    """Segments of consecutive True hops of `hop_ms` each."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], speech.astype(np.int8), [0]])))
    return [Segment(int(a) * hop_ms, int(b) * hop_ms) for a, b in edges.reshape(-1, 2)]


@cache
def _silero_model() -> Any:
    """silero-vad's default model (TorchScript), loaded once."""
    from silero_vad import load_silero_vad

    return load_silero_vad()


def silero_vad(recording: Recording) -> Run:
    """silero-vad's `get_speech_timestamps` with its defaults."""
    import torch
    from silero_vad import get_speech_timestamps

    model = _silero_model()
    found, took = timed(get_speech_timestamps, torch.from_numpy(recording.samples), model)
    return Run([Segment(round(s["start"] / 16), round(s["end"] / 16)) for s in found], took)


def _ten_probabilities(samples: np.ndarray) -> np.ndarray:
    """ten-vad's speech probability of every whole 16 ms hop."""
    from ten_vad import TenVad

    vad = TenVad(TEN_HOP, TEN_THRESHOLD)
    pcm = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16)
    hops = range(0, len(pcm) - TEN_HOP + 1, TEN_HOP)
    return np.array([vad.process(pcm[i : i + TEN_HOP])[0] for i in hops], np.float32)


def ten_vad(recording: Recording) -> Run:
    """ten-vad's probabilities with the post-processing stated in this module's docstring."""
    probabilities, took = timed(_ten_probabilities, recording.samples)
    found = speech_runs(probabilities >= TEN_THRESHOLD, TEN_HOP * 1000 // RATE)
    found = merge_close(found, sys.maxsize, MIN_SILENCE_MS - 1)
    found = [s for s in found if s.duration >= MIN_SPEECH_MS]
    return Run(pad(found, PAD_MS, round(recording.seconds * 1000)), took)


def funasr_reference(recording: Recording) -> Run:
    """FunASR's segments from the `.funasr.json` beside the recording."""
    path = recording.path.with_suffix(".funasr.json")
    if not path.is_file():
        raise Unavailable(f"no {path.name}")
    document = json.loads(path.read_text(encoding="utf-8"))
    return Run([Segment(a, b) for a, b in document["segments_ms"]], document.get("seconds"))
