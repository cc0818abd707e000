"""The page and the report in a real browser: headless Chromium (Debian's chromium and
chromium-driver, which `make test` installs) driven by Selenium.

A `segmenter serve` runs on a free loopback port over the session's batch. Screenshots go to each
test's temporary folder (docs/screenshots.py makes the docs' with the same helpers).
"""

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from .conftest import BATCH_SAMPLES, SAMPLES, SEGMENTER

SAMPLE = SAMPLES / "standup_meeting.wav"
UPLOAD_LIMIT_MB = 1  # every demo recording is under it


def browser_paths() -> tuple[str, str]:
    """Debian's chromium and its driver; missing ones fail the test: it must not pass unrun."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("chromium and chromium-driver are missing (make test installs them)")
    return chromium, driver


def start_browser(*flags: str) -> webdriver.Chrome:
    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *flags):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1300")
    return webdriver.Chrome(service=Service(driver), options=options)


@pytest.fixture
def browser():
    driver = start_browser()
    yield driver
    driver.quit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(root: Path, *args: str) -> Iterator[dict]:
    """`segmenter serve ARGS` on a free loopback port, its temporary files under `root`."""
    port = free_port()
    (root / "tmp").mkdir(parents=True)
    env = {**os.environ, "GRADIO_TEMP_DIR": str(root / "gradio"), "TMPDIR": str(root / "tmp")}
    cmd = [SEGMENTER, "serve", *args, "--port", str(port)]
    log = open(root / "serve.log", "w")  # noqa: SIM115 - open for the server's whole life
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until(lambda: process.poll() is not None or answers(url), 180)
        assert process.poll() is None, (root / "serve.log").read_text()
        yield {"url": url, "uploads": root / "gradio", "process": process}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def server(batch_out, tmp_path_factory):
    """The page over the session's batch, with a small upload limit."""
    root = tmp_path_factory.mktemp("serve")
    args = [str(batch_out), "--precision", "fp32", "--max-upload-mb", str(UPLOAD_LIMIT_MB)]
    with running_server(root, *args) as running:
        yield running


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(condition: Callable[[], object], seconds: float = 60) -> object:
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {seconds} s: {condition}")
        time.sleep(0.2)
    return value


def screenshot(driver: webdriver.Chrome, folder: Path, name: str) -> Path:
    path = folder / name
    driver.save_screenshot(str(path))
    return path


def table(driver: webdriver.Chrome, css: str) -> list[list[str]]:
    """The body rows of a Gradio dataframe (a virtual grid: the rows in view), as cell texts."""
    rows = driver.find_elements(By.CSS_SELECTOR, f"{css} [role=row].virtual-row")
    rows.sort(key=lambda row: int(row.get_attribute("data-index")))
    return [[c.text for c in row.find_elements(By.CSS_SELECTOR, "[role=gridcell]")] for row in rows]


def open_page(driver: webdriver.Chrome, url: str) -> None:
    driver.get(url)
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#audio input[type=file]"))


def segment(driver: webdriver.Chrome) -> None:
    """Press Segment once the recording is on the server; wait until the results show (the
    time it takes is bench/serve.py's to measure, over HTTP)."""
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#audio a[data-testid=download-link]"))
    driver.find_element(By.CSS_SELECTOR, "#segment").click()
    wait_until(lambda: "segment" in driver.find_element(By.CSS_SELECTOR, "#totals").text, 120)
    wait_until(lambda: table(driver, "#segments"))


def uploads_named(folder: Path, name: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name == name]


def test_file_tab_shows_the_clis_segments(server, browser, tmp_path):
    cli = subprocess.run(
        [SEGMENTER, "segment", str(SAMPLE), "--precision", "fp32"],
        capture_output=True,
        text=True,
        check=True,
    )
    expected = json.loads(cli.stdout)["segments"]
    open_page(browser, server["url"])
    browser.find_element(By.CSS_SELECTOR, "#audio input[type=file]").send_keys(str(SAMPLE))
    segment(browser)
    rows = table(browser, "#segments")
    assert [int(r[0]) for r in rows] == list(range(1, len(expected) + 1))
    assert [(float(r[1]), float(r[2])) for r in rows] == [(s["start"], s["end"]) for s in expected]
    shaded = browser.find_elements(By.CSS_SELECTOR, "#waveform svg rect.speech")
    assert len(shaded) == len(expected)
    links = browser.find_elements(By.CSS_SELECTOR, "#downloads a[href]")
    downloads = {link.get_attribute("href").rsplit("/", 1)[-1]: link for link in links}
    assert sorted(downloads) == sorted(SAMPLE.name + s for s in (".json", ".rttm", ".clips.zip"))
    with urllib.request.urlopen(downloads[SAMPLE.name + ".json"].get_attribute("href")) as got:
        assert json.load(got)["segments"] == expected
    assert uploads_named(server["uploads"], SAMPLE.name) == []  # deleted once segmented
    screenshot(browser, tmp_path, "serve.png")


