"""Per-recording outputs: JSON document, RTTM, and optional WAV clips, each written atomically.

For input `ROOT/a/b/x.wav` they are `OUT/a/b/x.wav.json`, `OUT/a/b/x.wav.rttm` and
`OUT/a/b/x.wav.clips/NNNN_<start>-<end>.wav`; keeping the extension keeps `x.wav` and `x.mp3`
apart. A reader never sees a half-written file: each is written to a temporary name beside it
and renamed into place.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from .audio import SAMPLE_RATE, block_frames, check_header, open_audio
from .segments import Segment, segments_of

TMP_PREFIX = ".tmp-"
# the temporary names made here, which a run's start-up sweep removes (and nothing else):
# `.tmp-<pid>-<n><ext>` files (_stage) and `.tmp-<pid>-<8 random>` folders (clips); earlier
# versions made `.tmp-<8 random>` folders
TMP_FILE = re.compile(r"\.tmp-\d+-\d+(\.[A-Za-z0-9]+)?")
TMP_FOLDER = re.compile(r"\.tmp-(\d+-)?[a-z0-9_]{8}")


def tmp_folder_prefix() -> str:
    """mkdtemp's prefix for a temporary folder beside an output (see TMP_FOLDER)."""
    return f"{TMP_PREFIX}{os.getpid()}-"


def _process_umask() -> int:
    """The umask, read once: outputs get the modes a plain `open` would give them."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _process_umask()


class WriteError(OSError):
    """A failed write, naming the output it was for (never the temporary name beside it)."""

    def __init__(self, target: Path, exc: OSError):
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EEXIST and exc.filename != str(target):  # from mkdir
            reason = f"{exc.filename} is a file, not a folder"
        elif exc.errno == errno.ENOTDIR:
            reason = f"a file stands in the path of {exc.filename}"
        super().__init__(exc.errno, reason, str(target))

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


@contextmanager
def naming(target: Path) -> Iterator[None]:
    """Re-raise an OSError of the block as a WriteError about `target`."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(target, exc) from None


def output_base(out: Path, rel: str) -> Path:
    """Where a recording's outputs go; refuses names that would leave OUT."""
    parts = PurePosixPath(rel).parts
    if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise ValueError(f"unsafe output name: {rel!r}")
    return out.joinpath(*parts)


CLIPS_SUFFIX = ".clips"


def clips_folder(out: Path, rel: str) -> Path:
    """Where a recording's clips go: `OUT/a/b/x.wav.clips`."""
    base = output_base(out, rel)
    return base.with_name(base.name + CLIPS_SUFFIX)


def output_names(rel: str, formats: tuple[str, ...], clips: bool) -> list[str]:
    """The names under OUT a recording's outputs take: its format files, its clips folder."""
    names = [rel + suffix for name in formats for suffix in SUFFIXES[name]]
    return names + ([rel + CLIPS_SUFFIX] if clips else [])


