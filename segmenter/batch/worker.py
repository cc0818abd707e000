"""What runs in a batch worker: load the model once, segment a chunk of tasks, return results.

The fork server preloads this module (forkserver.PRELOAD), and a Dask worker imports it to
unpickle `segment_chunk`: it imports the engine, the writers and the small pieces a task
needs (tasks, settings, records, diskfull, stopping), never the coordinator's modules
(manifest, recorder, dispatch, rebuild, views, toolkit): tests/test_forkserver.py checks a
worker's import list.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ..engines import DEFAULT_ENGINE
from ..engines.model import DEFAULT_RUNTIME
from ..writers import WriteError, name_too_long, output_names
from .diskfull import no_space
from .settings import BatchSettings
from .stopping import STOP_SIGNALS
from .tasks import Done, Failed, Task, TaskResult

# write errors about one recording's output names (a name too long or refused by the
# filesystem, a folder or a file in the way): that recording fails, the run goes on
NAME_ERRORS = frozenset(
    (errno.ENAMETOOLONG, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY)
    + (errno.EILSEQ, errno.EINVAL)
)
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


def segment_task(task: Task, settings: BatchSettings) -> TaskResult:
    """Segment one recording in a worker: Done with its document and clips, or Failed with the
    one-line reason. A full disk or an unwritable OUT is the run's problem, not the file's: it
    is raised (as a plain OSError, which pickles) and stops the run."""
    from ..audio import AudioError
    from ..segments import segments_of
    from ..writers import write_clips

    start = time.perf_counter()
    names = output_names(task.rel, settings.formats, settings.clips)
    too_long = name_too_long(settings.out, names)
    if too_long:  # before any work: it could never be written
        return Failed(task.rel, too_long, _since(start))
    try:
        decision = settings.decision
        vad = worker_vad(settings.model, settings.precision, settings.runtime, decision.engine)
        document = vad.document(
            task.path,
            channel=settings.channel,
            chunking=settings.chunking,
            profile=decision.profile,
            **decision.overrides,
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
        return Done(task.rel, document, tuple(clips), _since(start))
    except AudioError as exc:
        return Failed(task.rel, str(exc), _since(start))
    except Exception as exc:  # noqa: BLE001 - any failure of one file is that file's reason
        if no_space(exc):  # OUT's disk, not this file: the run stops (a plain, picklable error)
            raise OSError(exc.errno, str(exc)) from None
        if isinstance(exc, WriteError) and exc.errno not in NAME_ERRORS:  # OUT read-only, ...
            raise OSError(exc.errno, str(exc)) from None
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        return Failed(task.rel, reason, _since(start))


def segment_chunk(tasks: list[Task], settings: BatchSettings) -> list[TaskResult]:
    """Segment a chunk of recordings in a worker: one round trip for many small files."""
    return [segment_task(task, settings) for task in tasks]


def _since(start: float) -> float:
    """Seconds since `start` (perf_counter), to the millisecond."""
    return round(time.perf_counter() - start, 3)
