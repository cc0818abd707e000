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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .discovery import Source, check_same_output
from .reasons import plain_reason

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    rel TEXT PRIMARY KEY,          -- output name under OUT (input path relative to its root)
    path TEXT NOT NULL,            -- absolute input path (version 1: as given)
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    fingerprint TEXT,              -- content hash of size, head and tail
    status TEXT NOT NULL,          -- pending, running, done, failed, gone (version 2)
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
# The result-changing settings of each config hash a run used, so that a run with other
# settings can say which changed (batch/changed.py). A table of its own (version 2): older
# manifests get it empty when opened for writing, and their earlier settings are unknown.
CONFIGS = """
CREATE TABLE IF NOT EXISTS configs (
    hash TEXT PRIMARY KEY,
    settings TEXT NOT NULL,        -- JSON of BatchSettings.result_config()
    first_used TEXT NOT NULL
)
"""
FINGERPRINT_BYTES = 1 << 16
GONE = "gone"  # status of a recording whose input is no longer where it was (batch/gone.py)

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


# -- schema versions: PRAGMA user_version --------------------------------------------------------
#
# SCHEMA is the table this code writes, version SCHEMA_VERSION. A manifest of an older version is
# brought up to it on open by MIGRATIONS, one step per version (a step gets the connection inside
# the open's transaction; to add a column: bump SCHEMA_VERSION, add the column to SCHEMA, and add
# the step `lambda db: db.execute("ALTER TABLE files ADD COLUMN ...")` under the old version).
# A newer manifest is refused, never written; `status` and `report` read an older one as it is.

SCHEMA_VERSION = 2
UNWRITABLE = (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)


def _from_unversioned(db: sqlite3.Connection) -> None:
    """Version 0, the manifests written before versions, has version 1's table as it is."""


def _to_gone_and_configs(db: sqlite3.Connection) -> None:
    """Version 1 -> 2: the `configs` table (which settings a config hash stands for, empty: a
    batch's earlier settings are unknown), and absolute input paths, which tell a recording
    whose input is gone (batch/gone.py) from one a run started elsewhere names differently.

    Version 1 kept an input path as it was given; a relative one is taken as relative to the
    folder this run started in (a nightly job starts in the same folder every night), which
    is where version 2 without this step would have looked for it too. Version 2 also adds
    the status `gone`, which a version 1 segmenter would not know (hence the new version:
    that segmenter refuses this manifest instead of misreading its rows). One UPDATE in SQL,
    so a manifest of millions of rows is never held in memory.
    """
    db.execute(CONFIGS)
    db.create_function("absolute", 1, _absolute, deterministic=True)
    db.execute("UPDATE files SET path = absolute(path) WHERE absolute(path) IS NOT path")


def _absolute(path: str | bytes) -> str | bytes:
    """`path` made absolute, as stored: a BLOB name (not UTF-8) stays bytes."""
    if isinstance(path, bytes):
        return path if os.path.isabs(path) else os.path.abspath(path)
    if os.path.isabs(path):
        return path
    return _name_value(os.path.abspath(path))


# version N -> the step that makes it N + 1
MIGRATIONS = {0: _from_unversioned, 1: _to_gone_and_configs}


class ManifestNewer(Exception):
    """A manifest written by a newer segmenter: refused, not written to."""

    def __init__(self, path: Path, version: int):
        super().__init__(
            f"{path} has schema version {version}, newer than this segmenter's"
            f" ({SCHEMA_VERSION}): run the segmenter that wrote it (or a newer one), or another"
            " OUT"
        )


class ManifestUnwritable(Exception):
    """OUT/manifest.sqlite (or its folder, where SQLite keeps its log) cannot be written."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"{path} cannot be written ({reason}): give this user write access to it and to"
            f" {path.parent} (its log goes beside it), or run into another OUT; `segmenter"
            f" status {path.parent}` still reads it"
        )


def upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Make a new manifest, or bring an older one to SCHEMA_VERSION, in one transaction; a
    newer one is refused, one whose table lacks what this code writes is damaged."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = check_version(db, path)
        if not _has_table(db):
            db.execute(SCHEMA)
            db.execute(CONFIGS)
        else:
            for step in range(version, SCHEMA_VERSION):
                MIGRATIONS[step](db)
        check_columns(db, path, SCHEMA_VERSION)
        # written every time: the first write of the run, so an unwritable manifest (a read-only
        # file, which SQLite opens read-only without a word) says so here, not mid-run
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def check_version(db: sqlite3.Connection, path: Path) -> int:
    """The manifest's schema version; ManifestNewer if this code does not know it."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ManifestNewer(path, version)
    return version


