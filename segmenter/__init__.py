"""segmenter: batch long-audio speech segmentation with FunASR's FSMN-VAD."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fsmn-segmenter")  # the distribution's name (install.py says why)
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
