"""`segmenter run`: segment every recording under the inputs with a pool of workers.

The coordinator discovers the recordings, plans from the manifest, hands files to a loky pool
or a Dask cluster (longest first; each worker loads the model once and runs one engine thread),
and as results stream back writes the JSON and RTTM outputs and then the manifest row. A
worker that dies (segfault, OOM kill) costs only the file it had: suspects are retried alone,
and the one that kills its worker again is recorded as failed.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chunking import ChunkOptions
from ..engines import DEFAULT_ENGINE
from ..engines.model import DEFAULT_RUNTIME, resolve_model
from ..names import shown
from ..profiles import DEFAULT_PROFILE, default_profile, get_profile
from ..settings import SettingError, check
from ..views.report import write_report
from ..writers import (
    CLIPS_SUFFIX,
    SUFFIXES,
    TMP_FILE,
    TMP_FOLDER,
    WriteError,
    clips_folder,
    holds_only_clips,
    name_too_long,
    output_base,
    output_names,
    render_formats,
    tmp_folder_prefix,
    write_durably,
)
from . import forkserver
from .changed import Confirm, SettingsChanged, check_settings
from .discovery import (
    InputError,
    Source,
    check_out,
    check_outside,
    check_roots,
    settled,
    unmatched,
    walk,
)
from .diskfull import EXIT_DISK_FULL, DiskFull, disk_full_line, no_space
from .gone import find_gone, prune
from .layout import clashes
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
from .stopping import STATE, STOP_SIGNALS, Abandon, stop_on_signals, stop_requested

if TYPE_CHECKING:
    from tqdm import tqdm

log = logging.getLogger("segmenter.batch.runner")
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


@dataclass(frozen=True)
class BatchSettings:
    """Everything a run needs; what changes results goes into the manifest's config hash."""

    inputs: list[str]
    out: Path
    jobs: int | None = None  # None: the cores, as many as memory holds (pool.py)
    precision: str = "int8"
    runtime: str = DEFAULT_RUNTIME  # onnx: no torch in the workers; or torch (its extra)
    model: str | None = None
    engine: str = DEFAULT_ENGINE  # fsmn, silero or fusion; model/precision/runtime are FSMN's
    profile: str | None = None  # the decision (None: the engine's default); `overrides` are
    # its settings
    overrides: dict[str, Any] = field(default_factory=dict)
    channel: int | None = None
    clips: bool = False
    clip_pad_ms: int = 0
    clip_rate: int | None = None  # None: the source's rate
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    retry_failed: bool = False
    force: bool = False
    redo_changed: bool = False  # redo the files done with other settings (batch/changed.py)
    prune: bool = False  # remove the outputs and rows of gone recordings (batch/gone.py)
    quiet: bool = False
    report: bool = False  # write OUT/report.html at the end
    settle_seconds: float = 5.0
    stop_grace: float = 30.0  # seconds the files in flight get after SIGTERM/SIGINT
    rebuild_manifest: bool = False  # a damaged manifest: set it aside, rebuild from the JSONs
    formats: tuple[str, ...] = ("json", "rttm")
    chunking: ChunkOptions = field(default_factory=ChunkOptions)
    backend: str = "loky"  # or "dask": a dask.distributed cluster through joblib
    scheduler: str | None = None  # dask scheduler address; None starts a LocalCluster

    def result_config(self) -> dict[str, Any]:
        """The settings that change a recording's outputs."""
        files = resolve_model(self.model)
        profile = get_profile(self.profile or default_profile(self.engine))
        options = profile.defaults(files.config, self.engine).with_overrides(**self.overrides)
        config = {
            "model": files.sha256,
            "precision": self.precision,
            "runtime": self.runtime,
            "options": options.to_dict(),
            "channel": self.channel,
            "clips": [self.clip_pad_ms, self.clip_rate] if self.clips else None,
            "formats": sorted(self.formats),
            "chunking": asdict(self.chunking),
        }
        if profile.name != DEFAULT_PROFILE:  # so the default's hash, and past batches, stand
            config["profile"] = profile.name
        if self.engine != DEFAULT_ENGINE:  # likewise; the silero package's version counts
            from importlib.metadata import version

            config["engine"] = [self.engine, version("silero-vad")]
        return config

    def __post_init__(self) -> None:
        """The numbers checked as on the command line (settings.py), for library callers."""
        numbers = ("jobs", "channel", "clip_pad_ms", "clip_rate", "settle_seconds", "stop_grace")
        for name in (*numbers, "engine"):
            if getattr(self, name) is not None:
                check(name, getattr(self, name))
        if self.scheduler and self.backend != "dask":
            raise SettingError(
                f"scheduler {self.scheduler} is a Dask scheduler: add --backend dask"
            )


