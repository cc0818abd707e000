"""Clip cutting holds a bounded few open files, whatever the number of segments (issue 27).

Each case cuts 2,000 clips in a child process whose open-file limit is 256 (the usual
`ulimit -n` is 1,024; a long meeting has more segments than that): through ffmpeg (an M4A, which
libsndfile does not read) and through libsndfile with a clip rate (which decodes the recording
once at 16 kHz, like every ffmpeg-only format). Before the fix, the stream cutter opened every
clip's file at once and failed with `LibsndfileError ... System error`.
"""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter.segments import Segment
from segmenter.writers import write_clips

RATE = 16000
COUNT = 2000
SEGMENT_MS, GAP_MS = 20, 10  # 2,000 clips in 60 s of audio

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    from segmenter.segments import Segment
    from segmenter.writers import write_clips
    source, folder, pad, rate = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    spans = json.loads(sys.argv[5])
    names = write_clips(Path(source), folder, [Segment(a, b) for a, b in spans], pad, rate)
    print(len(names))
    """
)


def _spans() -> list[tuple[int, int]]:
    step = SEGMENT_MS + GAP_MS
    return [(i * step, i * step + SEGMENT_MS) for i in range(COUNT)]


def _recording(tmp_path: Path, kind: str) -> Path:
    """60 s of a quiet tone; as a WAV or, made with ffmpeg, an M4A."""
    seconds = COUNT * (SEGMENT_MS + GAP_MS) / 1000
    t = np.arange(int(seconds * RATE)) / RATE
    wav = tmp_path / "long.wav"
    sf.write(wav, (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), RATE)
    if kind == "wav":
        return wav
    m4a = tmp_path / "long.m4a"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "64k", str(m4a)],
        check=True,
    )
    return m4a


def _cut_in_child(
    source: Path, folder: Path, pad_ms: int, rate: int
) -> subprocess.CompletedProcess:
    import json

    spans = json.dumps(_spans())
    args = [sys.executable, "-c", CHILD, str(source), str(folder), str(pad_ms), str(rate), spans]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    ("kind", "pad_ms", "rate"),
    [("m4a", 0, 16000), ("wav", 0, 16000), ("m4a", 0, 8000), ("wav", 4000, 16000)],
    ids=["ffmpeg", "soundfile", "ffmpeg-resampled", "soundfile-overlapping-pads"],
)
def test_two_thousand_clips_under_an_open_file_limit_of_256(tmp_path, kind, pad_ms, rate):
    if kind == "m4a" and shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    source = _recording(tmp_path, kind)
    folder = tmp_path / "out" / (source.name + ".clips")
    done = _cut_in_child(source, folder, pad_ms, rate)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(COUNT)]
    clips = sorted(folder.iterdir())
    assert len(clips) == COUNT
    # with 4 s pads each point of the recording lies in ~270 clips: more than the limit, so the
    # cutter must close and reopen files; the clips hold exactly their padded spans all the same
    for index in (0, 1, COUNT // 2, COUNT - 1):
        start, stop = _spans()[index]
        start, stop = max(0, start - pad_ms), min(stop + pad_ms, COUNT * 30)
        info = sf.info(clips[index])
        assert (info.samplerate, info.channels) == (rate, 1)
        assert abs(info.frames - (stop - start) * rate // 1000) <= rate // 1000


def test_clips_are_the_same_bytes_however_many_files_are_open(tmp_path, monkeypatch):
    """Cut with room for one open clip file and with room for all: byte for byte the same
    (a clip closed and reopened to write on continues exactly where it stopped)."""
    from segmenter import writers

    source = _recording(tmp_path, "wav")
    segments = [Segment(a, b) for a, b in _spans()[:300]]
    out = {}
    for limit in (1, 1000):
        monkeypatch.setattr(writers.clips, "OPEN_CLIPS", limit)
        folder = tmp_path / f"limit{limit}.clips"
        names = write_clips(source, folder, segments, pad_ms=300, rate=8000)
        out[limit] = [(name, (folder / name).read_bytes()) for name in names]
    assert out[1] == out[1000]
