"""silero-vad as an engine: the model its PyPI package ships, on onnxruntime, one score per 10 ms.

silero-vad scores 32 ms windows (512 samples at 16 kHz); each window is seen with the 64 samples
before it (zeros before the first) and an LSTM state carried from window to window, and a last
partial window is zero-padded. From 6.2.2 the package ships the same weights as a "sequence"
graph: the convolutional encoder, which is most of the work, runs on a batch of windows at once
and only the LSTM steps through them, so one onnxruntime call scores every whole window of a block
with the probabilities of silero-vad's own window-by-window loop. Its 1-D convolutions are then
loaded as 2-D ones of height 1 with input channels padded to a multiple of 8, which onnxruntime
runs on its blocked (NCHWc) kernels: about 3x faster on one core, and the probabilities stay
within 1e-4 of silero-vad's own (1.4e-5 at most on the shared realset and devset).

Frame i (10 ms, samples [160 i, 160 i + 160)) takes the probability of the window holding its
centre, sample 160 i + 80: window (160 i + 80) // 512. A frame is given out once it is whole and
its window is scored, so the scores do not depend on how the audio is cut into blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.util import find_spec
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
GRAPH = "silero_vad_16k_sequence.onnx"
HEIGHT = "height_axis"  # the axis a 1-D convolution's input gains to become 2-D


def model_path() -> Path:
    """The sequence graph inside the installed silero-vad package, found without importing it."""
    from ..install import extra_hint

    for package in ("silero_vad", "onnxruntime", "onnx"):
        if find_spec(package) is None:
            what = f"the silero engine (the {package} package)"
            raise ModelError(extra_hint("silero", what))
    (folder,) = find_spec("silero_vad").submodule_search_locations
    path = Path(folder) / "data" / GRAPH
    if not path.is_file():
        from importlib.metadata import version

        what = f"silero-vad {version('silero-vad')} has no {GRAPH}: the silero engine"
        raise ModelError(extra_hint("silero", what) + " (silero-vad >= 6.2.2)")
    return path


def blocked_graph(path: Path) -> bytes:
    """The graph at `path` with every 1-D convolution made one onnxruntime runs blocked (NCHWc)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {w.name: w for w in graph.initializer}
    graph.initializer.append(numpy_helper.from_array(np.array([2], np.int64), HEIGHT))
    nodes = []
    for node in graph.node:
        nodes += _conv_2d(node, graph, weights) if node.op_type == "Conv" else [node]
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString()


def _conv_2d(node: Any, graph: Any, weights: dict[str, Any]) -> list[Any]:
    """A 1-D Conv node as Unsqueeze, zero channel padding to a multiple of 8, 2-D Conv, Squeeze."""
    from onnx import helper, numpy_helper

    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    weight = numpy_helper.to_array(weights[node.input[1]])  # (out, in, kernel)
    group = attributes.get("group", 1)
    extra = -weight.shape[1] % 8 if weight.shape[1] > 1 and group == 1 else 0
    weight = np.pad(weight, ((0, 0), (0, extra), (0, 0)))[:, :, None, :]
    graph.initializer.remove(weights[node.input[1]])
    graph.initializer.append(numpy_helper.from_array(weight, f"{node.name}/weight_2d"))
    tall = f"{node.name}/input_2d"
    nodes = [helper.make_node("Unsqueeze", [node.input[0], HEIGHT], [tall])]
    if extra:
        pads = f"{node.name}/channel_pads"
        widths = np.array([0, 0, 0, 0, 0, extra, 0, 0], np.int64)  # begins, ends of N C H T
        graph.initializer.append(numpy_helper.from_array(widths, pads))
        nodes.append(helper.make_node("Pad", [tall, pads], [f"{tall}_padded"]))
        tall = f"{tall}_padded"
    (kernel,), (stride,) = attributes["kernel_shape"], attributes.get("strides", [1])
    (dilation,), (before, after) = attributes.get("dilations", [1]), attributes.get("pads", [0, 0])
    conv = helper.make_node(
        "Conv",
        [tall, f"{node.name}/weight_2d", *node.input[2:]],
        [f"{node.name}/output_2d"],
        kernel_shape=[1, kernel],
        strides=[1, stride],
        pads=[0, before, 0, after],
        dilations=[1, dilation],
        group=group,
    )
    squeeze = helper.make_node("Squeeze", [f"{node.name}/output_2d", HEIGHT], list(node.output))
    return [*nodes, conv, squeeze]


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
        """Open the graph of the installed silero-vad with `threads` intra-op threads."""
        from importlib.metadata import version

        from .fsmn_onnx import load_session

        path = model_path()
        session = load_session(blocked_graph(path), threads)
        return cls(session, path, version("silero-vad"), sha256_of(path))

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
