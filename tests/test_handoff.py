"""Hand-off: ASR chunking, and every output format read back by the library that consumes it."""

import csv
import json
import re
import subprocess
import sys
from datetime import timedelta

import lhotse
import numpy as np
import pytest
import soundfile as sf
import srt
from pyannote.database.util import load_rttm

from segmenter.chunking import ChunkOptions, asr_chunks, merge_close, pad, split_long
from segmenter.segments import Segment, segments_of
from segmenter.writers import write_clips

from . import blocks
from .conftest import GOLDEN
from .test_batch import SEGMENTER, SPEECH, rows, run


def test_long_segment_is_cut_at_the_least_speech_like_frame():
    scores = np.full(5000, 0.9, np.float32)  # 50 s of confident speech...
    scores[3100] = 0.2  # ...with one breath at 31 s
    pieces = split_long(Segment(0, 50000), scores, limit_ms=40000)
    assert pieces == [Segment(0, 31000), Segment(31000, 50000)]
    blind = split_long(Segment(0, 95000), None, limit_ms=40000)
    assert blind == [Segment(0, 40000), Segment(40000, 80000), Segment(80000, 95000)]


def test_merge_and_pad():
    segs = [Segment(1000, 5000), Segment(5500, 9000), Segment(12000, 14000)]
    assert merge_close(segs, longest_ms=30000, gap_ms=1000) == [
        Segment(1000, 9000),
        Segment(12000, 14000),
    ]
    assert merge_close(segs, longest_ms=6000, gap_ms=1000) == segs
    assert pad(segs, 400, duration_ms=14100) == [
        Segment(600, 5250),
        Segment(5250, 9400),
        Segment(11600, 14100),
    ]


def test_merge_for_asr_splits_long_segments_and_pads_within_the_limit():
    """The issue's cases: a 58.83 s segment with --merge-for-asr-s 30, and [5000, 35000] padded."""
    scores = np.full(9000, 0.9, np.float32)
    options = ChunkOptions(merge_for_asr_s=30, pad_ms=200)
    chunks = asr_chunks([Segment(1000, 59830)], scores, 90000, options)
    assert len(chunks) == 2 and max(c.duration for c in chunks) <= 30000
    padded = asr_chunks([Segment(5000, 35000)], None, 90000, ChunkOptions(30, pad_ms=200))
    assert max(c.duration for c in padded) <= 30000


def test_document_with_merge_for_asr_cuts_long_speech_where_the_score_dips(vad_fp32):
    """dev06 has 60 s segments (FunASR's maximum); --merge-for-asr-s alone must split them too."""
    path = GOLDEN / "dev06_densepink30db.flac"
    options = ChunkOptions(merge_for_asr_s=30, pad_ms=200)
    chunks = segments_of(vad_fp32.document(path, chunking=options))
    assert max(c.duration for c in vad_fp32.segments(path)) > 30000
    assert max(c.duration for c in chunks) <= 30000
    result = vad_fp32.process_file(path, keep_scores=True)
    expected = asr_chunks(result.segments, result.speech_scores, 150000, options)
    assert chunks == expected  # cut where the scores dip, not blindly at the limit


