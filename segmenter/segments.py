"""Segments: what the engine finds in a recording, and the per-file document that describes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from .audio import AudioInfo

if TYPE_CHECKING:  # profiles import Segment from here
    from .profiles.funasr_options import FunasrOptions


@dataclass(frozen=True)
class Segment:
    """A stretch of speech, in milliseconds from the start of the recording."""

    start: int
    end: int

    @property
    def duration(self) -> int:
        return self.end - self.start

    def to_seconds(self) -> dict[str, float]:
        return {"start": round(self.start / 1000, 3), "end": round(self.end / 1000, 3)}


@dataclass(frozen=True)
class FileResult:
    """What one recording gave: its description, its speech segments, and on request the
    network's per-frame (10 ms) speech score."""

    info: AudioInfo
    segments: list[Segment]
    speech_scores: np.ndarray | None = None


def segments_document(
    result: FileResult,
    model_info: dict[str, str],
    options: FunasrOptions | Any,
    profile: str = "funasr",
) -> dict[str, Any]:
    """The per-file JSON document (times in seconds, millisecond precision); `options` are the
    settings of the `profile` that decided the segments."""
    return {
        "audio": {
            "path": result.info.path,
            "duration": round(result.info.duration, 3),
            "sample_rate": result.info.sample_rate,
            "channels": result.info.channels,
            "format": result.info.format,
        },
        "model": model_info,
        "profile": profile,
        "options": options.to_dict(),
        "segments": [s.to_seconds() for s in result.segments],
        "speech_duration": round(sum(s.duration for s in result.segments) / 1000, 3),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "segmenter": __version__,
    }


def segments_of(document: dict[str, Any]) -> list[Segment]:
    """The segments of a per-file document, back in milliseconds."""
    return [Segment(round(s["start"] * 1000), round(s["end"] * 1000)) for s in document["segments"]]


def read_rttm(path: Path) -> list[tuple[float, float]]:
    """(start, end) seconds of every SPEAKER line."""
    spans = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[0] == "SPEAKER":
            start = float(fields[3])
            spans.append((start, start + float(fields[4])))
    return spans


def read_output(path: Path) -> list[tuple[float, float]]:
    """(start, end) seconds from a segmenter JSON document or an RTTM."""
    if path.suffix == ".rttm":
        return read_rttm(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    return [(s["start"], s["end"]) for s in document["segments"]]
