"""Clip names say where each clip lies in the recording, padding included, so Whisper's times in
a clip plus the name's start are times in the recording; names stay unique and sorted."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter.segments import Segment
from segmenter.writers import clip_name, find_clip

from .test_batch import SPEECH, run


def named_span(clip: Path) -> tuple[float, float]:
    """The seconds a clip's name says it holds."""
    start, end = clip.stem.split("_", 1)[1].split("-")
    return float(start), float(end)


@pytest.mark.parametrize("rate", [None, "16000"], ids=["source rate", "--clip-rate"])
def test_a_clips_name_starts_where_the_clip_starts(tmp_path, rate):
    source = SPEECH[16000 * 2 : 16000 * 32]  # speech within a second of each end
    (tmp_path / "in").mkdir()
    sf.write(tmp_path / "in" / "call.wav", source, 16000, subtype="FLOAT")
    out = tmp_path / "out"
    args = ["--clips", "--clip-pad-ms", "1000", *(["--clip-rate", rate] if rate else [])]
    done = run(tmp_path / "in", "-o", out, "--jobs", "1", *args)
    assert done.returncode == 0, done.stderr
    segments = json.loads((out / "call.wav.json").read_text())["segments"]
    clips = sorted((out / "call.wav.clips").iterdir())
    assert len(clips) == len(segments) > 1 and len({c.name for c in clips}) == len(clips)
    assert named_span(clips[0])[0] == 0 and named_span(clips[-1])[1] == 30  # within the file
    for clip, segment in zip(clips, segments, strict=True):
        start, end = named_span(clip)
        assert start == round(max(0.0, segment["start"] - 1), 3), clip.name
        assert end == round(min(30.0, segment["end"] + 1), 3), clip.name
        audio = sf.read(clip, dtype="float32")[0]
        at = round(start * 16000)
        assert len(audio) == round(end * 16000) - at
        np.testing.assert_allclose(audio, source[at : at + len(audio)], atol=1 / 32768)


def test_names_sort_in_order_past_ten_thousand_clips(tmp_path):
    names = [clip_name(i, Segment(10 * i, 10 * i + 5), 12_000) for i in range(12_000)]
    assert sorted(names) == names and names[0] == "00000_0.000-0.005.wav"
    assert clip_name(3, Segment(1000, 2500)) == "0003_1.000-2.500.wav"
    (tmp_path / names[11_000]).write_bytes(b"")
    (tmp_path / "notes.txt").write_bytes(b"")
    assert find_clip(tmp_path, 11_000) == tmp_path / names[11_000]
    assert find_clip(tmp_path, 3) is None and find_clip(tmp_path / "none", 0) is None
