"""How many workers a batch starts: the usable cores, but no more than the available memory holds.

Each worker keeps one model loaded; its memory depends on the runtime and the engine (measured
peak RSS of a worker in bench/batch.py and on a 60-minute file, rounded up: onnxruntime ~115 MB,
torch ~290 MB).
A headroom stays free for the coordinator and the rest of the box. `--jobs` overrides all this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HEADROOM_MB = 256  # the coordinator (~80 MB), the page cache the decoding reads through, the box
# peak RSS of one worker in MB, by engine and FSMN runtime (silero-vad's model: onnxruntime always)
WORKER_MB = {
    ("fsmn", "onnx"): 120,
    ("fsmn", "torch"): 300,
    ("silero", "onnx"): 110,
    ("silero", "torch"): 110,
    ("fusion", "onnx"): 150,
    ("fusion", "torch"): 330,
}
MEMINFO = Path("/proc/meminfo")


@dataclass(frozen=True)
class PoolChoice:
    """The number of workers and the one line that says why."""

    workers: int
    reason: str

    @property
    def line(self) -> str:
        """'2 workers (2 cores; 3.1 GB available allows 25 at ~120 MB each)'."""
        return f"{self.workers} worker{'s' if self.workers != 1 else ''} ({self.reason})"


def choose_workers(
    engine: str, runtime: str, cores: int | None = None, available_mb: float | None = None
) -> PoolChoice:
    """min(cores, (available memory - headroom) / a worker's memory), at least 1."""
    cores = cores or len(os.sched_getaffinity(0))
    if available_mb is None:
        available_mb = available_memory_mb()
    if available_mb is None:
        return PoolChoice(cores, f"{cores} cores; available memory unknown")
    each = WORKER_MB[(engine, runtime)]
    fits = max(1, int((available_mb - HEADROOM_MB) // each))
    workers = min(cores, fits)
    memory = f"{available_mb / 1024:.1f} GB available allows {fits} at ~{each} MB each"
    return PoolChoice(workers, f"{cores} cores; {memory}")


def available_memory_mb(meminfo: Path = MEMINFO) -> float | None:
    """MemAvailable of /proc/meminfo, else the free pages the system reports (no cache); MB."""
    try:
        lines = meminfo.read_text().splitlines()
    except OSError:  # not Linux
        lines = []
    for line in lines:
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024  # kB
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError):  # a system that does not say
        return None
