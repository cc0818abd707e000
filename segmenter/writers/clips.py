"""Clips: a WAV per segment of a recording, cut in one pass, the folder replaced whole.

Clips are named `NNNN_<start>-<end>.wav` (clip_name) in `OUT/a/b/x.wav.clips/`. Where libsndfile
reads the source and no rate is asked, each clip is copied from it at its own rate and channels,
a clip at a time; otherwise the recording is decoded once at 16 kHz (ffmpeg or libsndfile) and
each block goes to the clips it overlaps, with at most OPEN_CLIPS files open at once.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ..audio import SAMPLE_RATE, block_frames, check_header, open_audio
from ..segments import Segment
from .durable import UMASK, naming, raise_if_full, sync_paths, tmp_folder_prefix


def clip_name(index: int, span: Segment, count: int = 0) -> str:
    """`NNNN_<start>-<end>.wav`: the clip's place in the batch (0-based, zero-padded to four
    digits or as many as `count` clips need, so names sort in order) and the seconds of the
    recording it holds, padding included, so a time in the clip plus <start> is that time in
    the recording."""
    width = max(4, len(str(max(count - 1, 0))))
    return f"{index:0{width}d}_{span.start / 1000:.3f}-{span.end / 1000:.3f}.wav"


def find_clip(folder: Path, index: int) -> Path | None:
    """The clip of segment `index` (0-based) in a clips folder, if it is there."""
    for path in folder.glob("*_*.wav") if folder.is_dir() else ():
        number = path.name.split("_", 1)[0]
        if number.isdigit() and int(number) == index:
            return path
    return None


def _held(index: int, start: int, stop: int, rate: int, count: int) -> str:
    """The name of clip `index` that holds samples [start, stop) of the recording at `rate`."""
    return clip_name(index, Segment(round(start * 1000 / rate), round(stop * 1000 / rate)), count)


CLIP_NAME = re.compile(r"\d{4,}_\d+\.\d{3}-\d+\.\d{3}\.wav")  # what clip_name makes


def holds_only_clips(folder: Path) -> bool:
    """Whether a folder holds nothing but clips (files named as clip_name names them): only
    such a folder is ever replaced or removed, never one that holds anything else."""
    try:
        with os.scandir(folder) as entries:
            return all(
                CLIP_NAME.fullmatch(e.name) and e.is_file(follow_symlinks=False) for e in entries
            )
    except NotADirectoryError:
        return False


def write_clips(
    source: Path,
    folder: Path,
    segments: list[Segment],
    pad_ms: int = 0,
    rate: int | None = None,
    channel: int | None = None,
) -> list[str]:
    """Cut each segment (padded, within the file) into a WAV; the folder replaced whole, synced.

    rate None keeps the source's rate and channels (or `channel`) where libsndfile reads the
    source (WAV, FLAC, Ogg, MP3); formats only ffmpeg reads (M4A/AAC, WMA, ...) give 16 kHz
    mono clips. A rate gives mono clips (the mean of the channels, or `channel`) at that rate.
    """
    with naming(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=tmp_folder_prefix(), dir=folder.parent))
        staging.chmod(0o777 & ~UMASK)  # mkdtemp's 0700 would survive the rename
    try:
        try:
            names = _cut(source, staging, segments, pad_ms, rate, channel)
        except (sf.LibsndfileError, RuntimeError):
            raise_if_full(folder)
            raise
        with naming(folder):
            sync_paths([*(str(staging / name) for name in names), str(staging)])
            if folder.exists():
                if not holds_only_clips(folder):
                    raise OSError(
                        errno.ENOTEMPTY,
                        "it holds files that are not clips (the outputs of an input folder of"
                        " that name?): not replaced",
                    )
                shutil.rmtree(folder)
            os.replace(staging, folder)
            sync_paths([str(folder.parent)])  # on disk before the batch records the file
        return names
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _cut(source, staging, segments, pad_ms, rate, channel) -> list[str]:
    try:
        info = sf.info(os.fsencode(source)) if rate is None else None
    except (sf.LibsndfileError, RuntimeError):
        info = None
    names = []
    if info is not None:  # source rate and channels, straight from the file
        with sf.SoundFile(os.fsencode(source)) as f:
            check_header(source, f.samplerate, f.channels)
            block = block_frames(f.samplerate, f.channels)
            channels = 1 if channel is not None else f.channels
            for i, seg in enumerate(segments):
                start, stop = _span(seg, pad_ms, f.samplerate, f.frames)
                f.seek(start)
                part, written = staging / f"{i}.part", 0  # named once its length is known
                wav = {"subtype": "PCM_16", "format": "WAV"}
                with sf.SoundFile(os.fsencode(part), "w", f.samplerate, channels, **wav) as clip:
                    for at in range(start, stop, block):  # a block at a time, never a segment
                        data = f.read(min(block, stop - at), dtype="float32", always_2d=True)
                        clip.write(data[:, [channel]] if channel is not None else data)
                        written += len(data)
                names.append(_held(i, start, start + written, f.samplerate, len(segments)))
                os.replace(part, staging / names[-1])
        return names
    return _cut_stream(source, staging, segments, pad_ms, channel, rate or SAMPLE_RATE)


OPEN_CLIPS = 16  # clip files open at once while cutting from a stream (the rest wait closed)


class _MonoClip:
    """A mono clip written from 16 kHz blocks at `rate` (soxr resamples it as a stream).

    Its file is open only while `files` holds it: a clip written to again after being closed
    reopens its file and goes on at the end (libsndfile rewrites the same WAV header on close),
    so the bytes do not depend on how many files were open.
    """

    def __init__(self, path: Path, rate: int, files: _OpenFiles):
        self.path = path
        self.rate = rate
        self.files = files
        self.file: sf.SoundFile | None = None
        self.made = False
        self.resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(SAMPLE_RATE, rate, 1)

    def open(self) -> sf.SoundFile:
        """The clip's file, opened (made, the first time) if it is not."""
        if self.file is None:
            self.files.make_room(self)
            if self.made:
                self.file = sf.SoundFile(os.fsencode(self.path), "r+")
                self.file.seek(0, sf.SEEK_END)
            else:
                self.file = sf.SoundFile(
                    os.fsencode(self.path), "w", self.rate, 1, "PCM_16", format="WAV"
                )
                self.made = True
        self.files.used(self)
        return self.file

    def write(self, samples: np.ndarray) -> None:
        """Add 16 kHz samples."""
        data = samples if self.resampler is None else self.resampler.resample_chunk(samples)
        self.open().write(data)

    def shut(self) -> None:
        """Close the file for now (the clip may be written to again)."""
        if self.file is not None:
            self.file.close()
            self.file = None

    def close(self) -> None:
        """Flush the resampler's tail and close the file for good."""
        if self.resampler is not None:
            self.open().write(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self.open()  # a clip no block reached is made all the same (an empty WAV)
        self.files.forget(self)
        self.shut()


class _OpenFiles:
    """The clips whose files are open, least recently written first; at most OPEN_CLIPS."""

    def __init__(self) -> None:
        self.clips: OrderedDict[int, _MonoClip] = OrderedDict()

    def make_room(self, clip: _MonoClip) -> None:
        """Close the least recently written files until one more may open."""
        while len(self.clips) >= max(1, OPEN_CLIPS):
            _, oldest = self.clips.popitem(last=False)
            oldest.shut()

    def used(self, clip: _MonoClip) -> None:
        self.clips[id(clip)] = clip
        self.clips.move_to_end(id(clip))

    def forget(self, clip: _MonoClip) -> None:
        self.clips.pop(id(clip), None)

    def close_all(self) -> None:
        """Close every open file (on an error: the staging folder is removed after)."""
        for clip in self.clips.values():
            clip.shut()
        self.clips.clear()


def _cut_stream(source, staging, segments, pad_ms, channel, rate) -> list[str]:
    """Mono clips at `rate` cut while decoding once at 16 kHz, never holding more than a block.

    Spans are taken in the order they start: a clip is begun when the decoding reaches its
    start and finished (resampler flushed, file closed, renamed to its name) when it passes its
    end, so only the clips the current block overlaps are under way, and of those at most
    OPEN_CLIPS have a file open (padded clips can overlap many). Clips the recording ends
    before or inside are finished at its end, named by where it ended.
    """
    spans = [_span(seg, pad_ms, SAMPLE_RATE, 1 << 62) for seg in segments]
    order = sorted(range(len(spans)), key=lambda i: spans[i][0])
    files = _OpenFiles()
    names: list[str] = [""] * len(spans)
    under_way: dict[int, _MonoClip] = {}

    def finish(i: int, position: int) -> None:
        """Close clip `i` and name it: it holds its span up to `position` (the recording's end)."""
        under_way.pop(i).close()
        start, stop = spans[i]
        names[i] = _held(i, start, min(stop, max(start, position)), SAMPLE_RATE, len(spans))
        os.replace(staging / f"{i}.part", staging / names[i])

    try:
        position, taken = 0, 0
        with open_audio(source, channel=channel) as audio:
            for block in audio:
                end = position + len(block)
                while taken < len(order) and spans[order[taken]][0] < end:
                    under_way[order[taken]] = _MonoClip(
                        staging / f"{order[taken]}.part", rate, files
                    )
                    taken += 1
                for i, clip in list(under_way.items()):
                    start, stop = spans[i]
                    if start < end and stop > position:
                        clip.write(
                            block[max(start, position) - position : min(stop, end) - position]
                        )
                    if stop <= end:
                        finish(i, end)
                position = end
        for i in order[taken:]:  # spans that start after the recording's end: empty clips
            under_way[i] = _MonoClip(staging / f"{i}.part", rate, files)
        for i in sorted(under_way):
            finish(i, position)
    finally:
        files.close_all()
    return names


def _span(seg: Segment, pad_ms: int, rate: int, frames: int) -> tuple[int, int]:
    start = max(0, (seg.start - pad_ms) * rate // 1000)
    stop = min(frames, (seg.end + pad_ms) * rate // 1000)
    return start, max(start, stop)
