"""Segment quality of every configuration side by side: segmenter's engines and profiles and peers.

usage: python bench/quality.py [--groups devset,ten,meeting,long60] [--quick] [--only NAME] [--json]
                              [--markdown docs/bench/quality.md]

Each configuration (a name and a function Recording -> Run, listed in CONFIGURATIONS) runs on the
same decoded samples of every recording in a group; the scores are pooled over the group's 10 ms
frames by segmenter.toolkit.evaluation: precision, recall, F1 and detection error rate (missed +
false alarm over reference speech) at collar 0 and 0.5 s, with the segment count and the speed
(audio seconds over processing seconds, one thread, model loading and decoding excluded).

Groups: devset (../shared/devset, synthetic meetings), ten (../shared/realset ten_*: fine manual
labels), meeting (the realset's ami_* and pyannote_sample), long60 (bench/data/long60.wav, a
60-minute synthetic meeting made once by bench/engine.py with ../shared/tools/make_devset.py).
--quick: at most 3 recordings per group and no long60 unless --groups names it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy/torch/onnxruntime load

import pages  # noqa: E402  (bench/pages.py, same folder)
from engine import long_recording  # noqa: E402  (bench/engine.py, same folder)
from peers import (  # noqa: E402
    Recording,
    Run,
    Unavailable,
    funasr_reference,
    silero_vad,
    ten_vad,
    timed,
)

from segmenter.toolkit.evaluation import Score, score  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
COLLARS = (0.0, 0.5)
BLOCK = 160_000  # 10 s: the blocks segmenter's reader gives
WARM_UP = 48_000  # samples (3 s) each configuration runs once before it is timed


@dataclass(frozen=True)
class Configuration:
    """One row of the table: a name and how it segments a recording."""

    name: str
    run: Callable[[Recording], Run]


@cache
def _vad(engine: str):
    """segmenter with this engine (FSMN INT8), one thread, loaded once."""
    from segmenter.vad import Vad

    return Vad.load(threads=1, engine=engine)


def segmenter_run(engine: str, profile: str) -> Callable[[Recording], Run]:
    """segmenter's engine and profile on the decoded samples, fed in the reader's 10 s blocks."""

    def run(recording: Recording) -> Run:
        stream = _vad(engine).stream(profile=profile)
        samples = recording.samples
        blocks = range(0, len(samples), BLOCK)

        def segment() -> list:
            found = [s for i in blocks for s in stream.feed(samples[i : i + BLOCK])]
            return found + stream.finish()

        found, took = timed(segment)
        return Run(found, took)

    return run


CONFIGURATIONS = [
    Configuration("segmenter fsmn + funasr (default, INT8)", segmenter_run("fsmn", "funasr")),
    Configuration("segmenter fsmn + precise", segmenter_run("fsmn", "precise")),
    Configuration("segmenter silero + precise", segmenter_run("silero", "precise")),
    Configuration("segmenter fusion + precise", segmenter_run("fusion", "precise")),
    Configuration("silero-vad get_speech_timestamps (defaults)", silero_vad),
    Configuration("ten-vad + post-processing (peers.py)", ten_vad),
    Configuration("FunASR 1.4.16 reference (.funasr.json)*", funasr_reference),
]


def group_files(group: str) -> list[tuple[Path, Path]]:
    """(audio, RTTM) pairs of a group; empty where its data is absent."""
    realset = SHARED / "realset"
    if group == "devset":
        wavs = sorted((SHARED / "devset").glob("*.wav"))
    elif group == "ten":
        wavs = sorted(realset.glob("ten_*.wav"))
    elif group == "meeting":
        wavs = sorted(realset.glob("ami_*.wav")) + sorted(realset.glob("pyannote_*.wav"))
    else:
        wavs = [long_recording(60)]
    return [(w, w.with_suffix(".rttm")) for w in wavs if w.with_suffix(".rttm").is_file()]


@dataclass
class Row:
    """A configuration's pooled result on a group."""

    scores: dict[float, Score]
    segments: int = 0
    seconds: float | None = 0.0
    unavailable: str = ""

    def add(self, recording: Recording, run: Run) -> None:
        """Count one recording's run."""
        spans = [(s.start / 1000, s.end / 1000) for s in run.segments]
        for collar in COLLARS:
            self.scores[collar] += score(recording.reference, spans, collar)
        self.segments += len(run.segments)
        if self.seconds is not None:
            self.seconds = None if run.seconds is None else self.seconds + run.seconds


