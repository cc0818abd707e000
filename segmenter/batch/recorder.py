"""Recording finished files: grouped durable writes of their outputs, then their manifest rows.

Results from the workers wait in the `Recorder` a moment and are recorded as a group: each
input looked at again (`checked`: a file rewritten while it was read is left to redo), the
outputs rendered, written and synced (files, then each folder once), then one manifest commit
marks them done. A file is thus never `done` before its outputs are on disk, and a kill at any
moment loses at most the results of the last moment (redone by the next run).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..writers import (
    clips_folder,
    holds_only_clips,
    output_base,
    render_formats,
    tmp_folder_prefix,
    write_durably,
)
from .dispatch import InFlight
from .manifest import Manifest
from .reasons import plain_reason
from .records import document_stats, listed_outputs
from .settings import BatchSettings
from .summary import Summary
from .tasks import Changed, Done, Failed, TaskResult
from .worker import NAME_ERRORS

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.5  # results wait at most about this long for their outputs' sync and commit
FLUSH_FILES = 2000  # or until this many are waiting


@dataclass
class Costs:
    """Where a run's time per file goes, summed with perf_counter (bench/scale.py reads the log
    line): the workers' segmenting, and the coordinator's dispatch, output writes and syncs,
    and manifest commits."""

    files: int = 0
    worker_s: float = 0.0
    dispatch_s: float = 0.0
    write_s: float = 0.0
    manifest_s: float = 0.0
    flushes: int = 0

    def line(self) -> str:
        """One log line: the sums in seconds, and the milliseconds each costs per file."""
        per = 1000 / max(self.files, 1)
        sums = {
            name: getattr(self, name + "_s") for name in ("worker", "dispatch", "write", "manifest")
        }
        parts = [f"{name}={s:.3f}s ({s * per:.3f} ms/file)" for name, s in sums.items()]
        return f"costs: files={self.files} flushes={self.flushes} " + " ".join(parts)


class Recorder:
    """Finished recordings wait here a moment, then are recorded as a group (the module's
    docstring says how).

    Flushed by the thread that adds results when one is due, and by a timer thread when no
    more come (long files still on the workers); a lock keeps them one at a time.
    """

    def __init__(
        self,
        settings: BatchSettings,
        manifest: Manifest,
        summary: Summary,
        progress: tqdm,
        flight: InFlight,
    ):
        self.settings, self.manifest, self.summary = settings, manifest, summary
        self.progress, self.flight = progress, flight
        self.results: list[TaskResult] = []
        self.lock = threading.RLock()
        self.since = time.monotonic()
        self.stop = threading.Event()
        self.timer = threading.Thread(target=self._tick, name="recorder", daemon=True)
        self.error: BaseException | None = None
        self.costs = Costs()

    def __enter__(self) -> Recorder:
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.timer.join()
        self.flush()  # what finished before an interruption is kept
        self.costs.dispatch_s = self.flight.dispatch_s
        log.info("%s", self.costs.line())

    def add(self, results: list[TaskResult]) -> None:
        """Results from a worker; flushed with the others once the group is due."""
        with self.lock:
            for result in results:
                self.flight.finish(result.rel)
            self.results += results
            if self._due():
                self.flush()

    def _due(self) -> bool:
        """Enough results wait, or the last flush was long enough ago."""
        return len(self.results) >= FLUSH_FILES or time.monotonic() - self.since >= FLUSH_SECONDS

    def _tick(self) -> None:
        """Timer thread: flush results that would otherwise wait for the next one."""
        while not self.stop.wait(FLUSH_SECONDS / 2):
            with self.lock:
                if self.results and self._due() and self.error is None:
                    try:
                        self.flush()
                    except BaseException as exc:  # noqa: BLE001 - raised again in the run's thread
                        self.error = exc

    def flush(self) -> None:
        """Write and sync the group's outputs, then commit its rows in one transaction."""
        with self.lock:
            if self.error is not None:
                error, self.error = self.error, None
                raise error
            results, self.results = self.results, []
            self.since = time.monotonic()
            began = time.perf_counter()
            results = [checked(self.manifest, result) for result in results]
            finished = [r for r in results if isinstance(r, Done)]
            outputs, unwritten = write_group(self.settings, finished)
            results = [_unwritten(result, unwritten) for result in results]
            wrote = time.perf_counter()
            with self.manifest.transaction():
                for rel in self.flight.to_mark():
                    self.manifest.running(rel)
                for result in results:
                    record_row(self.manifest, result, outputs.get(result.rel))
            self._cost(results, wrote - began, time.perf_counter() - wrote)
            for result in results:
                self._count(result)

    def _cost(self, results: list[TaskResult], write_s: float, manifest_s: float) -> None:
        """Add a flush to the run's costs."""
        self.costs.files += len(results)
        self.costs.flushes += bool(results)
        self.costs.worker_s += sum(r.seconds or 0.0 for r in results)
        self.costs.write_s += write_s
        self.costs.manifest_s += manifest_s

    def _count(self, result: TaskResult) -> None:
        """The summary, the log and the progress bar, once a result is committed."""
        rel = result.rel
        match result:
            case Changed(moved=moved):
                self.summary.changed += 1
                log.warning("%s: changed while it was read (%s), left for the next run", rel, moved)
            case Failed(error=error):
                log.warning("%s: failed: %s", rel, plain_reason(error, rel))
            case Done(document=document):
                stats = document_stats(document)
                self.summary.done += 1
                self.summary.audio_s += stats.duration
                self.summary.speech_s += stats.speech
                log.info("%s: %d segments, %.1f s audio", rel, stats.segments, stats.duration)
        self.progress.set_postfix_str(f"{self.summary.audio_s / 3600:.2f} h audio", refresh=False)
        self.progress.update(1)


