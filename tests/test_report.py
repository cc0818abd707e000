"""report.html: what it shows of a batch, that it needs nothing beside it, and that a read-only
output folder (a file share) is enough to write it elsewhere."""

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from segmenter.batch.manifest import Manifest
from segmenter.views.timeline import clock, strip_svg, tick_step

from .conftest import BATCH_SAMPLES, SEGMENTER


def strips(page: str) -> dict[str, str]:
    """File name -> the path data of its timeline strip."""
    rows = re.findall(r'<tr><td class="name">([^<]+)</td>(.*?)</tr>', page)
    found = {}
    for name, cells in rows:
        match = re.search(r'<svg class="strip".*?<path [^>]*d="([^"]*)"', cells)
        if match:
            found[name] = match.group(1)
    return found


def test_run_report_shows_totals_failures_and_a_strip_per_file(batch_out):
    page = (batch_out / "report.html").read_text()
    found = strips(page)
    assert sorted(found) == sorted(BATCH_SAMPLES)
    for name, path in found.items():
        segments = json.loads((batch_out / f"{name}.json").read_text())["segments"]
        assert path.count("h") == len(segments) > 0  # segments seconds apart never merge
    totals = dict(re.findall(r"<div><b>([^<]+)</b>([^<]+)</div>", page)[:3])
    assert totals == {"2": "files done", "1": "failed", "0": "to do"}
    failures = page[page.index('<table id="failures">') : page.index('<table id="files">')]
    assert "broken.wav" in failures and "not audio (a text file)" in failures


def test_report_is_self_contained(batch_out):
    page = (batch_out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    for outside in ("<script", "<link", "src=", "href=", "url(", "@import", "http://", "https://"):
        assert outside not in page, outside


def test_strip_geometry():
    # 10 s across 1000 units: 0-5 s is 0-500, then 250 on, 7.5-10 s is 750-1000
    assert 'd="M0 .5h500m250 0h250"' in strip_svg(10.0, [(0, 5), (7.5, 10)])
    # spans that touch once rounded to units are one run; an instant is one unit wide
    assert 'd="M100 .5h200"' in strip_svg(10.0, [(1.0, 2.0), (2.004, 3.0)])
    assert 'd="M100 .5h100m1 0h99"' in strip_svg(10.0, [(1.0, 2.0), (2.006, 3.0)])  # 201-300
    assert 'd="M500 .5h1"' in strip_svg(10.0, [(5.0, 5.0)])
    assert 'd="M999 .5h1"' in strip_svg(10.0, [(10.0, 10.5)])  # kept inside the bar
    assert 'd="M0 .5h300"' in strip_svg(10.0, [(0.0, 2.0), (1.0, 3.0), (1.5, 2.5)])  # overlaps
    assert 'd=""' in strip_svg(10.0, []) and 'd=""' in strip_svg(0.0, [(0, 1)])
    assert "<title>a &lt;b&gt;</title>" in strip_svg(1.0, [], "a <b>")


def test_clock_and_ticks():
    assert [clock(s) for s in (0, 2.5, 12, 65, 3723)] == ["0 s", "2.5 s", "12 s", "1:05", "1:02:03"]
    assert tick_step(20) == 2 and tick_step(3600) == 600 and tick_step(0.5) == 0.1


def readonly(folder: Path, *cmd: str) -> subprocess.CompletedProcess:
    """Run `cmd` with `folder` mounted read-only (a private mount namespace), as on a share."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed for a read-only mount")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" && shift && exec "$@"'
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.decode().strip()}")
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(folder), *cmd],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_report_of_a_read_only_folder(batch_out, tmp_path):
    share = tmp_path / "share"
    shutil.copytree(batch_out, share)
    (share / "report.html").unlink()
    target = tmp_path / "elsewhere" / "report.html"
    done = readonly(share, SEGMENTER, "report", str(share), "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert sorted(strips(target.read_text())) == sorted(BATCH_SAMPLES)
    refused = readonly(share, SEGMENTER, "report", str(share))
    assert refused.returncode == 2
    assert "cannot write there" in refused.stderr and "-o FILE" in refused.stderr
    assert not (share / "report.html").exists()


def test_report_to_a_bad_place_is_one_line_naming_it(batch_out, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for target, reason in (
        (a_file / "report.html", f"{a_file} is a file, not a folder"),
        (tmp_path, "is a folder"),
    ):
        done = subprocess.run(
            [SEGMENTER, "report", str(batch_out), "-o", str(target)], capture_output=True, text=True
        )
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr == f"segmenter: cannot write {target}: {reason}\n"
    share = tmp_path / "share"
    share.mkdir()
    done = readonly(share, SEGMENTER, "report", str(batch_out), "-o", str(share / "r.html"))
    assert done.returncode == 2
    assert done.stderr == f"segmenter: cannot write {share / 'r.html'}: Read-only file system\n"


def test_report_leaves_nothing_beside_the_manifest(batch_out, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(batch_out, folder)
    before = sorted(p.name for p in folder.iterdir())
    done = subprocess.run([SEGMENTER, "report", str(folder)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder / "report.html")
    assert sorted(p.name for p in folder.iterdir()) == before  # report.html was there already
    assert not list(folder.glob("manifest.sqlite-*"))  # neither run --report nor report made one


def test_read_only_manifest_of_a_killed_run_reads_its_log(batch_out, tmp_path):
    """A run killed mid-batch leaves -wal and -shm; the report must see what only the log has."""
    share = tmp_path / "share"
    shutil.copytree(batch_out, share)
    writer = sqlite3.connect(share / "manifest.sqlite", isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("UPDATE files SET status='running' WHERE rel=?", (BATCH_SAMPLES[0],))
    killed = tmp_path / "killed"
    shutil.copytree(share, killed)  # the files as the killed run left them
    writer.close()
    assert (killed / "manifest.sqlite-wal").stat().st_size > 0
    target = tmp_path / "report.html"
    done = readonly(killed, SEGMENTER, "report", str(killed), "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert sorted(strips(target.read_text())) == [BATCH_SAMPLES[1]]


def test_readonly_manifest_refuses_writes(batch_out):
    manifest = Manifest.open_readonly(batch_out)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            manifest.failed(BATCH_SAMPLES[0], "must not be written")
        rows = {row.rel: row for row in manifest.files()}
    finally:
        manifest.close()
    assert rows["broken.wav"].status == "failed" and rows["broken.wav"].outputs == []
    done = rows[BATCH_SAMPLES[0]]
    assert done.status == "done" and f"{BATCH_SAMPLES[0]}.json" in done.outputs


def test_report_needs_an_output_folder(tmp_path):
    done = subprocess.run([SEGMENTER, "report", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2 and "no manifest.sqlite" in done.stderr
