"""The lines a batch run prints for its user: its notes on stderr and its summary on stdout.

At a terminal they are printed as they are. Anywhere else (a cron log, a file, a pipe) each
starts with the local date and time, as `OUT/segmenter.log` lines do, so a log that collects
many nights' runs says which night a line belongs to. Every line is one printable line
(names.shown): a name or a reason in it cannot forge another line or hide what it says.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from ..names import shown


def stamped(line: str, stream: TextIO) -> str:
    """`line` as one printable line (names.shown), after the local date and time unless
    `stream` is a terminal."""
    line = shown(line)
    if stream.isatty():
        return line
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}"


def note(line: str) -> None:
    """A note of the run on stderr: `segmenter: line`."""
    print(stamped(f"segmenter: {line}", sys.stderr), file=sys.stderr, flush=True)


def summary(lines: list[str]) -> None:
    """The run's summary lines on stdout."""
    print("\n".join(stamped(line, sys.stdout) for line in lines), flush=True)