@dataclass(frozen=True)
class Task:
    """One recording for a worker: where to read it and where its clips go."""

    rel: str
    path: str
    clips_dir: str | None


SHOWN_FAILURES = 5  # the summary names this many failed files, then says where the rest are


@dataclass
class Summary:
    """What a run did, for the lines printed at its end (cron mails them)."""

    done: int = 0
    skipped: int = 0
    audio_s: float = 0.0
    speech_s: float = 0.0
    wall_s: float = 0.0
    unsettled: int = 0
    failed: int = 0  # recordings of this run's inputs that are failed now (this run's or not)
    failures: list[tuple[str, str]] = field(default_factory=list)  # the first few: (file, reason)
    out: str = "OUT"
    settle_seconds: float = 5.0
    changed: int = 0  # inputs that changed while they were read: redone by the next run
    left: int = 0  # files of this run's plan still to do (a stop, a full disk)
    stopped: str = ""  # the signal that stopped the run
    disk_full: str = ""  # the line saying which disk is full and what it needs
    rebuilt: str = ""  # what --rebuild-manifest did
    unmatched: list[str] = field(default_factory=list)  # --include patterns that took no file
    gone: int = 0  # recordings under the inputs whose input is gone (batch/gone.py)
    pruned: int = 0  # of them, removed by --prune (and their outputs, `pruned_outputs`)
    pruned_outputs: int = 0

    def left_for_later(self, source: Source) -> None:
        """A recording still changing: counted and logged (by its name under OUT, as every
        line of the log names a recording), taken by the next run."""
        self.unsettled += 1
        log.info("%s: still changing, left for the next run", source.rel)

    def lines(self) -> list[str]:
        """Counts, hours, the failed files (a few, then where the list is) and a settle hint."""
        counts = f"{self.done} done, {self.skipped} already done, {self.failed} failed"
        if self.unsettled:
            counts += f", {self.unsettled} still changing (left for the next run)"
        if self.changed:
            counts += f", {self.changed} changed while read (redone by the next run)"
        if self.left:
            counts += f", {self.left} left to do"
        if self.gone:
            counts += f", {self.gone} gone"
        rate = self.audio_s / self.wall_s if self.wall_s else 0.0
        lines = [self.rebuilt] if self.rebuilt else []
        lines += [
            f"files: {counts}",
            f"audio: {self.audio_s / 3600:.3f} h, speech: {self.speech_s / 3600:.3f} h,"
            f" in {self.wall_s:.1f} s" + (f" ({rate:.0f}x real time)" if rate else ""),
        ]
        shown_failures = self.failures[:SHOWN_FAILURES]
        lines += [f"failed: {shown(name)}: {shown(why)}" for name, why in shown_failures]
        if self.failed > len(self.failures):
            lines.append(
                f"... and {self.failed - len(self.failures)} more failed:"
                f" `segmenter status {self.out}` lists them all, as does {self.out}/segmenter.log"
            )
        if self.unsettled and self.unsettled > self.done + self.failed:
            lines.append(
                f"hint: {self.unsettled} file(s) changed in the last {self.settle_seconds:g} s"
                " (still being copied?); a later run takes them, or --settle-seconds 0 now"
            )
        for pattern in self.unmatched:
            lines.append(
                f"hint: --include {pattern!r} matched no file under the inputs (a pattern"
                " matches a file's name or its path under its input, in any case)"
            )
        if self.stopped:
            lines.append(f"stopped by {self.stopped}: the next run takes the files left to do")
        return lines + self._gone_lines()

    def _gone_lines(self) -> list[str]:
        """What became of recordings whose inputs are gone (batch/gone.py)."""
        if self.pruned:
            return [
                f"pruned: {self.pruned} gone recording(s): {self.pruned_outputs} output(s)"
                " and their manifest rows removed"
            ]
        if not self.gone:
            return []
        return [
            f"gone: {self.gone} recording(s) whose input is no longer there (moved or deleted):"
            " their outputs stay, not counted in the totals; `segmenter status"
            f" {self.out}` lists them, a run with --prune removes them"
        ]

    @property
    def exit_code(self) -> int:
        """4 disk full, 128 + the signal that stopped it, 1 some failed, else 0."""
        if self.disk_full:
            return EXIT_DISK_FULL
        if self.stopped:
            return 128 + signal.Signals[self.stopped]
        return 1 if self.failed else 0


