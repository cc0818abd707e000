"""The output formats of a recording, in one registry: name -> the files' suffixes and renderer.

For input `ROOT/a/b/x.wav` the outputs are `OUT/a/b/x.wav.json`, `OUT/a/b/x.wav.rttm`, ... and
the clips folder `OUT/a/b/x.wav.clips/`; keeping the extension keeps `x.wav` and `x.mp3` apart.
A format's renderer turns the recording's document into the text of each of its files;
`output_names` lists a recording's names and `write_formats` writes them (durable.py).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ..segments import Segment, segments_of
from .durable import write_durably


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


def output_suffixes(formats: tuple[str, ...], clips: bool) -> list[str]:
    """What a recording's outputs add to its name: each format's files (REGISTRY's suffixes),
    in the order of `formats` (a format named twice counts once, as its files are written
    once), then the clips folder's."""
    suffixes = dict.fromkeys(suffix for name in formats for suffix in REGISTRY[name].suffixes)
    return list(suffixes) + ([CLIPS_SUFFIX] if clips else [])


def output_names(rel: str, formats: tuple[str, ...], clips: bool) -> list[str]:
    """The names under OUT a recording's outputs take: its format files, its clips folder.

    The one list of a file's outputs: the worker's and the runner's name checks, the recorder,
    the rebuild and the prune all take the names from here (batch/records.py lists them as the
    manifest row keeps them)."""
    return [rel + suffix for suffix in output_suffixes(formats, clips)]


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


@dataclass(frozen=True)
class Format:
    """An output format: the suffixes its files add to `x.wav`, and the renderer that makes
    their texts (one per suffix, in that order) from a document and the recording's URI."""

    suffixes: tuple[str, ...]
    render: Callable[[dict[str, Any], str], tuple[str, ...]]


REGISTRY: dict[str, Format] = {  # in the order the command line lists them
    "json": Format((".json",), lambda document, uri: (document_json(document),)),
    "rttm": Format((".rttm",), lambda document, uri: (rttm_lines(uri, segments_of(document)),)),
    "csv": Format((".csv",), lambda document, uri: (_csv(document),)),
    "audacity": Format((".audacity.txt",), lambda document, uri: (_audacity(document),)),
    "srt": Format((".srt",), lambda document, uri: (_srt(document),)),
    "whisper": Format((".whisper.json",), lambda document, uri: (_whisper(document),)),
    "lhotse": Format((".recording.jsonl", ".supervisions.jsonl"), lambda d, uri: _lhotse(d, uri)),
}
FORMATS = tuple(REGISTRY)


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
        entry = REGISTRY[name]
        texts.update(zip(entry.suffixes, entry.render(document, uri), strict=True))
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


def rttm_lines(uri: str, segments: list[Segment]) -> str:
    """Standard 10-field RTTM, one line per segment, label `speech`."""
    uri = "_".join(uri.split()) or "recording"  # RTTM fields are whitespace-separated
    return "".join(
        f"SPEAKER {uri} 1 {s.start / 1000:.3f} {s.duration / 1000:.3f} <NA> <NA> speech <NA> <NA>\n"
        for s in segments
    )
