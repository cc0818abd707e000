"""segmenter: batch long-audio speech segmentation with FunASR's FSMN-VAD."""

import os

# onnxruntime (1.29 and later, outside Windows) keeps a device id and a cache of usage events
# under ~/.cache/Microsoft for upload, and runs a thread for it from its import on: off in every
# process of ours (workers inherit it) unless the user set the variable. It is read once, when
# onnxruntime loads, so it is set before anything here can import it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# the distribution's version (pyproject.toml reads it from here): a literal, so that no process
# pays for importlib.metadata to know it
__version__ = "0.1.0"
