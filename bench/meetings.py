"""English meeting-like recordings whose words are known, and the word error rate against them.

Turns are espeak-ng English voices (samples/make_samples.py's `speak`); between turns lie pauses,
long stretches of silence, noise or music-like chords, the material Whisper is known to invent
words in. Each recording keeps its turns (start, end, text), so a transcript can be scored for
word errors and for words placed where nobody speaks. Used by bench/whisper.py and
tests/test_whisper.py; deterministic for a seed; needs espeak-ng on PATH.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from samples.make_samples import RATE, noise, speak

LINES = (
    "Good morning everyone, let us start with the budget review.",
    "The archive holds several hundred hours of recordings from the last decade.",
    "Could you repeat the last point? I think the connection dropped for a second.",
    "We moved most of the board meetings to the new server last week.",
    "The old tapes are slow to digitize, so we should plan more time for them.",
    "I would rather cut the recordings at the pauses before sending them to the transcription.",
    "Please share your screen, I cannot see the slides yet.",
    "The transcription queue is empty again, so we can take more files.",
    "Who is going to write the summary for the customer?",
    "Let us come back to that after lunch.",
    "The microphone in the large room picks up a lot of noise from the street.",
    "I agree with the plan, but the deadline looks too tight to me.",
    "Thank you all, we will meet again at the same time tomorrow.",
    "The new laptop arrived this morning and it works well.",
    "Can someone check whether the backup finished last night?",
    "Our manager wants a short report on the project by Friday.",
    "The music at the start of the call was far too loud.",
    "We should ask the legal team before we publish anything.",
    "The interview went well and the candidate starts next month.",
    "Most of the errors came from files with a lot of background music.",
    "I will send the minutes to everyone after the meeting.",
    "The weather was terrible, so the train was late again.",
    "Let me know if anything is unclear in the proposal.",
    "The speaker in the kitchen is broken, please do not use it.",
)
VOICES = ("en-us", "en-gb", "en-us+f2", "en-gb+m3", "en-gb-x-rp", "en-us+m7")
GAPS = ("silence", "noise", "chords")
FLOOR_DB = -55.0  # the room's hiss under everything, relative to full scale


@dataclass(frozen=True)
class Turn:
    """One utterance: where it is in the recording (seconds) and what it says."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Gap:
    """What lies between two turns (or at an edge): how long and what (one of GAPS)."""

    seconds: float
    kind: str = "silence"


def chords(n: int, rng: np.random.Generator) -> np.ndarray:
    """Music-like tones of unit peak: major triads with overtones, a new chord about each second."""
    out = np.zeros(n, np.float32)
    start = 0
    while start < n:
        length = min(n - start, int(rng.uniform(0.6, 1.6) * RATE))
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        t = np.arange(length) / RATE
        tone = sum(
            np.sin(2 * np.pi * root * ratio * k * t) / k**1.5
            for ratio in (1.0, 1.26, 1.5)
            for k in (1, 2, 3)
        )
        envelope = np.minimum(1.0, t / 0.02) * np.exp(-1.5 * t)
        out[start : start + length] = tone * envelope
        start += length
    return out / np.abs(out).max()


def filler(gap: Gap, rng: np.random.Generator) -> np.ndarray:
    """The samples of a gap: zeros for silence (the floor comes later), else noise or chords."""
    n = int(gap.seconds * RATE)
    if gap.kind == "silence" or n == 0:
        return np.zeros(n, np.float32)
    level = 10 ** (rng.uniform(-20, -12) / 20)
    if gap.kind == "chords":
        return level * chords(n, rng)
    return level * noise(str(rng.choice(["pink", "brown", "murmur"])), n, rng)


@dataclass(frozen=True)
class Meeting:
    """A recording's samples (16 kHz mono) and its turns."""

    samples: np.ndarray
    turns: tuple[Turn, ...]

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.turns)

    def write(self, wav: Path) -> None:
        """The WAV, and next to it `<wav>.turns.json` with the turns."""
        sf.write(wav, self.samples, RATE, subtype="PCM_16")
        turns = [asdict(t) for t in self.turns]
        wav.with_name(wav.name + ".turns.json").write_text(json.dumps(turns, indent=1) + "\n")

    @classmethod
    def read(cls, wav: Path) -> Meeting:
        """A meeting written by `write`."""
        turns = json.loads(wav.with_name(wav.name + ".turns.json").read_text())
        return cls(sf.read(wav, dtype="float32")[0], tuple(Turn(**t) for t in turns))


def compose(
    lines: list[tuple[str, str]], gaps: list[Gap], rng: np.random.Generator, speed: int = 165
) -> Meeting:
    """(voice, text) turns; gaps[0] before the first, gaps[i] after turn i; a faint floor."""
    assert len(gaps) == len(lines) + 1, "one gap before each turn and one after the last"
    parts, turns = [filler(gaps[0], rng)], []
    position = len(parts[0])
    with tempfile.TemporaryDirectory() as tmp:
        for (voice, text), gap in zip(lines, gaps[1:], strict=True):
            voiced = speak(text, voice, speed, Path(tmp))
            voiced *= rng.uniform(0.3, 0.6) / np.abs(voiced).max()
            turns.append(Turn(position / RATE, (position + len(voiced)) / RATE, text))
            parts += [voiced, filler(gap, rng)]
            position += len(voiced) + len(parts[-1])
    samples = np.concatenate(parts)
    samples += 10 ** (FLOOR_DB / 20) * noise("pink", len(samples), rng)
    return Meeting(samples.astype(np.float32), tuple(turns))


def meeting(seconds: float, seed: int) -> Meeting:
    """About `seconds` of meeting: turns of random voices, mostly short pauses between them,
    often 5-25 s of silence, noise or chords."""
    rng = np.random.default_rng(seed)
    lines, gaps, total = [], [Gap(rng.uniform(2, 8), str(rng.choice(GAPS)))], 0.0
    while total < seconds:
        lines.append((str(rng.choice(VOICES)), str(rng.choice(LINES))))
        long = rng.random() < 0.4
        seconds_ = rng.uniform(5, 25) if long else rng.uniform(0.3, 1.5)
        gaps.append(Gap(seconds_, str(rng.choice(GAPS)) if long else "silence"))
        total += 4.0 + seconds_  # a line lasts about 4 s
    return compose(lines, gaps, rng)


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (an apostrophe inside a word stays)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)*", text.lower())


def edits(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance: substitutions, deletions and insertions."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        previous, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ref != hyp))
    return row[-1]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of a transcript against the known text."""
    ref = words(reference)
    return edits(ref, words(hypothesis)) / max(1, len(ref))