# -- worker side ----------------------------------------------------------------------------------

_VADS: dict[tuple, Any] = {}


def worker_vad(
    model: str | None, precision: str, runtime: str = DEFAULT_RUNTIME, engine: str = DEFAULT_ENGINE
):
    """The model of this worker process, loaded once, the process set up to run it."""
    key = (model, precision, runtime, engine)
    if key not in _VADS:
        from ..vad import Vad, one_core_process

        one_core_process()  # workers share the cores, not each task
        _VADS[key] = Vad.load(model, precision=precision, threads=1, runtime=runtime, engine=engine)
    return _VADS[key]


def worker_start(coordinator: int) -> None:
    """Loky worker start: stop signals are the coordinator's to handle (a terminal's Ctrl-C
    reaches the whole process group; the files in flight get their grace period), and the
    worker exits with the `coordinator` process."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    exit_with_coordinator(coordinator)


def exit_with_coordinator(coordinator: int, every_s: float = 0.5) -> None:
    """Exit as soon as the `coordinator` process is gone.

    loky does not stop its workers when the coordinator is killed (kill -9, OOM): they would
    finish their files beside the run that resumes the batch. A thread polls the coordinator
    (PR_SET_PDEATHSIG would fire when the pool's thread that started the worker ends, and a
    worker forked by the fork server has that server as its parent).
    """

    def watch() -> None:
        while process_alive(coordinator):
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-coordinator", daemon=True).start()


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs (a killed process whose parent has not reaped it yet, a
    zombie, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel (a zombie then counts as running)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def segment_task(task: Task, settings: BatchSettings) -> dict[str, Any]:
    """Segment one recording in a worker; returns its document, or the one-line reason it failed."""
    from ..audio import AudioError
    from ..segments import segments_of
    from ..writers import write_clips

    start = time.perf_counter()
    too_long = name_too_long(settings.out, output_names(task.rel, settings.formats, settings.clips))
    if too_long:  # before any work: it could never be written
        return {"rel": task.rel, "error": too_long, "seconds": _since(start)}
    try:
        vad = worker_vad(settings.model, settings.precision, settings.runtime, settings.engine)
        document = vad.document(
            task.path,
            channel=settings.channel,
            chunking=settings.chunking,
            profile=settings.profile,
            **settings.overrides,
        )
        clips = []
        if task.clips_dir:
            clips = write_clips(
                Path(task.path),
                Path(task.clips_dir),
                segments_of(document),
                settings.clip_pad_ms,
                settings.clip_rate,
                settings.channel,
            )
        return {"rel": task.rel, "document": document, "clips": clips, "seconds": _since(start)}
    except AudioError as exc:
        return {"rel": task.rel, "error": str(exc), "seconds": _since(start)}
    except Exception as exc:  # noqa: BLE001 - any failure of one file is that file's reason
        if no_space(exc):  # OUT's disk, not this file: the run stops (a plain, picklable error)
            raise OSError(exc.errno, str(exc)) from None
        if isinstance(exc, WriteError) and exc.errno not in NAME_ERRORS:  # OUT read-only, ...
            raise OSError(exc.errno, str(exc)) from None
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return {"rel": task.rel, "error": reason, "seconds": _since(start)}


def segment_chunk(tasks: list[Task], settings: BatchSettings) -> list[dict[str, Any]]:
    """Segment a chunk of recordings in a worker: one round trip for many small files."""
    return [segment_task(task, settings) for task in tasks]


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


# -- coordinator side -----------------------------------------------------------------------------


def run(settings: BatchSettings, confirm: Confirm | None = None) -> tuple[Summary, int]:
    """Run a batch; returns its summary and exit code (Summary.exit_code). A run that would
    redo files done with other settings asks `confirm` first, or without it stops
    (SettingsChanged) unless `settings` say so (batch/changed.py)."""
    began = time.perf_counter()
    out = settings.out
    check_roots([Path(item) for item in settings.inputs])  # before OUT is made for a typo
    check_out(out)
    check_outside([Path(item) for item in settings.inputs], out)
    if settings.runtime == "onnx" and settings.engine != "silero":  # once here, not per worker
        resolve_model(settings.model).onnx_file(settings.precision)
    with _out_disk(out), OutputLock(out), stop_on_signals(settings.stop_grace):
        handler = _log_to(out / "segmenter.log")
        try:
            summary = _run_locked(settings, confirm)
            if settings.report:
                write_report(out)
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


@contextmanager
def cluster(settings: BatchSettings) -> Iterator[None]:
    """For the dask backend, a client of the given scheduler or of a LocalCluster on loopback."""
    if settings.backend != "dask":
        yield
        return
    from distributed import Client, LocalCluster

    if settings.scheduler:
        with Client(settings.scheduler, timeout="30s"):
            yield
        return
    local = LocalCluster(
        n_workers=settings.jobs,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    with local, Client(local):
        yield


def _with_workers(settings: BatchSettings) -> BatchSettings:
    """Without --jobs, as many workers as cores and memory allow, said in one line."""
    if settings.jobs is not None or settings.scheduler:  # a scheduler's cluster has its own
        return settings
    choice = choose_workers(settings.engine, settings.runtime)
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
    suffixes = [suffix for name in settings.formats for suffix in SUFFIXES[name]]
    suffixes += [CLIPS_SUFFIX] if settings.clips else []
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


CHUNK_FILES = 64  # recordings per task at most: one round trip to a worker for many small files
CHUNK_BYTES = 4 << 20  # and no more input than this (about 2 min of 16 kHz WAV): long files alone
CHUNKS_AHEAD = 4  # the tail is cut finer so that every worker has a share of it


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


class InFlight:
    """Recordings handed to workers and not yet recorded: the ones to mark running, and the
    suspects when a worker dies. Filled from the thread joblib dispatches from."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tasks: dict[str, Task] = {}
        self.unmarked: list[str] = []
        self.handed = 0
        self.dispatch_s = 0.0  # spent reading the plan and making tasks

    def hand(self, tasks: list[Task]) -> None:
        """Tasks on their way to a worker."""
        with self.lock:
            self.tasks.update((t.rel, t) for t in tasks)
            self.unmarked += [t.rel for t in tasks]
            self.handed += len(tasks)

    def to_mark(self) -> list[str]:
        """The recordings handed since the last call (to mark running)."""
        with self.lock:
            marked, self.unmarked = self.unmarked, []
        return marked

    def finish(self, rel: str) -> None:
        """A result came back for `rel`."""
        with self.lock:
            self.tasks.pop(rel, None)

    def take(self) -> list[Task]:
        """What was on the workers when one died: everything handed and not back."""
        with self.lock:
            suspects, self.tasks = list(self.tasks.values()), {}
        return suspects