def test_every_chunk_fits_the_limit_without_overlap_within_the_file():
    """Property: random segments, scores and settings; every chunk <= the limit (padding
    included), none overlapping, all within the file, and no speech left out."""
    rng = np.random.default_rng(15)
    for _ in range(300):
        duration = int(rng.integers(1000, 600000))
        cuts = np.sort(rng.choice(np.arange(0, duration, 10), size=2 * int(rng.integers(1, 12))))
        segments = [Segment(int(a), int(b)) for a, b in cuts.reshape(-1, 2) if b > a]
        scores = rng.random(duration // 10 + int(rng.integers(-50, 50))).astype(np.float32)
        max_s = float(rng.uniform(1, 60)) if rng.random() < 0.5 else None
        merge_s = float(rng.uniform(1, 60)) if rng.random() < 0.6 else None
        given = [s for s in (max_s, merge_s) if s is not None]
        limit_ms = round(min(given) * 1000) if given else None
        pad_ms = int(rng.integers(0, (limit_ms - 1000) // 2 + 1 if limit_ms else 3000))
        options = ChunkOptions(max_s, merge_s, float(rng.uniform(0, 3)), pad_ms)
        chunks = asr_chunks(segments, scores if rng.random() < 0.8 else None, duration, options)
        case = (options, segments)
        assert all(0 <= c.start < c.end <= duration for c in chunks), case
        assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False)), case
        assert limit_ms is None or all(c.duration <= limit_ms for c in chunks), case
        speech, kept = np.zeros(duration, bool), np.zeros(duration, bool)
        for seg in segments:
            speech[seg.start : seg.end] = True
        for chunk in chunks:
            kept[chunk.start : chunk.end] = True
        assert not (speech & ~kept).any(), case


def test_defaults_change_nothing():
    segs = [Segment(0, 90000), Segment(90000, 91000)]
    assert not ChunkOptions().active
    assert asr_chunks(segs, None, 100000, ChunkOptions()) == segs


def test_every_format_loads_in_its_consumer(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "long talk.wav", np.concatenate([SPEECH, SPEECH]), 16000)
    out = tmp_path / "out"
    formats = "json,rttm,csv,audacity,srt,whisper,lhotse"
    args = ["--formats", formats, "--max-segment-s", "15", "--pad-ms", "100"]
    assert run(src, "-o", out, *args).returncode == 0
    base = out / "long talk.wav"
    doc = json.loads(base.with_name(base.name + ".json").read_text())
    spans = [(s["start"], s["end"]) for s in doc["segments"]]
    assert doc["chunking"]["max_segment_s"] == 15
    assert max(b - a for a, b in spans) <= 15.2 and len(spans) > 10

    with open(base.with_name(base.name + ".csv")) as fh:
        table = list(csv.DictReader(fh))
    assert [(float(r["start"]), float(r["end"])) for r in table] == spans

    labels = base.with_name(base.name + ".audacity.txt").read_text().splitlines()
    assert [tuple(map(float, line.split("\t")[:2])) for line in labels] == spans

    cues = list(srt.parse(base.with_name(base.name + ".srt").read_text()))
    assert [(c.start, c.end) for c in cues] == [
        (timedelta(seconds=a), timedelta(seconds=b)) for a, b in spans
    ]

    whisper = json.loads(base.with_name(base.name + ".whisper.json").read_text())
    flat = [float(t) for t in whisper["clip_timestamps"].split(",")]
    assert list(zip(flat[::2], flat[1::2], strict=True)) == spans
    assert [(c["start"], c["end"]) for c in whisper["batched_clip_timestamps"]] == spans

    recordings = lhotse.load_manifest(base.with_name(base.name + ".recording.jsonl"))
    supervisions = lhotse.load_manifest(base.with_name(base.name + ".supervisions.jsonl"))
    (recording,) = list(recordings)
    assert recording.duration == 120.0 and recording.sampling_rate == 16000
    assert recording.load_audio().shape == (1, 120 * 16000)
    assert [(s.start, round(s.end, 3)) for s in supervisions] == spans
    cuts = lhotse.CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    assert len(cuts) == 1 and len(list(cuts)[0].supervisions) == len(spans)

    ((uri, annotation),) = load_rttm(base.with_name(base.name + ".rttm")).items()
    assert uri == "long_talk" and len(annotation.get_timeline()) == len(spans)

    manifest_outputs = json.loads(rows(out)["long talk.wav"]["outputs"])
    assert len(manifest_outputs) == 8 and all((out / p).exists() for p in manifest_outputs)


def test_segment_command_writes_formats(tmp_path):
    path = tmp_path / "talk.wav"
    sf.write(path, SPEECH, 16000)
    cmd = [SEGMENTER, "segment", "talk.wav", "--formats", "srt,csv,whisper", "-o", "o"]
    out = subprocess.run(
        [*cmd, "--merge-for-asr-s", "30"], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    whisper = json.loads((tmp_path / "o" / "talk.wav.whisper.json").read_text())
    assert whisper["audio"] == str(path)  # absolute, as `run` writes it: read from anywhere
    doc = json.loads(out.stdout)
    assert all(b - a <= 30 for a, b in ((s["start"], s["end"]) for s in doc["segments"]))
    assert len(list(srt.parse((tmp_path / "o" / "talk.wav.srt").read_text()))) == len(
        doc["segments"]
    )
    assert (tmp_path / "o" / "talk.wav.csv").exists()


def test_write_error_names_the_output_not_its_temporary_file(tmp_path):
    path = tmp_path / "talk.wav"
    sf.write(path, SPEECH[:160000], 16000)
    (tmp_path / "talk.wav.json").mkdir()  # something in the output's way
    cmd = [SEGMENTER, "segment", str(path), "--formats", "json", "-o", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr == f"segmenter: cannot write {tmp_path / 'talk.wav.json'}: is a folder\n"
    assert not list(tmp_path.glob(".tmp-*"))


def test_clip_rates_and_channels_are_what_the_readme_says(tmp_path):
    """WAV: the source's rate and channels; M4A: 16 kHz mono; a clip rate: mono at that rate."""
    stereo = np.stack([SPEECH[: 16000 * 20]] * 2, axis=1)
    wav = tmp_path / "talk.wav"
    sf.write(wav, stereo, 16000)
    m4a = tmp_path / "talk.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-i", wav, "-ar", "44100", m4a], check=True)
    segments = [Segment(1000, 3000), Segment(5000, 9000)]
    for source, rate, expected in (
        (wav, None, (16000, 2)),
        (m4a, None, (16000, 1)),
        (m4a, 8000, (8000, 1)),
        (wav, 22050, (22050, 1)),
    ):
        folder = tmp_path / f"{source.name}.{rate}.clips"
        names = write_clips(source, folder, segments, pad_ms=100, rate=rate)
        for name, seg in zip(names, segments, strict=True):
            info = sf.info(folder / name)
            assert (info.samplerate, info.channels) == expected, (source.name, rate)
            assert abs(info.duration - (seg.duration + 200) / 1000) < 0.002, (source.name, rate)


def test_unknown_format_is_a_usage_error(tmp_path):
    assert run(tmp_path, "-o", tmp_path / "o", "--formats", "json,docx").returncode == 2


def test_readme_pyannote_snippet_says_what_it_needs_and_runs(tmp_path):
    """The pyannote block (docs/outputs.md) names the packages it imports in its install line,
    and runs as written on a run's RTTM against a reference."""
    block = blocks.named("pyannote-metrics").code
    install = block.splitlines()[0]
    imported = set(re.findall(r"^from (pyannote\.\w+)", block, re.M))
    assert install.startswith("# pip install ") and imported == {
        "pyannote.database",
        "pyannote.metrics",
    }
    assert all(name in install.split() for name in imported)
    (tmp_path / "truth").mkdir()
    (tmp_path / "out").mkdir()
    line = "SPEAKER call 1 {} {} <NA> <NA> speech <NA> <NA>\n"
    (tmp_path / "truth" / "call.rttm").write_text(line.format(1.0, 4.0))
    (tmp_path / "out" / "call.wav.rttm").write_text(line.format(1.5, 3.5))
    done = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == pytest.approx(0.125)  # 0.5 s missed of 4 s
