"""The FSMN network on onnxruntime, streamed like fsmn_network.py but without torch (small boxes).

The ONNX graph (`segmenter export-onnx`) takes features and each FSMN layer's memory and returns
posteriors and the new memories, so the memory is carried here exactly as in the torch runtime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def onnx_hint() -> str:
    """What to do where onnxruntime, a core dependency, cannot be imported."""
    from ..install import install_line

    return f"the onnx runtime needs onnxruntime, which comes with segmenter: {install_line()}"


def import_onnxruntime():
    """The onnxruntime module; ImportError with the pip install hint where it is missing."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"{onnx_hint()} ({exc})") from None
    return onnxruntime


def load_session(path: Path | bytes, threads: int | None = 1):
    """An onnxruntime CPU session of a file or a serialized graph; `threads` intra-op threads
    (None: onnxruntime's default)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    graph = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


class OnnxStream:
    """Runs the ONNX network over consecutive feature batches, carrying the FSMN memory."""

    def __init__(self, session, sil_pdf_ids: tuple[int, ...]):
        self.session = session
        self.sil_pdf_ids = list(sil_pdf_ids)
        inputs = session.get_inputs()
        self.feats_name = inputs[0].name
        self.state_names = [i.name for i in inputs[1:]]
        self.state = [np.zeros(i.shape, np.float32) for i in inputs[1:]]

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """Silence posteriors (T, len(sil_pdf_ids)) float32 for features (T, dim)."""
        if len(feats) == 0:
            return np.zeros((0, len(self.sil_pdf_ids)), np.float32)
        feed = {self.feats_name: feats, **dict(zip(self.state_names, self.state, strict=True))}
        posteriors, *self.state = self.session.run(None, feed)
        return posteriors[:, self.sil_pdf_ids]
