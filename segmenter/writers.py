"""Per-recording outputs: JSON document, RTTM, and optional WAV clips, each written atomically.

For input `ROOT/a/b/x.wav` they are `OUT/a/b/x.wav.json`, `OUT/a/b/x.wav.rttm` and
`OUT/a/b/x.wav.clips/NNNN_<start>-<end>.wav`; keeping the extension keeps `x.wav` and `x.mp3`
apart. A reader never sees a half-written file: each is written to a temporary name beside it
and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import soundfile as sf

from .audio import SAMPLE_RATE, open_audio
from .segments import Segment

TMP_PREFIX = ".tmp-"


def output_base(out: Path, rel: str) -> Path:
    """Where a recording's outputs go; refuses names that would leave OUT."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise ValueError(f"unsafe output name: {rel!r}")
    return out.joinpath(*parts)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` that replaces it only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def write_json(target: Path, document: dict[str, Any]) -> None:
    write_text(target, json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def rttm_lines(uri: str, segments: list[Segment]) -> str:
    """Standard 10-field RTTM, one line per segment, label `speech`."""
    uri = "_".join(uri.split()) or "recording"  # RTTM fields are whitespace-separated
    return "".join(
        f"SPEAKER {uri} 1 {s.start / 1000:.3f} {s.duration / 1000:.3f} <NA> <NA> speech <NA> <NA>\n"
        for s in segments
    )


def clip_name(index: int, segment: Segment) -> str:
    return f"{index:04d}_{segment.start / 1000:.3f}-{segment.end / 1000:.3f}.wav"


def write_clips(
    source: Path,
    folder: Path,
    segments: list[Segment],
    pad_ms: int = 0,
    rate: int | None = None,
    channel: int | None = None,
) -> list[str]:
    """Cut each segment (padded, within the file) into a WAV; replaces the whole folder atomically.

    rate None keeps the source's rate and channels where libsndfile reads the source; otherwise
    (and for formats only ffmpeg reads) clips are 16 kHz mono.
    """
    staging = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=_parent(folder)))
    try:
        names = _cut(source, staging, segments, pad_ms, rate, channel)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
        return names
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent


def _cut(source, staging, segments, pad_ms, rate, channel) -> list[str]:
    try:
        info = sf.info(str(source)) if rate is None else None
    except (sf.LibsndfileError, RuntimeError):
        info = None
    names = []
    if info is not None:  # source rate and channels, straight from the file
        with sf.SoundFile(str(source)) as f:
            for i, seg in enumerate(segments):
                start, stop = _span(seg, pad_ms, f.samplerate, f.frames)
                f.seek(start)
                data = f.read(stop - start, dtype="float32", always_2d=True)
                if channel is not None:
                    data = data[:, channel]
                names.append(clip_name(i, seg))
                sf.write(staging / names[-1], data, f.samplerate, subtype="PCM_16")
        return names
    return _cut_stream(source, staging, segments, pad_ms, channel)


def _cut_stream(source, staging, segments, pad_ms, channel) -> list[str]:
    """16 kHz mono clips cut while decoding once, never holding more than a block."""
    names = [clip_name(i, seg) for i, seg in enumerate(segments)]
    spans = [_span(seg, pad_ms, SAMPLE_RATE, 1 << 62) for seg in segments]
    writers = [sf.SoundFile(staging / n, "w", SAMPLE_RATE, 1, "PCM_16") for n in names]
    try:
        position = 0
        with open_audio(source, channel=channel) as audio:
            for block in audio:
                end = position + len(block)
                for (start, stop), writer in zip(spans, writers, strict=True):
                    if start < end and stop > position:
                        writer.write(
                            block[max(start, position) - position : min(stop, end) - position]
                        )
                position = end
    finally:
        for writer in writers:
            writer.close()
    return names


def _span(seg: Segment, pad_ms: int, rate: int, frames: int) -> tuple[int, int]:
    start = max(0, (seg.start - pad_ms) * rate // 1000)
    stop = min(frames, (seg.end + pad_ms) * rate // 1000)
    return start, max(start, stop)
