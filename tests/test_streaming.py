"""Streaming: segments do not depend on block size, and memory does not grow with length."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from . import blocks as runnable
from .conftest import GOLDEN


def stream_segments(vad, samples, block):
    stream = vad.stream()
    found = []
    for i in range(0, len(samples), block):
        found += stream.feed(samples[i : i + block])
    return [(s.start, s.end) for s in found + stream.finish()]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_segments_do_not_depend_on_block_size(request, precision):
    """dev06 crosses two 60 s schedule chunks and the 60 s maximum segment."""
    vad = request.getfixturevalue(f"vad_{precision}")
    samples, _ = sf.read(GOLDEN / "dev06_densepink30db.flac", dtype="float32")
    whole = stream_segments(vad, samples, len(samples))
    assert len(whole) == 23
    for block in (1601, 16000, 160 * 6000 - 1, 160 * 6000 + 7, 123457):
        assert stream_segments(vad, samples, block) == whole, block


def test_segments_arrive_while_streaming(vad_fp32):
    samples, _ = sf.read(GOLDEN / "dev00_clean.flac", dtype="float32")
    stream = vad_fp32.stream()
    early = []
    for i in range(0, len(samples) * 2 // 3, 16000):
        early += stream.feed(samples[i : i + 16000])
    assert early and early[0].start == 890  # the first segment ends long before the file does


def test_exact_multiple_of_schedule_chunk(vad_fp32):
    """A recording of exactly 60 s puts FunASR's last frames in an empty final chunk."""
    samples, _ = sf.read(GOLDEN / "dev06_densepink30db.flac", dtype="float32", frames=960000)
    whole = stream_segments(vad_fp32, samples, len(samples))
    assert whole == stream_segments(vad_fp32, samples, 777)
    assert whole[-1][1] == 59980


RSS_PROBE = """
import resource, sys
import soundfile as sf
from segmenter.vad import Vad
vad = Vad.load(precision="int8")
minute, _ = sf.read(sys.argv[1], dtype="float32")  # one minute of speech, looped
stream = vad.stream()
segments = 0
for _ in range(int(sys.argv[2])):
    for i in range(0, len(minute), 16000):
        segments += len(stream.feed(minute[i : i + 16000]))
segments += len(stream.finish())
assert segments >= 4 * int(sys.argv[2]), segments
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def peak_rss_mb(minutes: int) -> int:
    """Peak RSS of a fresh process that streams `minutes` of speech through the engine."""
    probe = [sys.executable, "-c", RSS_PROBE, str(GOLDEN / "dev00_clean.flac"), str(minutes)]
    out = subprocess.run(probe, capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.slow
def test_memory_does_not_grow_with_length():
    short, long = peak_rss_mb(3), peak_rss_mb(45)
    assert long - short < 15, (short, long)


def test_the_library_example_keeps_the_last_segment(tmp_path, monkeypatch):
    """The Python example of docs/engines.md ("Use it", marked `runnable: library-stream`), run
    as written: the stream finds what the file call finds."""
    snippet = runnable.named("library-stream").code
    samples, _ = sf.read(GOLDEN / "dev00_clean.flac", dtype="float32")
    sf.write(tmp_path / "meeting.wav", samples, 16000)
    monkeypatch.chdir(tmp_path)
    blocks = [samples[i : i + 16000] for i in range(0, len(samples), 16000)]
    names = {"samples_16k": samples, "blocks": blocks}
    exec(snippet, names)  # noqa: S102 - the docs' own code
    whole = names["vad"].segments("meeting.wav")
    assert len(whole) == 5 and names["found"] == whole


def test_int16_samples_are_scaled_and_2d_arrays_refused(vad_fp32):
    samples, _ = sf.read(GOLDEN / "dev00_clean.flac", dtype="int16")
    floats = samples / np.float32(32768)
    assert vad_fp32.segments(samples) == vad_fp32.segments(floats) != []
    stream = vad_fp32.stream()
    assert stream.feed(samples) + stream.finish() == vad_fp32.segments(floats)
    stereo = np.stack([floats, floats], axis=1)
    with pytest.raises(ValueError, match=r"1-D mono samples, got shape \(960000, 2\)"):
        vad_fp32.segments(stereo)
    with pytest.raises(ValueError, match="mix down"):
        vad_fp32.stream().feed(stereo)
    with pytest.raises(ValueError, match="uint8"):
        vad_fp32.segments(np.zeros(16000, np.uint8))