def _chunks(todo: Iterator, total: int, settings: BatchSettings, flight: InFlight):
    """Tasks in chunks: up to CHUNK_FILES recordings and CHUNK_BYTES of input, fewer near the
    end of the batch so the last chunks still spread over the workers. `todo` comes largest
    first, so long recordings go alone; no recording is held back between chunks. A stop
    signal ends it: no new files, those in flight finish."""
    chunk: list[Task] = []
    size = 0
    workers = settings.jobs or _cluster_threads()
    began = time.perf_counter()
    for rel, path, nbytes in todo:
        if stop_requested():  # SIGTERM/SIGINT
            return
        chunk.append(_task(rel, path, settings))
        size += max(nbytes, 0)
        share = (total - flight.handed) // (CHUNKS_AHEAD * workers)
        if len(chunk) >= max(1, min(CHUNK_FILES, share)) or size >= CHUNK_BYTES:
            flight.hand(chunk)
            flight.dispatch_s += time.perf_counter() - began
            yield chunk
            chunk, size = [], 0
            began = time.perf_counter()
    if chunk and not stop_requested():
        flight.hand(chunk)
        yield chunk


def _cluster_threads() -> int:
    """The threads of the Dask cluster a scheduler address gave (its size is not ours to set)."""
    from distributed import get_client

    return max(1, sum(get_client().nthreads().values()))


