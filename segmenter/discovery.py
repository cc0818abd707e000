"""Finding the recordings of a batch: a deterministic recursive walk that a cron job can trust.

Hidden files and folders are skipped, symlink loops are survived, and files changed in the last
few seconds are left for the next run (an upload still being copied).
"""

from __future__ import annotations

import fnmatch
import os
import time
from dataclasses import dataclass
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    [
        ".wav",
        ".wave",
        ".flac",
        ".mp3",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".aac",
        ".mp4",
        ".m4v",
        ".mkv",
        ".webm",
        ".wma",
        ".amr",
        ".aif",
        ".aiff",
        ".aifc",
        ".au",
        ".caf",
        ".w64",
        ".rf64",
        ".mka",
        ".mov",
        ".3gp",
        ".ac3",
    ]
)


@dataclass(frozen=True)
class Source:
    """One input recording: where it is and where its outputs go (`rel`, under OUT)."""

    path: Path
    rel: str  # posix path relative to its input root, kept with its extension
    size: int
    mtime: float


@dataclass(frozen=True)
class Discovery:
    """What a walk found: the recordings, and the ones left for later because they still change."""

    sources: list[Source]
    unsettled: list[Path]


def discover(
    inputs: list[str | os.PathLike],
    include: list[str] = (),
    exclude: list[str] = (),
    settle_seconds: float = 5.0,
) -> Discovery:
    """Recordings under the inputs (files or folders), sorted by their relative path."""
    found: dict[str, Source] = {}
    unsettled: list[Path] = []
    now = time.time()
    for item in inputs:
        root = Path(item)
        if root.is_dir():
            candidates = ((p, p.relative_to(root).as_posix()) for p in _walk(root))
        else:
            candidates = iter([(root, root.name)])
        for path, rel in candidates:
            if not _wanted(path, rel, include, exclude, explicit=not root.is_dir()):
                continue
            try:
                stat = path.stat()
            except OSError:  # vanished or unreadable; the runner reports it if it was named
                stat = None
            if stat is not None and now - stat.st_mtime < settle_seconds:
                unsettled.append(path)
                continue
            size, mtime = (stat.st_size, stat.st_mtime) if stat else (-1, 0.0)
            found.setdefault(rel, Source(path, rel, size, mtime))
    return Discovery(sorted(found.values(), key=lambda s: s.rel), sorted(unsettled))


def _walk(root: Path):
    """Files below root, following symlinks but never into a folder twice."""
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(folder)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def _wanted(path: Path, rel: str, include, exclude, explicit: bool) -> bool:
    """Audio by extension (any case) unless named explicitly; then the include/exclude globs."""
    if not explicit and path.suffix.lower() not in AUDIO_EXTENSIONS:
        return False
    matches = lambda pattern: fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(path.name, pattern)  # noqa: E731
    if include and not any(matches(p) for p in include):
        return False
    return not any(matches(p) for p in exclude)
