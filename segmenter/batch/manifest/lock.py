"""The lock on OUT: one run at a time writes a batch's outputs and manifest."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ...errors import EXIT_LOCKED, SegmenterError


class LockedError(SegmenterError):
    """Another run holds the output folder."""

    exit_code = EXIT_LOCKED


class OutputLock:
    """An exclusive lock on OUT for the length of a run; the OS drops it if the process dies."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / ".segmenter.lock"
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise LockedError(f"{self.path.parent} is in use by another segmenter run") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)