def name_too_long(out: Path, names: list[str]) -> str | None:
    """Why one of these output names cannot exist in OUT (a name longer than the filesystem's
    NAME_MAX, in bytes), or None; the reason names the longest."""
    try:
        limit = os.pathconf(out, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = max(names, key=lambda name: len(os.fsencode(PurePosixPath(name).name)))
    size = len(os.fsencode(PurePosixPath(longest).name))
    if size <= limit:
        return None
    shown_name = PurePosixPath(longest).name
    shown_name = shown_name[:24] + "..." + shown_name[-24:]
    return (
        f"its output name {shown_name} would be {size} bytes long; the filesystem of OUT takes"
        f" {limit}: rename the recording"
    )


_TMP_NUMBERS = itertools.count()


def _stage(target: str | Path, text: str) -> str:
    """Write `text` to a new temporary file beside `target` (not synced yet); its name.

    Opened with the plain 0666 mode, so the umask gives the output its usual mode (mkstemp's
    0600 would survive the rename); the name is unique in this process without a random draw.
    """
    while True:
        tmp = os.path.join(
            os.path.dirname(target),
            f"{TMP_PREFIX}{os.getpid()}-{next(_TMP_NUMBERS)}{os.path.splitext(target)[1]}",
        )
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:  # left by a killed process that had our pid: take the next
            continue
    try:
        data = memoryview(text.encode("utf-8", "surrogateescape"))  # a name's own bytes
        while data:  # one write takes it all but for huge texts or signals
            data = data[os.write(fd, data) :]
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def _folder_of(target: str | Path) -> str:
    """The folder a file goes in, "." for a bare name."""
    return os.path.dirname(target) or "."


def _make_folder(folder: str, changed: set[str]) -> None:
    """mkdir -p `folder`, adding to `changed` each folder that got a new entry (to fsync)."""
    if os.path.isdir(folder):
        return
    parent = os.path.dirname(folder) or "."
    if parent != folder:
        _make_folder(parent, changed)
    os.mkdir(folder)  # FileExistsError here: a file stands where the folder goes
    changed.add(parent)


def _replace(tmp: str, target: str | Path) -> None:
    """Rename `tmp` over `target`; a folder in its place is an error naming it."""
    try:
        os.replace(tmp, target)
    except IsADirectoryError:
        raise IsADirectoryError(errno.EISDIR, "is a folder", str(target)) from None


def _find_syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2), which puts a whole filesystem on disk in one journal commit."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int]
    return function


_SYNCFS = _find_syncfs()
SYNCFS_FROM = 8  # files: fewer are fsynced one by one, more by one syncfs per filesystem


def sync_paths(paths: list[str]) -> None:
    """Put files (their data) or folders (their entries) on disk before returning.

    A few are fsynced each. For a group, each fsync would be a journal commit of its own (ms
    each on a busy disk), so one syncfs per filesystem they are on does it all at once.
    """
    if len(paths) < SYNCFS_FROM or _SYNCFS is None:
        for path in paths:
            _fsync(path)
        return
    on_device: dict[int, str] = {}
    for path in paths:
        on_device.setdefault(os.stat(path).st_dev, path)
    for path in on_device.values():
        fd = os.open(path, os.O_RDONLY)
        try:
            if _SYNCFS(fd) != 0:
                error = ctypes.get_errno()
                raise OSError(error, os.strerror(error), path)
        finally:
            os.close(fd)


def _fsync(path: str) -> None:
    """fsync one file or folder by its name."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(texts: dict[str | Path, str]) -> None:
    """Write files atomically and durably, as a group: when it returns, all are on disk.

    Each text goes to a temporary name beside its target; the group's data is synced, then all
    are renamed into place and their folders' entries synced (folders made too): a reader
    never sees a half-written file, even after a power cut, and a caller that records them
    afterwards (the manifest) never records a file a power cut could take back. One group
    costs two syncs, not one per file. Errors name the output, never the temporary name.
    """
    changed: set[str] = set()
    staged: list[tuple[str | Path, str]] = []
    try:
        for target, text in texts.items():
            with naming(target):
                _make_folder(_folder_of(target), changed)
                staged.append((target, _stage(target, text)))
        with naming(next(iter(texts), Path("."))):
            sync_paths([tmp for _, tmp in staged])
        for target, _ in staged:  # a folder in the way fails the group before any is renamed
            if os.path.isdir(target):
                raise WriteError(Path(target), IsADirectoryError(errno.EISDIR, "is a folder"))
        for renamed, (target, tmp) in enumerate(staged):
            with naming(target):
                _replace(tmp, target)
            staged[renamed] = (target, "")
            changed.add(_folder_of(target))
        with naming(Path(min(changed, default="."))):
            sync_paths(sorted(changed))
    finally:
        for _, tmp in staged:
            if tmp:  # where OUT refuses even this, the next run's start-up sweep removes it
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def write_text(target: Path, text: str) -> None:
    """One file, atomically and durably (write_durably)."""
    write_durably({target: text})


def _segments(document: dict[str, Any]) -> list[tuple[float, float]]:
    return [(s["start"], s["end"]) for s in document["segments"]]


def _csv(document: dict[str, Any]) -> str:
    rows = [f"{a:.3f},{b:.3f},{b - a:.3f}\n" for a, b in _segments(document)]
    return "start,end,duration\n" + "".join(rows)


def _audacity(document: dict[str, Any]) -> str:
    """An Audacity label track (File > Import > Labels): start, end and label, tab-separated."""
    return "".join(
        f"{a:.3f}\t{b:.3f}\tspeech {i}\n" for i, (a, b) in enumerate(_segments(document), 1)
    )


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _srt(document: dict[str, Any]) -> str:
    cues = [
        f"{i}\n{_srt_time(a)} --> {_srt_time(b)}\nspeech {i}\n\n"
        for i, (a, b) in enumerate(_segments(document), 1)
    ]
    return "".join(cues)


def _source(document: dict[str, Any]) -> str:
    """The recording's absolute path: hand-off files are read from anywhere."""
    return os.path.abspath(document["audio"]["path"])


