"""The seam every engine fits: 16 kHz mono samples in, one speech score per 10 ms frame out.

A profile (the decision) turns those scores into segments, so a new engine needs nothing but
this. Frame i covers [10 i, 10 i + 10) ms of the recording; scores are in [0, 1].

Profiles receive `Frames`: the scores and how much audio was fed. An engine whose stream has
`feed_frames` may hand a subclass with more (FSMN's silence posteriors and frame energies, which
FunASR's own decision reads); any other stream is wrapped by `frame_stream`. For a profile that
reads it (the precise one trims segment edges that are back at the noise floor), `frame_stream`
also measures each frame's energy on the samples fed, whatever the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

FRAME_MS = 10
FRAME_SAMPLES = 160  # at 16 kHz
SILENT_DB = -100.0  # the energy of a frame past the end of the audio
# A primed stream's network first hears the recording's first second reversed: longer than the
# FSMN network's memory (4 layers x 19 past frames, plus the LFR and fbank windows: 0.81 s),
# after which its scores no longer depend on its zero start (tests/test_precise.py checks it).
PRIME_MS = 1000
PRIME_SAMPLES = PRIME_MS // FRAME_MS * FRAME_SAMPLES


class ScoreStream(Protocol):
    """Per-recording state of an engine: feed blocks of any size, then finish once."""

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech scores (float32) of the frames completed by this block, in order."""
        ...

    def finish(self) -> np.ndarray:
        """Scores of the frames still pending at the end of the recording."""
        ...


class Engine(Protocol):
    """A loaded model: one per process, shared by every recording it segments."""

    name: str

    def score_stream(self, primed: bool = False) -> ScoreStream:
        """A fresh per-recording stream (its state starts empty; `primed`: with a past, where
        the engine's zero start is misread, see `Primed`)."""
        ...


@dataclass(frozen=True)
class Frames:
    """Consecutive scored frames as a profile receives them (the next ones after the last)."""

    scores: np.ndarray  # float32 speech score per frame
    samples_seen: int  # samples fed to the engine when these frames came out
    # each frame's energy in dB (`frame_energy`), where the profile reads it; else None
    energy_db: np.ndarray | None = field(default=None, kw_only=True)


class FrameStream(Protocol):
    """A score stream that hands profiles `Frames` (an engine may add its own fields)."""

    def feed_frames(self, samples: np.ndarray) -> Frames:
        """The frames completed by this block of samples."""
        ...

    def finish_frames(self) -> Frames:
        """The frames still pending at the end of the recording."""
        ...


class ScoresOnly:
    """A plain `ScoreStream` as a `FrameStream`: scores, and the samples counted here."""

    def __init__(self, stream: ScoreStream):
        self.stream = stream
        self.samples = 0

    def feed_frames(self, samples: np.ndarray) -> Frames:
        """Scores of this block, with the running sample count."""
        self.samples += len(samples)
        return Frames(self.stream.feed(samples), self.samples)

    def finish_frames(self) -> Frames:
        """The last scores."""
        return Frames(self.stream.finish(), self.samples)


