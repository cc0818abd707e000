"""The `Manifest`: opening OUT/manifest.sqlite (made, checked, brought up to date), its
transactions, and each recording's row as a run writes it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .connection import connect, now
from .plan import Planning
from .schema import (
    GONE,
    UNWRITABLE,
    ManifestDamaged,
    ManifestNewer,
    ManifestUnwritable,
    check_columns,
    check_intact,
    check_version,
    upgrade,
)
from .stats import Reading

if TYPE_CHECKING:
    from ..records import DocumentStats


class Manifest(Planning, Reading):
    """Rows of the batch; open it with `Manifest.open(out)` (creates the folder and schema)."""

    def __init__(self, db: sqlite3.Connection, path: Path):
        self.db = db
        self.path = path

    @classmethod
    def open(cls, out: Path) -> Manifest:
        out.mkdir(parents=True, exist_ok=True)
        path = out / "manifest.sqlite"
        existed = path.exists()
        # shared with the thread joblib's Dask backend dispatches from, which reads the plan
        db = connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        check_intact(db, path, existed)
        try:
            # WAL, and FULL: each commit syncs the log, so a power cut never takes back a
            # `done` (NORMAL could); commits are grouped, so the sync is paid a few times a second
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            upgrade(db, path)
        except sqlite3.OperationalError as exc:
            db.close()
            if exc.sqlite_errorcode & 0xFF in UNWRITABLE:
                raise ManifestUnwritable(path, str(exc)) from None
            raise
        except (ManifestDamaged, ManifestNewer):
            db.close()
            raise
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
            db = connect(f"{uri}?mode=ro", uri=True, timeout=30)
            try:
                db.execute("SELECT COUNT(*) FROM files").fetchone()
            except sqlite3.OperationalError:
                db.close()
                db = None
            except sqlite3.DatabaseError:
                pass  # damaged: check_intact says so below
        db = db or connect(f"{uri}?immutable=1", uri=True)
        check_intact(db, path)
        try:
            check_version(db, path)
            check_columns(db, path)
        except (ManifestDamaged, ManifestNewer):
            db.close()
            raise
        return cls(db, path)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The block's writes in one commit (inside a caller's transaction, in that one)."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def config_settings(self, config: str) -> dict[str, Any] | None:
        """The settings recorded for a config hash (None: recorded before settings were kept)."""
        row = self.db.execute("SELECT settings FROM configs WHERE hash = ?", (config,)).fetchone()
        return json.loads(row[0]) if row else None

    def record_config(self, config: str, settings: dict[str, Any]) -> None:
        """Keep the settings of a config hash a run uses (once)."""
        self.db.execute(
            "INSERT OR IGNORE INTO configs (hash, settings, first_used) VALUES (?, ?, ?)",
            (config, json.dumps(settings, sort_keys=True), now()),
        )

    def mark_gone(self, rels: list[str]) -> None:
        """These recordings' inputs are no longer there: `gone`, their outputs and figures kept
        apart from the totals (a run finding the file again makes it done again)."""
        with self.transaction():
            self.db.executemany(
                f"UPDATE files SET status = '{GONE}' WHERE rel = ?", ((rel,) for rel in rels)
            )

    def forget(self, rel: str) -> None:
        """Remove a recording's row (its outputs are removed first: `gone.prune`)."""
        self.db.execute("DELETE FROM files WHERE rel = ?", (rel,))

    def _update(self, rel: str, **values: Any) -> None:
        columns = ", ".join(f"{k}=?" for k in values)
        self.db.execute(f"UPDATE files SET {columns} WHERE rel=?", (*values.values(), rel))

    def running(self, rel: str) -> None:
        self.db.execute(
            "UPDATE files SET status='running', attempts=attempts+1, started=?, error=NULL"
            " WHERE rel=?",
            (now(), rel),
        )

    def done(
        self, rel: str, stats: DocumentStats, seconds: float | None, outputs: list[str]
    ) -> None:
        """A recording finished: its document's figures (records.document_stats), the
        worker's seconds and its outputs."""
        self._update(
            rel,
            status="done",
            error=None,
            duration=stats.duration,
            speech=stats.speech,
            segments=stats.segments,
            seconds=seconds,
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
