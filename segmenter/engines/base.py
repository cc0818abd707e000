"""The seam every engine fits: 16 kHz mono samples in, one speech score per 10 ms frame out.

A profile (the decision) turns those scores into segments, so a new engine needs nothing but
this. Frame i covers [10 i, 10 i + 10) ms of the recording; scores are in [0, 1].

Profiles receive `Frames`: the scores and how much audio was fed. An engine whose stream has
`feed_frames` may hand a subclass with more (FSMN's silence posteriors and frame energies, which
FunASR's own decision reads); any other stream is wrapped by `frame_stream`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

FRAME_MS = 10
FRAME_SAMPLES = 160  # at 16 kHz


class ScoreStream(Protocol):
    """Per-recording state of an engine: feed blocks of any size, then finish once."""

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech scores (float32) of the frames completed by this block, in order."""
        ...

    def finish(self) -> np.ndarray:
        """Scores of the frames still pending at the end of the recording."""
        ...


class Engine(Protocol):
    """A loaded model: one per process, shared by every recording it segments."""

    name: str

    def score_stream(self) -> ScoreStream:
        """A fresh per-recording stream (its state starts empty)."""
        ...


@dataclass(frozen=True)
class Frames:
    """Consecutive scored frames as a profile receives them (the next ones after the last)."""

    scores: np.ndarray  # float32 speech score per frame
    samples_seen: int  # samples fed to the engine when these frames came out


class FrameStream(Protocol):
    """A score stream that hands profiles `Frames` (an engine may add its own fields)."""

    def feed_frames(self, samples: np.ndarray) -> Frames:
        """The frames completed by this block of samples."""
        ...

    def finish_frames(self) -> Frames:
        """The frames still pending at the end of the recording."""
        ...


class ScoresOnly:
    """A plain `ScoreStream` as a `FrameStream`: scores, and the samples counted here."""

    def __init__(self, stream: ScoreStream):
        self.stream = stream
        self.samples = 0

    def feed_frames(self, samples: np.ndarray) -> Frames:
        """Scores of this block, with the running sample count."""
        self.samples += len(samples)
        return Frames(self.stream.feed(samples), self.samples)

    def finish_frames(self) -> Frames:
        """The last scores."""
        return Frames(self.stream.finish(), self.samples)


def frame_stream(stream: ScoreStream) -> FrameStream:
    """The stream itself if it hands out its own `Frames`, else its scores wrapped."""
    return stream if hasattr(stream, "feed_frames") else ScoresOnly(stream)
