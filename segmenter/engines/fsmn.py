"""The FSMN-VAD engine: FunASR's front end and FSMN network, streamed, as per-frame scores.

The speech score of a frame is 1 - the network's silence posterior. Its `Frames` also carry the
silence posteriors and the frame energies (dB), which FunASR's state machine (the `funasr`
profile) reads; other profiles read only the scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .base import Frames, Primed
from .fsmn_features import FeatureStream, FrontendConfig

# feature batch (T, dim) -> silence posteriors (T, len(sil_pdf_ids)); carries the FSMN memory
Network = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FsmnFrames(Frames):
    """FSMN frames: the scores, and what FunASR's decision needs besides them."""

    sil_posteriors: np.ndarray  # (frames, len(sil_pdf_ids)) float32
    decibels: np.ndarray  # frame energy, FunASR's definition


class FsmnEngine:
    """A loaded FSMN-VAD model (front end settings, CMVN and a network on some runtime)."""

    name = "fsmn"

    def __init__(
        self,
        frontend: FrontendConfig,
        cmvn: np.ndarray,
        network: Callable[[tuple[int, ...]], Network],
        sil_pdf_ids: tuple[int, ...],
    ):
        self.frontend, self.cmvn = frontend, cmvn
        self.network, self.sil_pdf_ids = network, sil_pdf_ids

    def score_stream(
        self, sil_pdf_ids: tuple[int, ...] | None = None, primed: bool = False
    ) -> FsmnStream | Primed:
        """A fresh per-recording stream (empty front end, zero FSMN memory; `primed`: the
        memory filled by the recording's mirrored first second, scores alone, see `Primed`)."""
        stream = FsmnStream(self, sil_pdf_ids or self.sil_pdf_ids)
        return Primed(stream) if primed else stream


class FsmnStream:
    """Samples in, `FsmnFrames` out; the features come in fixed batches, so the frames do not
    depend on the block sizes."""

    def __init__(self, engine: FsmnEngine, sil_pdf_ids: tuple[int, ...]):
        self.features = FeatureStream(engine.frontend, engine.cmvn)
        self.network = engine.network(sil_pdf_ids)
        self.width = len(sil_pdf_ids)
        self.samples = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech scores of the frames this block completed."""
        return self.feed_frames(samples).scores

    def finish(self) -> np.ndarray:
        """Speech scores of the last frames."""
        return self.finish_frames().scores

    def feed_frames(self, samples: np.ndarray) -> FsmnFrames:
        """The frames this block completed, with posteriors and energies."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.samples += len(samples)
        return self._run(self.features.accept(samples))

    def finish_frames(self) -> FsmnFrames:
        """The frames still in the front end at the end of the recording."""
        return self._run(self.features.finish())

    def _run(self, batches: list[tuple[np.ndarray, np.ndarray]]) -> FsmnFrames:
        """The network over each feature batch, the batches joined."""
        if not batches:
            empty = np.zeros((0, self.width), np.float32)
            return FsmnFrames(np.zeros(0, np.float32), self.samples, empty, np.zeros(0))
        posteriors = [self.network(feats) for feats, _ in batches]
        sil = posteriors[0] if len(posteriors) == 1 else np.concatenate(posteriors)
        decibels = np.concatenate([db for _, db in batches])
        return FsmnFrames(1.0 - sil.sum(axis=1), self.samples, sil, decibels)