def _whisper(document: dict[str, Any]) -> str:
    """Chunks with faster-whisper's two clip_timestamps forms, in seconds."""
    spans = _segments(document)
    return (
        json.dumps(
            {
                "audio": _source(document),
                "chunks": [{"start": a, "end": b} for a, b in spans],
                "clip_timestamps": ",".join(f"{t:g}" for span in spans for t in span),
                "batched_clip_timestamps": [{"start": a, "end": b} for a, b in spans],
            },
            indent=1,
        )
        + "\n"
    )


def _lhotse(document: dict[str, Any], uri: str) -> tuple[str, str]:
    """A RecordingSet and a SupervisionSet (JSONL) for this recording."""
    audio = document["audio"]
    recording = {
        "id": uri,
        "sources": [
            {
                "type": "file",
                "channels": list(range(audio["channels"])),
                "source": _source(document),
            }
        ],
        "sampling_rate": audio["sample_rate"],
        "num_samples": round(audio["duration"] * audio["sample_rate"]),
        "duration": audio["duration"],
        "channel_ids": list(range(audio["channels"])),
    }
    supervisions = [
        {
            "id": f"{uri}-{i:04d}",
            "recording_id": uri,
            "start": a,
            "duration": round(b - a, 3),
            "channel": list(range(audio["channels"])),
        }
        for i, (a, b) in enumerate(_segments(document))
    ]
    lines = "".join(json.dumps(s) + "\n" for s in supervisions)
    return json.dumps(recording) + "\n", lines


SUFFIXES = {  # each format's files, named `x.wav` + suffix
    "json": (".json",),
    "rttm": (".rttm",),
    "csv": (".csv",),
    "audacity": (".audacity.txt",),
    "srt": (".srt",),
    "whisper": (".whisper.json",),
    "lhotse": (".recording.jsonl", ".supervisions.jsonl"),
}
FORMATS = tuple(SUFFIXES)


def write_formats(base: Path, document: dict[str, Any], formats: tuple[str, ...]) -> list[Path]:
    """Write the chosen formats of one recording next to `base` (OUT/a/b/x.wav); their paths.
    All or none: they are staged and synced as a group before any is renamed into place."""
    texts = {
        base.with_name(base.name + suffix): text
        for suffix, text in render_formats(base, document, formats).items()
    }
    write_durably(texts)
    return list(texts)


def render_formats(
    base: Path, document: dict[str, Any], formats: tuple[str, ...]
) -> dict[str, str]:
    """The chosen formats of one recording, by the suffix each adds to `base`'s name."""
    uri = "_".join(Path(base.name).stem.split()) or "recording"
    texts: dict[str, str] = {}
    for name in formats:
        texts.update(zip(SUFFIXES[name], _texts(name, document, uri), strict=True))
    return texts


REPEATED = ("model", "options", "chunking")  # the same in every document of a batch
_RENDERED: dict[str, str] = {}  # their indented JSON by their compact JSON


