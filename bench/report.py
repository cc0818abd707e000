"""report.html at scale: writing it, its size, and Chromium loading it, beside pandas' to_html.

usage: python bench/report.py [--sizes 100 1000 10000] [--markdown PATH]

For synthetic output folders of 100, 1,000 and 10,000 recordings: `write_report`'s time, the
report's size and headless Chromium's time from navigation to the second frame painted after
the load event; beside it, pandas' DataFrame.to_html of the same file list (no timelines), the
plain-table peer, written and loaded the same way.

Each folder (made once under bench/data/report-N/) has a real manifest and a real JSON document
per finished recording: 97% done, 2% failed, 1% still to do; lengths log-uniform from 1 minute
to 2 hours; speech turns of 2-15 s with pauses of 0.3-6 s. Times are the best of three.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import pages  # bench/pages.py, same folder: --markdown PATH writes the output as a docs page
import pandas as pd
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from segmenter.audio import AudioInfo
from segmenter.batch.discovery import Source
from segmenter.batch.manifest import Manifest
from segmenter.batch.records import document_stats
from segmenter.profiles.funasr_options import VadOptions
from segmenter.segments import FileResult, Segment, segments_document
from segmenter.views.report import REPORT_NAME, write_report

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
MODEL = {"name": "fsmn-vad", "sha256": "0" * 64, "precision": "int8", "runtime": "torch"}


def segments(rng: np.random.Generator, duration_ms: int) -> list[Segment]:
    """Speech turns and pauses across a recording."""
    found, t = [], int(rng.uniform(300, 6000))
    while True:
        end = t + int(rng.uniform(2000, 15000))
        if end >= duration_ms:
            return found
        found.append(Segment(t, end))
        t = end + int(rng.uniform(300, 6000))


def make_output(n: int) -> Path:
    """An output folder of `n` recordings, as a batch leaves it (made once)."""
    out = DATA / f"report-{n}"
    if (out / "manifest.sqlite").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    rng = np.random.default_rng(n)
    sources = [
        Source(Path(f"/archive/{i:05d}.wav"), f"{i // 100:03d}/{i:05d}.wav", 1, 0.0)
        for i in range(n)
    ]
    manifest = Manifest.open(out)
    manifest.db.execute("BEGIN")
    manifest.plan(sources, "bench", retry_failed=False, force=False)
    for source in sources:
        kind = rng.uniform()
        if kind < 0.01:
            continue  # still to do
        manifest.running(source.rel)
        if kind < 0.03:
            manifest.failed(source.rel, f"{source.path}: not audio (a text file)")
            continue
        duration_ms = int(np.exp(rng.uniform(np.log(60_000), np.log(7_200_000))))
        info = AudioInfo(str(source.path), duration_ms / 1000, 16000, 1, "WAV PCM_16")
        result = FileResult(info, segments(rng, duration_ms))
        document = segments_document(result, MODEL, VadOptions())
        target = out / f"{source.rel}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, indent=1))
        manifest.done(source.rel, document_stats(document), 0.1, [f"{source.rel}.json"])
    manifest.db.execute("COMMIT")
    manifest.close()
    return out


def best_of(runs: int, work) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return min(times)


def pandas_table(out: Path, target: Path) -> None:
    """The peer: the manifest's file list through pandas, as a plain HTML table."""
    with sqlite3.connect(f"{(out / 'manifest.sqlite').as_uri()}?immutable=1", uri=True) as db:
        frame = pd.read_sql(
            "SELECT rel, status, duration, speech, segments, error FROM files ORDER BY rel", db
        )
    frame["share"] = (100 * frame["speech"] / frame["duration"]).round()
    target.write_text(frame.to_html(index=False, na_rep=""), encoding="utf-8")


def browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


PAINTED = """
const done = arguments[arguments.length - 1];
requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));
"""


def load_seconds(driver: webdriver.Chrome, page: Path) -> float:
    """From navigation to the second frame painted after the load event, best of three."""

    def load() -> None:
        driver.get("about:blank")
        driver.get(page.as_uri())
        driver.execute_async_script(PAINTED)

    return best_of(3, load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    pages.add_argument(parser)
    args = parser.parse_args()
    with pages.page(args.markdown, __doc__):
        measure(args.sizes)


def measure(sizes: list[int]) -> None:
    """Each size's row: the report and pandas' table, written and loaded."""
    driver = browser()
    print(
        "| files | segments | write s | report MB | Chromium load s "
        "| pandas to_html s | pandas MB | Chromium load s (pandas) |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    try:
        for n in sizes:
            out = make_output(n)
            with sqlite3.connect(out / "manifest.sqlite") as db:
                count = db.execute("SELECT SUM(segments) FROM files").fetchone()[0]
            write_s = best_of(3, lambda out=out: write_report(out))
            report = out / REPORT_NAME
            peer = out / "pandas.html"
            pandas_s = best_of(3, lambda out=out, peer=peer: pandas_table(out, peer))
            print(
                f"| {n:,} | {count:,} | {write_s:.2f} | {report.stat().st_size / 1e6:.1f}"
                f" | {load_seconds(driver, report):.2f} | {pandas_s:.2f}"
                f" | {peer.stat().st_size / 1e6:.1f} | {load_seconds(driver, peer):.2f} |",
                flush=True,
            )
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
