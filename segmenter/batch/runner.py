"""`segmenter run`: segment every recording under the inputs with a pool of workers.

The coordinator discovers the recordings, plans from the manifest, hands files to joblib workers
(longest first; each worker loads the model once and runs one engine thread), and as results
stream back writes the JSON and RTTM outputs and then the manifest row. A worker that dies
(segfault, OOM kill) costs only the file it had: suspects are retried alone, and the one that
kills its worker again is recorded as failed.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed, parallel_config
from joblib.externals.loky.process_executor import TerminatedWorkerError
from tqdm import tqdm

from ..chunking import ChunkOptions
from ..engines import DEFAULT_ENGINE
from ..engines.model import DEFAULT_RUNTIME, resolve_model
from ..profiles import DEFAULT_PROFILE, default_profile, get_profile
from ..settings import check
from ..views.report import write_report
from ..writers import TMP_PREFIX, clips_folder, output_base, write_formats
from .discovery import check_out, check_roots, discover
from .manifest import Manifest, OutputLock, Planned, config_hash
from .pool import choose_workers

log = logging.getLogger("segmenter.batch.runner")


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
    quiet: bool = False
    report: bool = False  # write OUT/report.html at the end
    settle_seconds: float = 5.0
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
            config["engine"] = [self.engine, version("silero-vad")]
        return config

    def __post_init__(self) -> None:
        """The numbers checked as on the command line (settings.py), for library callers."""
        for name in ("jobs", "channel", "clip_pad_ms", "clip_rate", "settle_seconds", "engine"):
            if getattr(self, name) is not None:
                check(name, getattr(self, name))


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
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    out: str = "OUT"
    settle_seconds: float = 5.0

    @property
    def failed(self) -> int:
        """Recordings of this run's inputs that are failed now (this run's or not retried)."""
        return len(self.failures)

    def lines(self) -> list[str]:
        """Counts, hours, the failed files (a few, then where the list is) and a settle hint."""
        counts = f"{self.done} done, {self.skipped} already done, {self.failed} failed"
        if self.unsettled:
            counts += f", {self.unsettled} still changing (left for the next run)"
        rate = self.audio_s / self.wall_s if self.wall_s else 0.0
        lines = [
            f"files: {counts}",
            f"audio: {self.audio_s / 3600:.3f} h, speech: {self.speech_s / 3600:.3f} h,"
            f" in {self.wall_s:.1f} s" + (f" ({rate:.0f}x real time)" if rate else ""),
        ]
        lines += [f"failed: {name}: {why}" for name, why in self.failures[:SHOWN_FAILURES]]
        if len(self.failures) > SHOWN_FAILURES:
            lines.append(
                f"... and {len(self.failures) - SHOWN_FAILURES} more failed:"
                f" `segmenter status {self.out}` lists them all, as does {self.out}/segmenter.log"
            )
        if self.unsettled and self.unsettled > self.done + self.failed:
            lines.append(
                f"hint: {self.unsettled} file(s) changed in the last {self.settle_seconds:g} s"
                " (still being copied?); a later run takes them, or --settle-seconds 0 now"
            )
        return lines


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


def exit_with_parent(parent: int, every_s: float = 0.5) -> None:
    """Loky worker start: exit as soon as the coordinator `parent` is gone.

    loky does not stop its workers when the coordinator is killed (kill -9, OOM): they would
    finish their files beside the run that resumes the batch. A thread polls the parent pid
    (PR_SET_PDEATHSIG would fire when the joblib thread that started the worker ends).
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def segment_task(task: Task, settings: BatchSettings) -> dict[str, Any]:
    """Segment one recording in a worker; returns its document, or the one-line reason it failed."""
    from ..audio import AudioError
    from ..segments import segments_of
    from ..writers import write_clips

    start = time.perf_counter()
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
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return {"rel": task.rel, "error": reason, "seconds": _since(start)}


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


# -- coordinator side -----------------------------------------------------------------------------


def run(settings: BatchSettings) -> tuple[Summary, int]:
    """Run a batch; returns its summary and exit code (0 all done, 1 some failed)."""
    began = time.perf_counter()
    out = settings.out
    check_roots([Path(item) for item in settings.inputs])  # before OUT is made for a typo
    check_out(out)
    if settings.runtime == "onnx" and settings.engine != "silero":  # once here, not per worker
        resolve_model(settings.model).onnx_file(settings.precision)
    if settings.jobs is None and not settings.scheduler:  # a scheduler's cluster has its own
        choice = choose_workers(settings.engine, settings.runtime)
        print(f"segmenter: {choice.line}", file=sys.stderr)
        settings = replace(settings, jobs=choice.workers)
    with OutputLock(out):
        handler = _log_to(out / "segmenter.log")
        try:
            summary = _run_locked(settings)
            if settings.report:
                write_report(out)
        finally:
            logging.getLogger("segmenter").removeHandler(handler)
            handler.close()
    summary.wall_s = time.perf_counter() - began
    return summary, 1 if summary.failed else 0


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


def _run_locked(settings: BatchSettings) -> Summary:
    for stale in settings.out.rglob(f"{TMP_PREFIX}*"):  # left by a killed run, never outputs
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    found = discover(
        settings.inputs, settings.include, settings.exclude, settings.settle_seconds, settings.out
    )
    for path in found.unsettled:
        log.info("%s: still changing, left for the next run", path)
    manifest = Manifest.open(settings.out)
    summary = Summary(
        unsettled=len(found.unsettled),
        out=str(settings.out),
        settle_seconds=settings.settle_seconds,
    )
    try:
        config = config_hash(settings.result_config())
        todo, summary.skipped = manifest.plan(
            found.sources, config, settings.retry_failed, settings.force
        )
        log.info("run: %d to do, %d already done, settings %s", len(todo), summary.skipped, config)
        todo.sort(key=lambda p: (-p.source.size, p.source.rel))  # longest first (by size)
        if todo:
            with cluster(settings):
                _process(todo, settings, manifest, summary)
        paths = {s.rel: f"{s.path.absolute()}: " for s in found.sources}
        summary.failures = [  # the reason without the path it starts with: the name is beside it
            (f["file"], (f["error"] or "").removeprefix(paths[f["file"]]))
            for f in manifest.status()["failures"]
            if f["file"] in paths
        ]
    finally:
        manifest.close()
    return summary


