"""Install lines: none may reach PyPI's unrelated `segmenter`; hints name where this came from."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from segmenter import install

from . import blocks
from .conftest import REPO, SEGMENTER

STRANGER = "segmenter"  # PyPI's package of that name is not this project
TEXT = {".py", ".md", ".toml", ".txt", ".cfg", ".sh", ".service", ".timer", ".yaml", ".yml"}
SKIP = {".git", ".venv", "output", "data", "__pycache__", ".pytest_cache", ".ruff_cache"}
COMMAND = re.compile(r"pip3? install(?P<args>[^\n`;&|)]*)")
BARE_EXTRA = re.compile(rf"(?<![\w/.-]){STRANGER}\[")


def reaches_stranger(text: str) -> list[str]:
    """The install commands in `text` that would fetch `segmenter` by name, and any extra
    spelled on the bare name, wherever it appears."""
    found = []
    for command in COMMAND.finditer(text):
        for word in command["args"].split():
            if re.fullmatch(rf"{STRANGER}(\[[^\]]*\])?([=<>~!].*)?", word.strip("'\"")):
                found.append(command.group(0).strip())
    return found + [m.group(0) for m in BARE_EXTRA.finditer(text)]


def project_texts() -> list[Path]:
    """The repository's text files: README, docs, code, tests, Makefile, jobs/."""
    return [
        path
        for path in REPO.rglob("*")
        if path.is_file()
        and not SKIP.intersection(path.relative_to(REPO).parts)
        and (path.suffix in TEXT or path.name in ("Makefile", "crontab"))
    ]


@pytest.mark.parametrize(
    "line",
    [
        f"pip install '{STRANGER}[distributed]'",
        f'pip install "{STRANGER}[web]"',
        f"pip install -U {STRANGER}",
        f"pip install {STRANGER}==0.1.0",
        f"the extra `{STRANGER}[silero]`",
    ],
)
def test_the_check_catches_every_spelling(line):
    assert reaches_stranger(line)


@pytest.mark.parametrize(
    "line",
    [
        "pip install '/opt/segmenter[distributed]'",
        "pip install './segmenter[web]' && segmenter run in -o out",
        "pip install -e '.[dev]'",
        "pip install 'dist/fsmn_segmenter-0.1.0-py3-none-any.whl[torch]'",
        "pip install fsmn-segmenter",
    ],
)
def test_the_check_lets_paths_and_our_name_pass(line):
    assert not reaches_stranger(line)


def test_no_install_line_or_hint_reaches_the_stranger():
    texts = project_texts()
    assert REPO / "README.md" in texts and REPO / "Makefile" in texts
    assert REPO / "segmenter" / "cli.py" in texts
    offending = {
        str(path.relative_to(REPO)): hits
        for path in texts
        if (hits := reaches_stranger(path.read_text(encoding="utf-8", errors="replace")))
    }
    assert offending == {}


def test_the_distribution_is_named_ours():
    assert f'name = "{install.DISTRIBUTION}"' in (REPO / "pyproject.toml").read_text()
    assert install.DISTRIBUTION != STRANGER


def test_hints_install_from_the_checkout_this_runs_from():
    # the checkout is an editable install: the hint keeps it so (a plain install would copy it)
    assert install.install_line("web") == f"pip install -e '{REPO}[web]'"
    assert install.install_line() == f"pip install -e '{REPO}'"


class FakeDistribution:
    """What importlib.metadata says of an installation, with its direct_url.json (or none)."""

    def __init__(self, direct_url: dict | None):
        self.direct_url = direct_url

    def read_text(self, name: str) -> str | None:
        return json.dumps(self.direct_url) if self.direct_url else None


@pytest.mark.parametrize(
    ("direct_url", "source"),
    [
        ({"url": "file:///opt/seg%20menter", "dir_info": {}}, "/opt/seg menter"),
        (
            {"url": "file:///srv/fsmn_segmenter-0.1.0-py3-none-any.whl", "archive_info": {}},
            "/srv/fsmn_segmenter-0.1.0-py3-none-any.whl",
        ),
        (None, install.DISTRIBUTION),  # from an index: its name there
    ],
)
def test_an_installed_copy_names_what_pip_recorded(monkeypatch, tmp_path, direct_url, source):
    """Outside a checkout the hint names the path or wheel pip installed from (PEP 610)."""
    monkeypatch.setattr(install, "__file__", str(tmp_path / "site" / "segmenter" / "install.py"))
    monkeypatch.setattr(install, "distribution", lambda name: FakeDistribution(direct_url))
    assert install.install_line("torch") == f"pip install '{source}[torch]'"


def test_after_make_run_the_readme_calls_segmenter_from_the_venv(batch_out, tmp_path):
    """The quick start's lines, run as written in a checkout whose .venv is this test's: by
    path, or with the environment activated; the bare name is not on a plain PATH."""
    block = blocks.named("after-make-run").code
    checkout = tmp_path / "checkout"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / ".venv" / "bin" / "segmenter").symlink_to(SEGMENTER)
    (checkout / ".venv" / "bin" / "activate").symlink_to(Path(SEGMENTER).parent / "activate")
    shutil.copytree(batch_out, checkout / "output")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def shell(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["/bin/sh", "-c", command], cwd=checkout, env=env, capture_output=True, text=True
        )

    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    assert len(lines) == 2
    for line in lines:
        done = shell(line)
        assert done.returncode == 0 and "2 done, 1 failed" in done.stdout, (line, done.stderr)
    assert shell("segmenter status output").returncode == 127  # not on PATH before that