def _process(total: int, settings: BatchSettings, manifest: Manifest, summary: Summary) -> None:
    """Segment the plan's recordings; a dead worker's files are retried alone (`_isolate`)."""
    from tqdm import tqdm  # the coordinator's; the workers, which import this module, have none

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
                for results in _parallel(_chunks(todo, total, settings, flight), settings):
                    recorder.add(results)
                return
            except worker_died_errors() as exc:
                recorder.flush()
                suspects = flight.take()
                reason = " ".join(str(exc).split())[:200]
                log.warning("a worker process died; retrying %d file(s) alone", len(suspects))
                _isolate(suspects, settings, recorder, reason)


def _task(rel: str, path: str, settings: BatchSettings) -> Task:
    """Absolute paths: on a cluster, workers see the same storage but not our directory."""
    clips = str(clips_folder(settings.out.absolute(), rel)) if settings.clips else None
    return Task(rel, os.path.abspath(path), clips)


IDLE_WORKER_S = 300  # a reused pool's idle workers exit after this (a library's later runs)


def _parallel(chunks: Iterable[list[Task]], settings: BatchSettings) -> Iterator[list[dict]]:
    """Each chunk's results as it finishes: in this process for one worker, else on the pool."""
    if settings.backend == "dask":
        yield from _on_dask(chunks, settings)
    elif settings.jobs == 1:
        yield from (segment_chunk(chunk, settings) for chunk in chunks)
    else:
        yield from _on_pool(chunks, settings)


def _on_pool(chunks: Iterable[list[Task]], settings: BatchSettings) -> Iterator[list[dict]]:
    """Chunks on a loky pool of `jobs` processes (forked by the fork server where it runs),
    one chunk in flight per worker: a dead worker loses only what it was running."""
    from loky import get_reusable_executor
    from loky.backend.context import set_start_method

    set_start_method(forkserver.start_method(), force=True)
    pool = get_reusable_executor(
        max_workers=settings.jobs,
        timeout=IDLE_WORKER_S,
        initializer=worker_start,
        initargs=(os.getpid(),),
        env=dict.fromkeys(forkserver.THREAD_VARS, "1"),
    )
    try:
        yield from _windowed(
            lambda chunk: pool.submit(segment_chunk, chunk, settings), chunks, settings.jobs
        )
    except BaseException:  # a stop, a dead worker, the consumer gone: the workers with it
        pool.shutdown(wait=False, kill_workers=True)
        raise


def _on_dask(chunks: Iterable[list[Task]], settings: BatchSettings) -> Iterator[list[dict]]:
    """Chunks on the Dask cluster through joblib: every thread of it, a few chunks queued each
    to hide the scheduler's round trips."""
    from joblib import Parallel, delayed, parallel_config

    feed = (delayed(segment_chunk)(chunk, settings) for chunk in chunks)
    with parallel_config(backend="dask"):
        parallel = Parallel(
            n_jobs=-1, return_as="generator_unordered", batch_size=1, pre_dispatch="3*n_jobs"
        )
        yield from parallel(feed)


