"""Make the demo recordings in samples/: meeting-like speech with pauses and background noise.

usage: python samples/make_samples.py [OUTDIR]

Speech is espeak-ng (several voices and languages), placed with pauses of 0.3 s to 6 s over
noise (pink, brown, mains hum, babble-like murmur) and written in the formats archives hold.
Each `<name>` gets `<name>.rttm` with the exact span of every utterance. Deterministic: fixed
seeds; needs espeak-ng and ffmpeg on PATH.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000

LINES = {
    "en-us": [
        "Okay, let's get started. First item is the migration of the recording archive.",
        "We moved about two hundred hours last week, mostly board meetings.",
        "Any blockers?",
        "The old tapes from two thousand nine are slow to digitize.",
        "Right. Let's come back to that after the budget review.",
        "Thanks everyone, same time tomorrow.",
    ],
    "en-gb": [
        "Could you share your screen? I can't see the slides yet.",
        "The transcription queue is empty again, so we can take more files.",
        "I'd rather cut the recordings at the pauses before sending them to Whisper.",
    ],
    "cmn": [
        "我们先看一下上周的会议记录。",
        "这个项目下个月需要完成第一阶段。",
        "好的，没有问题。",
        "录音文件已经全部上传到服务器了。",
    ],
    "de": ["Die Aufnahme läuft. Wir beginnen mit dem ersten Punkt der Tagesordnung."],
    "fr": ["Je pense que nous devrions reporter cette décision à la semaine prochaine."],
}


@dataclass(frozen=True)
class Recording:
    """One demo file: its talk, noise, and how it is stored."""

    name: str
    seconds: float
    voices: tuple[str, ...]
    noise: str
    snr_db: float
    store: tuple[str, ...]  # ffmpeg output options
    suffix: str


RECORDINGS = (
    Recording("standup_meeting", 20, ("en-us", "en-gb"), "pink", 18, ("-c:a", "pcm_s16le"), "wav"),
    Recording(
        "board_call_stereo",
        30,
        ("en-us", "de", "fr"),
        "hum",
        15,
        ("-ar", "44100", "-ac", "2", "-c:a", "flac", "-sample_fmt", "s16"),
        "flac",
    ),
    Recording(
        "phone_interview_8k",
        40,
        ("en-gb", "en-us"),
        "brown",
        12,
        ("-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-c:a", "pcm_s16le"),
        "wav",
    ),
    Recording(
        "mandarin_review",
        60,
        ("cmn",),
        "murmur",
        10,
        ("-ar", "48000", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "64k"),
        "mp3",
    ),
    Recording(
        "lecture_qa", 75, ("en-us", "cmn"), "pink", 20, ("-c:a", "libvorbis", "-q:a", "2"), "ogg"
    ),
)


def speak(text: str, voice: str, speed: int, tmp: Path) -> np.ndarray:
    """One utterance from espeak-ng at 16 kHz, trimmed to where the voice is."""
    raw = tmp / "utterance.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
    audio, rate = sf.read(raw, dtype="float32")
    if rate != RATE:
        positions = np.arange(0, len(audio) - 1, rate / RATE)
        audio = np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    return audio[loud[0] : loud[-1] + 1]


def noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Background of unit peak: pink or brown noise, mains hum, or a murmur of filtered noise."""
    white = rng.standard_normal(n)
    spectrum = np.fft.rfft(white)
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    if kind == "pink":
        spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    elif kind == "brown":
        spectrum /= np.maximum(freqs, 20.0)
    elif kind == "murmur":  # speech-band noise, slowly modulated: distant chatter
        spectrum *= np.exp(-(((freqs - 500) / 400) ** 2))
    out = np.fft.irfft(spectrum, n)
    if kind == "murmur":
        out *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.3 * np.arange(n) / RATE)
    if kind == "hum":
        t = np.arange(n) / RATE
        out = 0.2 * out / np.abs(out).max() + sum(
            np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3)
        )
    return (out / np.abs(out).max()).astype(np.float32)


def compose(rec: Recording, rng: np.random.Generator, tmp: Path):
    """Utterances with pauses over noise; returns samples and the labelled spans in seconds."""
    total = int(rec.seconds * RATE)
    speech = np.zeros(total, np.float32)
    spans = []
    t = int(rng.uniform(0.5, 1.5) * RATE)
    while True:
        voice = rec.voices[rng.integers(len(rec.voices))]
        text = LINES[voice][rng.integers(len(LINES[voice]))]
        variant = ["", "+m3", "+f2", "+m7", "+f4"][rng.integers(5)]
        utterance = speak(text, voice + variant, int(rng.uniform(150, 190)), tmp)
        utterance *= rng.uniform(0.4, 0.9) / np.abs(utterance).max()
        if t + len(utterance) > total - RATE // 2:
            break
        speech[t : t + len(utterance)] += utterance
        spans.append((t / RATE, (t + len(utterance)) / RATE))
        pause = rng.choice([rng.uniform(0.3, 0.7), rng.uniform(0.9, 2.5), rng.uniform(3, 6)])
        t += len(utterance) + int(pause * RATE)
    power = np.mean(np.concatenate([speech[int(a * RATE) : int(b * RATE)] for a, b in spans]) ** 2)
    background = noise(rec.noise, total, rng)
    background *= np.sqrt(power / (np.mean(background**2) * 10 ** (rec.snr_db / 10)))
    mix = speech + background
    return mix / max(1.0, np.abs(mix).max() / 0.9), spans


def write(rec: Recording, samples: np.ndarray, spans, outdir: Path, tmp: Path) -> None:
    """Store the recording with ffmpeg in its format, and its ground truth as RTTM."""
    source = tmp / "mix.wav"
    sf.write(source, samples, RATE, subtype="FLOAT")
    target = outdir / f"{rec.name}.{rec.suffix}"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(source), *rec.store]
    subprocess.run([*cmd, "-map_metadata", "-1", "-fflags", "+bitexact", str(target)], check=True)
    lines = [
        f"SPEAKER {rec.name} 1 {a:.3f} {b - a:.3f} <NA> <NA> speech <NA> <NA>\n" for a, b in spans
    ]
    (outdir / f"{rec.name}.rttm").write_text("".join(lines))


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed, rec in enumerate(RECORDINGS):
            samples, spans = compose(rec, np.random.default_rng(seed), Path(tmp))
            write(rec, samples, spans, outdir, Path(tmp))
            print(f"{rec.name}.{rec.suffix}: {rec.seconds:.0f} s, {len(spans)} utterances")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