def checked(manifest: Manifest, result: TaskResult) -> TaskResult:
    """A result once its input is looked at again: Failed if the input was deleted while it
    was read, Changed if it was rewritten (stale results: redone by the next run), else Done
    with the document's "batch" field, what a manifest rebuilt from the outputs needs."""
    rel = result.rel
    source = manifest.source(rel)
    moved = _moved(source)
    if moved == "deleted":
        reason = f"{Path(source['path']).absolute()}: deleted while it was read"  # as others
        return Failed(rel, reason, result.seconds)
    if moved:
        return Changed(rel, moved)
    if not isinstance(result, Done):
        return result
    source.pop("path")  # the document's audio.path has it, absolute
    return replace(result, document=result.document | {"batch": source})


def record_row(manifest: Manifest, result: TaskResult, outputs: list[str] | None) -> None:
    """A result's manifest row: done with its figures and outputs, failed with its reason, or
    to redo."""
    match result:
        case Changed(rel=rel, moved=moved):
            manifest.redo(rel, f"changed while it was read ({moved}); redone by the next run")
        case Failed(rel=rel, error=error, seconds=seconds):
            manifest.failed(rel, error, seconds)
        case Done(rel=rel, document=document, seconds=seconds):
            manifest.done(rel, document_stats(document), seconds, outputs)


def write_group(
    settings: BatchSettings, results: list[Done]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Write the outputs of finished recordings, all on disk when it returns: each one's list
    of outputs, and the reason for each one whose outputs could not be written."""
    texts: dict[str, dict[str, str]] = {}
    outputs: dict[str, list[str]] = {}
    for result in results:
        rel = result.rel
        base = output_base(settings.out, rel)
        rendered = render_formats(base, result.document, settings.formats)
        texts[rel] = {f"{base}{suffix}": text for suffix, text in rendered.items()}
        outputs[rel] = listed_outputs(rel, settings.formats, bool(result.clips))
        if not result.clips and not settings.clips:
            _drop_stale_clips(settings.out, rel)
    try:
        write_durably({target: text for group in texts.values() for target, text in group.items()})
    except OSError as exc:
        if exc.errno not in NAME_ERRORS:  # a full disk, a read-only OUT: the run's problem
            raise
        return outputs, _write_each(texts)
    return outputs, {}


def _write_each(texts: dict[str, dict[str, str]]) -> dict[str, str]:
    """A group that cannot be written whole, written one recording at a time: only those whose
    outputs cannot be written (a folder in the way, a name the filesystem refuses) fail, each
    with the write's reason; the others are written."""
    unwritten = {}
    for rel, group in texts.items():
        try:
            write_durably(group)
        except OSError as exc:
            if exc.errno not in NAME_ERRORS:
                raise
            unwritten[rel] = " ".join(str(exc).split())
            log.warning("%s: outputs not written: %s", rel, unwritten[rel])
    return unwritten


def _unwritten(result: TaskResult, unwritten: dict[str, str]) -> TaskResult:
    """A result whose outputs could not be written, as a failure with the reason."""
    reason = unwritten.get(result.rel)
    if reason is None:
        return result
    return Failed(result.rel, reason, result.seconds)


def _moved(source: dict[str, Any]) -> str:
    """How an input differs from what the run planned ("deleted", its new size, "modified"),
    or "" when it does not: a file rewritten while a worker read it has stale results."""
    try:
        stat = os.stat(source["path"])
    except FileNotFoundError:
        return "deleted" if source["size"] >= 0 else ""  # -1: not there when walked either
    except OSError:  # a symlink loop, say: the worker's reason stands
        return ""
    if stat.st_size != source["size"]:
        return f"size {source['size']} -> {stat.st_size} bytes"
    return "modified" if stat.st_mtime != source["mtime"] else ""


def _drop_stale_clips(out: Path, rel: str) -> None:
    """Clips an earlier run with --clips left for a file now redone without them.

    Renamed under a temporary name first (one rename: a reader sees the whole folder or none,
    and a run killed while deleting leaves only what the next run sweeps), then deleted.
    """
    folder = clips_folder(out, rel)
    if not folder.is_dir() or not holds_only_clips(folder):  # never another recording's outputs
        return
    doomed = Path(tempfile.mkdtemp(prefix=tmp_folder_prefix(), dir=folder.parent))
    os.replace(folder, doomed / folder.name)
    shutil.rmtree(doomed)
    log.info("%s: removed the clips of an earlier run with --clips", rel)