def _schema_columns(table: str, schema: str) -> tuple[str, ...]:
    """The columns of a schema's table, read from SQLite itself (the schema is their one
    source)."""
    with sqlite3.connect(":memory:") as db:
        db.execute(schema)
        return tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})"))


COLUMNS = _schema_columns("files", SCHEMA)
# each table this code reads and writes: (its columns, the version that added it)
TABLES = {"files": (COLUMNS, 0), "configs": (_schema_columns("configs", CONFIGS), 2)}


def check_columns(db: sqlite3.Connection, path: Path, version: int | None = None) -> None:
    """ManifestDamaged unless each table of the manifest's schema `version` (its own, read,
    when None) has every column this code reads and writes, and no other that a row cannot be
    written without (NOT NULL with no default): a column renamed, dropped or added by hand, or
    a table dropped, would otherwise fail every query with a traceback."""
    if not _has_table(db):
        return
    if version is None:
        version = db.execute("PRAGMA user_version").fetchone()[0]
    for table, (columns, since) in TABLES.items():
        if version >= since:
            _check_table(db, path, table, columns)


def _check_table(db: sqlite3.Connection, path: Path, table: str, columns: tuple[str, ...]) -> None:
    found = {row[1]: row for row in db.execute(f"PRAGMA table_info({table})")}
    if not found:
        raise ManifestDamaged(path, f"it lacks its {table} table")
    missing = [name for name in columns if name not in found]
    if missing:
        raise ManifestDamaged(path, f"its {table} table lacks the column(s) {', '.join(missing)}")
    required = [
        name
        for name, row in found.items()
        if name not in columns and row["notnull"] and row["dflt_value"] is None
    ]
    if required:
        raise ManifestDamaged(
            path,
            f"its {table} table has column(s) {', '.join(required)} this segmenter cannot fill",
        )


def _has_table(db: sqlite3.Connection) -> bool:
    """Whether the manifest's table of files is there."""
    return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone() is not None


class NamesConnection(sqlite3.Connection):
    """A connection that stores any name a filesystem holds.

    A name that is not valid UTF-8 reaches Python as a str with surrogate escapes (os.fsdecode),
    which sqlite3 refuses to bind: such a str goes in as the BLOB of its bytes instead, and
    comes out as the same str (`_row`). Valid names stay TEXT, as they always were, so a name
    is always stored one way and compares equal to itself in joins and lookups.
    """

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _bindable(parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return super().executemany(sql, (_bindable(p) for p in parameters))


def _bindable(parameters: Any) -> Any:
    """Query parameters with surrogate-escaped names as the bytes they stand for."""
    if isinstance(parameters, dict):
        return {key: _name_value(value) for key, value in parameters.items()}
    return tuple(_name_value(value) for value in parameters)


def _name_value(value: Any) -> Any:
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "surrogateescape")
    return value


def _row(cursor: sqlite3.Cursor, values: tuple) -> sqlite3.Row:
    """A row by name, its BLOB names back as the str (with surrogate escapes) they came from."""
    if any(isinstance(value, bytes) for value in values):
        values = tuple(
            v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else v for v in values
        )
    return sqlite3.Row(cursor, values)


def _text(data: bytes) -> str:
    """TEXT as str; bytes that are not UTF-8 (written by another program) escaped, not fatal."""
    return data.decode("utf-8", "surrogateescape")


def connect(target: str | Path, **options: Any) -> sqlite3.Connection:
    """A manifest connection: any name storable, rows by name."""
    db = sqlite3.connect(target, factory=NamesConnection, **options)
    db.row_factory = _row
    db.text_factory = _text
    return db


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
class Plan:
    """What a run has to do: recordings to process, and those already done."""

    todo: int
    skipped: int


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

    def unfinished(self) -> int:
        """How many of this run's planned files are still to do (pending, or running when the
        run stopped)."""
        return self.db.execute(
            "SELECT COUNT(*) FROM found f JOIN files r ON r.rel = f.rel"
            " WHERE f.todo AND r.status IN ('pending', 'running')"
        ).fetchone()[0]

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
