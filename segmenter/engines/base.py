"""The seam every engine fits: 16 kHz mono samples in, one speech score per 10 ms frame out.

A profile (the decision) turns those scores into segments, so a new engine needs nothing but
this. Frame i covers [10 i, 10 i + 10) ms of the recording; scores are in [0, 1].
"""

from __future__ import annotations

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
