"""The demo recordings decode in their formats and segment close to their ground truth."""

from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).parents[1] / "samples"
RECORDINGS = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".wav", ".flac", ".mp3", ".ogg"))


def speech_frames(spans, n):
    mask = np.zeros(n, bool)
    for start, end in spans:
        mask[round(start * 100) : round(end * 100)] = True
    return mask


def test_samples_fit_the_budget():
    assert 4 <= len(RECORDINGS) <= 6
    assert sum(p.stat().st_size for p in SAMPLES.iterdir()) < 3_000_000


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_sample_segments_match_ground_truth(vad_fp32, path):
    truth = []
    for line in path.with_suffix(".rttm").read_text().splitlines():
        onset, duration = float(line.split()[3]), float(line.split()[4])
        truth.append((onset, onset + duration))
    result = vad_fp32.process_file(path)
    found = [(s.start / 1000, s.end / 1000) for s in result.segments]
    n = int(result.info.duration * 100) + 1
    ref, hyp = speech_frames(truth, n), speech_frames(found, n)
    f1 = 2 * (ref & hyp).sum() / (ref.sum() + hyp.sum())
    assert f1 > 0.85, f1
