"""The docs site: the CLI reference is what the parsers give, the site builds with --strict from
the pages in the nav, its search works in a real browser, and nothing is fetched from outside
when it is built or viewed. The version is one fact, and the changelog names it."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

import segmenter
import segmenter.vad
from segmenter.cli import build_parser
from segmenter.engines import ENGINES

from .conftest import REPO
from .test_browser import browser_paths, wait_until

MKDOCS = str(Path(sys.executable).parent / "mkdocs")


def gen_cli():
    """docs/gen_cli.py as a module (docs/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gen_cli", REPO / "docs" / "gen_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_what_the_parsers_give():
    generator = gen_cli()
    committed = generator.PAGE.read_text() if generator.PAGE.exists() else ""
    assert committed == generator.page(), (
        f"docs/reference/cli.md is stale: run `{generator.REGENERATE}` (or `make docs-cli`)"
        " and commit the page"
    )


def test_the_cli_reference_names_every_command_and_option():
    """The generator's own check: nothing a user can type is left out of the page."""
    page = gen_cli().page()
    for name, sub in gen_cli().subcommands(build_parser()).items():
        assert f"## {name}\n" in page
        for action in sub._actions:
            if action.help != "==SUPPRESS==" and action.dest != "help":
                for option in action.option_strings:
                    assert f"`{option}`" in page, (name, option)
    assert "| setting | " + " | ".join(ENGINES) + " |" in page  # precise defaults per engine


def test_the_stale_check_fails_on_a_changed_option(monkeypatch):
    """A parser whose help changed gives another page, so the committed one would be stale."""
    generator = gen_cli()
    before = generator.page()
    real = generator.build_parser

    def changed():
        parser = real()
        generator.subcommands(parser)["run"].add_argument("--new-option", help="a new option")
        return parser

    monkeypatch.setattr(generator, "build_parser", changed)
    assert generator.page() != before and "`--new-option`" in generator.page()


def nav_pages(nav) -> list[str]:
    """Every page file named in mkdocs.yml's nav."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in nav_pages(value)]
    return [p for item in nav for p in nav_pages(item)]


class IgnoreTags(yaml.SafeLoader):
    """mkdocs.yml may hold !!python/name tags (none today); read it as plain data."""


def mkdocs_config() -> dict:
    return yaml.load((REPO / "mkdocs.yml").read_text(), IgnoreTags)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with --strict as `make docs` builds it (a warning fails the build)."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [MKDOCS, "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_every_page_is_in_the_nav_and_built(site):
    pages = nav_pages(mkdocs_config()["nav"])
    on_disk = sorted(str(p.relative_to(REPO / "docs")) for p in (REPO / "docs").rglob("*.md"))
    assert sorted(pages) == on_disk
    for page in pages:
        stem = page.removesuffix(".md")
        folder = stem.removesuffix("index") if stem.endswith("index") else stem + "/"
        assert (site / folder / "index.html").exists(), page
    for page in ("getting-started", "jobs/archive", "reference/cli", "reference/api", "bench"):
        assert (site / page / "index.html").exists()


def test_the_api_reference_is_rendered_from_the_docstrings(site):
    html = (site / "reference" / "api" / "index.html").read_text()
    for name in (
        "vad.Vad",
        "vad.Vad.load",
        "vad.Vad.segments",
        "vad.VadStream.feed",
        "segments.Segment",
        "profiles.funasr_options.VadOptions",
        "profiles.precise.PreciseOptions",
        "chunking.ChunkOptions",
    ):
        assert f'id="segmenter.{name}"' in html, name
    words = " ".join(segmenter.vad.VadStream.feed.__doc__.split()[:6])
    assert words in " ".join(re.sub(r"<[^>]+>", "", html).split())


def test_the_changelog_page_is_the_changelog(site):
    html = (site / "changelog" / "index.html").read_text()
    assert "Unreleased" in html and segmenter.__version__ in html


FETCHED = re.compile(
    r"<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=\"(https?:)?//"
    r"|<link\b[^>]*\bhref=\"(https?:)?//"
    r"|url\(['\"]?(https?:)?//|@import\s+['\"]?(url\()?['\"]?(https?:)?//",
    re.I,
)


def test_the_built_pages_fetch_nothing_from_outside(site):
    """No web font, stylesheet, script or picture from another host (links may point out)."""
    offending = {
        str(path.relative_to(site)): FETCHED.findall(path.read_text(errors="replace"))
        for path in site.rglob("*")
        if path.suffix in (".html", ".css")
    }
    assert {k: v for k, v in offending.items() if v} == {}


@pytest.fixture(scope="module")
def served(site) -> Iterator[str]:
    """The built site over HTTP on a free loopback port (search needs HTTP, not file://)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def requested_hosts(driver) -> set[str]:
    """Hosts the browser sent requests to, from its performance log."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:")):
                hosts.add(url.split("/")[2].split(":")[0])
    return hosts


def logging_browser() -> webdriver.Chrome:
    """Headless Chromium (as tests/test_browser.py starts it) that logs its network requests."""
    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_search_finds_a_page_offline_in_a_browser(served):
    """Chromium types a word into the site's search and gets the page that has it; every
    request it made went to the site's own loopback server."""
    driver = logging_browser()
    try:
        driver.get(served)
        wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "label[for=__search]"))
        driver.find_element(By.CSS_SELECTOR, "label[for=__search]").click()
        box = driver.find_element(By.CSS_SELECTOR, "input.md-search__input")
        box.send_keys("resume")
        wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, ".md-search-result__item"), 60)
        links = [
            a.get_attribute("href")
            for a in driver.find_elements(By.CSS_SELECTOR, ".md-search-result__item a")
        ]
        assert any("jobs/archive/" in link for link in links), links
        assert requested_hosts(driver) == {"127.0.0.1"}
    finally:
        driver.quit()


def test_the_readme_is_a_front_door():
    """README.md stays short (what, install, quick start, the three jobs, one results table,
    links): everything else lives on the docs pages, and every page it links to exists."""
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for jobs_page in ("docs/jobs/archive.md", "docs/jobs/whisper.md", "docs/jobs/small-box.md"):
        assert f"]({jobs_page})" in readme, jobs_page
    linked = re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)(?:#[\w-]+)?\)", readme)
    assert linked and all((REPO / page).exists() for page in linked), linked
    assert "](docs/bench/" in readme  # the results table names the bench page it copies


def test_the_version_is_one_fact():
    """pyproject reads segmenter.__version__; the command prints it; the changelog names it."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "segmenter.__version__"
    }
    done = subprocess.run(
        [sys.executable, "-m", "segmenter", "--version"], capture_output=True, text=True
    )
    assert done.stdout.strip() == f"segmenter {segmenter.__version__}"
    changelog = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (.+)$", changelog, re.M)
    assert headings[0] == "Unreleased"
    assert headings[1].split()[0] == segmenter.__version__, "CHANGELOG.md: a section per version"
