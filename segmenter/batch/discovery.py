"""Finding the recordings of a batch: a deterministic recursive walk that a cron job can trust.

Hidden files and folders are skipped, symlink loops are survived, and files changed in the last
few seconds are left for the next run (an upload still being copied).
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import SegmenterError

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


class InputError(SegmenterError, ValueError):
    """Inputs or an OUT that cannot make a batch (missing, a file, two inputs sharing outputs)."""


def discover(
    inputs: list[str | os.PathLike],
    include: list[str] = (),
    exclude: list[str] = (),
    settle_seconds: float = 5.0,
    out: str | os.PathLike | None = None,
) -> Discovery:
    """Recordings under the inputs (files or folders), sorted by their output name, in memory.

    With one input, names are relative to it (`ROOT/a/x.wav` is `a/x.wav`); with several, each
    folder's name comes first (`2024/a/x.wav`) so that two roots never share an output. Nothing
    under `out` is taken: a run's own clips are not recordings. A batch streams `walk` instead.
    """
    found: dict[str, Source] = {}
    unsettled: list[Path] = []
    later = lambda source: unsettled.append(source.path)  # noqa: E731
    for source in settled(walk(inputs, include, exclude, out), settle_seconds, later):
        _add(found, source)
    return Discovery(sorted(found.values(), key=lambda s: s.rel), sorted(unsettled))


def walk(
    inputs: list[str | os.PathLike],
    include: list[str] = (),
    exclude: list[str] = (),
    out: str | os.PathLike | None = None,
    matched: set[str] | None = None,
) -> Iterator[Source]:
    """Every recording under the inputs as the walk meets them (named as `discover` says).

    A generator over os.scandir with one stat per file: a tree of millions is never held.
    Two roots may give one name twice; the caller checks (`check_same_output`). The include
    patterns that took a file go into `matched`, if given (a pattern that takes none is
    worth a hint: `unmatched`).
    """
    roots = [Path(item) for item in inputs]
    check_roots(roots)
    skip = _identity(out)
    for root in roots:
        prefix = _prefix(root) if len(roots) > 1 else ""
        explicit = not root.is_dir()
        for path, rel in _candidates(root, skip):
            if _wanted(os.path.basename(path), rel, include, exclude, explicit, matched):
                yield _source(path, prefix + rel)


def settled(
    sources: Iterable[Source], settle_seconds: float, later: Callable[[Source], object]
) -> Iterator[Source]:
    """The recordings not changed in the last `settle_seconds`; each one that was (an upload
    still being copied) goes to `later` instead."""
    now = time.time()
    for source in sources:
        if source.size >= 0 and now - source.mtime < settle_seconds:
            later(source)
        else:
            yield source


def _source(path: str, rel: str) -> Source:
    """A recording with its size and mtime; -1 and 0 when it vanished or cannot be read."""
    try:
        stat = os.stat(path)
    except OSError:  # vanished or unreadable; the runner reports it if it was named
        return Source(Path(path), rel, -1, 0.0)
    return Source(Path(path), rel, stat.st_size, stat.st_mtime)


def check_roots(roots: list[Path]) -> None:
    """Every input must exist: a mistyped root is a usage error, not a failed recording."""
    for root in roots:
        if not root.exists():
            raise InputError(f"input not found: {root}")


def check_out(out: Path) -> None:
    """OUT must be a folder (or not exist yet): a file there is a usage error, named."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: is a file, not a folder (the output folder goes there)")
    if out.is_symlink() and not out.exists():
        raise InputError(
            f"{out}: a symlink to {os.readlink(out)}, which does not exist: make that folder,"
            " or give another OUT"
        )


def check_outside(roots: list[Path], out: Path) -> None:
    """No input may be OUT or lie inside it (symlinks resolved): a run would take its own
    outputs for recordings, and its start-up clean-up works inside OUT."""
    home = Path(os.path.realpath(out))
    for root in roots:
        where = Path(os.path.realpath(root))
        if where == home or where.is_relative_to(home):
            what = "is the output folder itself" if where == home else "is inside the output folder"
            raise InputError(
                f"input {root} {what} {out}: a run would segment its own outputs; give an"
                " OUT outside the inputs (an OUT inside an input is fine)"
            )


def _prefix(root: Path) -> str:
    """A root's place in OUT when there are several: its folder's name (a file has none)."""
    if not root.is_dir():
        return ""
    return os.path.basename(os.path.normpath(os.path.abspath(root))) + "/"


def _candidates(root: Path, skip: tuple[int, int] | None) -> Iterator[tuple[str, str]]:
    """(path, name relative to the root) of every file a root holds; a file is its own root."""
    if root.is_dir():
        return _walk(str(root), skip)
    return iter([(str(root), root.name)])


def _add(found: dict[str, Source], source: Source) -> None:
    """Keep one source per output name; two different files for one name are an input error."""
    other = found.setdefault(source.rel, source)
    if other is not source:
        check_same_output(other.path, source.path, source.rel)


def check_same_output(first: Path, second: Path, rel: str) -> None:
    """Two inputs named `rel` must be one file given twice, not two files for one output."""
    if not _same_file(first, second):
        raise InputError(
            f"{first} and {second} would both be written to OUT/{rel}:"
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


def _walk(root: str, skip: tuple[int, int] | None = None) -> Iterator[tuple[str, str]]:
    """(path, name under root) of the files below root, by name, folder by folder; symlinks
    are followed but no folder is entered twice, nor `skip`."""
    seen: set[tuple[int, int]] = {skip} if skip else set()
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = list(os.scandir(folder))
        except OSError:  # unreadable or gone: nothing to take there
            continue
        files, folders = [], []
        for entry in entries:
            if not entry.name.startswith("."):
                (folders if _is_folder(entry) else files).append(entry.name)
        for name in sorted(files):
            yield os.path.join(folder, name), rel + name
        stack.extend((os.path.join(folder, n), f"{rel}{n}/") for n in sorted(folders, reverse=True))


def _is_folder(entry: os.DirEntry) -> bool:
    """A folder, or a symlink to one; an entry that cannot be looked at counts as a file."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _wanted(name: str, rel: str, include, exclude, explicit: bool, matched=None) -> bool:
    """Audio by extension (any case) unless named explicitly; then the include/exclude globs.

    A glob matches the file's name, or its path under the root with or without a leading "/",
    so `*/tmp/*` also takes `tmp/` at the top of the root; in any case, as the extensions do
    (`*.MP3` takes `talk.mp3`: archives spell the same kind of file both ways). The include
    patterns that match go into `matched`, if given.
    """
    if not explicit and os.path.splitext(name)[1].lower() not in AUDIO_EXTENSIONS:
        return False
    if not include and not exclude:
        return True
    names = (rel.lower(), "/" + rel.lower(), name.lower())
    matches = lambda p: any(fnmatch.fnmatchcase(n, p.lower()) for n in names)  # noqa: E731
    if include:
        hits = [p for p in include if matches(p)]
        if matched is not None:
            matched.update(hits)
        if not hits:
            return False
    return not any(matches(p) for p in exclude)


def unmatched(include: list[str], matched: set[str]) -> list[str]:
    """The include patterns that took no file, for a hint."""
    return [pattern for pattern in include if pattern not in matched]