def _windowed(
    submit: Callable[[list[Task]], Future], chunks: Iterable[list[Task]], ahead: int
) -> Iterator[list[dict]]:
    """Results of `submit`ted chunks as they finish, `ahead` in flight at most: the plan is
    read as the workers need it, and a worker gets its next chunk before the coordinator
    writes what the last one gave."""
    feed = iter(chunks)
    pending: set[Future] = {submit(chunk) for chunk in islice(feed, ahead)}
    while pending:
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        results = [future.result() for future in done]  # a dead worker raises here
        pending |= {submit(chunk) for chunk in islice(feed, ahead - len(pending))}
        yield from results


def worker_died_errors() -> tuple[type[BaseException], ...]:
    """What a worker process dying under a task raises: loky's error, or Dask's KilledWorker."""
    from loky.process_executor import TerminatedWorkerError

    try:
        from distributed import KilledWorker
    except ImportError:
        return (TerminatedWorkerError,)
    return (TerminatedWorkerError, KilledWorker)


def _isolate(suspects: list[Task], settings: BatchSettings, recorder: Recorder, reason: str):
    """Retry files that were on a worker when it died, one at a time, to find the one to blame."""
    for task in suspects:
        try:
            recorder.flight.hand([task])
            for results in _parallel([[task]], settings):
                recorder.add(results)
            recorder.flush()
        except worker_died_errors():
            recorder.flight.take()
            recorder.add(
                [{"rel": task.rel, "error": f"worker process died while segmenting it ({reason})"}]
            )
            recorder.flush()
            log.error("%s: worker died", task.rel)


FLUSH_SECONDS = 0.5  # results wait at most about this long for their outputs' sync and commit
FLUSH_FILES = 2000  # or until this many are waiting


class Recorder:
    """Finished recordings wait here a moment, then are recorded as a group: their outputs
    written and synced (files, then each folder once), then one manifest commit marks them
    done. A file is thus never `done` before its outputs are on disk, and a kill at any moment
    loses at most the results of the last moment (redone by the next run, never half-recorded).

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
        self.results: list[dict] = []
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

    def add(self, results: list[dict]) -> None:
        """Results from a worker; flushed with the others once the group is due."""
        with self.lock:
            for result in results:
                self.flight.finish(result["rel"])
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
            results = [_checked(self.manifest, result) for result in results]
            finished = [r for r in results if "document" in r]
            outputs, unwritten = _write_group(self.settings, finished)
            results = [_unwritten(result, unwritten) for result in results]
            wrote = time.perf_counter()
            with self.manifest.transaction():
                for rel in self.flight.to_mark():
                    self.manifest.running(rel)
                for result in results:
                    _record_row(self.manifest, result, outputs.get(result["rel"]))
            self._cost(results, wrote - began, time.perf_counter() - wrote)
            for result in results:
                self._count(result)

    def _cost(self, results: list[dict], write_s: float, manifest_s: float) -> None:
        """Add a flush to the run's costs."""
        self.costs.files += len(results)
        self.costs.flushes += bool(results)
        self.costs.worker_s += sum(r.get("seconds") or 0.0 for r in results)
        self.costs.write_s += write_s
        self.costs.manifest_s += manifest_s

    def _count(self, result: dict) -> None:
        """The summary, the log and the progress bar, once a result is committed."""
        rel = result["rel"]
        if "changed" in result:
            self.summary.changed += 1
            moved = result["changed"]
            log.warning("%s: changed while it was read (%s), left for the next run", rel, moved)
        elif "error" in result:
            log.warning("%s: failed: %s", rel, plain_reason(result["error"], rel))
        else:
            document = result["document"]
            self.summary.done += 1
            self.summary.audio_s += document["audio"]["duration"]
            self.summary.speech_s += document["speech_duration"]
            segments, audio = len(document["segments"]), document["audio"]["duration"]
            log.info("%s: %d segments, %.1f s audio", rel, segments, audio)
        self.progress.set_postfix_str(f"{self.summary.audio_s / 3600:.2f} h audio", refresh=False)
        self.progress.update(1)


