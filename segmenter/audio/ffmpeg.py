"""ffmpeg decoding for every format libsndfile does not read (M4A/AAC, WMA, AMR, video): 16 kHz
mono 16-bit samples through a pipe; the subprocess never outlives its reader, its stderr is
drained as it writes, and a watchdog kills it when it gives no sample for DECODER_STALL_S."""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import select
import subprocess
import threading
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .common import (
    BLOCK_SAMPLES,
    SAMPLE_RATE,
    AudioError,
    AudioInfo,
    AudioStream,
    check_channel,
    check_header,
)

FFMPEG_HINT = "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)"
DECODER_STALL_S = 60.0  # ffmpeg/ffprobe giving nothing for this long is killed, the file failed
STDERR_TAIL = 1 << 14  # bytes of ffmpeg's stderr kept for the reason it failed


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
        self._ffmpeg = which("ffmpeg")
        if self._ffmpeg is None:
            raise AudioError(
                f"{path}: libsndfile cannot read it ({why}) and ffmpeg is missing: {FFMPEG_HINT}"
            )
        stream = self._probe(why)
        channels = int(stream.get("channels") or 0)
        check_header(path, int(stream.get("sample_rate") or 0), channels)
        check_channel(path, channel, channels)
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
        ffprobe = which("ffprobe") or str(Path(self._ffmpeg).with_name("ffprobe"))
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


def which(program: str) -> str | None:
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
