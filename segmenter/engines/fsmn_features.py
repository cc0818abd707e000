"""FunASR's front end, streamed: Kaldi fbank, LFR stacking, CMVN, and per-frame energy.

Frames are computed in fixed batches of `batch_frames`, so the output does not depend on how the
audio was cut into blocks (not even in the last bit of a float).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

LOG_FLOOR = np.finfo(np.float32).eps  # Kaldi floors mel energies at float epsilon
# Kaldi works on 16-bit sample values; scaling by 2**15 is exact, so it is applied to the power
# spectrum (2**30) through the mel weights instead of to every sample.
POWER_SCALE = float(2**30)


@dataclass(frozen=True)
class FrontendConfig:
    """The `frontend_conf` of config.yaml (only what FSMN-VAD's front end uses)."""

    fs: int = 16000
    window: str = "hamming"
    n_mels: int = 80
    frame_length: int = 25
    frame_shift: int = 10
    dither: float = 0.0
    lfr_m: int = 5
    lfr_n: int = 1

    @classmethod
    def from_config(cls, frontend_conf: dict[str, Any]) -> FrontendConfig:
        """Config from config.yaml; refuses front ends this implementation would get wrong."""
        fields = {k: frontend_conf[k] for k in cls.__dataclass_fields__ if k in frontend_conf}
        cfg = cls(**fields)
        if cfg.window != "hamming" or cfg.dither != 0.0 or cfg.lfr_n != 1 or cfg.lfr_m % 2 != 1:
            raise ValueError(
                "unsupported front end: needs hamming window, dither 0, lfr_n 1, odd lfr_m"
            )
        return cfg

    @property
    def frame_samples(self) -> int:
        return self.fs * self.frame_length // 1000

    @property
    def shift_samples(self) -> int:
        return self.fs * self.frame_shift // 1000

    def frames_in(self, n_samples: int) -> int:
        """Number of Kaldi frames (snip_edges) in `n_samples` samples."""
        if n_samples < self.frame_samples:
            return 0
        return (n_samples - self.frame_samples) // self.shift_samples + 1


@lru_cache(maxsize=8)
def mel_matrix(cfg: FrontendConfig, fft_size: int) -> np.ndarray:
    """Kaldi's triangular mel filters (20 Hz to Nyquist), shape (fft_size // 2 + 1, n_mels).
    Made once per configuration (a batch of short files would remake it for each), read-only."""
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)  # noqa: E731
    low, high = mel(20.0), mel(cfg.fs / 2)
    delta = (high - low) / (cfg.n_mels + 1)
    left = low + delta * np.arange(cfg.n_mels)
    center, right = left + delta, left + 2 * delta
    bins = mel(np.arange(fft_size // 2) * cfg.fs / fft_size)[:, None]
    up = (bins - left) / (center - left)
    down = (right - bins) / (right - center)
    weights = np.where(bins <= center, up, down)
    weights[(bins <= left) | (bins >= right)] = 0.0
    matrix = np.vstack([weights, np.zeros((1, cfg.n_mels))])  # Nyquist bin has no weight
    matrix.flags.writeable = False  # shared by every Fbank of this configuration
    return matrix


def strided_rows(array: np.ndarray, start: int, count: int, width: int, step: int) -> np.ndarray:
    """Rows i = array[start + i * step : start + i * step + width] of a contiguous 1-D array, as a
    read-only view (numpy's sliding_window_view, without its ~50 us of checks per call)."""
    assert array.flags.c_contiguous and start + (count - 1) * step + width <= len(array)
    size = array.itemsize
    rows = (
        np.ndarray((count, width), array.dtype, array, start * size, (step * size, size))
        if count
        else np.zeros((0, width), array.dtype)
    )
    rows.flags.writeable = False
    return rows


CHUNK_FRAMES = 128  # frames per pass of the fbank: its buffers (~1 MB) stay near the core
MEL_BLOCKS = 8  # the mel projection in this many dense pieces (see `mel_blocks`)


@lru_cache(maxsize=8)
def mel_blocks(cfg: FrontendConfig, fft_size: int) -> tuple[tuple[int, int, int, int, Any], ...]:
    """The scaled mel matrix cut into `MEL_BLOCKS` groups of consecutive filters, each group with
    the one band of FFT bins where any of its filters is non-zero: (first filter, end, first bin,
    end, weights). A triangular filter spans a few bins, so the projection in pieces does ~7x
    fewer multiplications than the whole (257, 80) product; the products skipped are exact zeros.
    """
    matrix = mel_matrix(cfg, fft_size) * POWER_SCALE
    nonzero = matrix != 0
    first = nonzero.argmax(axis=0)
    end = len(matrix) - nonzero[::-1].argmax(axis=0)  # an all-zero filter reads every bin
    size = -(-cfg.n_mels // MEL_BLOCKS)
    pieces = []
    for a in range(0, cfg.n_mels, size):
        b = min(a + size, cfg.n_mels)
        low, high = int(first[a:b].min()), int(end[a:b].max())
        piece = np.ascontiguousarray(matrix[low:high, a:b])
        piece.flags.writeable = False  # shared by every Fbank of this configuration
        pieces.append((a, b, low, high, piece))
    return tuple(pieces)


class Fbank:
    """Vectorized Kaldi fbank (snip_edges, DC removal, 0.97 pre-emphasis, power, log mel).

    Kaldi's steps per frame x (length L): x - mean(x), then y[0] = 0.03 x[0], y[i] = x[i] - 0.97
    x[i-1], then the window, a zero-padded real FFT, the power, the mel filters and the log. The
    pre-emphasis is linear, so it is taken once over the signal (p[t] = s[t] - 0.97 s[t-1], each
    sample once instead of 2.5 times as the frames overlap) and the mean comes back as a shift:
    y[i] = p[i] - 0.03 mean for i >= 1. A frame's sum is that of a few blocks of gcd(L, shift)
    samples, each block summed once (frames overlap). The frames go
    through in chunks of `CHUNK_FRAMES` into buffers made once, so every step reads what the one
    before left in cache; all in float64 as before (the features match the frame-by-frame
    computation in float32, tests/test_features.py).
    """

    def __init__(self, cfg: FrontendConfig):
        self.cfg = cfg
        self.fft_size = 1 << (cfg.frame_samples - 1).bit_length()
        n = cfg.frame_samples
        self.window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(n) / (n - 1))
        self.mel = mel_blocks(cfg, self.fft_size)
        span = (CHUNK_FRAMES - 1) * cfg.shift_samples + n  # samples of a whole chunk
        self._signal = np.empty(span)
        self._emphasis = np.empty(span)
        self._block = math.gcd(n, cfg.shift_samples)  # frames start and end on these blocks
        self._padded = np.zeros((CHUNK_FRAMES, self.fft_size))  # the tail stays zero
        self._spectrum = np.empty((CHUNK_FRAMES, self.fft_size // 2 + 1), np.complex128)
        self._power = np.empty((CHUNK_FRAMES, self.fft_size // 2 + 1))
        self._energies = np.empty((CHUNK_FRAMES, cfg.n_mels))

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Log mel energies (frames, n_mels) float32 of the whole frames in float32 `samples`
        (in [-1, 1]), frame i starting at sample i * shift."""
        cfg = self.cfg
        n = cfg.frames_in(len(samples))
        out = np.empty((n, cfg.n_mels), np.float32)
        for i in range(0, n, CHUNK_FRAMES):
            count = min(CHUNK_FRAMES, n - i)
            span = (count - 1) * cfg.shift_samples + cfg.frame_samples
            start = i * cfg.shift_samples
            self._chunk(samples[start : start + span], out[i : i + count])
        return out

    def _chunk(self, samples: np.ndarray, out: np.ndarray) -> None:
        """Log mel energies of the len(out) frames of `samples` into `out`."""
        length, shift, count = self.cfg.frame_samples, self.cfg.shift_samples, len(out)
        signal = self._signal[: len(samples)]
        signal[...] = samples
        emphasis = self._emphasis[: len(samples)]
        np.multiply(signal[:-1], 0.97, out=emphasis[1:])
        np.subtract(signal[1:], emphasis[1:], out=emphasis[1:])
        block = self._block
        blocks = signal.reshape(-1, block).sum(axis=1)
        means = strided_rows(blocks, 0, count, length // block, shift // block).sum(axis=1) / length
        starts = np.arange(0, count * shift, shift)
        x = self._padded[:count]
        body = strided_rows(emphasis, 1, count, length - 1, shift)
        np.subtract(body, (0.03 * means)[:, None], out=x[:, 1:length])
        x[:, 1:length] *= self.window[1:]
        x[:, 0] = self.window[0] * (1.0 - 0.97) * (signal[starts] - means)
        spectrum = np.fft.rfft(x, axis=1, out=self._spectrum[:count])
        parts = spectrum.view(np.float64)  # real, imaginary, real, ... of each bin
        np.square(parts, out=parts)
        power = np.add(parts[:, 0::2], parts[:, 1::2], out=self._power[:count])
        energies = self._energies[:count]
        for a, b, low, high, weights in self.mel:
            np.matmul(power[:, low:high], weights, out=energies[:, a:b])
        np.maximum(energies, LOG_FLOOR, out=energies)
        np.log(energies, out=out, casting="same_kind")


def frame_decibels(frames: np.ndarray) -> np.ndarray:
    """FunASR's per-frame energy in dB of the float32 frames, as it computes it (the squares a
    chunk at a time, so they stay in cache; each row's sum is the same)."""
    energy = np.empty(len(frames), np.float32)
    for i in range(0, len(frames), CHUNK_FRAMES):
        energy[i : i + CHUNK_FRAMES] = np.sum(np.square(frames[i : i + CHUNK_FRAMES]), axis=1)
    return 10 * np.log10(energy + 0.000001)


class FeatureStream:
    """Samples in, (LFR+CMVN features, frame dB) out, in fixed batches of frames.

    LFR frame t stacks fbank frames t-m..t+m (m = (lfr_m - 1) // 2), repeating the first and
    last frame at the file's edges, as FunASR's front end does.
    """

    def __init__(self, cfg: FrontendConfig, cmvn: np.ndarray, batch_frames: int = 1000):
        self.cfg = cfg
        self.fbank = Fbank(cfg)
        self.cmvn = cmvn
        self.batch_frames = batch_frames
        self.context = (cfg.lfr_m - 1) // 2
        self._samples = np.zeros(0, np.float32)  # starts at the next unframed frame
        self._history: np.ndarray | None = None  # last 2*context fbank rows already framed
        self._pending_db = np.zeros(0)  # dB of framed frames not yet emitted as LFR frames

    def accept(self, samples: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Add audio; returns the (features, dB) batches that became complete."""
        self._samples = np.concatenate([self._samples, np.asarray(samples, np.float32)])
        out = []
        cfg = self.cfg
        need = (self.batch_frames - 1) * cfg.shift_samples + cfg.frame_samples
        while len(self._samples) >= need:
            out.append(self._frame(self.batch_frames, final=False))
        return out

    def finish(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Flush the rest at the end of the audio."""
        n = self.cfg.frames_in(len(self._samples))
        if n == 0 and self._history is None:
            return []
        return [self._frame(n, final=True)]

    def _frames(self, n: int) -> np.ndarray:
        """The next n raw frames (a strided view, no copy)."""
        cfg = self.cfg
        return strided_rows(self._samples, 0, n, cfg.frame_samples, cfg.shift_samples)

    def _frame(self, n: int, final: bool) -> tuple[np.ndarray, np.ndarray]:
        cfg = self.cfg
        frames = self._frames(n)
        fbank = self.fbank(self._samples[: (n - 1) * cfg.shift_samples + cfg.frame_samples])
        db = np.concatenate([self._pending_db, frame_decibels(frames)])
        self._samples = self._samples[n * cfg.shift_samples :]
        c = self.context
        if self._history is None:  # file start: repeat the first frame
            if n == 0:
                return np.zeros((0, cfg.n_mels * cfg.lfr_m), np.float32), np.zeros(0)
            self._history = np.repeat(fbank[:1], c, axis=0)
        rows = np.concatenate([self._history, fbank])
        if final:  # file end: repeat the last frame
            rows = np.concatenate([rows, np.repeat(rows[-1:], c, axis=0)])
        count = len(rows) - 2 * c
        width = cfg.lfr_m * cfg.n_mels  # row t: fbank rows t .. t + lfr_m - 1, side by side
        feats = strided_rows(rows.reshape(-1), 0, count, width, cfg.n_mels) + self.cmvn[0]
        feats *= self.cmvn[1]
        self._history = rows[count:]
        self._pending_db = db[count:]
        return feats, db[:count]
