"""The batch manifest, OUT/manifest.sqlite: one row per recording, the source of truth for resume.

Only the coordinating process writes it. A recording is `done` only after its outputs are in
place, so a batch killed at any moment resumes without losing or redoing finished work.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .discovery import Source

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    rel TEXT PRIMARY KEY,          -- output name under OUT (input path relative to its root)
    path TEXT NOT NULL,            -- input path as given
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    fingerprint TEXT,              -- content hash of size, head and tail
    status TEXT NOT NULL,          -- pending, running, done, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    config TEXT,                   -- hash of the model and every result-changing option
    duration REAL,                 -- seconds of audio
    speech REAL,                   -- seconds of speech found
    segments INTEGER,
    started TEXT,
    finished TEXT,
    seconds REAL,                  -- processing time
    outputs TEXT                   -- JSON list of output paths relative to OUT
)
"""
FINGERPRINT_BYTES = 1 << 16


class LockedError(Exception):
    """Another run holds the output folder."""


class ManifestDamaged(Exception):
    """OUT/manifest.sqlite is not a whole SQLite database: says so, and how to rebuild it."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"{path} is damaged ({reason}); run the batch again with --rebuild-manifest"
            f" ('segmenter run INPUT... -o {path.parent} --rebuild-manifest') to rebuild it"
            " from the outputs on disk"
        )


def check_intact(db: sqlite3.Connection, path: Path, existed: bool = True) -> None:
    """Close `db` and raise ManifestDamaged unless SQLite's quick check passes (it reads every
    page once: milliseconds for thousands of rows). An existing manifest without its table in a
    folder of outputs (emptied) is damaged too: SQLite takes it for a new database, and the run
    would redo every finished file."""
    try:
        problems = [row[0] for row in db.execute("PRAGMA quick_check")]
        intact = problems == ["ok"]
        if intact and existed and not _has_table(db) and next(path.parent.rglob("*.json"), None):
            problems = ["empty, though the folder holds outputs"]
    except sqlite3.OperationalError:  # cannot read it now (a full disk, a lock): not damage
        db.close()
        raise
    except sqlite3.DatabaseError as exc:  # SQLITE_CORRUPT, SQLITE_NOTADB
        problems = [str(exc)]
    if problems != ["ok"]:
        db.close()
        raise ManifestDamaged(path, problems[0])


def _has_table(db: sqlite3.Connection) -> bool:
    """Whether the manifest's table of files is there."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone() is not None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fingerprint(path: Path, size: int) -> str:
    """blake2b of the size, the first and the last 64 KiB: cheap, and catches rewrites.

    Opened without blocking and refused unless a regular file: a FIFO named `x.wav` would
    otherwise wait for a writer forever, with OUT locked.
    """
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    with open(fd, "rb") as fh:
        digest.update(fh.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            fh.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(fh.read(FINGERPRINT_BYTES))
    return digest.hexdigest()


def config_hash(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


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


@dataclass(frozen=True)
class Planned:
    """A recording the run will process, with what the manifest knew of it."""

    source: Source
    fingerprint: str | None


class Manifest:
    """Rows of the batch; open it with `Manifest.open(out)` (creates the folder and schema)."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self.db = db
        self.path = path

    @classmethod
    def open(cls, out: Path) -> Manifest:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "manifest.sqlite"
        existed = path.exists()
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
        db.row_factory = sqlite3.Row
        check_intact(db, path, existed)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(SCHEMA)
        return cls(db, path)

    @classmethod
    def open_readonly(cls, out: Path) -> Manifest:
        """An existing manifest, read only: it writes nothing, so it works on a read-only share.

        Without a `-wal` file no connection is open, and a WAL-mode writer that starts would
        write to a new `-wal` first, so the file is read as immutable and nothing is created
        beside it. With one, SQLite's read-only mode reads the log too; it needs the `-shm`
        index, and where that cannot be made the file is read as immutable after all.
        """
        path = out / "manifest.sqlite"
        if not path.is_file():
            raise FileNotFoundError(f"{out}: no manifest.sqlite (not a segmenter output folder)")
        uri = path.absolute().as_uri()
        db = None
        if path.with_name(path.name + "-wal").exists():
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=30)
            try:
                db.execute("SELECT COUNT(*) FROM files").fetchone()
            except sqlite3.OperationalError:
                db.close()
                db = None
            except sqlite3.DatabaseError:
                pass  # damaged: check_intact says so below
        db = db or sqlite3.connect(f"{uri}?immutable=1", uri=True)
        db.row_factory = sqlite3.Row
        check_intact(db, path)
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

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

    def plan(
        self, sources: list[Source], config: str, retry_failed: bool, force: bool
    ) -> tuple[list[Planned], int]:
        """What to process of the discovered recordings; also how many are already done."""
        rows = {r["rel"]: r for r in self.db.execute("SELECT * FROM files")}
        todo, done = [], 0
        for src in sources:
            row = rows.get(src.rel)
            changed = row is None or (row["size"], row["mtime"]) != (src.size, src.mtime)
            fp = _safe_fingerprint(src) if changed else row["fingerprint"]
            same_content = row is not None and fp is not None and fp == row["fingerprint"]
            current = row is not None and same_content and row["config"] == config
            if not force and current and row["status"] == "done":
                done += 1
                if changed:  # touched, not rewritten: remember the new mtime
                    self._update(src.rel, mtime=src.mtime, path=str(src.path))
                continue
            if not force and current and row["status"] == "failed" and not retry_failed:
                continue
            todo.append(Planned(src, fp))
            self._upsert_pending(src, fp, config)
        return todo, done

    def _upsert_pending(self, src: Source, fp: str | None, config: str) -> None:
        self.db.execute(
            "INSERT INTO files (rel, path, size, mtime, fingerprint, status, config)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT(rel) DO UPDATE SET"
            " path=excluded.path, size=excluded.size, mtime=excluded.mtime,"
            " fingerprint=excluded.fingerprint, status='pending', config=excluded.config",
            (src.rel, str(src.path), src.size, src.mtime, fp, config),
        )

    def _update(self, rel: str, **values: Any) -> None:
        columns = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE files SET {columns} WHERE rel=?", (*values.values(), rel))

    def running(self, rel: str) -> None:
        self.db.execute(
            "UPDATE files SET status='running', attempts=attempts+1, started=?, error=NULL"
            " WHERE rel=?",
            (now(), rel),
        )

    def done(self, rel: str, result: dict[str, Any], outputs: list[str]) -> None:
        self._update(
            rel,
            status="done",
            error=None,
            duration=result["duration"],
            speech=result["speech"],
            segments=result["segments"],
            seconds=result["seconds"],
            finished=now(),
            outputs=json.dumps(outputs),
        )

    def failed(self, rel: str, error: str, seconds: float | None = None) -> None:
        self._update(rel, status="failed", error=error, finished=now(), seconds=seconds)

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Add rows of finished recordings in one transaction (a manifest rebuilt from outputs)."""
        self.db.execute("BEGIN")
        for values in rows:
            marks = ", ".join("?" * len(values))
            self.db.execute(
                f"INSERT OR REPLACE INTO files ({', '.join(values)}) VALUES ({marks})",
                tuple(values.values()),
            )
        self.db.execute("COMMIT")

    def redo(self, rel: str, reason: str) -> None:
        """Leave a file to do, saying why (its input changed while it was read)."""
        self._update(rel, status="pending", error=reason, finished=now())

    def source(self, rel: str) -> dict[str, Any]:
        """What the run planned from: the input's path, size, mtime, fingerprint and config."""
        row = self.db.execute(
            "SELECT rel, path, size, mtime, fingerprint, config FROM files WHERE rel=?", (rel,)
        ).fetchone()
        return dict(row)

    def unfinished(self, rels: set[str]) -> int:
        """How many of `rels` are still to do (pending, or running when the run stopped)."""
        rows = self.db.execute("SELECT rel FROM files WHERE status IN ('pending', 'running')")
        return sum(row["rel"] in rels for row in rows)

    def status(self) -> dict[str, Any]:
        """Counts by status, audio and speech hours of what is done, failures with reasons."""
        counts = dict(self.db.execute("SELECT status, COUNT(*) FROM files GROUP BY status"))
        hours = self.db.execute(
            "SELECT COALESCE(SUM(duration), 0), COALESCE(SUM(speech), 0) FROM files"
            " WHERE status='done'"
        ).fetchone()
        failures = [
            {"file": r["rel"], "error": r["error"], "attempts": r["attempts"]}
            for r in self.db.execute("SELECT * FROM files WHERE status='failed' ORDER BY rel")
        ]
        return {
            "counts": {s: counts.get(s, 0) for s in ("done", "failed", "pending", "running")},
            "audio_hours": round(hours[0] / 3600, 4),
            "speech_hours": round(hours[1] / 3600, 4),
            "failures": failures,
        }


def _safe_fingerprint(src: Source) -> str | None:
    try:
        return fingerprint(src.path, src.size)
    except OSError:
        return None


class OutputLock:
    """An exclusive lock on OUT for the length of a run; the OS drops it if the process dies."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / ".segmenter.lock"
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise LockedError(f"{self.path.parent} is in use by another segmenter run") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)
