"""`segmenter run`: segment every recording under the inputs with a pool of workers.

The coordinator discovers the recordings, plans from the manifest, hands files to a loky pool
or a Dask cluster (dispatch.py: longest first; each worker, worker.py, loads the model once and
runs one engine thread), and as results stream back records them (recorder.py: the outputs
written, then the manifest row). A worker that dies (segfault, OOM kill) costs only the file it
had: suspects are retried alone, and the one that kills its worker again is recorded as failed.
This module orchestrates: checks, lock, log, plan, dispatch until done or stopped, summary.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..engines.model import ensure_onnx, resolve_model
from ..writers import TMP_FILE, TMP_FOLDER, output_suffixes
from . import forkserver
from .changed import Confirm, SettingsChanged, check_settings
from .discovery import InputError, check_out, check_outside, check_roots, settled, unmatched, walk
from .diskfull import DiskFull, disk_full_line, no_space
from .dispatch import InFlight, chunks, cluster, isolate, parallel, worker_died_errors
from .gone import find_gone, prune
from .layout import clashes
from .logfile import log_to
from .manifest import (
    LockedError,
    Manifest,
    ManifestDamaged,
    ManifestNewer,
    ManifestUnwritable,
    OutputLock,
    config_hash,
)
from .notes import note
from .pool import choose_workers
from .reasons import plain_reason
from .rebuild import rebuild
from .recorder import Recorder
from .settings import BatchSettings
from .stopping import STATE, Abandon, stop_on_signals
from .summary import SHOWN_FAILURES, Summary

__all__ = ["BatchSettings", "Summary", "run"]  # BatchSettings: where callers have found it
log = logging.getLogger(__name__)
# errors that say all there is to say in their one line (no traceback in the log)
ONE_LINE_ERRORS = (
    InputError,
    DiskFull,
    LockedError,
    ManifestDamaged,
    ManifestNewer,
    ManifestUnwritable,
    SettingsChanged,
)


def run(settings: BatchSettings, confirm: Confirm | None = None) -> tuple[Summary, int]:
    """Run a batch; returns its summary and exit code (Summary.exit_code). A run that would
    redo files done with other settings asks `confirm` first, or without it stops
    (SettingsChanged) unless `settings` say so (batch/changed.py)."""
    began = time.perf_counter()
    out = settings.out
    check_roots([Path(item) for item in settings.inputs])  # before OUT is made for a typo
    check_out(out)
    check_outside([Path(item) for item in settings.inputs], out)
    if settings.runtime == "onnx" and settings.decision.engine != "silero":
        ensure_onnx(resolve_model(settings.model), settings.precision)  # once, not per worker
    with _out_disk(out), OutputLock(out), stop_on_signals(settings.stop_grace):
        handler = log_to(out / "segmenter.log")
        try:
            summary = _run_locked(settings, confirm)  # the report (--report): cli.run_batch
        except ONE_LINE_ERRORS:
            raise
        except Exception:  # the terminal gets one line (cli.py); the log gets the traceback
            log.exception("the run stopped on an error that is no one file's")
            raise
        finally:
            logging.getLogger("segmenter").removeHandler(handler)
            handler.close()
    summary.wall_s = time.perf_counter() - began
    return summary, summary.exit_code


@contextmanager
def _out_disk(out: Path) -> Iterator[None]:
    """A full disk before any file is processed (lock, log, manifest): DiskFull, one line."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        if not no_space(exc, out):
            raise
        raise DiskFull(disk_full_line(out)) from None


def _with_workers(settings: BatchSettings) -> BatchSettings:
    """Without --jobs, as many workers as cores and memory allow, said in one line."""
    if settings.jobs is not None or settings.scheduler:  # a scheduler's cluster has its own
        return settings
    choice = choose_workers(settings.decision.engine, settings.runtime)
    note(choice.line)
    return replace(settings, jobs=choice.workers)


def _run_locked(settings: BatchSettings, confirm: Confirm | None = None) -> Summary:
    _sweep(settings.out)
    rebuilt = rebuild(settings.out, settings.formats) if settings.rebuild_manifest else ""
    manifest = Manifest.open(settings.out)
    settings = _with_workers(settings)
    if settings.backend != "loky" or settings.jobs == 1:
        forkserver.stop()  # started for a pool this run does not have
    summary = Summary(
        out=str(settings.out), settle_seconds=settings.settle_seconds, rebuilt=rebuilt
    )
    try:
        result_config = settings.result_config()
        config = config_hash(result_config)
        matched: set[str] = set()
        found = walk(settings.inputs, settings.include, settings.exclude, settings.out, matched)
        sources = settled(found, settings.settle_seconds, summary.left_for_later)
        consent = "--force" if settings.force else "--redo-changed" * settings.redo_changed

        def before() -> None:  # the walk is in the manifest, nothing written yet
            check_settings(manifest, config, result_config, consent, confirm)

        plan = manifest.plan(sources, config, settings.retry_failed, settings.force, before)
        summary.skipped = plan.skipped
        summary.unmatched = unmatched(settings.include, matched)
        for pattern in summary.unmatched:
            log.warning("--include %r matched no file under the inputs", pattern)
        _gone(settings, manifest, summary)
        todo = plan.todo - _refuse_clashes(manifest, settings)
        log.info("run: %d to do, %d already done, settings %s", todo, plan.skipped, config)
        if todo:
            with cluster(settings):
                _process_until_stopped(todo, settings, manifest, summary)
        summary.failed, first = manifest.failures_found(SHOWN_FAILURES)
        summary.failures = [  # the reason without the path: the name is beside it
            (rel, plain_reason(error, rel, path)) for rel, path, error in first
        ]
    finally:
        manifest.close()
    return summary


