"""The `segmenter` command (also `python -m segmenter`): for `run`, the workers' fork server
starts before the command line's own imports, so that it is ready by the time files are
planned (batch/forkserver.py), and the finished run exits without tearing its interpreter down."""

import atexit
import os
import sys

_RAN: list[int] = []  # the exit code of a `run` that returned (not one that raised)


def main() -> int:
    """Run the command line on sys.argv."""
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        atexit.register(_exit_at_once)  # registered first: it runs after every other handler
        from .batch import forkserver

        forkserver.quiet_resource_tracker()  # before any child process starts
        forkserver.start_for(argv[1:])
    from .cli import main as cli_main

    code = cli_main(argv)
    _RAN.append(code)
    return code


def _exit_at_once() -> None:
    """End a returned `run` once the exit handlers have run (the pool's shutdown, logging's
    flush), skipping the interpreter's teardown (~0.05 s of a core with numpy and onnxruntime
    loaded): its outputs and manifest are synced and closed by then, as they must be to
    survive kill -9 (tests/test_faults.py)."""
    if _RAN:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_RAN[0])


if __name__ == "__main__":
    sys.exit(main())
