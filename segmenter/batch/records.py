"""What the manifest records of a finished recording, computed once for the recorder, the
summary and --rebuild-manifest: the document's figures (`document_stats`) and the outputs' names
as the manifest lists them (`listed_outputs`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..writers import CLIPS_SUFFIX, output_names


@dataclass(frozen=True)
class DocumentStats:
    """A document's figures for its manifest row: seconds of audio, seconds of speech, and
    how many segments."""

    duration: float
    speech: float
    segments: int


def document_stats(document: dict[str, Any]) -> DocumentStats:
    """The figures of a segment document (as `Vad.document` makes it)."""
    return DocumentStats(
        duration=document["audio"]["duration"],
        speech=document["speech_duration"],
        segments=len(document["segments"]),
    )


def listed_outputs(rel: str, formats: tuple[str, ...], clips: bool) -> list[str]:
    """A recording's outputs as its manifest row lists them: its format files, then its clips
    folder (with a trailing slash) when it has clips."""
    names = output_names(rel, formats, clips=False)
    return names + ([Path(rel + CLIPS_SUFFIX).as_posix() + "/"] if clips else [])