def _gone(settings: BatchSettings, manifest: Manifest, summary: Summary) -> None:
    """Find the recordings under the inputs whose input is gone; prune them if asked."""
    gone = find_gone(manifest, settings.inputs)
    summary.gone = len(gone)
    if settings.prune and gone:
        summary.pruned_outputs = prune(settings.out, manifest, gone)
        summary.pruned = len(gone)


def _refuse_clashes(manifest: Manifest, settings: BatchSettings) -> int:
    """Fail, before any is handed out, the recordings whose outputs would take a name another
    recording of the run needs (layout.py); how many of the plan's were failed."""
    suffixes = output_suffixes(settings.formats, settings.clips)
    refused: set[str] = set()
    in_run = lambda rel: manifest.found_todo(rel) is not None  # noqa: E731
    for clash in list(clashes(suffixes, manifest.found_matching, in_run)):
        failed = next((rel for rel in (clash.owner, clash.other) if manifest.found_todo(rel)), None)
        if failed is None or failed in refused:
            continue  # neither is to do (both settled) or it is already failed
        refused.add(failed)
        manifest.set_aside(failed, clash.reason(failed))
        log.warning("%s: not segmented: %s", failed, clash.reason(failed))
    return len(refused)


def _sweep(out: Path) -> None:
    """Remove the temporary files and folders a killed run or worker left inside OUT: only
    names as writers.py makes them (TMP_FILE, TMP_FOLDER), never an output or a file of the
    user's that merely starts the same way (`.tmp-notes.txt`, `.tmp-keep/`)."""
    for folder, dirs, files in os.walk(out):
        for name in files:
            if TMP_FILE.fullmatch(name):
                os.unlink(os.path.join(folder, name))
        for name in [d for d in dirs if TMP_FOLDER.fullmatch(d)]:
            shutil.rmtree(os.path.join(folder, name))
            dirs.remove(name)


def _process_until_stopped(
    total: int, settings: BatchSettings, manifest: Manifest, summary: Summary
) -> None:
    """Process the plan; a stop signal or a full disk ends it early, the rest left to do."""
    full = False
    try:
        _process(total, settings, manifest, summary)
    except Abandon:
        pass  # the workers are gone (joblib kills them): their temporary files are swept below
    except (OSError, sqlite3.OperationalError) as exc:
        if not no_space(exc, settings.out):
            raise
        log.error("OUT's disk is full: %s", exc)
        full = True
    finally:
        STATE.settle()  # nothing is in flight any more: later signals change nothing
    if not (full or STATE.signum):
        return
    _sweep(settings.out)
    summary.left = manifest.unfinished()
    summary.stopped = STATE.name
    if full:
        done = manifest.status()["counts"]["done"]
        summary.disk_full = disk_full_line(settings.out, summary.left, done)
    log.warning("stopped (%s): %d file(s) left to do", summary.stopped or "disk full", summary.left)


def _process(total: int, settings: BatchSettings, manifest: Manifest, summary: Summary) -> None:
    """Segment the plan's recordings; a dead worker's files are retried alone (dispatch.isolate)."""
    from tqdm import tqdm  # the coordinator's, imported when a run has files to do

    progress = tqdm(
        total=total,
        unit="file",
        disable=settings.quiet or not sys.stderr.isatty(),
        dynamic_ncols=True,
        mininterval=0.5,
    )
    todo = manifest.todo()
    flight = InFlight()
    with progress, Recorder(settings, manifest, summary, progress, flight) as recorder:
        while True:
            try:
                for results in parallel(chunks(todo, total, settings, flight), settings):
                    recorder.add(results)
                return
            except worker_died_errors() as exc:
                recorder.flush()
                suspects = flight.take()
                reason = " ".join(str(exc).split())[:200]
                log.warning("a worker process died; retrying %d file(s) alone", len(suspects))
                isolate(suspects, settings, recorder, reason)
