"""Batch workers forked from a process that has already imported what they run.

A loky worker started the usual way is a fresh interpreter that imports numpy, loky, soundfile,
onnxruntime and segmenter before its first file: about 0.4 s of a core each, which on a short
batch is a large part of the run. `segmenter run` instead starts multiprocessing's fork server
first thing (before the command line's own imports: `segmenter/__main__.py`): it imports the
workers' modules once, on the other core, while the coordinator imports, walks and plans; each
worker is then a fork of it, ready in milliseconds and sharing those pages. The fork server is
single-threaded when it forks (one BLAS thread, onnxruntime imported without its telemetry
thread, no model loaded: each worker loads its own after the fork), and it ignores SIGTERM and
SIGINT as the workers do: stopping is the coordinator's decision.

It preloads the worker side only (batch/worker.py), never the coordinator's modules.
Only the command uses it: a script calling `runner.run` keeps loky's own start (the fork server
re-imports the main module, which a script without a main guard would run again).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing import forkserver

from .pool import choose_workers

# what a worker imports before its first file: loky's worker loop, our worker side and the
# engine; "__main__" (the `segmenter` script) too, so that a worker does not import it again;
# last, the server's own garbage-collector freeze and quick exit
PRELOAD = [
    "__main__",
    "loky.process_executor",
    "segmenter.batch.worker",
    "segmenter.vad",
    "threadpoolctl",
    "segmenter.batch.in_fork_server",
]


def preload() -> list[str]:
    """PRELOAD, with onnxruntime before the last where its telemetry is off (segmenter's
    __init__ sees to it unless the user chose otherwise): only then does its import start no
    thread, and a process with threads must not fork."""
    if os.environ.get("ORT_DISABLE_TELEMETRY") != "1":
        return PRELOAD
    return [*PRELOAD[:-1], "onnxruntime", PRELOAD[-1]]


# one BLAS/OpenMP thread in the fork server and its workers (what loky sets for its workers)
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
_STATE = {"started": False}
# After a kill -9 of the coordinator, multiprocessing's resource tracker (the child process that
# frees the semaphores of the pool's queues when their owner is gone) frees them, its job, and
# warns that it found "leaked semaphore objects": in a cron log, a UserWarning and a source line
# about nothing the user can or need do. The child processes of `segmenter run` inherit this
# filter from the environment (the tracker is a fresh interpreter started from it).
TRACKER_WARNINGS = "ignore::UserWarning:multiprocessing.resource_tracker"


def quiet_resource_tracker() -> None:
    """Add the tracker's filter to PYTHONWARNINGS (kept: what the user set there)."""
    current = os.environ.get("PYTHONWARNINGS", "")
    if TRACKER_WARNINGS not in current.split(","):
        os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [current, TRACKER_WARNINGS]))


def start_for(argv: list[str]) -> bool:
    """Start the fork server if these `segmenter run` arguments will want two or more loky
    workers (judged before parsing: no `--jobs 1`, Dask or scheduler, and two cores and the
    memory for two workers); whether it started."""
    if _given(argv, "--jobs", "-j") == "1" or _given(argv, "--backend") not in (None, "loky"):
        return False
    if _given(argv, "--scheduler") is not None:
        return False
    if choose_workers("fusion", "onnx").workers < 2:  # the heaviest onnxruntime worker
        return False
    try:
        start()
    except OSError:  # no Unix socket or no process to spare: loky starts the workers itself
        return False
    return True


def _given(argv: list[str], *names: str) -> str | None:
    """The value given to option `names` in `argv` (`--name VALUE`, `--name=VALUE`, `-jN`)."""
    for i, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name in names:
            return value if equals else (argv[i + 1] if i + 1 < len(argv) else "")
        short = [n for n in names if len(n) == 2 and arg.startswith(n) and len(arg) > 2]
        if short:
            return arg[2:]
    return None


def start() -> None:
    """Launch the fork server (once), its imports done, with one BLAS thread and stop signals
    ignored (both are inherited by the workers it forks)."""
    if _STATE["started"]:
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload())
    saved = {name: os.environ.get(name) for name in THREAD_VARS}
    os.environ.update(dict.fromkeys(THREAD_VARS, "1"))
    term = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # SIGINT it ignores by itself
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGTERM, term)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value
    _STATE["started"] = True


def start_method() -> str | None:
    """loky's start method for this run's workers: the fork server's if it runs, else loky's."""
    return "forkserver" if _STATE["started"] else None


def stop() -> None:
    """Stop a fork server that this run turned out not to need (one worker, or Dask)."""
    if _STATE["started"]:
        getattr(forkserver._forkserver, "_stop", lambda: None)()
        _STATE["started"] = False
