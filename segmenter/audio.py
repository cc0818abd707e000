"""Audio decoding: any supported file to 16 kHz mono float32 blocks, never whole in memory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000


class AudioError(Exception):
    """A file that cannot be decoded; the message is one line that says why."""


@dataclass(frozen=True)
class AudioInfo:
    """What the source file is; times stay in its own time base."""

    path: str
    duration: float
    sample_rate: int
    channels: int
    format: str


class AudioStream:
    """Yields 16 kHz mono float32 blocks of a file; use as a context manager."""

    def __init__(self, path: str | os.PathLike, channel: int | None = None, block_seconds=10.0):
        self.path = os.fspath(path)
        try:
            self._file = sf.SoundFile(self.path)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(f"{self.path}: cannot read audio ({exc})") from None
        f = self._file
        self.info = AudioInfo(
            path=self.path,
            duration=f.frames / f.samplerate,
            sample_rate=f.samplerate,
            channels=f.channels,
            format=f"{f.format} {f.subtype}",
        )
        if channel is not None and not 0 <= channel < f.channels:
            raise AudioError(f"{self.path}: no channel {channel} (it has {f.channels})")
        self._channel = channel
        self._block = max(1, int(block_seconds * f.samplerate))

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        rate = self._file.samplerate
        resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1)
        for block in self._file.blocks(self._block, dtype="float32", always_2d=True):
            mono = block.mean(axis=1) if self._channel is None else block[:, self._channel]
            mono = np.ascontiguousarray(mono, dtype=np.float32)
            yield mono if resampler is None else resampler.resample_chunk(mono)
        if resampler is not None:
            yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)


def open_audio(
    path: str | os.PathLike, *, channel: int | None = None, block_seconds: float = 10.0
) -> AudioStream:
    """Open a recording for streaming decode to 16 kHz mono float32."""
    return AudioStream(path, channel=channel, block_seconds=block_seconds)
