"""Speech detection scores of an output folder against reference RTTMs, on 10 ms frames.

Precision, recall and F1 of speech frames, and the detection error rate (missed + false alarm
speech over reference speech), per file and summed over files. A collar of S seconds removes S/2
on each side of every reference boundary from scoring, as pyannote.metrics does.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..segments import read_output, read_rttm

FRAMES_PER_S = 100
# x.wav.json, x.flac.rttm, x.json: a recording's outputs, not x.wav.whisper.json and the like
_OUTPUT_NAME = re.compile(r"^(?:\.[^.]+)?\.(json|rttm)$")


@dataclass(frozen=True)
class Score:
    """Frame counts of one file or of a sum of files; the metrics follow from them."""

    hit: int = 0  # speech in both
    false_alarm: int = 0  # speech only in the output
    missed: int = 0  # speech only in the reference

    def __add__(self, other: Score) -> Score:
        return Score(
            self.hit + other.hit,
            self.false_alarm + other.false_alarm,
            self.missed + other.missed,
        )

    @property
    def precision(self) -> float:
        """1 when nothing was detected (nothing detected wrongly), as pyannote.metrics."""
        detected = self.hit + self.false_alarm
        return self.hit / detected if detected else 1.0

    @property
    def recall(self) -> float:
        """1 when the reference has no speech, as pyannote.metrics."""
        speech = self.hit + self.missed
        return self.hit / speech if speech else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def detection_error_rate(self) -> float:
        return (self.false_alarm + self.missed) / max(self.hit + self.missed, 1)

    def metrics(self) -> dict[str, float]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "detection_error_rate": self.detection_error_rate,
        }


def _frames(spans: list[tuple[float, float]], n: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for start, end in spans:
        mask[round(start * FRAMES_PER_S) : round(end * FRAMES_PER_S)] = True
    return mask


def score(
    reference: list[tuple[float, float]], output: list[tuple[float, float]], collar: float = 0.0
) -> Score:
    """Frame counts of `output` against `reference` (seconds), collars removed."""
    n = round(max([e for _, e in reference + output], default=0) * FRAMES_PER_S) + 1
    ref, out = _frames(reference, n), _frames(output, n)
    scored = np.ones(n, bool)
    half = collar / 2
    for boundary in {t for span in reference for t in span}:
        lo = max(round((boundary - half) * FRAMES_PER_S), 0)
        scored[lo : round((boundary + half) * FRAMES_PER_S)] = False
    ref, out = ref[scored], out[scored]
    return Score(int((ref & out).sum()), int((~ref & out).sum()), int((ref & ~out).sum()))


def find_output(reference: Path, ref_dir: Path, out: Path) -> Path | None:
    """The output for a reference RTTM: same relative folder and stem, JSON before RTTM."""
    rel = reference.relative_to(ref_dir)
    folder = out / rel.parent
    if not folder.is_dir():
        return None
    found = [
        p
        for p in folder.iterdir()
        if p.name.startswith(rel.stem) and _OUTPUT_NAME.match(p.name[len(rel.stem) :])
    ]
    return min(found, key=lambda p: (p.suffix != ".json", p.name), default=None)


def evaluate(ref_dir: Path, out: Path, collar: float = 0.0) -> dict:
    """Scores of every reference RTTM under `ref_dir` against its output in `out`; `overall` is
    None when no output matched (an empty sum would read as perfect scores)."""
    files, missing, total = [], [], Score()
    for reference in sorted(ref_dir.rglob("*.rttm")):
        name = str(reference.relative_to(ref_dir).with_suffix(""))
        output = find_output(reference, ref_dir, out)
        if output is None:
            missing.append(name)
            continue
        counted = score(read_rttm(reference), read_output(output), collar)
        total += counted
        files.append({"file": name, **counted.metrics()})
    overall = total.metrics() if files else None
    return {"collar": collar, "files": files, "missing": missing, "overall": overall}


def format_table(result: dict) -> str:
    """The per-file and overall scores as an aligned text table (no score if nothing matched)."""
    missing = [f"missing output: {name}" for name in result["missing"]]
    if result["overall"] is None:
        return "\n".join([*missing, "no output matched a reference RTTM: nothing to score"])
    rows = [("file", "precision", "recall", "F1", "DetER")]
    for f in [*result["files"], {"file": "overall", **result["overall"]}]:
        rows.append(
            (f["file"], *(f"{f[k]:.4f}" for k in ("precision", "recall", "f1")))
            + (f"{f['detection_error_rate']:.4f}",)
        )
    width = max(len(r[0]) for r in rows)
    lines = [f"{r[0]:<{width}}  " + "  ".join(f"{v:>9}" for v in r[1:]) for r in rows]
    return "\n".join(lines + missing)


def score_model(vad, ref_dir: Path, collar: float = 0.0) -> Score:
    """Segment every recording under `ref_dir` that has a same-stem RTTM and sum the scores;
    ValueError if there is none (an empty sum would read as perfect scores)."""
    from ..batch.discovery import AUDIO_EXTENSIONS

    total, scored = Score(), 0
    for reference in sorted(ref_dir.rglob("*.rttm")):
        audio = [
            p
            for p in reference.parent.glob(f"{glob.escape(reference.stem)}.*")
            if p.suffix.lower() in AUDIO_EXTENSIONS
        ]
        if audio:
            spans = [(s.start / 1000, s.end / 1000) for s in vad.segments(audio[0])]
            total += score(read_rttm(reference), spans, collar)
            scored += 1
    if not scored:
        raise ValueError(f"{ref_dir}: no recording with a reference RTTM of the same name")
    return total
