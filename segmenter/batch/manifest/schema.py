"""The manifest's schema and its versions: the tables, the checks that a manifest is whole
and of a version this code knows, and the migrations that bring an older one up to date."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ...errors import EXIT_DAMAGED, EXIT_RUN_FAILED, SegmenterError
from .connection import name_value

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
GONE = "gone"  # status of a recording whose input is no longer where it was (batch/gone.py)


class ManifestDamaged(SegmenterError):
    """OUT/manifest.sqlite is not a whole SQLite database: says so, and how to rebuild it."""

    exit_code = EXIT_DAMAGED

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
    return name_value(os.path.abspath(path))


# version N -> the step that makes it N + 1
MIGRATIONS = {0: _from_unversioned, 1: _to_gone_and_configs}


class ManifestNewer(SegmenterError):
    """A manifest written by a newer segmenter: refused, not written to."""

    def __init__(self, path: Path, version: int):
        super().__init__(
            f"{path} has schema version {version}, newer than this segmenter's"
            f" ({SCHEMA_VERSION}): run the segmenter that wrote it (or a newer one), or another"
            " OUT"
        )


class ManifestUnwritable(SegmenterError):
    """OUT/manifest.sqlite (or its folder, where SQLite keeps its log) cannot be written."""

    exit_code = EXIT_RUN_FAILED

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
