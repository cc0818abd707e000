"""The golden test: segments equal FunASR 1.4.16's own on every reference recording."""

import json

import numpy as np
import pytest

from .conftest import GOLDEN

RECORDINGS = sorted(p for p in GOLDEN.iterdir() if p.suffix in (".flac", ".wav"))


def reference(path):
    return [
        tuple(s) for s in json.loads(path.with_suffix(".funasr.json").read_text())["segments_ms"]
    ]


def test_golden_set_is_complete():
    assert len(RECORDINGS) == 12


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_fp32_equals_funasr(vad_fp32, path):
    assert [(s.start, s.end) for s in vad_fp32.segments(path)] == reference(path)


def test_int8_stays_close_to_funasr(vad_int8):
    """Same segment count on every file; boundaries within 10 ms on >= 95%, all within 50 ms.

    Dynamic INT8 moves some boundaries by 20-40 ms (see docs/parity.md, INT8 accuracy); this test
    holds the level measured so that it cannot silently get worse.
    """
    offsets = []
    for path in RECORDINGS:
        ref = np.array(reference(path)).ravel()
        got = np.array([(s.start, s.end) for s in vad_int8.segments(path)]).ravel()
        assert len(got) == len(ref), path.stem
        offsets += list(np.abs(got - ref))
    offsets = np.array(offsets)
    assert (offsets <= 10).mean() >= 0.95
    assert offsets.max() <= 50