def test_upload_over_the_limit_says_which_option_to_raise(server, browser, tmp_path):
    big = tmp_path / "long_meeting.wav"
    noise = np.random.default_rng(0).standard_normal(16000 * 45).astype(np.float32) * 0.05
    sf.write(big, noise, 16000, subtype="PCM_16")  # 1.44 MB
    open_page(browser, server["url"])
    browser.find_element(By.CSS_SELECTOR, "#audio input[type=file]").send_keys(str(big))
    body = browser.find_element(By.TAG_NAME, "body")
    message = wait_until(lambda: "--max-upload-mb" in body.text and body.text)
    assert "1.4 MB" in message and f"up to {UPLOAD_LIMIT_MB} MB" in message
    screenshot(browser, tmp_path, "serve-too-large.png")
    assert uploads_named(server["uploads"], big.name) == []  # refused unread


@pytest.mark.slow
def test_microphone_recording(server, tmp_path):
    """Chromium's fake microphone plays a demo recording into the page's recorder."""
    driver = start_browser(
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={SAMPLE}",
    )
    try:
        open_page(driver, server["url"])
        driver.find_element(By.CSS_SELECTOR, "#audio button[aria-label='Record audio']").click()
        wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#audio .record-button"))
        driver.find_element(By.CSS_SELECTOR, "#audio .record-button").click()
        time.sleep(6)
        driver.find_element(By.CSS_SELECTOR, "#audio .stop-button").click()
        segment(driver)
        rows = table(driver, "#segments")
        totals = driver.find_element(By.CSS_SELECTOR, "#totals").text
        screenshot(driver, tmp_path, "serve-microphone.png")
    finally:
        driver.quit()
    name = totals.split(":")[0]
    assert rows and all(0 <= float(r[1]) < float(r[2]) for r in rows)
    assert uploads_named(server["uploads"], name) == [], name


def choose(driver: webdriver.Chrome, dropdown: str, label: str) -> None:
    """Pick the option of `dropdown` whose text has `label`, once the page has put it there."""
    driver.find_element(By.CSS_SELECTOR, f"{dropdown} input").click()
    items = f"{dropdown} li"
    wait_until(lambda: [i for i in driver.find_elements(By.CSS_SELECTOR, items) if label in i.text])
    next(i for i in driver.find_elements(By.CSS_SELECTOR, items) if label in i.text).click()


def test_batch_tab(server, browser, batch_out, tmp_path):
    open_page(browser, server["url"])
    next(
        b for b in browser.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == "Batch"
    ).click()
    summary = browser.find_element(By.CSS_SELECTOR, "#batch-summary")
    wait_until(lambda: "done" in summary.text)
    assert "2 done, 1 failed, 0 to do" in summary.text
    files = table(browser, "#batch-files")
    assert sorted(r[:2] for r in files) == sorted(
        [[n, "done"] for n in BATCH_SAMPLES] + [["broken.wav", "failed"]]
    )
    failures = table(browser, "#batch-failures")
    assert len(failures) == 1 and failures[0][0] == "broken.wav" and "not audio" in failures[0][1]
    name = BATCH_SAMPLES[0]  # the second of the list: the first is shown at the start
    choose(browser, "#batch-file", name)
    spans = json.loads((batch_out / f"{name}.json").read_text())["segments"]
    shaded = "#batch-timeline svg rect.speech"
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, shaded)) == len(spans))
    assert len(table(browser, "#batch-segments")) == len(spans)
    choose(browser, "#batch-segment", "2:")
    link = wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#batch-player a[data-testid=download-link]")
    )
    with urllib.request.urlopen(link[0].get_attribute("href"), timeout=30) as response:
        clip = tmp_path / "clip.wav"
        clip.write_bytes(response.read())
    assert sf.info(clip).duration == pytest.approx(spans[1]["end"] - spans[1]["start"], abs=1e-3)
    screenshot(browser, tmp_path, "serve-batch.png")


def test_report_in_the_browser(browser, batch_out, tmp_path):
    browser.get((batch_out / "report.html").as_uri())
    strips = browser.find_elements(By.CSS_SELECTOR, "#files svg.strip")
    assert len(strips) == len(BATCH_SAMPLES)
    assert all(s.size["width"] > 300 and s.size["height"] > 10 for s in strips)
    shaded = [s.find_element(By.CSS_SELECTOR, "path").size["width"] for s in strips]
    assert all(width > 100 for width in shaded)  # the samples are half speech or more
    failures = browser.find_element(By.CSS_SELECTOR, "#failures").text
    assert "broken.wav" in failures and "not audio" in failures
    screenshot(browser, tmp_path, "report.png")


ONNXRUNTIME_SESSION_ID = ".ses"  # onnxruntime >= 1.32 writes it in TMPDIR at import, and keeps it


def ours(folder: Path) -> list[str]:
    """What is in a temporary folder but onnxruntime's own small file (not segmenter's)."""
    return [p.name for p in folder.iterdir() if p.name != ONNXRUNTIME_SESSION_ID]


def test_server_stops_cleanly_and_leaves_no_files(tmp_path):
    with running_server(tmp_path) as running:
        assert answers(running["url"])
        assert [name[:16] for name in ours(tmp_path / "tmp")] == ["segmenter-serve-"]
    assert running["process"].returncode == 0
    assert ours(tmp_path / "tmp") == []