def evaluate(configuration: Configuration, recordings: list[Recording]) -> Row:
    """Pooled scores of one configuration over a group's recordings."""
    row = Row({collar: Score() for collar in COLLARS})
    first = recordings[0]
    # warm up (TorchScript's first calls, onnxruntime's first shapes) outside the timing
    with contextlib.suppress(Unavailable):
        configuration.run(Recording(first.path, first.samples[:WARM_UP], first.reference))
    for recording in recordings:
        try:
            row.add(recording, configuration.run(recording))
        except Unavailable as exc:
            return Row({}, unavailable=f"{recording.path.name}: {exc}")
    return row


def row_cells(row: Row, audio_s: float) -> list[str]:
    """The table cells of a row."""
    if row.unavailable:
        return ["n/a"] * 9 + [row.unavailable]
    cells = []
    for collar in COLLARS:
        m = row.scores[collar].metrics()
        cells += [f"{m[k]:.3f}" for k in ("precision", "recall", "f1", "detection_error_rate")]
    speed = "n/m" if row.seconds is None else f"{audio_s / row.seconds:.0f}x"
    return [*cells, str(row.segments), speed]


HEADER = "| configuration | P | R | F1 | DER | P 0.5 | R 0.5 | F1 0.5 | DER 0.5 | segs | x RT |"


def main() -> None:
    """Score every configuration on every group asked for and print one table per group."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="devset,ten,meeting,long60")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", help="configurations whose name contains this text")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    pages.add_argument(ap)  # --markdown PATH: the tables as a docs page (docs/bench/quality.md)
    args = ap.parse_args()
    if args.json and args.markdown:
        sys.exit("--json and --markdown: one or the other")
    with pages.page(args.markdown, __doc__):
        measure(args, ap.get_default("groups"))


def measure(args: argparse.Namespace, default_groups: str) -> None:
    """Score the configurations on the groups and print the tables (or the JSON)."""
    groups = args.groups.split(",")
    unknown = set(groups) - {"devset", "ten", "meeting", "long60"}
    if unknown:
        sys.exit(f"unknown group(s): {', '.join(sorted(unknown))}")
    if args.quick and args.groups == default_groups:
        groups.remove("long60")
    chosen = [c for c in CONFIGURATIONS if not args.only or args.only in c.name]
    results = {}
    for group in groups:
        files = group_files(group)[: 3 if args.quick else None]
        if not files:
            print(f"{group}: no data, skipped", file=sys.stderr)
            continue
        recordings = [Recording.load(audio, rttm) for audio, rttm in files]
        results[group] = (recordings, {c.name: evaluate(c, recordings) for c in chosen})
    if args.json:
        print(json.dumps(as_json(results), indent=1))
        return
    for group, (recordings, rows) in results.items():
        audio_s = sum(r.seconds for r in recordings)
        reference = sum(len(r.reference) for r in recordings)
        print(
            f"\n{group}: {len(recordings)} recordings, {audio_s / 60:.1f} min, "
            f"{reference} reference segments; pooled 10 ms frames, collar 0 and 0.5 s"
        )
        print(HEADER)
        print("| --- |" + " ---: |" * 10)
        for name, row in rows.items():
            print(f"| {name} | " + " | ".join(row_cells(row, audio_s)) + " |")
    print(
        "\nx RT: one thread, decoding and model loading excluded. *: FunASR's speed is the time "
        "its .funasr.json recorded when it was made (AutoModel, default threads, another run), "
        "n/m where it recorded none."
    )


def as_json(results: dict) -> dict:
    """The results as plain data."""
    out = {}
    for group, (recordings, rows) in results.items():
        audio_s = sum(r.seconds for r in recordings)
        out[group] = {
            "recordings": [r.path.name for r in recordings],
            "audio_s": audio_s,
            "rows": {
                name: {
                    "unavailable": row.unavailable,
                    "segments": row.segments,
                    "process_s": row.seconds,
                    **{f"collar_{c}": row.scores[c].metrics() for c in row.scores},
                }
                for name, row in rows.items()
            },
        }
    return out


if __name__ == "__main__":
    main()
