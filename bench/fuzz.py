"""Fuzzing the decoders: damaged WAV, FLAC, Ogg, MP3 and M4A files, each decoded in a watched child.

segmenter's reader (`segmenter.audio.open_audio`) decodes each case in a child process that a
timeout watches.

usage: python bench/fuzz.py [--cases 5000] [--seed 24] [--timeout 60] [--formats wav,flac,...]
                            [--markdown PATH]

Each case is one format's sample (3 s, made from samples/ with ffmpeg) with one to four mutations
drawn from a seeded generator: bit flips, bytes overwritten with boundary values (0, 0xFF, 0x7F,
0x80), 32-bit header fields set to 0 / 2^31 / 2^32 - 1, a slice zeroed, duplicated, removed or
random bytes inserted, a cut; half of them aimed at the first 256 bytes, where headers are. Every
case must end in a result (samples decoded) or an AudioError of one line: an exception of any
other kind is a traceback, a case past --timeout a hang (the child and its ffmpeg are killed and a
new child takes the next case), and the child's peak RSS is the memory bound. Prints the counts:
results, errors by kind, tracebacks, hangs, peak memory. `tests/test_fuzz.py` runs a few hundred.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # as a script: the repo's top too
from bench import pages  # noqa: E402  (--markdown PATH: the output as a docs page)

SAMPLES = Path(__file__).parents[1] / "samples"
# format: (source in samples/, ffmpeg options that make a 3 s sample of it)
FORMATS = {
    "wav": ("standup_meeting.wav", ["-c:a", "pcm_s16le"]),
    "flac": ("board_call_stereo.flac", ["-c:a", "flac"]),
    "ogg": ("lecture_qa.ogg", ["-c:a", "libvorbis", "-q:a", "2"]),
    "mp3": ("mandarin_review.mp3", ["-c:a", "libmp3lame", "-b:a", "64k"]),
    "m4a": ("standup_meeting.wav", ["-c:a", "aac", "-b:a", "64k"]),
}
SECONDS = 3
HEADER = 256  # bytes where the headers are; half the mutations land there
BOUNDARY = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE)
FIELDS = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x00010000)
STALL_S = 10.0  # the children's decoder watchdog (DECODER_STALL_S), well inside --timeout

CHILD = r"""
import json, resource, sys, traceback
from segmenter import audio
from segmenter.audio import AudioError, open_audio

audio.ffmpeg.DECODER_STALL_S = float(sys.argv[1])


def peak_mb():
    # VmHWM: this program's own peak (ru_maxrss keeps what a fork inherited across exec)
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


for line in sys.stdin:
    path = line.rstrip("\n")
    result = {}
    try:
        with open_audio(path) as stream:
            result["samples"] = sum(len(block) for block in stream)
    except AudioError as exc:
        result["error"] = str(exc).replace(path, "FILE")
    except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
        result["traceback"] = traceback.format_exc()
    result["rss_mb"] = peak_mb()
    result["ffmpeg_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(result), flush=True)
"""


def make_samples(folder: Path, formats: list[str]) -> dict[str, bytes]:
    """Each format's 3 s sample, made from samples/ with ffmpeg; its bytes."""
    made = {}
    for name in formats:
        source, options = FORMATS[name]
        target = folder / f"sample.{name}"
        cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(SAMPLES / source), "-t", str(SECONDS)]
        subprocess.run([*cmd, *options, str(target)], check=True)
        made[name] = target.read_bytes()
    return made


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, list[str]]:
    """`data` with one to four random mutations; the mutated bytes and what was done."""
    data = bytearray(data)
    done = []
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        span = min(len(data), HEADER) if rng.random() < 0.5 else len(data)
        at = rng.randrange(span)
        kind = rng.choice(
            ["flip", "boundary", "field", "zero", "duplicate", "remove", "insert", "cut"]
        )
        if kind == "flip":
            for _ in range(rng.randint(1, 16)):
                data[rng.randrange(span)] ^= 1 << rng.randrange(8)
        elif kind == "boundary":
            data[at] = rng.choice(BOUNDARY)
        elif kind == "field" and at + 4 <= len(data):
            data[at : at + 4] = rng.choice(FIELDS).to_bytes(4, rng.choice(["little", "big"]))
        elif kind == "zero":
            data[at : at + rng.randint(1, 4096)] = bytes(min(len(data) - at, 4096))[:4096]
        elif kind == "duplicate":
            piece = data[at : at + rng.randint(1, 8192)]
            data[at:at] = piece
        elif kind == "remove":
            del data[at : at + rng.randint(1, 8192)]
        elif kind == "insert":
            data[at:at] = rng.randbytes(rng.randint(1, 512))
        elif kind == "cut":
            del data[max(1, at) :]
        done.append(f"{kind}@{at}")
    return bytes(data), done


