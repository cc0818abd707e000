"""What the manifest says of a batch, for `status`, the report and the web page: its rows by
name and the counts, hours and failures of the whole. A mixin of `Manifest`."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from ..reasons import plain_reason
from .schema import GONE


@dataclass(frozen=True)
class FileRow:
    """One recording as the manifest has it, for reports and the web page."""

    rel: str
    path: str
    status: str
    attempts: int
    error: str | None
    duration: float | None  # seconds of audio, once done
    speech: float | None
    segments: int | None
    outputs: list[str]  # relative to OUT


class Reading:
    """Reading the whole manifest; `Manifest` provides the connection."""

    db: sqlite3.Connection

    def files(self, rel: str | None = None) -> list[FileRow]:
        """Every recording's row by name, or only the one named `rel`."""
        query = (
            "SELECT rel, path, status, attempts, error, duration, speech, segments, outputs"
            " FROM files" + (" WHERE rel = ?" if rel is not None else "") + " ORDER BY rel"
        )
        return [
            FileRow(*row[:8], json.loads(row["outputs"]) if row["outputs"] else [])
            for row in self.db.execute(query, () if rel is None else (rel,))
        ]

    def status(self) -> dict[str, Any]:
        """Counts by status, audio and speech hours of what is done, failures with reasons."""
        counts = dict(self.db.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))
        hours = self.db.execute(
            "SELECT COALESCE(SUM(duration), 0), COALESCE(SUM(speech), 0) FROM files"
            " WHERE status='done'"
        ).fetchone()
        failures = [  # the reason as a person reads it (batch/reasons.py); the row keeps it raw
            {
                "file": r["rel"],
                "error": plain_reason(r["error"], r["rel"], r["path"]),
                "attempts": r["attempts"],
            }
            for r in self.db.execute("SELECT * FROM files WHERE status='failed' ORDER BY rel")
        ]
        gone = [
            {"file": r["rel"], "path": r["path"]}
            for r in self.db.execute(f"SELECT * FROM files WHERE status='{GONE}' ORDER BY rel")
        ]
        statuses = ("done", "failed", "pending", "running", GONE)
        return {
            "counts": {s: counts.get(s, 0) for s in statuses},
            "audio_hours": round(hours[0] / 3600, 4),
            "speech_hours": round(hours[1] / 3600, 4),
            "failures": failures,
            "gone": gone,
        }
