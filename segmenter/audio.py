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
"""

from __future__ import annotations

import atexit
import dataclasses
import errno
import json
import logging
import os
import re
import select
import struct
import subprocess
import sys
import tempfile
import threading
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
FFMPEG_HINT = "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)"
# what libmpg123 prints about an MP3 (inside libsndfile, straight to fd 2)
MPG123_CHATTER = re.compile(rb"^(Warning|Note|Error): |^\[[^\]]*mpg123[^\]]*\] ", re.MULTILINE)

# a read holds at most this many samples of the source (frames x channels), and gives at most
# this many output samples: 10 s of 16 kHz mono, whatever rate and channels a header claims
BLOCK_SAMPLES = 10 * SAMPLE_RATE
MIN_RATE, MAX_RATE = 1000, 768_000  # Hz: beyond these a header is damaged or hostile
MAX_CHANNELS = 64
DECODER_STALL_S = 60.0  # ffmpeg/ffprobe giving nothing for this long is killed, the file failed
STDERR_TAIL = 1 << 14  # bytes of ffmpeg's stderr kept for the reason it failed

log = logging.getLogger("segmenter.audio")
_FD2_SWAP = threading.Lock()  # held while fd 2 is away (see _mpg123_muted)


class AudioError(Exception):
    """A file that cannot be decoded; the message is one line that says why."""


@dataclass(frozen=True)
class AudioInfo:
    """What the source file is; times stay in its own time base."""

    path: str
    duration: float
    sample_rate: int
    channels: int
    format: str  # container and codec, e.g. "WAV PCM_16", "mov,mp4,m4a aac"


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
    if guessed and _which("ffmpeg"):
        handle.close()  # libsndfile would stop at its guess of the length
        return FfmpegStream(path, channel, block_seconds, "an MP3 without a length tag")
    return SoundFileStream(path, handle, channel, block_seconds, exact_length=not guessed)


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
            _check_channel(path, channel, f.channels)
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


def _check_channel(path: Path, channel: int | None, channels: int) -> None:
    """A `--channel` the recording has (channels count from 0); AudioError naming its own."""
    if channel is not None and not 0 <= channel < channels:
        raise AudioError(f"{path}: no channel {channel}: it has {_channel_numbers(channels)}")


def _channel_numbers(channels: int) -> str:
    """The channels a recording has, as --channel numbers them (from 0)."""
    if channels < 2:
        return "one channel, 0 (mono)" if channels == 1 else "no channel it can name"
    if channels == 2:
        return "channels 0 and 1 (they count from 0)"
    return f"channels 0 to {channels - 1} (they count from 0)"


_LIVE: weakref.WeakSet[FfmpegStream] = weakref.WeakSet()


@atexit.register
def _kill_live_ffmpeg() -> None:
    for stream in list(_LIVE):
        stream.close()


class FfmpegStream(AudioStream):
    """ffmpeg decoding to 16 kHz mono s16le through a pipe; killed on close, error, exit, or
    when it gives no sample for DECODER_STALL_S (a hung decoder fails the file, saying so)."""

    def __init__(self, path: Path, channel: int | None, block_seconds: float, why: str):
        self.path, self._proc, self._stderr = path, None, None
        self._ffmpeg = _which("ffmpeg")
        if self._ffmpeg is None:
            raise AudioError(
                f"{path}: libsndfile cannot read it ({why}) and ffmpeg is missing: {FFMPEG_HINT}"
            )
        stream = self._probe(why)
        channels = int(stream.get("channels") or 0)
        check_header(path, int(stream.get("sample_rate") or 0), channels)
        _check_channel(path, channel, channels)
        duration = float(stream.get("duration") or self._format.get("duration") or 0.0)
        self.info = AudioInfo(
            str(path),
            duration,
            int(stream.get("sample_rate") or 0),
            channels,
            f"{self._format.get('format_name', '?')} {stream.get('codec_name')}",
        )
        self._mix = _pan(channels, channel)
        self._block_bytes = 2 * min(BLOCK_SAMPLES, max(1, int(block_seconds * SAMPLE_RATE)))

    def _probe(self, why: str) -> dict:
        """ffprobe's description of the first audio stream; AudioError if there is none."""
        ffprobe = _which("ffprobe") or str(Path(self._ffmpeg).with_name("ffprobe"))
        cmd = [ffprobe, "-v", "error", "-print_format", "json", "-show_streams", "-show_format"]
        cmd += ["-select_streams", "a:0"]
        try:
            out = subprocess.run(
                [*cmd, str(self.path)], capture_output=True, timeout=DECODER_STALL_S
            )
        except subprocess.TimeoutExpired:
            raise AudioError(
                f"{self.path}: ffprobe gave no answer in {DECODER_STALL_S:g} s: killed"
            ) from None
        except OSError as exc:
            raise AudioError(f"{self.path}: cannot probe with ffprobe ({exc})") from None
        if out.returncode != 0:
            raise AudioError(
                f"{self.path}: not a recognised audio format ({why}; "
                f"ffmpeg: {_last_line(out.stderr)})"
            )
        try:
            described = json.loads(out.stdout or b"{}")
        except ValueError:
            raise AudioError(f"{self.path}: ffprobe's description cannot be read") from None
        self._format = described.get("format", {})
        audio = [s for s in described.get("streams", []) if s.get("codec_type") == "audio"]
        if not audio:
            raise AudioError(f"{self.path}: no audio stream")
        if audio[0].get("codec_name") in (None, "none", "unknown"):
            tag = audio[0].get("codec_tag_string", "?")
            raise AudioError(f"{self.path}: unsupported audio codec (tag {tag})")
        return audio[0]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
        if proc is not None:
            proc.wait()
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.join()

    def __del__(self) -> None:
        self.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        cmd = [self._ffmpeg, "-nostdin", "-v", "error", "-i", str(self.path), "-map", "0:a:0"]
        cmd += ["-af", self._mix, "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._stderr = StderrTail(self._proc.stderr)
        _LIVE.add(self)
        try:
            yield from self._read(self._proc)
        finally:
            self.close()

    def _read(self, proc: subprocess.Popen) -> Iterator[np.ndarray]:
        total, carry = 0, b""
        while chunk := self._next_block(proc):
            data, carry = carry + chunk, b""
            if len(data) % 2:
                data, carry = data[:-1], data[-1:]
            total += len(data) // 2
            yield np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        code = proc.wait()
        if code != 0:
            self._stderr.join()
            reason = self._stderr.last_line() or f"exit status {code}"
            raise AudioError(f"{self.path}: ffmpeg failed while decoding ({reason})")
        if total == 0:
            raise AudioError(f"{self.path}: no audio samples")
        # the probed duration is the container's claim (or a bitrate estimate): keep what decoded
        self.info = dataclasses.replace(self.info, duration=total / SAMPLE_RATE)

    def _next_block(self, proc: subprocess.Popen) -> bytes:
        """Up to a block of ffmpeg's output, b"" at its end. Only the time spent waiting for
        ffmpeg counts toward the watchdog, not the time the caller takes between blocks."""
        fd, block = proc.stdout.fileno(), bytearray()
        while len(block) < self._block_bytes:
            ready, _, _ = select.select([fd], [], [], DECODER_STALL_S)
            if not ready:
                proc.kill()
                self._stderr.join()
                said = self._stderr.last_line()
                raise AudioError(
                    f"{self.path}: the decoder (ffmpeg) made no progress for"
                    f" {DECODER_STALL_S:g} s: killed" + (f" ({said})" if said else "")
                )
            chunk = os.read(fd, self._block_bytes - len(block))
            if not chunk:
                break
            block += chunk
        return bytes(block)


class StderrTail:
    """A thread draining a subprocess's stderr as it writes (a full pipe would block the
    process, and with it its reader), keeping the last STDERR_TAIL bytes for the reason."""

    def __init__(self, pipe):
        self.pipe, self.tail = pipe, b""
        self.thread = threading.Thread(target=self._drain, name="ffmpeg-stderr", daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        with self.pipe:
            while chunk := self.pipe.read1(1 << 16):
                self.tail = (self.tail + chunk)[-STDERR_TAIL:]

    def join(self) -> None:
        """Wait for the pipe's end (the process exited or was killed)."""
        self.thread.join()

    def last_line(self) -> str:
        return _last_line(self.tail)


def _which(program: str) -> str | None:
    """Find a program on PATH the way pydub finds ffmpeg."""
    with warnings.catch_warnings():  # pydub imports audioop, deprecated in Python 3.12
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # "Couldn't find ffmpeg": ours says it
        from pydub.utils import which

    return which(program)


def _pan(channels: int, channel: int | None) -> str:
    """ffmpeg filter for one channel, or the plain mean of all of them."""
    if channel is not None:
        return f"pan=mono|c0=c{channel}"
    if channels <= 1:
        return "pan=mono|c0=c0"
    weight = 1.0 / channels
    return "pan=mono|c0=" + "+".join(f"{weight:.6f}*c{i}" for i in range(channels))


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""
