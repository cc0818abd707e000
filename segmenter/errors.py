"""The errors a user can cause, and the exit code each means.

Every such error is a `SegmenterError` carrying its exit code (the `exit_code` class attribute):
`cli.main` prints its one line and exits with that code, and lets anything else (a bug) show its
traceback. The codes are defined here, once; `cli.EXIT_CODES` is the table `--help` prints of
them. The errors stay in the modules that raise them, subclassing `SegmenterError` beside
the built-in base their callers catch (`ValueError` for a setting, `OSError` for a write).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # some files failed (and a single file's audio or model error)
EXIT_USAGE = 2  # a bad setting, input or output named on the command line
EXIT_LOCKED = 3  # OUT is in use by another run
EXIT_DISK_FULL = 4  # OUT's disk is full: free space and run again
EXIT_DAMAGED = 5  # the manifest is damaged: --rebuild-manifest
EXIT_RUN_FAILED = 6  # a run stopped by an error that is no one file's (OUT unwritable, ...)
EXIT_SETTINGS_CHANGED = 7  # settings differ from the batch's, nobody said redo: nothing done
EXIT_INTERRUPTED = 130  # SIGINT (143 for SIGTERM is the signal's own)


class SegmenterError(Exception):
    """An error a user can cause (a bad setting, file or folder), said in one line; its
    `exit_code` is what the command exits with."""

    exit_code: int = EXIT_USAGE


class UsageError(SegmenterError):
    """Bad settings: exit code 2."""


class RunFailed(SegmenterError):
    """A run stopped by an error that is no one file's: EXIT_RUN_FAILED."""

    exit_code = EXIT_RUN_FAILED
