"""What identifies an input's content (a fingerprint of its size, head and tail) and a run's
result-changing settings (their hash, each row's `config`)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

FINGERPRINT_BYTES = 1 << 16


def fingerprint(path: Path, size: int) -> str:
    """blake2b of the size, the first and the last 64 KiB: cheap, and catches rewrites.

    Opened without blocking and refused unless a regular file: a FIFO named `x.wav` would
    otherwise wait for a writer forever, with OUT locked.
    """
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    with open(fd, "rb") as fh:
        digest.update(fh.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            fh.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(fh.read(FINGERPRINT_BYTES))
    return digest.hexdigest()


def config_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
