"""The docs' screenshots, in docs/images/: serve.png (the File tab with a demo recording
segmented), serve-batch.png (the Batch tab) and report.png, of a batch of the demo recordings and
an empty file, in headless Chromium driven as the browser tests drive it.

usage: python docs/screenshots.py   (the dev extra, chromium and chromium-driver)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_browser import (  # noqa: E402 - the tests' own browser helpers
    answers,
    choose,
    free_port,
    open_page,
    segment,
    start_browser,
    wait_until,
)

SEGMENTER = str(Path(sys.executable).parent / "segmenter")
SAMPLES = ROOT / "samples"
IMAGES = ROOT / "docs" / "images"  # where the page docs/views.md takes them from
SHOWN = "lecture_qa.ogg"  # eight segments in 75 s


def full_page(driver, path: Path) -> None:
    """A screenshot as tall as the page, from its top."""
    driver.set_window_size(1280, 300)  # so that the page's height is its content's
    height, chrome = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    driver.set_window_size(1280, height + chrome + 20)
    driver.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.5)
    driver.save_screenshot(str(path))
    print(path)


def make_batch(work: Path) -> None:
    (work / "in").mkdir()
    for recording in sorted(SAMPLES.glob("*.*")):
        if recording.suffix in (".wav", ".flac", ".mp3", ".ogg"):
            shutil.copy(recording, work / "in")
    (work / "in" / "empty.wav").touch()
    cmd = [SEGMENTER, "run", "in", "-o", "segments", "--report", "--settle-seconds", "0"]
    subprocess.run([*cmd, "--quiet"], cwd=work, check=False)


def shoot(driver, url: str, work: Path) -> None:
    open_page(driver, url)
    driver.find_element(By.CSS_SELECTOR, "#audio input[type=file]").send_keys(str(SAMPLES / SHOWN))
    segment(driver)
    full_page(driver, IMAGES / "serve.png")
    open_page(driver, url)
    tabs = driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")
    next(tab for tab in tabs if tab.text == "Batch").click()
    wait_until(lambda: "done" in driver.find_element(By.CSS_SELECTOR, "#batch-summary").text)
    choose(driver, "#batch-file", SHOWN)
    wait_until(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#batch-timeline rect")) > 3)
    choose(driver, "#batch-segment", "3:")
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#batch-player a[href]"))
    full_page(driver, IMAGES / "serve-batch.png")
    driver.get((work / "segments" / "report.html").as_uri())
    full_page(driver, IMAGES / "report.png")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_batch(work)
        port = free_port()
        server = subprocess.Popen([SEGMENTER, "serve", "segments", "--port", str(port)], cwd=work)
        driver = start_browser()
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_until(lambda: answers(url), 120)
            shoot(driver, url, work)
        finally:
            driver.quit()
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
