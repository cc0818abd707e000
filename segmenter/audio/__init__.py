"""Audio decoding: any recording an archive holds to 16 kHz mono float32 blocks, never whole.

libsndfile (through soundfile) reads WAV/RF64/W64, FLAC, Ogg Vorbis/Opus, MP3 and more in
blocks, and soxr resamples them as a stream. Everything else (M4A/AAC, WMA, AMR, video files)
goes through an ffmpeg subprocess that streams 16 kHz mono 16-bit samples through a pipe; the
subprocess never outlives its reader, its stderr is drained as it writes (a damaged file can make
it print megabytes), and a watchdog kills it when it gives no sample for DECODER_STALL_S. Times
stay in the recording's own time base: both paths drop encoder delay and padding (MP3 LAME tags,
AAC edit lists).

Memory is bounded whatever a header claims: a read holds at most BLOCK_SAMPLES samples (all
channels counted) and yields at most as many output samples, and rates or channel counts no
recording has (MAX_RATE, MAX_CHANNELS) fail the file before anything is read.

The rooms: `common` (the stream type, AudioError, the limits), `libsndfile` (SoundFileStream),
`ffmpeg` (FfmpegStream); `open_audio` here picks one after the checks no decoder is needed for.
"""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import soundfile as sf

from .common import (
    BLOCK_SAMPLES,
    MAX_CHANNELS,
    MAX_RATE,
    MIN_RATE,
    SAMPLE_RATE,
    AudioError,
    AudioInfo,
    AudioStream,
    block_frames,
    check_channel,
    check_header,
)
from .ffmpeg import DECODER_STALL_S, FFMPEG_HINT, STDERR_TAIL, FfmpegStream, StderrTail, which
from .libsndfile import MPG123_CHATTER, SoundFileStream, _has_length_tag, _mpg123_muted


def open_audio(
    path: str | os.PathLike, *, channel: int | None = None, block_seconds: float = 10.0
) -> AudioStream:
    """Open a recording for streaming decode; raises AudioError with the reason if it cannot."""
    path = Path(path)
    _check_file(path)
    try:
        with _mpg123_muted():
            handle = sf.SoundFile(os.fsencode(path))  # bytes: any name a filesystem holds
    except (sf.LibsndfileError, RuntimeError) as exc:
        libsndfile_reason = str(exc).split(": ", 1)[-1].rstrip(".")
        if "data' chunk" in libsndfile_reason or "truncated" in libsndfile_reason.lower():
            raise AudioError(f"{path}: truncated WAV header ({libsndfile_reason})") from None
        return FfmpegStream(path, channel, block_seconds, libsndfile_reason)
    guessed = handle.format == "MP3" and not _has_length_tag(path)
    if guessed and which("ffmpeg"):
        handle.close()  # libsndfile would stop at its guess of the length
        return FfmpegStream(path, channel, block_seconds, "an MP3 without a length tag")
    return SoundFileStream(path, handle, channel, block_seconds, exact_length=not guessed)


def _check_file(path: Path) -> None:
    """The reasons a path is not a recording that need no decoder to tell."""
    _check_link(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.exists() and not path.is_file():  # a FIFO or device would block or never end
        raise AudioError(f"{path}: not a regular file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None
    except OSError as exc:
        raise AudioError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not head:
        raise AudioError(f"{path}: empty file (0 bytes)")
    if _looks_like_text(head):
        raise AudioError(f"{path}: not audio (a text file)")
    _check_riff(path, head)


def _check_link(path: Path) -> None:
    """A symlink that leads nowhere, said as such: dangling, or a loop."""
    try:
        os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            target = os.readlink(path)
            raise AudioError(f"{path}: a symlink to {target}, which does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AudioError(f"{path}: a symlink loop (it leads back to itself)") from None


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _check_riff(path: Path, head: bytes) -> None:
    """A WAV whose data chunk claims more bytes than the file has was cut off."""
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"data":
            available = path.stat().st_size - pos - 8
            if 0 < size < 0xFFFFFFFF and size > available:  # 0 / max: written while recording
                raise AudioError(
                    f"{path}: truncated WAV: data chunk declares {size} bytes, file holds"
                    f" {available}"
                )
            return
        pos += 8 + size + (size & 1)


__all__ = [
    "BLOCK_SAMPLES",
    "DECODER_STALL_S",
    "FFMPEG_HINT",
    "MAX_CHANNELS",
    "MAX_RATE",
    "MIN_RATE",
    "MPG123_CHATTER",
    "SAMPLE_RATE",
    "STDERR_TAIL",
    "AudioError",
    "AudioInfo",
    "AudioStream",
    "FfmpegStream",
    "SoundFileStream",
    "StderrTail",
    "_mpg123_muted",
    "block_frames",
    "check_channel",
    "check_header",
    "open_audio",
    "which",
]