class Primed:
    """A score stream whose network starts with a past: the recording's first `PRIME_MS` (or
    all of it, if shorter) reversed, scored and thrown away, then the recording itself.

    A network's memory starts at zero. FSMN reads that as the CMVN mean, an average of speech
    and silence: for its first 0.8 s it scores any sound, noise at any level included, about
    0.5-0.6 (white noise 0.15-0.2 once it has heard a second of it), which makes a short
    segment at the start of a recording that has no speech there. After the mirrored start it
    has heard the same kind of sound as the recording begins with, so a start in noise scores as
    noise and a start in speech as speech. The prefix is a whole number of frames, so the
    recording's frame i is still the 10 ms from sample 160 i (the prefix's frames are dropped);
    the stream holds at most the first `PRIME_MS` of samples, and its output does not depend on
    the block sizes. FunASR's decision, exact only from the zero start, is never primed.
    """

    def __init__(self, stream: ScoreStream):
        self.stream = stream
        self.head: np.ndarray | None = np.zeros(0, np.float32)  # None once primed
        self.skip = 0  # prefix frames still to drop

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Scores of the recording's frames this block completed (none before its first
        second is in)."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        if self.head is None:
            return self._own(self.stream.feed(samples))
        self.head = np.concatenate([self.head, samples])
        if len(self.head) < PRIME_SAMPLES:
            return np.zeros(0, np.float32)
        return self._prime()

    def finish(self) -> np.ndarray:
        """The last scores (a recording shorter than `PRIME_MS` is primed with all of it)."""
        first = self._prime() if self.head is not None else np.zeros(0, np.float32)
        return np.concatenate([first, self._own(self.stream.finish())])

    def _prime(self) -> np.ndarray:
        """Feed the mirrored prefix (whole frames of the held samples), then the samples."""
        head, self.head = self.head, None
        whole = min(len(head), PRIME_SAMPLES) // FRAME_SAMPLES * FRAME_SAMPLES
        self.skip = whole // FRAME_SAMPLES
        prefix = self._own(self.stream.feed(head[:whole][::-1].copy()))
        return np.concatenate([prefix, self._own(self.stream.feed(head))])

    def _own(self, scores: np.ndarray) -> np.ndarray:
        """These scores less the prefix's frames still to drop."""
        drop = min(self.skip, len(scores))
        self.skip -= drop
        return np.asarray(scores[drop:], np.float32)


def frame_energy(samples: np.ndarray) -> np.ndarray:
    """Energy in dB of each frame of `samples` (10 log10 of its samples' mean square, float
    samples in [-1, 1]); a last frame shorter than 10 ms counts what it has."""
    samples = np.asarray(samples, np.float32)
    whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
    frames = samples[:whole].reshape(-1, FRAME_SAMPLES)
    power = np.einsum("ij,ij->i", frames, frames) / FRAME_SAMPLES
    if whole < len(samples):
        rest = samples[whole:]
        power = np.append(power, np.dot(rest, rest) / len(rest))
    return (10 * np.log10(power + 1e-10)).astype(np.float32)


class WithEnergy:
    """A frame stream whose frames also carry each frame's energy, measured here on the samples
    fed. An engine may score a frame before all its 10 ms have arrived (silero's 32 ms windows),
    so the scores wait for their energies (at most a frame); the output is plain `Frames`."""

    def __init__(self, stream: FrameStream):
        self.stream = stream
        self.rest = np.zeros(0, np.float32)  # samples of the frame not yet complete
        self.energy = np.zeros(0, np.float32)  # energies measured, scores not yet come
        self.scores = np.zeros(0, np.float32)  # scores come, energies not yet measured

    def feed_frames(self, samples: np.ndarray) -> Frames:
        """The frames of this block whose energies are known."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        joined = np.concatenate([self.rest, samples])
        whole = len(joined) // FRAME_SAMPLES * FRAME_SAMPLES
        self.energy = np.concatenate([self.energy, frame_energy(joined[:whole])])
        self.rest = joined[whole:]
        return self._pair(self.stream.feed_frames(samples), final=False)

    def finish_frames(self) -> Frames:
        """Every frame left; the last partial frame's energy from what it has, and frames past
        the end of the audio silent."""
        self.energy = np.concatenate([self.energy, frame_energy(self.rest)])
        self.rest = self.rest[:0]
        return self._pair(self.stream.finish_frames(), final=True)

    def _pair(self, frames: Frames, final: bool) -> Frames:
        """Scores and energies of the frames that have both (all of them if final)."""
        scores = np.concatenate([self.scores, frames.scores])
        if final and len(self.energy) < len(scores):
            missing = np.full(len(scores) - len(self.energy), SILENT_DB, np.float32)
            self.energy = np.concatenate([self.energy, missing])
        both = len(scores) if final else min(len(scores), len(self.energy))
        out = Frames(scores[:both], frames.samples_seen, energy_db=self.energy[:both])
        self.scores, self.energy = scores[both:], self.energy[both:]
        return out


def frame_stream(stream: ScoreStream, energy: bool = False) -> FrameStream:
    """The stream itself if it hands out its own `Frames`, else its scores wrapped; with
    `energy`, plain `Frames` that carry each frame's energy."""
    frames = stream if hasattr(stream, "feed_frames") else ScoresOnly(stream)
    return WithEnergy(frames) if energy else frames
