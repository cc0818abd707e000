"""What goes to a worker and what comes back: a `Task`, and a typed `TaskResult`.

A worker turns each Task into `Done` (the recording's document and its clips) or `Failed` (the
one-line reason); the recorder, looking at the input again before it records a result, may turn
either into `Changed` (the input was rewritten while it was read: redone by the next run). Every
place that builds or reads a result matches on these types, never on which keys a dict holds.
Imported by the workers: nothing here imports more than the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Task:
    """One recording for a worker: where to read it and where its clips go."""

    rel: str
    path: str
    clips_dir: str | None


@dataclass(frozen=True)
class Done:
    """A recording segmented: its document, the clips written (names in its clips folder) and
    the worker's seconds."""

    rel: str
    document: dict[str, Any]
    clips: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Failed:
    """A recording that could not be segmented or written, with the one-line reason; `seconds`
    is None where no worker finished it (it died)."""

    rel: str
    error: str
    seconds: float | None = None


@dataclass(frozen=True)
class Changed:
    """A recording whose input changed while a worker read it (`moved`: its new size, or
    "modified"): its results are stale and it stays to do."""

    rel: str
    moved: str
    seconds: float | None = None


TaskResult = Done | Failed | Changed
