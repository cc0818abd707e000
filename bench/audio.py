"""Audio decoding: the same 60-minute recording in four formats, and decoding's share of the run.

usage: python bench/audio.py [--audio FILE] [--markdown PATH]

One core (OMP/MKL threads 1). FILE defaults to bench/data/long60.wav, made by bench/engine.py;
ffmpeg makes the other formats from it once (48 kHz FLAC stereo, 44.1 kHz MP3 stereo at 128k,
M4A with AAC at 96k). Each format is decoded to 16 kHz mono blocks by segmenter's reader
(`segmenter.audio.open_audio`), timed once; then the whole pipeline (decode, features, network,
decision; INT8 on the default runtime, one thread) runs on the same file, timed once, to show
what share decoding is. Wall seconds of single runs: on a loaded machine they move.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pages  # noqa: E402  (bench/pages.py, same folder)
from engine import long_recording  # noqa: E402  (bench/engine.py, same folder)

from segmenter.audio import open_audio  # noqa: E402

FORMATS = {  # name: ffmpeg options from the 16 kHz WAV
    "48 kHz FLAC stereo": (".flac", ["-ar", "48000", "-ac", "2", "-sample_fmt", "s16"]),
    "44.1 kHz MP3 stereo": (".mp3", ["-ar", "44100", "-ac", "2", "-b:a", "128k"]),
    "M4A (AAC)": (".m4a", ["-c:a", "aac", "-b:a", "96k"]),
}


def convert(wav: Path, suffix: str, args: list[str]) -> Path:
    target = wav.with_name(f"{wav.stem}-{args[1] if args[0] == '-ar' else 'aac'}{suffix}")
    if not target.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(wav), *args, str(target)], check=True
        )
    return target


def decode_seconds(path: Path) -> float:
    start = time.perf_counter()
    with open_audio(path) as audio:
        for _ in audio:
            pass
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path)
    pages.add_argument(ap)
    args = ap.parse_args()
    with pages.page(args.markdown, __doc__):
        measure(args.audio or long_recording())


def measure(wav: Path) -> None:
    """Decode each format, then run the pipeline on it; print the table."""
    files = {"16 kHz WAV mono": wav}
    files.update({name: convert(wav, sfx, args) for name, (sfx, args) in FORMATS.items()})
    with open_audio(wav) as audio:
        duration = audio.info.duration
    from segmenter.vad import Vad

    vad = Vad.load(precision="int8", threads=1)
    print(f"{wav.name}: {duration / 60:.0f} min; one core")
    print("| format | size MB | decode s | decode x real time | pipeline s | decode share |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, path in files.items():
        decode = decode_seconds(path)
        start = time.perf_counter()
        vad.segments(path)
        pipeline = time.perf_counter() - start
        print(
            f"| {name} | {path.stat().st_size / 1e6:.0f} | {decode:.2f} | {duration / decode:.0f}x"
            f" | {pipeline:.2f} | {decode / pipeline:.0%} |"
        )


if __name__ == "__main__":
    main()
