"""OUT/report.html: one self-contained page on a batch (no server, no network, no script).

Totals, failures with their reasons, and a row per recording with its speech share and a
timeline strip (inline SVG), so a team can open it from a file share. The manifest is opened
read-only and each strip comes from the recording's JSON (or RTTM) output.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__
from ..batch.manifest import FileRow, Manifest
from ..names import shown
from ..segments import read_output
from ..writers import write_text
from .timeline import clock, strip_svg

REPORT_NAME = "report.html"

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;
color:#1d2733}
h1{font-size:1.5em;margin:0}h2{font-size:1.15em;margin:1.5em 0 .4em}
.meta{color:#667;margin:.2em 0 1em}
.totals{display:flex;flex-wrap:wrap;gap:.6em}
.totals div{background:#f3f5f8;border-radius:6px;padding:.5em .9em;min-width:7em}
.totals b{display:block;font-size:1.4em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:2px 8px;border-bottom:1px solid #e4e7eb;vertical-align:middle}
th{background:#f3f5f8;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{overflow-wrap:anywhere;min-width:10em}td.tl{width:45%}
.strip{display:block;width:100%;height:14px;background:#e9edf2}
.failed{color:#a4161a}.todo{color:#8a6d00}
"""


@dataclass(frozen=True)
class Batch:
    """What the report shows of an output folder."""

    out: Path
    status: dict
    files: list[FileRow]


def read_batch(out: Path) -> Batch:
    """The manifest's totals and rows, read-only."""
    manifest = Manifest.open_readonly(out)
    try:
        return Batch(out, manifest.status(), manifest.files())
    finally:
        manifest.close()


def read_file_row(out: Path, rel: str) -> FileRow | None:
    """One recording's manifest row, read-only, without the batch's totals."""
    manifest = Manifest.open_readonly(out)
    try:
        return next(iter(manifest.files(rel)), None)
    finally:
        manifest.close()


def speech_spans(out: Path, row: FileRow) -> list[tuple[float, float]] | None:
    """A finished recording's segments in seconds, from its JSON or else its RTTM output."""
    for suffix in (".json", ".rttm"):
        name = row.rel + suffix
        if name in row.outputs:
            try:
                return read_output(out / name)
            except (OSError, ValueError, KeyError):
                return None
    return None


def write_report(out: Path, target: Path | None = None) -> Path:
    """Write the report of output folder `out` (default OUT/report.html) atomically."""
    target = target or out / REPORT_NAME
    write_text(target, render(read_batch(out)))
    return target


def render(batch: Batch) -> str:
    """The whole page."""
    name = html.escape(batch.out.absolute().name or str(batch.out))
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width,initial-scale=1">',
            f"<title>segmenter report: {name}</title><style>{CSS}</style></head><body>",
            f"<h1>segmenter report: {name}</h1>",
            f'<p class="meta">{html.escape(str(batch.out))} &middot; {written}'
            f" &middot; segmenter {__version__}</p>",
            _totals(batch.status),
            _failures(batch.status["failures"]),
            _files(batch),
            "</body></html>\n",
        ]
    )


def _totals(status: dict) -> str:
    counts = status["counts"]
    audio, speech = status["audio_hours"], status["speech_hours"]
    share = f"{100 * speech / audio:.0f}%" if audio else "-"
    cards = [
        (counts["done"], "files done"),
        (counts["failed"], "failed"),
        (counts["pending"] + counts["running"], "to do"),
        *([(counts["gone"], "gone")] if counts.get("gone") else []),
        (hours(audio), "of audio"),
        (hours(speech), "of speech"),
        (share, "speech share"),
    ]
    body = "".join(f"<div><b>{value}</b>{label}</div>" for value, label in cards)
    return f'<section class="totals" id="totals">{body}</section>'


def hours(value: float) -> str:
    """Hours as such from one hour up, below that as a clock."""
    return f"{value:,.1f} h" if value >= 1 else clock(value * 3600)


def _failures(failures: list[dict]) -> str:
    if not failures:
        return '<h2>Failures</h2><p id="failures">None.</p>'
    rows = "".join(
        f'<tr><td class="name">{html.escape(shown(f["file"]))}</td>'
        f'<td class="failed">{html.escape(shown(f["error"] or ""))}</td>'
        f'<td class="n">{f["attempts"]}</td></tr>'
        for f in failures
    )
    return (
        f"<h2>Failures ({len(failures)})</h2>"
        '<table id="failures"><thead><tr><th>file</th><th>reason</th><th>attempts</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _files(batch: Batch) -> str:
    rows = "".join(_file_row(batch.out, row) for row in batch.files)
    return (
        f"<h2>Files ({len(batch.files)})</h2>"
        '<table id="files"><thead><tr><th>file</th><th>status</th><th>audio</th>'
        "<th>speech</th><th>share</th><th>segments</th><th>timeline</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _file_row(out: Path, row: FileRow) -> str:
    name = html.escape(shown(row.rel))
    if row.status != "done":
        label = "failed" if row.status == "failed" else "todo"
        why = html.escape(shown(row.error or "")) if row.status == "failed" else "not processed yet"
        if row.status == "gone":  # batch/gone.py
            why = "its input is no longer there (moved or deleted); not in the totals"
        return (
            f'<tr><td class="name">{name}</td><td class="{label}">{row.status}</td>'
            f'<td colspan="4"></td><td class="{label}">{why}</td></tr>'
        )
    spans = speech_spans(out, row)
    duration, speech = row.duration or 0.0, row.speech or 0.0
    share = f"{100 * speech / duration:.0f}%" if duration else "-"
    title = f"{shown(row.rel)}: {row.segments} segments, {clock(speech)} of {clock(duration)}"
    timeline = strip_svg(duration, spans, title) if spans is not None else "no JSON or RTTM"
    return (
        f'<tr><td class="name">{name}</td><td>done</td><td class="n">{clock(duration)}</td>'
        f'<td class="n">{clock(speech)}</td><td class="n">{share}</td>'
        f'<td class="n">{row.segments}</td><td class="tl">{timeline}</td></tr>'
    )
