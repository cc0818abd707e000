"""Durable I/O for every output: staged beside its target, synced, renamed into place.

A reader never sees a half-written file: each is written to a temporary name beside it and
renamed into place, after its data is on disk; a group of files costs two syncs (one syncfs per
filesystem for a large group), not one per file. Errors name the output, never the temporary
name. Also the temporary names' patterns (which a run's start-up sweep removes) and the
disk-full heuristic for libraries that do not say ENOSPC.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SegmenterError

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


class WriteError(OSError, SegmenterError):
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


FULL_BELOW = 1 << 20  # bytes free under which a vague write failure is taken for a full disk


def nearly_full(path: Path) -> bool:
    """Whether the disk that holds `path` has (almost) no room left: libsndfile ("System
    error.") and SQLite ("disk I/O error") do not always say that a disk is full."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize < FULL_BELOW


def raise_if_full(folder: Path) -> None:
    """A WriteError (ENOSPC) about `folder` if its disk is full, so the run stops on it."""
    if nearly_full(folder.parent):
        raise WriteError(folder, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
