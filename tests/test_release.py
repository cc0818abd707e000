"""A release a user can install: `python -m build` makes a wheel and an sdist of the checkout that
pass `twine check`, hold what they must and nothing they must not, and the wheel installs into
a fresh environment where `segmenter segment` runs on a sample.

The fresh environment is offline: a new venv gets the wheel alone (`pip install --no-deps
--no-index`), then exactly the distributions its metadata requires, followed from there through
their own requirements, linked from this environment's site-packages (as tests/test_lean.py
builds its torch-less one); `pip check` then holds those requirements met. A dependency the
package imports but does not declare is missing there, and the run fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import segmenter

from .conftest import REPO, SAMPLES, SEGMENTER

pytestmark = pytest.mark.slow

DISTRIBUTION = "fsmn-segmenter"
SAMPLE = "standup_meeting.wav"
# what a user's sdist must carry, and what a checkout has that it must not
SDIST_HAS = (
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "pyproject.toml",
    "segmenter/models/fsmn-vad/model.int8.onnx",
    "segmenter/models/fsmn-vad/model.onnx",
    "segmenter/models/fsmn-vad/model.pt",
    "segmenter/models/fsmn-vad/config.yaml",
    "segmenter/models/fsmn-vad/am.mvn",
    "segmenter/models/fsmn-vad/LICENSE",
    "segmenter/models/fsmn-vad/SOURCE.md",
    "segmenter/data/bench_clip.ogg",
)
NEVER = re.compile(
    r"(^|/)(\.venv|\.git|bench/data|site|output|dist|\.arm64|__pycache__)(/|$)|\.pyc$"
)


def checkout_copy(target: Path) -> Path:
    """The checkout's files as a fresh clone would have them plus files not yet committed, but
    none that git ignores (no .venv, egg-info or stale build folder)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(wheel, sdist) of `python -m build` on a copy of the checkout, with this environment's
    setuptools (no download)."""
    root = tmp_path_factory.mktemp("release")
    source = checkout_copy(root / "src")
    dist = root / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "deprecated" not in said.lower(), said[-3000:]  # a build that will stop working
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    return wheel, sdist


def test_names_and_version_come_from_one_place(built):
    wheel, sdist = built
    version = segmenter.__version__
    assert wheel.name == f"fsmn_segmenter-{version}-py3-none-any.whl"
    assert sdist.name == f"fsmn_segmenter-{version}.tar.gz"


def test_twine_check_passes(built):
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, built)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_sdist_holds_what_it_must_and_nothing_it_must_not(built):
    _, sdist = built
    prefix = sdist.name.removesuffix(".tar.gz") + "/"
    with tarfile.open(sdist) as tar:
        names = {n.removeprefix(prefix) for n in tar.getnames()}
    assert [n for n in SDIST_HAS if n not in names] == []
    assert sorted(n for n in names if NEVER.search(n)) == []
    modules = {str(p.relative_to(REPO)) for p in (REPO / "segmenter").rglob("*.py")}
    assert sorted(modules - names) == []


def test_the_wheel_holds_every_module_the_model_and_data(built):
    wheel, _ = built
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    modules = {str(p.relative_to(REPO)) for p in (REPO / "segmenter").rglob("*.py")}
    assert sorted(modules - names) == []
    assert [n for n in SDIST_HAS if n.startswith("segmenter/") and n not in names] == []
    assert sorted(n for n in names if NEVER.search(n) or n.startswith(("tests/", "bench/"))) == []


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The Requires-Dist lines of the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as whl:
        (name,) = [n for n in whl.namelist() if n.endswith(".dist-info/METADATA")]
        message = Parser().parsestr(whl.read(name).decode())
    return [Requirement(line) for line in message.get_all("Requires-Dist") or []]


def closure(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements (no extras) need, followed through their own."""
    needed: set[str] = set()
    todo = [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in needed:
            continue
        needed.add(name)
        for line in metadata.distribution(name).requires or []:
            sub = Requirement(line)
            if sub.marker is None or sub.marker.evaluate({"extra": ""}):
                todo.append(sub)
    return needed


def link_distribution(name: str, site: Path) -> None:
    """A distribution of this environment made visible in `site`: its top-level entries."""
    dist = metadata.distribution(name)
    tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    tops.discard("__pycache__")  # a single-module distribution's bytecode: shared, not its own
    for top in tops:
        source = Path(str(dist.locate_file(top)))
        if source.exists() and not (site / top).exists():
            (site / top).symlink_to(source)


@pytest.fixture(scope="module")
def fresh(built, tmp_path_factory) -> Path:
    """The bin folder of a new venv holding the wheel and the dependencies it declares."""
    wheel, _ = built
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    (site,) = venv.glob("lib/python*/site-packages")
    needed = closure(wheel_requirements(wheel))
    assert "torch" not in needed  # the plain install is the lean one
    for name in sorted(needed):
        link_distribution(name, site)
    check = subprocess.run([*pip, "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return venv / "bin"


def clean_env() -> dict[str, str]:
    """This environment's variables without anything that would point at the checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_installed_wheel_runs_segment_on_a_sample(fresh, tmp_path):
    shutil.copy(SAMPLES / SAMPLE, tmp_path / SAMPLE)
    where = subprocess.run(
        [fresh / "python", "-c", "import segmenter; print(segmenter.__file__)"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(fresh.parent), where  # the wheel's copy, not the checkout
    version = subprocess.run(
        [fresh / "segmenter", "--version"], env=clean_env(), capture_output=True, text=True
    )
    assert version.stdout.strip() == f"segmenter {segmenter.__version__}", version.stderr
    done = subprocess.run(
        [fresh / "segmenter", "segment", SAMPLE],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["model"]["runtime"], document["model"]["precision"]) == ("onnx", "int8")
    here = subprocess.run(
        [SEGMENTER, "segment", str(SAMPLES / SAMPLE)], capture_output=True, text=True, check=True
    )
    assert document["segments"] == json.loads(here.stdout)["segments"] != []


def test_the_installed_metadata_names_the_version_and_license(fresh):
    (info,) = fresh.parent.glob("lib/python*/site-packages/fsmn_segmenter-*.dist-info")
    message = Parser().parsestr((info / "METADATA").read_text())
    assert message["Version"] == segmenter.__version__
    assert message["Name"] == DISTRIBUTION
    licenses = sorted(str(p.relative_to(info)) for p in info.rglob("LICENSE*"))
    assert licenses == ["licenses/LICENSE", "licenses/segmenter/models/fsmn-vad/LICENSE"]
    assert message["License-Expression"] == "Apache-2.0"
