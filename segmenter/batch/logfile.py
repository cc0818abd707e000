"""OUT/segmenter.log: one line per record, kept quiet where OUT cannot take a line."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from ..names import shown


class LogFile(logging.FileHandler):
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


class OneLine(logging.Formatter):
    """Each record one line: a name's newline or control characters cannot forge another."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return shown(super().formatMessage(record))


def log_to(path: Path) -> logging.Handler:
    handler = LogFile(path, encoding="utf-8", errors="backslashreplace")
    handler.setFormatter(OneLine("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("segmenter")
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    return handler
