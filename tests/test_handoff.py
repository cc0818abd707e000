"""Hand-off: ASR chunking, and every output format read back by the library that consumes it."""

import csv
import json
import subprocess
from datetime import timedelta

import lhotse
import numpy as np
import soundfile as sf
import srt
from pyannote.database.util import load_rttm

from segmenter.chunking import ChunkOptions, asr_chunks, merge_close, pad, split_long
from segmenter.segments import Segment

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
    cmd = [SEGMENTER, "segment", str(path), "--formats", "srt,csv", "-o", str(tmp_path / "o")]
    out = subprocess.run([*cmd, "--merge-for-asr", "30"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert all(b - a <= 30 for a, b in ((s["start"], s["end"]) for s in doc["segments"]))
    assert len(list(srt.parse((tmp_path / "o" / "talk.wav.srt").read_text()))) == len(
        doc["segments"]
    )
    assert (tmp_path / "o" / "talk.wav.csv").exists()


def test_unknown_format_is_a_usage_error(tmp_path):
    assert run(tmp_path, "-o", tmp_path / "o", "--formats", "json,docx").returncode == 2
