"""A full output disk: recognised wherever a write fails, it stops the run with one line.

Outputs are written under temporary names that a failed write removes, and the manifest is a
SQLite database whose failed commit leaves the last good state: so a full disk costs no finished
file. The line names the disk and how much room the files left to do need.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from ..errors import EXIT_DISK_FULL, SegmenterError
from ..writers import nearly_full

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
OWN_FILES = ("manifest.sqlite", "segmenter.log", ".segmenter.lock", "report.html")


class DiskFull(SegmenterError):
    """OUT's disk has no room for the next write; the message says which disk and how much."""

    exit_code = EXIT_DISK_FULL


def no_space(exc: BaseException | None, out: Path | None = None) -> bool:
    """Whether a failure is the disk (or the user's quota) being full, from a file or SQLite;
    SQLite's I/O errors count when OUT's disk is (almost) full."""
    if isinstance(exc, OSError):
        return exc.errno in NO_SPACE
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL:
            return True
        io_error = code is not None and code & 0xFF == sqlite3.SQLITE_IOERR
        return io_error and out is not None and nearly_full(out)
    return False


def disk_full_line(out: Path, left: int = 0, done: int = 0) -> str:
    """`OUT is on a full disk (...): N free; the K files left need about X` in one line (the
    need left out when no file was planned yet)."""
    mount = mount_point(out)
    stats = os.statvfs(out)
    free = stats.f_bavail * stats.f_frsize
    where = f"{out} is on a full disk ({_device(mount)} mounted on {mount}, {_size(free)} free)"
    output_bytes = _output_bytes(out) if left else 0
    if not left:
        need = "nothing could be started"
    elif done and output_bytes:
        each = output_bytes / done
        need = (
            f"the {left} file(s) left need about {_size(each * left)} more"
            f" ({_size(each)} each, as the {done} done so far)"
        )
    else:
        need = f"the {left} file(s) left need more than the {_size(free)} free"
    return f"{where}; {need}: free some space and run again to go on"


def mount_point(path: Path) -> Path:
    """The mount point of the filesystem that holds `path`."""
    path = path.absolute()
    while not os.path.ismount(path):
        path = path.parent
    return path


def _device(mount: Path) -> str:
    """The device (or filesystem name, e.g. tmpfs) mounted on `mount`, from /proc/self/mounts."""
    try:
        with open("/proc/self/mounts", encoding="utf-8") as fh:
            devices = [line.split()[0] for line in fh if line.split()[1:2] == [str(mount)]]
    except OSError:
        devices = []
    return devices[-1] if devices else "disk"


def _output_bytes(out: Path) -> int:
    """Bytes of the recordings' outputs in OUT (not the manifest, log or temporary files)."""
    total = 0
    for folder, dirs, files in os.walk(out):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith((".", *OWN_FILES)):
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    continue
    return total


def _size(n: float) -> str:
    """Bytes for people: 512 B, 1.5 KiB, 3.2 MiB, 1.1 GiB."""
    if n < 1024:
        return f"{n:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} TiB"
