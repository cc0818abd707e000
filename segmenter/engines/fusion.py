"""The fused engine: FSMN's and silero-vad's scores of the same 10 ms frames, combined.

Both engines score frame i as the 10 ms from sample 160 i; they give their frames out at
different moments (FSMN in feature batches, silero per 32 ms window), so the stream keeps the
frames one engine has scored and the other not yet, and hands out each frame once both have it.
That buffer is bounded by what one block gives (plus one feature batch or window), and the
output does not depend on the block sizes. At the end of a recording FSMN's last frames (its
25 ms window does not fit) are missing; those frames take silero's score alone.

The combination is the plain mean of the two scores. Chosen on the shared data: for each rule
(silero alone, means weighted 0.3/0.5/0.7 toward FSMN, max, min) bench/tune_precise.py's grid and
objective (the worst group's F1 with pooled recall >= 0.95, ranked by its mean over each point's
grid neighbours) ran on the combined scores. Top point's worst-group F1 / plateau: silero alone
0.931/0.929, FSMN weight 0.3 0.938/0.933, 0.5 0.940/0.934, 0.7 0.938/0.935, max 0.935/0.933,
min 0.931/0.928 (FSMN alone: 0.931, README). The means tie within 0.001 on the plateau; the even
one has the best point, and no weight to fit. A logistic combination fitted on the devset's
frames (both scores, their product, their means over +-100 ms), tuned the same way, did worse
on every group (README, "Profiles").
The precise profile's defaults for this engine come from the same grid (README, "Profiles").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import ScoreStream

FSMN_WEIGHT = 0.5  # the combined score is this x FSMN's + the rest x silero's


def combine(fsmn: np.ndarray, silero: np.ndarray) -> np.ndarray:
    """The fused score of frames both engines scored."""
    return (FSMN_WEIGHT * fsmn + (1 - FSMN_WEIGHT) * silero).astype(np.float32)


@dataclass
class FusionEngine:
    """Two loaded engines whose scores are combined frame by frame."""

    fsmn: object  # FsmnEngine
    silero: object  # SileroEngine
    name: str = field(default="fusion", init=False)

    def score_stream(self, primed: bool = False) -> FusionStream:
        """A fresh stream of each engine, joined (`primed`: FSMN's, see `Primed`)."""
        return FusionStream(self.fsmn.score_stream(primed=primed), self.silero.score_stream())


class FusionStream:
    """A `ScoreStream` of the combined scores; each engine's frames wait for the other's."""

    def __init__(self, fsmn: ScoreStream, silero: ScoreStream):
        self.streams = (fsmn, silero)
        self.pending = [np.zeros(0, np.float32), np.zeros(0, np.float32)]

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Combined scores of the frames both engines have now scored."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        return self._join([s.feed(samples) for s in self.streams], final=False)

    def finish(self) -> np.ndarray:
        """The remaining frames; where only one engine scored a frame, its score alone."""
        return self._join([s.finish() for s in self.streams], final=True)

    def _join(self, new: list[np.ndarray], final: bool) -> np.ndarray:
        """Append each engine's new frames; give out the ones both have (all of them if final)."""
        fsmn, silero = (np.concatenate([p, n]) for p, n in zip(self.pending, new, strict=True))
        both = min(len(fsmn), len(silero))
        out = combine(fsmn[:both], silero[:both])
        if final:
            out = np.concatenate([out, fsmn[both:], silero[both:]]).astype(np.float32)
            both = max(len(fsmn), len(silero))
        self.pending = [fsmn[both:], silero[both:]]
        return out
