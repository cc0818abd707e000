"""segmenter: batch long-audio speech segmentation with FunASR's FSMN-VAD."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("segmenter")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
