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


class InputError(ValueError):
    """Inputs or an OUT that cannot make a batch (missing, a file, two inputs sharing outputs)."""


def discover(
    inputs: list[str | os.PathLike],
    include: list[str] = (),
    exclude: list[str] = (),
    settle_seconds: float = 5.0,
    out: str | os.PathLike | None = None,
) -> Discovery:
    """Recordings under the inputs (files or folders), sorted by their output name.

    With one input, names are relative to it (`ROOT/a/x.wav` is `a/x.wav`); with several, each
    folder's name comes first (`2024/a/x.wav`) so that two roots never share an output. Nothing
    under `out` is taken: a run's own clips are not recordings.
    """
    roots = [Path(item) for item in inputs]
    check_roots(roots)
    found: dict[str, Source] = {}
    unsettled: list[Path] = []
    now = time.time()
    skip = _identity(out)
    for root in roots:
        prefix = _prefix(root) if len(roots) > 1 else ""
        for path, rel in _candidates(root, skip):
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
            _add(found, Source(path, prefix + rel, size, mtime))
    return Discovery(sorted(found.values(), key=lambda s: s.rel), sorted(unsettled))


def check_roots(roots: list[Path]) -> None:
    """Every input must exist: a mistyped root is a usage error, not a failed recording."""
    for root in roots:
        if not root.exists():
            raise InputError(f"input not found: {root}")


def check_out(out: Path) -> None:
    """OUT must be a folder (or not exist yet): a file there is a usage error, named."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file, not a folder (the output folder goes there)")


def _prefix(root: Path) -> str:
    """A root's place in OUT when there are several: its folder's name (a file has none)."""
    if not root.is_dir():
        return ""
    return os.path.basename(os.path.normpath(os.path.abspath(root))) + "/"


def _candidates(root: Path, skip: tuple[int, int] | None):
    """(path, name relative to the root) of every file a root holds; a file is its own root."""
    if root.is_dir():
        return ((p, p.relative_to(root).as_posix()) for p in _walk(root, skip))
    return iter([(root, root.name)])


def _add(found: dict[str, Source], source: Source) -> None:
    """Keep one source per output name; two different files for one name are an input error."""
    other = found.setdefault(source.rel, source)
    if other is not source and not _same_file(other.path, source.path):
        raise InputError(
            f"{other.path} and {source.path} would both be written to OUT/{source.rel}:"
            " give inputs with different names, or run them into different OUTs"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.absolute() == b.absolute()


def _identity(path: str | os.PathLike | None) -> tuple[int, int] | None:
    """(device, inode) of a folder, to recognise it under another name; None if there is none."""
    try:
        st = os.stat(path) if path is not None else None
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if st is not None else None


def _walk(root: Path, skip: tuple[int, int] | None = None):
    """Files below root, following symlinks but never into a folder twice, nor into `skip`."""
    seen: set[tuple[int, int]] = {skip} if skip else set()
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
    """Audio by extension (any case) unless named explicitly; then the include/exclude globs.

    A glob matches the file's name, or its path under the root with or without a leading "/",
    so `*/tmp/*` also takes `tmp/` at the top of the root.
    """
    if not explicit and path.suffix.lower() not in AUDIO_EXTENSIONS:
        return False
    names = (rel, "/" + rel, path.name)
    matches = lambda pattern: any(fnmatch.fnmatch(n, pattern) for n in names)  # noqa: E731
    if include and not any(matches(p) for p in include):
        return False
    return not any(matches(p) for p in exclude)
