"""What every decoder shares: the stream type, the file's description, AudioError, and the
limits that keep a read's memory bounded whatever a header claims."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EXIT_FAILED, SegmenterError

SAMPLE_RATE = 16000

# a read holds at most this many samples of the source (frames x channels), and gives at most
# this many output samples: 10 s of 16 kHz mono, whatever rate and channels a header claims
BLOCK_SAMPLES = 10 * SAMPLE_RATE
MIN_RATE, MAX_RATE = 1000, 768_000  # Hz: beyond these a header is damaged or hostile
MAX_CHANNELS = 64


class AudioError(SegmenterError):
    """A file that cannot be decoded; the message is one line that says why."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class AudioInfo:
    """What the source file is; times stay in its own time base."""

    path: str
    duration: float
    sample_rate: int
    channels: int
    format: str  # container and codec, e.g. "WAV PCM_16", "mov,mp4,m4a aac"


class AudioStream:
    """Yields 16 kHz mono float32 blocks of a recording; use as a context manager."""

    info: AudioInfo

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError


def check_header(path: Path, rate: int, channels: int) -> None:
    """A sample rate or channel count no recording has fails the file before it is read: a
    damaged or hostile header, whose claims would otherwise size the decoder's buffers."""
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(
            f"{path}: its header claims a sample rate of {rate} Hz (damaged? this reads"
            f" {MIN_RATE} to {MAX_RATE} Hz)"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(
            f"{path}: its header claims {channels} channels (damaged? this reads 1 to"
            f" {MAX_CHANNELS})"
        )


def block_frames(rate: int, channels: int, block_seconds: float = 10.0) -> int:
    """Frames per read: `block_seconds` of the source, but never more than BLOCK_SAMPLES
    samples of it (frames x channels) nor more frames than resample to BLOCK_SAMPLES output
    samples, so a read's memory does not grow with what a header claims."""
    by_time = int(block_seconds * rate)
    return max(1, min(by_time, BLOCK_SAMPLES // channels, BLOCK_SAMPLES * rate // SAMPLE_RATE))


def check_channel(path: Path, channel: int | None, channels: int) -> None:
    """A `--channel` the recording has (channels count from 0); AudioError naming its own."""
    if channel is not None and not 0 <= channel < channels:
        raise AudioError(f"{path}: no channel {channel}: it has {channel_numbers(channels)}")


def channel_numbers(channels: int) -> str:
    """The channels a recording has, as --channel numbers them (from 0)."""
    if channels < 2:
        return "one channel, 0 (mono)" if channels == 1 else "no channel it can name"
    if channels == 2:
        return "channels 0 and 1 (they count from 0)"
    return f"channels 0 to {channels - 1} (they count from 0)"
