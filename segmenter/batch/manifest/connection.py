"""A connection to the manifest that stores any name a filesystem holds, rows by name."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


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
        return {key: name_value(value) for key, value in parameters.items()}
    return tuple(name_value(value) for value in parameters)


def name_value(value: Any) -> Any:
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
