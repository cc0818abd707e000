"""silero-vad as an engine: its model, bundled, on onnxruntime, one score per 10 ms frame.

silero-vad scores 32 ms windows (512 samples at 16 kHz); each window is seen with the 64 samples
before it (zeros before the first) and an LSTM state carried from window to window, and a last
partial window is zero-padded. From 6.2.2 silero-vad's package ships the same weights as a
"sequence" graph: the convolutional encoder, which is most of the work, runs on a batch of
windows at once and only the LSTM steps through them, so one onnxruntime call scores every whole
window of a block with the probabilities of silero-vad's own window-by-window loop. segmenter
ships that graph's weights (MIT; `models/silero-vad/`, SOURCE.md there) rewritten once, at build
time (`toolkit/silero_graph.py`), as matrix products over all windows: the STFT and the four
encoder convolutions, which onnxruntime runs slowly on images a few frames wide, become one product
each (about 3.5x faster than the published graph on one core; the LSTM is silero-vad's), and the
probabilities stay within 1e-4 of silero-vad's own (1.3e-5 at most on the shared realset and
devset). Neither silero-vad, torch nor onnx is needed to run it.

Frame i (10 ms, samples [160 i, 160 i + 160)) takes the probability of the window holding its
centre, sample 160 i + 80: window (160 i + 80) // 512. A frame is given out once it is whole and
its window is scored, so the scores do not depend on how the audio is cut into blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .base import FRAME_SAMPLES
from .model import ModelError, sha256_of

WINDOW = 512  # samples per window at 16 kHz
CONTEXT = 64  # samples of the previous window seen with each window
STATE_SHAPE = (1, 1, 128)  # LSTM hidden and cell state
CENTRE = FRAME_SAMPLES // 2  # a frame's score is the window's that holds this sample of it
MAX_WINDOWS = 512  # windows per onnxruntime call (16 s): bounds the memory a huge block takes
GRAPH = "model.onnx"  # in segmenter/models/silero-vad/, made by segmenter.toolkit.silero_graph
UPSTREAM_VERSION = "6.2.3"  # the silero-vad release whose graph that is (SOURCE.md)


def bundled_dir() -> Path:
    """The silero-vad folder shipped inside the package (graph, LICENSE, SOURCE.md)."""
    return Path(str(resources.files("segmenter") / "models" / "silero-vad"))


def model_path() -> Path:
    """The shipped graph; ModelError if an install lost it (package data left out)."""
    path = bundled_dir() / GRAPH
    if not path.is_file():
        from ..install import install_line

        raise ModelError(f"the silero engine: {path} is missing; reinstall: {install_line()}")
    return path


class WindowScorer:
    """silero-vad's per-window speech probabilities of one recording, fed in blocks of any size."""

    def __init__(self, session: Any):
        self.session = session
        self.pending = np.zeros(0, np.float32)  # under one window, waiting for the rest
        self.context = np.zeros(CONTEXT, np.float32)
        self.hidden = np.zeros(STATE_SHAPE, np.float32)
        self.cell = np.zeros(STATE_SHAPE, np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the windows this block completes."""
        joined = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        whole = len(joined) - len(joined) % WINDOW
        self.pending = joined[whole:].copy()
        step = MAX_WINDOWS * WINDOW
        runs = [self._run(joined[i : min(i + step, whole)]) for i in range(0, whole, step)]
        return np.concatenate(runs) if runs else np.zeros(0, np.float32)

    def finish(self) -> np.ndarray:
        """Probability of the last partial window, zero-padded as silero-vad pads it (or none)."""
        if not len(self.pending):
            return np.zeros(0, np.float32)
        window = np.zeros(WINDOW, np.float32)
        window[: len(self.pending)] = self.pending
        self.pending = np.zeros(0, np.float32)
        return self._run(window)

    def _run(self, samples: np.ndarray) -> np.ndarray:
        """One call over whole windows: each with its context, the LSTM state carried on."""
        windows = samples.reshape(-1, WINDOW)
        batch = np.empty((len(windows), CONTEXT + WINDOW), np.float32)
        batch[:, CONTEXT:] = windows
        batch[0, :CONTEXT] = self.context
        batch[1:, :CONTEXT] = windows[:-1, -CONTEXT:]
        self.context = windows[-1, -CONTEXT:].copy()
        feed = {"input": batch, "h": self.hidden, "c": self.cell}
        probabilities, self.hidden, self.cell = self.session.run(None, feed)
        return probabilities


class SileroStream:
    """A `ScoreStream`: silero-vad's window probabilities spread over 10 ms frames."""

    def __init__(self, session: Any):
        self.windows = WindowScorer(session)
        self.samples = 0  # fed so far
        self.frames = 0  # frames given out so far
        self.first = 0  # index of the first window in `scored`
        self.scored = np.zeros(0, np.float32)  # window probabilities some frame still needs

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Scores of the frames that are whole and whose window is scored."""
        self.samples += len(samples)
        return self._frames(self.windows.feed(samples))

    def finish(self) -> np.ndarray:
        """Scores of the remaining whole frames: n // 160 frames in all for n samples."""
        return self._frames(self.windows.finish())

    def _frames(self, new: np.ndarray) -> np.ndarray:
        """Frames that the `new` window probabilities complete; keep the windows still needed."""
        self.scored = np.concatenate([self.scored, new])
        known = (self.first + len(self.scored)) * WINDOW  # samples covered by scored windows
        # frame i is ready when whole and its centre 160 i + 80 lies before `known`
        ready = min((known + CENTRE - 1) // FRAME_SAMPLES, self.samples // FRAME_SAMPLES)
        centres = np.arange(self.frames, ready) * FRAME_SAMPLES + CENTRE
        scores = self.scored[centres // WINDOW - self.first]
        self.frames = ready
        keep = (self.frames * FRAME_SAMPLES + CENTRE) // WINDOW  # the next frame's window
        self.scored = self.scored[keep - self.first :]
        self.first = keep
        return scores


@dataclass
class SileroEngine:
    """silero-vad's model on onnxruntime: load once per process, one stream per recording."""

    session: Any
    path: Path
    version: str
    sha256: str = ""  # of the graph file, for the per-file document
    name: str = field(default="silero", init=False)

    @classmethod
    def load(cls, threads: int | None = 1) -> SileroEngine:
        """Open the shipped graph with `threads` intra-op threads."""
        from .fsmn_onnx import load_session

        path = model_path()
        return cls(load_session(path, threads), path, UPSTREAM_VERSION, sha256_of(path))

    def info(self) -> dict[str, str]:
        """What the per-file document says of this model: package version and graph checksum."""
        return {
            "engine": self.name,
            "name": f"silero-vad {self.version}",
            "sha256": self.sha256,
            "precision": "fp32",
            "runtime": "onnx",
        }

    def score_stream(self, primed: bool = False) -> SileroStream:
        """A fresh stream: zero context and LSTM state, as silero-vad starts a recording, primed
        or not: from its zero start it scores noise as noise (no segment in 60 s of noise at
        any level, tests/test_precise.py), and a mirrored start measured no better."""
        return SileroStream(self.session)
