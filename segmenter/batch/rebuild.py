"""`segmenter run --rebuild-manifest`: a new manifest from the outputs on disk.

Each JSON document a run writes carries, under "batch", what the manifest knew of its input when
the run planned it (name under OUT, size, mtime, content fingerprint, settings hash): enough to
remake the recording's `done` row, so the rebuilt run redoes nothing that is finished. Failures
and unfinished files have no document and are simply planned again. The damaged manifest is
kept beside the new one under a `.damaged-<time>` name.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from ..writers import clips_folder, output_base
from .manifest import Manifest
from .records import document_stats, listed_outputs

log = logging.getLogger("segmenter.batch.rebuild")
BATCH_KEYS = ("rel", "size", "mtime", "fingerprint", "config")


def rebuild(out: Path, formats: tuple[str, ...]) -> str:
    """Set OUT's manifest aside and make a new one from the documents; a line saying so."""
    aside = _set_aside(out / "manifest.sqlite")
    rows = [row for path in sorted(out.rglob("*.json")) if (row := _row(out, path, formats))]
    manifest = Manifest.open(out)
    try:
        manifest.restore(rows)
    finally:
        manifest.close()
    kept = f"the damaged one is {aside}" if aside else "there was none"
    line = f"manifest: rebuilt from {len(rows)} finished file(s) on disk; {kept}"
    log.warning(line)
    return line


def _set_aside(path: Path) -> Path | None:
    """Rename the manifest and its -wal/-shm files to `<name>.damaged-<time>`; the new name."""
    if not path.exists():
        return None
    aside = path.with_name(f"{path.name}.damaged-{datetime.now():%Y%m%dT%H%M%S}")
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            os.replace(part, aside.with_name(aside.name + suffix))
    return aside


def _row(out: Path, path: Path, formats: tuple[str, ...]) -> dict[str, Any] | None:
    """The `done` row a run's document stands for, or None (another JSON, or unreadable)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        batch = {key: document["batch"][key] for key in BATCH_KEYS}
        if path != output_base(out, batch["rel"] + ".json"):
            return None  # a copy, or a document moved by hand
        stats = document_stats(document)
        return batch | {
            "path": document["audio"]["path"],
            "status": "done",
            "attempts": 1,
            "duration": stats.duration,
            "speech": stats.speech,
            "segments": stats.segments,
            "finished": document["created"],
            "outputs": json.dumps(_outputs(out, batch["rel"], formats)),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _outputs(out: Path, rel: str, formats: tuple[str, ...]) -> list[str]:
    """The outputs of a recording that are on disk, listed as the recorder lists them
    (records.listed_outputs)."""
    clips = clips_folder(out, rel).is_dir()
    listed = listed_outputs(rel, formats, clips)
    return [name for name in listed if name.endswith("/") or (out / name).is_file()]