def document_json(document: dict[str, Any]) -> str:
    """`json.dumps(document, indent=1)` and a newline, the same bytes, faster for a batch.

    With an indent, json encodes in Python, and a small recording's document is mostly its
    model and options, the same in every file: those are rendered once (looked up by their
    compact JSON, which the C encoder makes fast) and indented into place.
    """
    fields = []
    for key, value in document.items():
        if key in REPEATED:
            compact = json.dumps(value, ensure_ascii=False)
            if compact not in _RENDERED:
                if len(_RENDERED) > 64:  # a long-lived process (the web page) of many settings
                    _RENDERED.clear()
                _RENDERED[compact] = json.dumps(value, indent=1, ensure_ascii=False)
            text = _RENDERED[compact]
        else:
            text = json.dumps(value, indent=1, ensure_ascii=False)
        fields.append(f" {json.dumps(key, ensure_ascii=False)}: " + text.replace("\n", "\n "))
    text = ("{\n" + ",\n".join(fields) + "\n}\n") if fields else "{}\n"
    if text.isascii():
        return text
    return LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# a file name that is not UTF-8 reaches Python with surrogate escapes, which ensure_ascii=False
# writes as is; JSON escapes them (json.loads gives the same name back), so the file stays UTF-8
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _texts(name: str, document: dict[str, Any], uri: str) -> tuple[str, ...]:
    """The text of each file of format `name` for one recording, in SUFFIXES' order."""
    if name == "json":
        return (document_json(document),)
    if name == "rttm":
        return (rttm_lines(uri, segments_of(document)),)
    if name == "lhotse":
        return _lhotse(document, uri)
    return ({"csv": _csv, "audacity": _audacity, "srt": _srt, "whisper": _whisper}[name](document),)


def rttm_lines(uri: str, segments: list[Segment]) -> str:
    """Standard 10-field RTTM, one line per segment, label `speech`."""
    uri = "_".join(uri.split()) or "recording"  # RTTM fields are whitespace-separated
    return "".join(
        f"SPEAKER {uri} 1 {s.start / 1000:.3f} {s.duration / 1000:.3f} <NA> <NA> speech <NA> <NA>\n"
        for s in segments
    )


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
            _raise_if_full(folder)
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


FULL_BELOW = 1 << 20  # bytes free under which a vague write failure is taken for a full disk


def nearly_full(path: Path) -> bool:
    """Whether the disk that holds `path` has (almost) no room left: libsndfile ("System
    error.") and SQLite ("disk I/O error") do not always say that a disk is full."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize < FULL_BELOW


def _raise_if_full(folder: Path) -> None:
    """A WriteError (ENOSPC) about `folder` if its disk is full, so the run stops on it."""
    if nearly_full(folder.parent):
        raise WriteError(folder, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


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


class _MonoClip:
    """A mono clip written from 16 kHz blocks at `rate` (soxr resamples it as a stream)."""

    def __init__(self, path: Path, rate: int):
        self.path = path
        self.file = sf.SoundFile(os.fsencode(path), "w", rate, 1, "PCM_16", format="WAV")
        self.resampler = None if rate == SAMPLE_RATE else soxr.ResampleStream(SAMPLE_RATE, rate, 1)

    def write(self, samples: np.ndarray) -> None:
        """Add 16 kHz samples."""
        self.file.write(
            samples if self.resampler is None else self.resampler.resample_chunk(samples)
        )

    def close(self) -> None:
        """Flush the resampler's tail and close the file."""
        if self.resampler is not None:
            self.file.write(self.resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self.file.close()


def _cut_stream(source, staging, segments, pad_ms, channel, rate) -> list[str]:
    """Mono clips at `rate` cut while decoding once at 16 kHz, never holding more than a block."""
    spans = [_span(seg, pad_ms, SAMPLE_RATE, 1 << 62) for seg in segments]
    writers = [_MonoClip(staging / f"{i}.part", rate) for i in range(len(segments))]
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
    names = []  # named once the recording's end is known: a padded last clip stops there
    for i, ((start, stop), writer) in enumerate(zip(spans, writers, strict=True)):
        names.append(_held(i, start, min(stop, max(start, position)), SAMPLE_RATE, len(spans)))
        os.replace(writer.path, staging / names[-1])
    return names


def _span(seg: Segment, pad_ms: int, rate: int, frames: int) -> tuple[int, int]:
    start = max(0, (seg.start - pad_ms) * rate // 1000)
    stop = min(frames, (seg.end + pad_ms) * rate // 1000)
    return start, max(start, stop)