@dataclass
class Counts:
    """What the cases gave."""

    cases: int = 0
    results: Counter = field(default_factory=Counter)  # format -> cases decoded
    errors: Counter = field(default_factory=Counter)  # kind -> cases
    multiline: list[str] = field(default_factory=list)  # errors of more than one line
    tracebacks: list[tuple[str, str]] = field(default_factory=list)  # (case, traceback)
    hangs: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    peak_case: str = ""
    ffmpeg_peak_rss_mb: float = 0.0  # the largest ffprobe/ffmpeg a child ran
    seconds: float = 0.0

    def add(self, case: str, fmt: str, result: dict) -> None:
        self.cases += 1
        if result.get("rss_mb", 0.0) > self.peak_rss_mb:
            self.peak_rss_mb, self.peak_case = result["rss_mb"], case
        self.ffmpeg_peak_rss_mb = max(self.ffmpeg_peak_rss_mb, result.get("ffmpeg_rss_mb", 0.0))
        if "samples" in result:
            self.results[fmt] += 1
        elif "error" in result:
            self.errors[error_kind(result["error"])] += 1
            if "\n" in result["error"]:
                self.multiline.append(f"{case}: {result['error']!r}")
        else:
            self.tracebacks.append((case, result["traceback"]))


def error_kind(message: str) -> str:
    """An AudioError's message without the file and the numbers: its kind."""
    text = message.removeprefix("FILE: ")
    text = re.sub(r"\(.*", "", text)  # the details in brackets: decoder messages
    text = re.sub(r"-?\d+(\.\d+)?", "N", text)
    return text.strip(" :")


class Child:
    """A decoding child process: cases in on stdin, one JSON line out per case."""

    def __init__(self):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(STALL_S)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,  # its ffmpeg children in its group: killed with it
        )

    def decode(self, path: Path, timeout: float) -> dict | None:
        """The child's answer for `path`, or None if it gave none in `timeout` seconds (then
        it and its group are killed) or died."""
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.kill()
            return None
        return json.loads(line)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


def run(cases: int, seed: int, timeout: float, formats: list[str], keep: Path | None = None):
    """Fuzz `cases` cases (round-robin over the formats); the Counts. Cases that hang or give
    a traceback are kept in `keep` (if given) to reproduce."""
    began = time.perf_counter()
    counts = Counts()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="segmenter-fuzz-") as folder:
        samples = make_samples(Path(folder), formats)
        child = Child()
        try:
            for number in range(cases):
                fmt = formats[number % len(formats)]
                data, how = mutate(samples[fmt], rng)
                path = Path(folder) / f"case{number}.{fmt}"
                path.write_bytes(data)
                case = f"#{number} {fmt} {' '.join(how)}"
                result = child.decode(path, timeout)
                if result is None:
                    counts.hangs.append(case)
                    child = Child()
                    result = {}
                else:
                    counts.add(case, fmt, result)
                if keep is not None and (result.get("traceback") or result == {}):
                    keep.mkdir(parents=True, exist_ok=True)
                    path.replace(keep / path.name)
                else:
                    path.unlink()
        finally:
            child.close()
    counts.seconds = time.perf_counter() - began
    return counts


def report(counts: Counts, seed: int, formats: list[str]) -> str:
    """The counts as a table."""
    lines = [
        f"{counts.cases + len(counts.hangs)} cases (seed {seed}; {', '.join(formats)}),"
        f" {counts.seconds:.0f} s",
        "",
        "| outcome | cases |",
        "| --- | ---: |",
    ]
    lines += [f"| decoded, {fmt} | {n} |" for fmt, n in sorted(counts.results.items())]
    lines += [f"| error: {kind} | {n} |" for kind, n in counts.errors.most_common()]
    lines += [
        f"| errors of more than one line | {len(counts.multiline)} |",
        f"| tracebacks | {len(counts.tracebacks)} |",
        f"| hangs | {len(counts.hangs)} |",
        "",
        f"peak RSS of a decoding child: {counts.peak_rss_mb:.0f} MB ({counts.peak_case});"
        f" of an ffprobe or ffmpeg it ran: {counts.ffmpeg_peak_rss_mb:.0f} MB",
    ]
    for case, trace in counts.tracebacks[:5]:
        lines += ["", f"traceback, {case}:", trace]
    lines += [f"hang: {case}" for case in counts.hangs[:5]]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--keep", type=Path, help="folder to keep the cases that hang or crash")
    pages.add_argument(ap)
    args = ap.parse_args()
    formats = args.formats.split(",")
    with pages.page(args.markdown, __doc__):
        counts = run(args.cases, args.seed, args.timeout, formats, args.keep)
        print(report(counts, args.seed, formats))
    sys.exit(1 if counts.tracebacks or counts.hangs or counts.multiline else 0)


if __name__ == "__main__":
    main()
