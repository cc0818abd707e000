"""The lean install: the default batch runs on onnxruntime INT8 and never imports torch; where
torch is not installed, what needs it says how to install it, in one line."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from segmenter.engines.model import bundled_model_dir

from .conftest import BATCH_SAMPLES, REPO, SAMPLES, SEGMENTER

TORCH_PACKAGES = re.compile(r"^(torch|functorch|torchgen)([-_.].*)?$")
CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def recordings(folder: Path) -> Path:
    """Two demo recordings in `folder`."""
    folder.mkdir()
    for name in BATCH_SAMPLES:
        shutil.copyfile(SAMPLES / name, folder / name)
    return folder


def test_default_batch_imports_no_torch_in_coordinator_or_workers(tmp_path):
    """Python's import log (PYTHONPROFILEIMPORTTIME, inherited by the workers) names no torch."""
    out = tmp_path / "out"
    cmd = [SEGMENTER, "run", str(recordings(tmp_path / "in")), "-o", str(out), "--jobs", "2"]
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(
        [*cmd, "--settle-seconds", "0", "--quiet"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert "segmenter.vad" in imported  # the workers' imports are logged (the coordinator has none)
    assert "onnxruntime" in imported
    assert not [name for name in imported if name.split(".")[0] == "torch"]
    for name in BATCH_SAMPLES:
        model = json.loads((out / f"{name}.json").read_text())["model"]
        assert (model["runtime"], model["precision"]) == ("onnx", "int8")


# what onnxruntime reads to keep its telemetry quiet on build machines (CI among them), so that
# the test's control sees what a user's box gets
BUILD_MACHINE_VARS = (
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
    "ORT_RUNNING_UNIT_TESTS",
)


def private_env(tmp_path: Path) -> dict[str, str]:
    """A user's environment with fresh home, cache and temporary folders and without
    ORT_DISABLE_TELEMETRY (this test process has it from importing segmenter)."""
    unset = ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME", *BUILD_MACHINE_VARS)
    env = {k: v for k, v in os.environ.items() if k not in unset}
    for name in ("HOME", "TMPDIR"):
        (tmp_path / name).mkdir(parents=True)
        env[name] = str(tmp_path / name)
    return env


def written(tmp_path: Path) -> list[str]:
    """What was left in the fresh home and temporary folders."""
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("[HT]*/**/*"))


def test_onnxruntime_keeps_no_device_id_or_usage_events(tmp_path):
    """The batch (coordinator and workers) and `segment` leave onnxruntime's telemetry off:
    no device id, event cache or session file, where plain onnxruntime writes them."""
    model = bundled_model_dir() / "model.int8.onnx"
    plain = f"import onnxruntime as o; o.InferenceSession({str(model)!r}).get_inputs()"
    subprocess.run([sys.executable, "-c", plain], env=private_env(tmp_path / "plain"), check=True)
    if not written(tmp_path / "plain"):
        pytest.skip("this onnxruntime keeps no telemetry files")
    env = private_env(tmp_path / "ours")
    inputs = recordings(tmp_path / "in")
    base = ["--settle-seconds", "0", "--quiet"]
    for cmd in (
        ["run", str(inputs), "-o", str(tmp_path / "out"), "-j", "2", *base],
        ["segment", str(inputs / BATCH_SAMPLES[0])],
    ):
        done = subprocess.run([SEGMENTER, *cmd], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert written(tmp_path / "ours") == []


@pytest.fixture(scope="module")
def torchless(tmp_path_factory) -> Path:
    """The Python of an environment with this one's packages except torch: a lean install."""
    root = tmp_path_factory.mktemp("lean") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    (site,) = root.glob("lib/python*/site-packages")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not TORCH_PACKAGES.match(entry.name):
            (site / entry.name).symlink_to(entry)
    python = root / "bin" / "python"
    probe = subprocess.run([python, "-c", "import torch"], capture_output=True)
    assert probe.returncode == 1  # torch is really absent there
    return python


def lean(python: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`segmenter ARGS` on the torch-less Python (the code under test first on its path)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [python, "-m", "segmenter.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_batch_and_segment_run_where_torch_is_not_installed(torchless, tmp_path):
    out = tmp_path / "out"
    inputs = str(recordings(tmp_path / "in"))
    done = lean(torchless, "run", inputs, "-o", str(out), "--jobs", "2", "--settle-seconds", "0")
    assert done.returncode == 0, done.stderr
    assert len(list(out.glob("*.wav.json"))) == len(BATCH_SAMPLES)
    one = lean(torchless, "segment", str(SAMPLES / BATCH_SAMPLES[0]), "--precision", "fp32")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["model"]["runtime"] == "onnx"


@pytest.mark.parametrize(
    "args",
    [
        ("segment", str(SAMPLES / BATCH_SAMPLES[0]), "--runtime", "torch"),
        ("run", str(SAMPLES), "-o", "OUT", "--runtime", "torch"),
        ("quantize", "-o", "q8"),
        ("export-onnx", "-o", "vad.onnx"),
    ],
    ids=lambda a: a[0],
)
def test_what_needs_torch_names_the_install_line(torchless, tmp_path, args):
    """A usage error (exit 2) in one line: CPU torch from its index, then the torch extra."""
    done = lean(torchless, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert f"needs the torch extra: {CPU_TORCH} && pip install -e '{REPO}[torch]'" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_model_without_onnx_files_needs_torch_to_export_them(torchless, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("model.pt", "config.yaml", "am.mvn"):
        shutil.copyfile(bundled_model_dir() / name, folder / name)
    done = lean(torchless, "segment", str(SAMPLES / BATCH_SAMPLES[0]), "--model", str(folder))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "has no model.int8.onnx; exporting it to ONNX needs the torch extra" in done.stderr
    assert f"pip install -e '{REPO}[torch]'" in done.stderr


def test_bench_measures_what_a_lean_install_runs(torchless):
    """No torch: the onnxruntime rows, compared with onnxruntime's FP32 (FunASR's segments)."""
    done = lean(torchless, "bench", "--seconds", "10", "--json")
    assert done.returncode == 0, done.stderr
    rows = {(r["runtime"], r["precision"]): r for r in json.loads(done.stdout)}
    assert set(rows) == {("onnx", "fp32"), ("onnx", "int8")}
    assert rows[("onnx", "fp32")]["agreement"] == 1.0
    assert not any(r["torch_imported"] for r in rows.values())


def plain_install(root: Path) -> Path:
    """A fresh venv with this checkout installed as a user installs it: `pip install` of the
    source (a copy, so the build leaves nothing in the checkout), no extras, through pip's own
    configuration (the indexes and local mirror `make` uses too). Returns its bin folder."""
    source = root / "source"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(REPO / name, source / name)
    shutil.copytree(
        REPO / "segmenter", source / "segmenter", ignore=shutil.ignore_patterns("__pycache__")
    )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
    ]
    done = subprocess.run([*pip, str(source)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return venv / "bin"


@pytest.mark.slow
def test_plain_install_runs_silero_and_fusion_without_torch(tmp_path):
    """issue 26: `--engine silero` and `--engine fusion` on the plain install (no extras), whose
    packages hold no torch, onnx or silero-vad; the segments are the ones this checkout gives."""
    bin_folder = plain_install(tmp_path)
    listed = subprocess.run(
        [bin_folder / "python", "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert "fsmn-segmenter" in installed and "onnxruntime" in installed
    assert not [p for p in installed if TORCH_PACKAGES.match(p)]
    assert not installed & {"onnx", "silero-vad", "torchaudio"}
    sample = str(SAMPLES / BATCH_SAMPLES[0])
    for engine in ("silero", "fusion"):
        cmd = ["segment", sample, "--engine", engine]
        plain = subprocess.run(
            [bin_folder / "segmenter", *cmd], capture_output=True, text=True, cwd=tmp_path
        )
        assert plain.returncode == 0, plain.stderr
        here = subprocess.run([SEGMENTER, *cmd], capture_output=True, text=True, check=True)
        ours, theirs = json.loads(plain.stdout), json.loads(here.stdout)
        assert ours["model"]["engine"] == engine and ours["segments"]
        assert ours["segments"] == theirs["segments"]
        assert ours["model"] == theirs["model"]