def _checked(manifest: Manifest, result: dict) -> dict:
    """A result once its input is looked at again: failed if the input was deleted while it
    was read, "changed" if it was rewritten (stale results: redone by the next run), else with
    the document's "batch" field, what a manifest rebuilt from the outputs needs."""
    rel = result["rel"]
    source = manifest.source(rel)
    moved = _moved(source)
    if moved == "deleted":
        reason = f"{Path(source['path']).absolute()}: deleted while it was read"  # as others
        return {"rel": rel, "error": reason, "seconds": result.get("seconds")}
    if moved:
        return {"rel": rel, "changed": moved}
    if "error" in result:
        return result
    source.pop("path")  # the document's audio.path has it, absolute
    return result | {"document": result["document"] | {"batch": source}}


def _record_row(manifest: Manifest, result: dict, outputs: list[str] | None) -> None:
    """A result's manifest row: done with its outputs, failed with its reason, or to redo."""
    if "changed" in result:
        reason = f"changed while it was read ({result['changed']}); redone by the next run"
        manifest.redo(result["rel"], reason)
        return
    if "error" in result:
        manifest.failed(result["rel"], result["error"], result.get("seconds"))
        return
    document = result["document"]
    stats = {
        "duration": document["audio"]["duration"],
        "speech": document["speech_duration"],
        "segments": len(document["segments"]),
        "seconds": result["seconds"],
    }
    manifest.done(result["rel"], stats, outputs)


def _write_group(
    settings: BatchSettings, results: list[dict]
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Write the outputs of finished recordings, all on disk when it returns: each one's list
    of outputs, and the reason for each one whose outputs could not be written."""
    texts: dict[str, dict[str, str]] = {}
    outputs: dict[str, list[str]] = {}
    for result in results:
        rel = result["rel"]
        base = output_base(settings.out, rel)
        rendered = render_formats(base, result["document"], settings.formats)
        texts[rel] = {f"{base}{suffix}": text for suffix, text in rendered.items()}
        outputs[rel] = [rel + suffix for suffix in rendered]
        if result["clips"]:
            outputs[rel].append(Path(rel + CLIPS_SUFFIX).as_posix() + "/")
        elif not settings.clips:
            _drop_stale_clips(settings.out, rel)
    try:
        write_durably({target: text for group in texts.values() for target, text in group.items()})
    except OSError as exc:
        if exc.errno not in NAME_ERRORS:  # a full disk, a read-only OUT: the run's problem
            raise
        return outputs, _write_each(texts)
    return outputs, {}


# write errors about one recording's output names (a name too long or refused by the
# filesystem, a folder or a file in the way): that recording fails, the run goes on
NAME_ERRORS = frozenset(
    (errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY)
    + (errno.EILSEQ, errno.EINVAL)
)


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


def _unwritten(result: dict, unwritten: dict[str, str]) -> dict:
    """A result whose outputs could not be written, as a failure with the reason."""
    reason = unwritten.get(result["rel"])
    if reason is None:
        return result
    return {"rel": result["rel"], "error": reason, "seconds": result.get("seconds")}


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


class _LogFile(logging.FileHandler):
    """OUT/segmenter.log; where OUT cannot take a line (a full disk, a filesystem gone
    read-only) it loses lines quietly instead of printing a traceback per line: the run's own
    line on stderr says what happened."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """Drop the record if OUT cannot take it; report other errors as logging does."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handleError(record)

    def close(self) -> None:
        """Close, dropping what OUT cannot take."""
        with contextlib.suppress(OSError):
            super().close()


class _OneLine(logging.Formatter):
    """Each record one line: a name's newline or control characters cannot forge another."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return shown(super().formatMessage(record))


def _log_to(path: Path) -> logging.Handler:
    handler = _LogFile(path, encoding="utf-8", errors="backslashreplace")
    handler.setFormatter(_OneLine("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("segmenter")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    return handler
