"""Planning a run in SQL: this run's recordings in a temporary table (`found`), compared with
the manifest's rows to decide what to do, then streamed largest first; the queries that ask
about this run's recordings. A mixin of `Manifest`, on its connection."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..discovery import Source, check_same_output
from .fingerprint import fingerprint
from .schema import GONE

# This run's recordings, in the connection's temporary database: planned and dispatched in SQL,
# so a tree of millions is never held in memory.
FOUND = """
CREATE TEMP TABLE found (
    rel TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    other TEXT,                    -- a second input with the same output name, to check
    todo INTEGER NOT NULL DEFAULT 0
)
"""
# A recording the manifest settles without a look at the file: unchanged, same settings, and done
# (or failed and not retried). NULL when there is no row, hence the COALESCE where it is used.
SETTLED = """COALESCE(r.size = f.size AND r.mtime = f.mtime AND r.fingerprint IS NOT NULL
    AND r.config = :config AND NOT :force
    AND (r.status = 'done' OR (r.status = 'failed' AND NOT :retry)), 0)"""
PAGE = 2000  # rows of the plan looked at per query


@dataclass(frozen=True)
class Plan:
    """What a run has to do: recordings to process, and those already done."""

    todo: int
    skipped: int


class Planning:
    """The plan's queries; `Manifest` provides the connection, `transaction`, `_update` and
    `failed`."""

    db: sqlite3.Connection

    def plan(
        self,
        sources: Iterable[Source],
        config: str,
        retry_failed: bool,
        force: bool,
        before: Callable[[], None] | None = None,
    ) -> Plan:
        """Decide which recordings to process; `todo()` then streams them.

        The recordings go to a temporary table and are compared with the manifest in SQL, so
        a finished batch is recognised in a few queries; only new or changed files (and those
        to redo) are looked at one by one, a page at a time. `before` runs once the walk is
        in the table and before any row is written (it may refuse the run by raising).
        """
        self._load(sources)
        if before is not None:
            before()
        params = {"config": config, "force": force, "retry": retry_failed}
        skipped = self.db.execute(
            f"SELECT COUNT(*) FROM found f JOIN files r ON r.rel = f.rel"
            f" WHERE {SETTLED} AND r.status = 'done'",
            params,
        ).fetchone()[0]
        todo = 0
        with self.transaction():
            for row in self._unsettled(params):
                decision = self._decide(row, config, retry_failed, force)
                skipped += decision == "done"
                todo += decision == "todo"
        return Plan(todo, skipped)

    def _load(self, sources: Iterable[Source]) -> None:
        """This run's recordings into the `found` table; one name from two files is refused."""
        self.db.execute("DROP TABLE IF EXISTS temp.found")
        self.db.execute(FOUND)
        with self.transaction():
            self.db.executemany(
                "INSERT INTO found (rel, path, size, mtime) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(rel) DO UPDATE SET other = excluded.path",
                # absolute, so that a later run from another folder can tell where it was
                ((s.rel, os.path.abspath(s.path), s.size, s.mtime) for s in sources),
            )
        twice = "SELECT rel, path, other FROM found WHERE other IS NOT NULL"
        for rel, path, other in self.db.execute(twice).fetchall():
            check_same_output(Path(path), Path(other), rel)

    def _unsettled(self, params: dict[str, Any]) -> Iterator[sqlite3.Row]:
        """Recordings the manifest does not settle, page by page (each read before any write)."""
        query = (
            "SELECT f.rel, f.path, f.size, f.mtime, r.size AS known_size,"
            " r.mtime AS known_mtime, r.fingerprint, r.config, r.status"
            f" FROM found f LEFT JOIN files r ON r.rel = f.rel WHERE f.rel > :after"
            f" AND NOT {SETTLED} ORDER BY f.rel LIMIT {PAGE}"
        )
        after = ""
        while page := self.db.execute(query, {**params, "after": after}).fetchall():
            yield from page
            after = page[-1]["rel"]

    def _decide(self, row: sqlite3.Row, config: str, retry_failed: bool, force: bool) -> str:
        """ "done", "skip" (failed, not retried) or "todo" (then pending) for one recording."""
        src = Source(Path(row["path"]), row["rel"], row["size"], row["mtime"])
        known = row["status"] is not None
        changed = not known or (row["known_size"], row["known_mtime"]) != (src.size, src.mtime)
        fp = _safe_fingerprint(src) if changed else row["fingerprint"]
        current = known and fp is not None and fp == row["fingerprint"] and row["config"] == config
        if not force and current and row["status"] in ("done", GONE):
            if changed or row["status"] == GONE:  # touched, not rewritten; or back again
                self._update(src.rel, mtime=src.mtime, path=str(src.path), status="done")
            return "done"
        if not force and current and row["status"] == "failed" and not retry_failed:
            return "skip"
        self._upsert_pending(src, fp, config)
        self.db.execute("UPDATE found SET todo = 1 WHERE rel = ?", (src.rel,))
        return "todo"

    def todo(self) -> Iterator[tuple[str, str, int]]:
        """(rel, path, size) of what the plan left to do, largest first, read a page at a time.

        The order is made once into a queue table; no statement stays open between pages,
        because one would keep SQLite from checkpointing the log, which would grow all run.
        """
        self.db.execute("DROP TABLE IF EXISTS temp.queue")
        self.db.execute(
            "CREATE TEMP TABLE queue AS"
            " SELECT rel, path, size FROM found WHERE todo ORDER BY size DESC, rel"
        )
        return self._queue()

    def _queue(self) -> Iterator[tuple[str, str, int]]:
        query = "SELECT rowid, rel, path, size FROM queue WHERE rowid > ? ORDER BY rowid LIMIT ?"
        after = 0
        while page := self.db.execute(query, (after, PAGE)).fetchall():
            yield from (tuple(row)[1:] for row in page)
            after = page[-1][0]

    def failures_found(self, limit: int) -> tuple[int, list[tuple[str, str, str | None]]]:
        """How many of this run's recordings are failed; the first `limit` (rel, path, error)."""
        joined = "FROM files r JOIN found f ON f.rel = r.rel WHERE r.status = 'failed'"
        count = self.db.execute(f"SELECT COUNT(*) {joined}").fetchone()[0]
        rows = self.db.execute(
            f"SELECT r.rel, f.path, r.error {joined} ORDER BY r.rel LIMIT ?", (limit,)
        )
        return count, [tuple(row) for row in rows]

    def other_configs(self, config: str) -> list[tuple[str, int]]:
        """(config hash, count) of this run's recordings done with settings other than
        `config` (what a plan would redo), the most common first."""
        return [
            tuple(row)
            for row in self.db.execute(
                "SELECT r.config, COUNT(*) FROM found f JOIN files r ON r.rel = f.rel"
                " WHERE r.status = 'done' AND r.config IS NOT :config"
                " GROUP BY r.config ORDER BY COUNT(*) DESC, r.config",
                {"config": config},
            )
        ]

    def unfound(self) -> Iterator[tuple[str, str]]:
        """(rel, path) of every recording in the manifest that this run's walk did not find,
        a page at a time (an index lookup per row: a finished batch costs milliseconds)."""
        query = (
            "SELECT rel, path FROM files r WHERE rel > ? AND NOT EXISTS"
            f" (SELECT 1 FROM found f WHERE f.rel = r.rel) ORDER BY rel LIMIT {PAGE}"
        )
        after = ""
        while page := self.db.execute(query, (after,)).fetchall():
            yield from (tuple(row) for row in page)
            after = page[-1][0]

    def found_matching(self, pattern: str) -> list[str]:
        """This run's recordings whose name matches a GLOB `pattern` (layout checks)."""
        query = "SELECT rel FROM found WHERE rel GLOB ? ORDER BY rel"
        return [row[0] for row in self.db.execute(query, (pattern,))]

    def found_todo(self, rel: str) -> bool | None:
        """Whether this run's plan has `rel` to do; None if the run did not find it."""
        row = self.db.execute("SELECT todo FROM found WHERE rel = ?", (rel,)).fetchone()
        return None if row is None else bool(row[0])

    def set_aside(self, rel: str, reason: str) -> None:
        """Fail a recording of the plan before it is handed out, saying why."""
        with self.transaction():
            self.failed(rel, reason)
            self.db.execute("UPDATE found SET todo = 0 WHERE rel = ?", (rel,))

    def _upsert_pending(self, src: Source, fp: str | None, config: str) -> None:
        self.db.execute(
            "INSERT INTO files (rel, path, size, mtime, fingerprint, status, config)"
            " VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT(rel) DO UPDATE SET"
            " path=excluded.path, size=excluded.size, mtime=excluded.mtime,"
            " fingerprint=excluded.fingerprint, status='pending', config=excluded.config",
            (src.rel, str(src.path), src.size, src.mtime, fp, config),
        )

    def unfinished(self) -> int:
        """How many of this run's planned files are still to do (pending, or running when the
        run stopped)."""
        return self.db.execute(
            "SELECT COUNT(*) FROM found f JOIN files r ON r.rel = f.rel"
            " WHERE f.todo AND r.status IN ('pending', 'running')"
        ).fetchone()[0]


def _safe_fingerprint(src: Source) -> str | None:
    try:
        return fingerprint(src.path, src.size)
    except OSError:
        return None