def _process(todo: list[Planned], settings: BatchSettings, manifest: Manifest, summary: Summary):
    tasks = {p.source.rel: _task(p, settings) for p in todo}
    progress = tqdm(
        total=len(tasks),
        unit="file",
        disable=settings.quiet or not sys.stderr.isatty(),
        dynamic_ncols=True,
    )
    pending = list(tasks.values())
    with progress:
        while pending:
            handed: list[Task] = []
            finished: set[str] = set()
            marked = 0
            try:
                for result in _parallel(pending, settings, handed):
                    for task in handed[marked:]:  # joblib dispatches from its own thread
                        manifest.running(task.rel)
                    marked = len(handed)
                    finished.add(result["rel"])
                    _record(result, settings, manifest, summary, progress)
                pending = []
            except worker_died_errors() as exc:
                suspects = [t for t in handed if t.rel not in finished]
                pending = [t for t in pending if t.rel not in finished and t not in suspects]
                reason = " ".join(str(exc).split())[:200]
                log.warning("a worker process died; retrying %d file(s) alone", len(suspects))
                _isolate(suspects, settings, manifest, summary, progress, reason)


def _task(planned: Planned, settings: BatchSettings) -> Task:
    """Absolute paths: on a cluster, workers see the same storage but not our directory."""
    clips = (
        str(clips_folder(settings.out.absolute(), planned.source.rel)) if settings.clips else None
    )
    return Task(planned.source.rel, str(planned.source.path.absolute()), clips)


def _parallel(tasks: list[Task], settings: BatchSettings, handed: list[Task]) -> Iterator[dict]:
    """Results as they finish; `handed` records what was given to workers (the suspects)."""

    def feed() -> Iterable:
        for task in tasks:
            handed.append(task)
            yield delayed(segment_task)(task, settings)

    if settings.backend == "dask":
        # every thread of the cluster; the scheduler queues the tasks and hides its round trips
        config, n_jobs, ahead = parallel_config(backend="dask"), -1, "all"
    else:  # a dead loky worker loses what it was given: give each only what it runs
        config = parallel_config(
            backend=settings.backend,
            inner_max_num_threads=1,
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
        )
        n_jobs, ahead = settings.jobs, "n_jobs"
    with config:
        parallel = Parallel(
            n_jobs=n_jobs, return_as="generator_unordered", batch_size=1, pre_dispatch=ahead
        )
        yield from parallel(feed())


def worker_died_errors() -> tuple[type[BaseException], ...]:
    """What joblib raises when a worker process dies under a task (loky, or Dask's KilledWorker)."""
    try:
        from distributed import KilledWorker
    except ImportError:
        return (TerminatedWorkerError,)
    return (TerminatedWorkerError, KilledWorker)


def _isolate(suspects, settings, manifest, summary, progress, reason) -> None:
    """Retry files that were on a worker when it died, one at a time, to find the one to blame."""
    for task in suspects:
        try:
            for result in _parallel([task], settings, []):
                manifest.running(task.rel)
                _record(result, settings, manifest, summary, progress)
        except worker_died_errors():
            manifest.failed(task.rel, f"worker process died while segmenting it ({reason})")
            log.error("%s: worker died", task.rel)
            progress.update(1)


def _record(result, settings, manifest, summary, progress) -> None:
    """Write a finished file's outputs, then mark it done (or failed) in the manifest."""
    rel = result["rel"]
    if "error" in result:
        manifest.failed(rel, result["error"], result["seconds"])
        log.warning("%s: failed: %s", rel, result["error"])
    else:
        document = result["document"]
        outputs = _write_outputs(settings, rel, document)
        if result["clips"]:
            outputs.append(Path(rel + ".clips").as_posix() + "/")
        elif not settings.clips:
            _drop_stale_clips(settings.out, rel)
        audio = document["audio"]["duration"]
        speech = document["speech_duration"]
        manifest.done(
            rel,
            {
                "duration": audio,
                "speech": speech,
                "segments": len(document["segments"]),
                "seconds": result["seconds"],
            },
            outputs,
        )
        summary.done += 1
        summary.audio_s += audio
        summary.speech_s += speech
        log.info("%s: %d segments, %.1f s audio", rel, len(document["segments"]), audio)
    progress.set_postfix_str(f"{summary.audio_s / 3600:.2f} h audio", refresh=False)
    progress.update(1)


def _drop_stale_clips(out: Path, rel: str) -> None:
    """Clips an earlier run with --clips left for a file now redone without them.

    Renamed under a temporary name first (one rename: a reader sees the whole folder or none,
    and a run killed while deleting leaves only what the next run sweeps), then deleted.
    """
    folder = clips_folder(out, rel)
    if not folder.is_dir():
        return
    doomed = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=folder.parent))
    os.replace(folder, doomed / folder.name)
    shutil.rmtree(doomed)
    log.info("%s: removed the clips of an earlier run with --clips", rel)


def _write_outputs(settings: BatchSettings, rel: str, document: dict[str, Any]) -> list[str]:
    out = settings.out
    written = write_formats(output_base(out, rel), document, settings.formats)
    return [p.relative_to(out).as_posix() for p in written]


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("segmenter")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    return handler
