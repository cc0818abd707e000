"""Handing recordings to the workers: chunks of tasks, a loky pool or a Dask cluster, the
results as they finish, and the files of a worker that died retried alone.

The plan is read as the workers need it (`chunks`): up to CHUNK_FILES recordings and CHUNK_BYTES
of input a chunk, fewer near the end so the last ones still spread over the workers. `parallel`
runs the chunks in this process (one worker), on a loky pool (forked by the fork server where
it runs) or on Dask; a worker that dies raises one of `worker_died_errors()`, and `isolate`
then retries each file that was in flight alone to find the one that kills it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING

from ..writers import clips_folder
from . import forkserver
from .settings import BatchSettings
from .stopping import stop_requested
from .tasks import Failed, Task, TaskResult
from .worker import segment_chunk, worker_start

if TYPE_CHECKING:
    from .recorder import Recorder

log = logging.getLogger(__name__)
CHUNK_FILES = 64  # recordings per task at most: one round trip to a worker for many small files
CHUNK_BYTES = 4 << 20  # and no more input than this (about 2 min of 16 kHz WAV): long files alone
CHUNKS_AHEAD = 4  # the tail is cut finer so that every worker has a share of it
IDLE_WORKER_S = 300  # a reused pool's idle workers exit after this (a library's later runs)


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


def chunks(
    todo: Iterator[tuple[str, str, int]], total: int, settings: BatchSettings, flight: InFlight
) -> Iterator[list[Task]]:
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
        chunk.append(task_for(rel, path, settings))
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


def task_for(rel: str, path: str, settings: BatchSettings) -> Task:
    """Absolute paths: on a cluster, workers see the same storage but not our directory."""
    clips = str(clips_folder(settings.out.absolute(), rel)) if settings.clips else None
    return Task(rel, os.path.abspath(path), clips)


def parallel(chunks: Iterable[list[Task]], settings: BatchSettings) -> Iterator[list[TaskResult]]:
    """Each chunk's results as it finishes: in this process for one worker, else on the pool."""
    if settings.backend == "dask":
        yield from _on_dask(chunks, settings)
    elif settings.jobs == 1:
        yield from (segment_chunk(chunk, settings) for chunk in chunks)
    else:
        yield from _on_pool(chunks, settings)


def pool(settings: BatchSettings):
    """The loky pool of `jobs` workers a run uses (reused across a library's runs): forked by
    the fork server where it runs, each worker started by `worker.worker_start`."""
    from loky import get_reusable_executor
    from loky.backend.context import set_start_method

    set_start_method(forkserver.start_method(), force=True)
    return get_reusable_executor(
        max_workers=settings.jobs,
        timeout=IDLE_WORKER_S,
        initializer=worker_start,
        initargs=(os.getpid(),),
        env=dict.fromkeys(forkserver.THREAD_VARS, "1"),
    )


def _on_pool(chunks: Iterable[list[Task]], settings: BatchSettings) -> Iterator[list[TaskResult]]:
    """Chunks on a loky pool of `jobs` processes (forked by the fork server where it runs),
    one chunk in flight per worker: a dead worker loses only what it was running."""
    executor = pool(settings)
    try:
        yield from _windowed(
            lambda chunk: executor.submit(segment_chunk, chunk, settings), chunks, settings.jobs
        )
    except BaseException:  # a stop, a dead worker, the consumer gone: the workers with it
        executor.shutdown(wait=False, kill_workers=True)
        raise


def _on_dask(chunks: Iterable[list[Task]], settings: BatchSettings) -> Iterator[list[TaskResult]]:
    """Chunks on the Dask cluster through joblib: every thread of it, a few chunks queued each
    to hide the scheduler's round trips."""
    from joblib import Parallel, delayed, parallel_config

    feed = (delayed(segment_chunk)(chunk, settings) for chunk in chunks)
    with parallel_config(backend="dask"):
        runner = Parallel(
            n_jobs=-1, return_as="generator_unordered", batch_size=1, pre_dispatch="3*n_jobs"
        )
        yield from runner(feed)


def _windowed(
    submit: Callable[[list[Task]], Future], chunks: Iterable[list[Task]], ahead: int
) -> Iterator[list[TaskResult]]:
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


def isolate(suspects: list[Task], settings: BatchSettings, recorder: Recorder, reason: str):
    """Retry files that were on a worker when it died, one at a time, to find the one to blame:
    the one that kills its worker again is recorded as failed."""
    for task in suspects:
        try:
            recorder.flight.hand([task])
            for results in parallel([[task]], settings):
                recorder.add(results)
            recorder.flush()
        except worker_died_errors():
            recorder.flight.take()
            recorder.add([Failed(task.rel, f"worker process died while segmenting it ({reason})")])
            recorder.flush()
            log.error("%s: worker died", task.rel)
