"""libsndfile (through soundfile) block reads, mixed down or one channel, resampled by soxr as a
stream; libmpg123's chatter about a damaged MP3 kept off the terminal."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .common import (
    SAMPLE_RATE,
    AudioError,
    AudioInfo,
    AudioStream,
    block_frames,
    check_channel,
    check_header,
)

# what libmpg123 prints about an MP3 (inside libsndfile, straight to fd 2)
MPG123_CHATTER = re.compile(rb"^(Warning|Note|Error): |^\[[^\]]*mpg123[^\]]*\] ", re.MULTILINE)

log = logging.getLogger("segmenter.audio")
_FD2_SWAP = threading.Lock()  # held while fd 2 is away (see _mpg123_muted)


def _has_length_tag(path: Path) -> bool:
    """Whether an MP3's first frame is a Xing, Info or VBRI tag that gives its length.

    Without one libsndfile guesses the length from the first frame's bitrate and reads no
    further: a VBR file can lose most of its audio (16.5 s of 60 s measured), silently.
    """
    with open(path, "rb") as fh:
        head = fh.read(10)
        if head[:3] == b"ID3" and len(head) == 10:  # skip an ID3v2 tag (sizes are 7-bit)
            size = sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))
            fh.seek(10 + size + (10 if head[5] & 0x10 else 0))
        else:
            fh.seek(0)
        data = fh.read(1 << 14)
    sync = next((i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] >= 0xE0), None)
    first_frame = data[sync : sync + 200] if sync is not None else b""
    return any(tag in first_frame for tag in (b"Xing", b"Info", b"VBRI"))


@contextmanager
def _mpg123_muted() -> Iterator[None]:
    """libmpg123 (inside libsndfile) prints warnings about a damaged MP3 straight to fd 2.

    For the length of the call fd 2 goes to a temporary file. libmpg123's lines go to the
    debug log (what matters about the file, such as where it ends, is checked here and
    reported); anything else, another thread's output or a real error, goes back to stderr.
    One thread at a time: two interleaved swaps of fd 2 could leave it on a deleted file.
    """
    with _FD2_SWAP, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured = sink.read()
    for line in captured.splitlines(keepends=True):
        if MPG123_CHATTER.match(line):
            log.debug("libmpg123: %s", line.decode("utf-8", "replace").strip())
        else:
            os.write(2, line)


class SoundFileStream(AudioStream):
    """libsndfile block reads, mixed down or one channel, resampled by soxr as a stream."""

    def __init__(
        self,
        path: Path,
        handle: sf.SoundFile,
        channel: int | None,
        block_seconds: float,
        exact_length: bool = True,
    ):
        self.path, self._file, self._channel = path, handle, channel
        self._exact = exact_length  # False: the length is libsndfile's guess, not the header's
        f = handle
        self.info = AudioInfo(
            str(path), f.frames / f.samplerate, f.samplerate, f.channels, f"{f.format} {f.subtype}"
        )
        try:
            check_header(path, f.samplerate, f.channels)
            check_channel(path, channel, f.channels)
        except AudioError:
            self.close()
            raise
        if f.frames == 0:
            self.close()
            raise AudioError(f"{path}: no audio samples")
        self._block = block_frames(f.samplerate, f.channels, block_seconds)
        self._muted = _mpg123_muted if f.format == "MP3" else nullcontext

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        rate = self._file.samplerate
        resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(rate, SAMPLE_RATE, 1)
        channels = self._file.channels
        mean = np.full(channels, 1.0 / channels, np.float32)  # a product: 7x faster than .mean
        for block in self._blocks():
            if self._channel is not None or channels == 1:
                mono = np.ascontiguousarray(block[:, self._channel or 0])
            else:
                mono = block @ mean
            yield mono if resampler is None else resampler.resample_chunk(mono)
        if resampler is not None:
            yield resampler.resample_chunk(np.zeros(0, np.float32), last=True)

    def _blocks(self) -> Iterator[np.ndarray]:
        """The frames libsndfile really decodes, until the length its header declares.

        Not `SoundFile.blocks`: past the real end of a cut MP3 that one yields its last buffer
        again and again, which would be segmented as audio that is not there. Where the length
        was only guessed, a shorter stream is the true length, not a failure.
        """
        read, frames, rate = 0, self._file.frames, self._file.samplerate
        try:
            while read < frames:
                want = min(self._block, frames - read)
                with self._muted():
                    block = self._file.read(want, dtype="float32", always_2d=True)
                if not len(block):
                    break
                read += len(block)
                yield block
        except (sf.LibsndfileError, RuntimeError) as exc:
            reason = str(exc).rstrip(".")
            raise AudioError(
                f"{self.path}: decoding stopped ({reason}): damaged, or changed while being read"
            ) from None
        if read < frames and not self._exact:
            self.info = dataclasses.replace(self.info, duration=read / rate)
        elif read < frames:
            raise AudioError(
                f"{self.path}: file ended early: it ends at {read / rate:.2f} s of the"
                f" {frames / rate:.2f} s its header declares (truncated, damaged, or changed"
                " while being read)"
            )
