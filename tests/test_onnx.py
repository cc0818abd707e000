"""ONNX: the exported network matches torch, the bundled ONNX files are current, and the onnx
runtime gives FunASR's segments without importing torch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from segmenter.engines.export import export_onnx, fp32_encoder
from segmenter.engines.model import bundled_model_dir, resolve_model

from .conftest import GOLDEN, SEGMENTER
from .test_cli import run
from .test_parity import RECORDINGS, reference


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    out = run("export-onnx", "-o", str(folder / "vad.onnx"))
    assert out.returncode == 0, out.stderr
    out = run("export-onnx", "--int8", "-o", str(folder / "vad.int8.onnx"))
    assert out.returncode == 0, out.stderr
    return folder


def stream_outputs(path, chunks):
    """Posteriors of onnxruntime over consecutive chunks, memory carried by the caller."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state = [np.zeros(i.shape, np.float32) for i in session.get_inputs()[1:]]
    names = [i.name for i in session.get_inputs()]
    found = []
    for chunk in chunks:
        posteriors, *state = session.run(None, dict(zip(names, [chunk, *state], strict=True)))
        found.append(posteriors)
    return np.concatenate(found)


def chunks_of_features():
    rng = np.random.default_rng(3)
    return [rng.normal(size=(n, 400)).astype(np.float32) for n in (37, 1, 250, 19)]


def test_exported_network_equals_torch_within_1e4_streaming(exported):
    """Odd chunk lengths (1 frame too): a dynamic time axis and the memory carried as I/O."""
    chunks = chunks_of_features()
    encoder = fp32_encoder(resolve_model())
    state, expected = encoder.initial_state(), []
    with torch.inference_mode():
        for chunk in chunks:
            posteriors, state = encoder(torch.from_numpy(chunk), state)
            expected.append(posteriors.numpy())
    got = stream_outputs(exported / "vad.onnx", chunks)
    assert np.abs(got - np.concatenate(expected)).max() < 1e-4


def test_bundled_onnx_files_are_what_export_makes_now(exported):
    """The package ships model.onnx and model.int8.onnx; they must not drift from model.pt."""
    chunks = chunks_of_features()
    for shipped, fresh in (("model.onnx", "vad.onnx"), ("model.int8.onnx", "vad.int8.onnx")):
        a = stream_outputs(bundled_model_dir() / shipped, chunks)
        b = stream_outputs(exported / fresh, chunks)
        assert np.abs(a - b).max() < 1e-6, shipped


def test_fp32_graph_uses_the_blocked_depthwise_kernel():
    """The FP32 graph's memory filters are 2-D convolutions of height 1 (onnxruntime runs them on
    its blocked depthwise kernel; 1-D ones went through its generic path)."""
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(bundled_model_dir() / "model.onnx")).graph
    convs = [n for n in graph.node if n.op_type.startswith("Conv")]
    assert [n.op_type for n in convs] == ["Conv"] * 4
    for conv in convs:
        assert list(next(a.ints for a in conv.attribute if a.name == "kernel_shape")) == [1, 20]


def test_int8_memory_filters_are_exact_float_convolutions(exported, tmp_path):
    """The shipped INT8 graph runs the memory's quantized filters as float 2-D convolutions of
    the same integers (onnxruntime's ConvInteger takes its slow generic path): exact in float32,
    so posteriors and memories are bit-identical to ConvInteger's, extreme inputs included."""
    onnx = pytest.importorskip("onnx")

    shipped = onnx.load(str(bundled_model_dir() / "model.int8.onnx")).graph
    assert not [n for n in shipped.node if n.op_type == "ConvInteger"]
    assert [n.op_type for n in shipped.node if n.op_type.startswith("Conv")] == ["Conv"] * 4
    rewritten = exported / "vad.int8.onnx"  # export-onnx --int8, as a user makes it
    assert not [n for n in onnx.load(str(rewritten)).graph.node if n.op_type == "ConvInteger"]
    plain = export_onnx(
        fp32_encoder(resolve_model(None)), tmp_path / "plain.onnx", int8=True, exact=False
    )
    assert [n for n in onnx.load(str(plain)).graph.node if n.op_type == "ConvInteger"]
    rng = np.random.default_rng(11)
    chunks = [*chunks_of_features(), rng.normal(size=(300, 400)).astype(np.float32) * 1e3]
    chunks.append(np.abs(rng.normal(size=(50, 400))).astype(np.float32) * 1e4)
    for got, expected in zip(
        all_outputs(rewritten, chunks), all_outputs(plain, chunks), strict=True
    ):
        np.testing.assert_array_equal(got, expected)


def all_outputs(path, chunks):
    """Every output of every chunk (posteriors and the memories carried on)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    state = [np.zeros(i.shape, np.float32) for i in session.get_inputs()[1:]]
    found = []
    for chunk in chunks:
        posteriors, *state = session.run(None, dict(zip(names, [chunk, *state], strict=True)))
        found += [posteriors, *state]
    return found


ONNX_CHILD = """
import json, sys
from segmenter.vad import Vad
vad = Vad.load(precision=sys.argv[1], runtime="onnx")
found = {p: [[s.start, s.end] for s in vad.segments(p)] for p in sys.argv[2:]}
print(json.dumps({"torch": "torch" in sys.modules, "segments": found}))
"""


def onnx_segments(precision):
    paths = [str(p) for p in RECORDINGS]
    args = [sys.executable, "-c", ONNX_CHILD, precision, *paths]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout)


def test_onnx_runtime_fp32_equals_funasr_without_torch():
    result = onnx_segments("fp32")
    assert result["torch"] is False
    for path in RECORDINGS:
        assert [tuple(s) for s in result["segments"][str(path)]] == reference(path), path.stem


def test_onnx_runtime_int8_stays_close_to_funasr():
    """onnxruntime's dynamic INT8 (U8U8: no AVX2 saturation) is at the level of torch's INT8."""
    result = onnx_segments("int8")
    offsets = []
    for path in RECORDINGS:
        got = np.array(result["segments"][str(path)]).ravel()
        ref = np.array(reference(path)).ravel()
        assert len(got) == len(ref), path.stem
        offsets += list(np.abs(got - ref))
    assert (np.array(offsets) <= 10).mean() >= 0.95
    assert max(offsets) <= 100


def test_segment_and_run_take_the_onnx_runtime(tmp_path):
    path = GOLDEN / "dev08_edgespink30db.flac"
    out = run("segment", str(path), "--runtime", "onnx", "--precision", "fp32")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["model"]["runtime"] == "onnx"
    assert [(s["start"] * 1000, s["end"] * 1000) for s in doc["segments"]] == reference(path)
    batch = run(
        "run",
        str(path),
        "-o",
        str(tmp_path),
        "--runtime",
        "onnx",
        "--jobs",
        "1",
        "--precision",
        "fp32",
    )
    assert batch.returncode == 0, batch.stderr
    written = json.loads((tmp_path / f"{path.name}.json").read_text())
    assert written["model"]["runtime"] == "onnx" and written["segments"] == doc["segments"]


@pytest.mark.slow
def test_folder_without_onnx_files_is_exported_once_into_the_cache(tmp_path):
    """A torch-only model folder runs on the onnx runtime: exported once, FP32 still exact."""
    folder = tmp_path / "m"
    folder.mkdir()
    for name in ("model.pt", "config.yaml", "am.mvn"):
        (folder / name).write_bytes((bundled_model_dir() / name).read_bytes())
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    path = GOLDEN / "dev08_edgespink30db.flac"
    cmd = [SEGMENTER, "segment", str(path), "--model", str(folder), "--precision", "fp32"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    (cached,) = (tmp_path / "cache" / "segmenter" / "onnx").glob("*/model.onnx")
    assert cached.parent.name == resolve_model(folder).sha256
    made = cached.stat().st_mtime_ns
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["segments"] == json.loads(first.stdout)["segments"]
    assert cached.stat().st_mtime_ns == made  # not exported again
    doc = json.loads(first.stdout)
    assert doc["model"]["runtime"] == "onnx"
    assert [(s["start"] * 1000, s["end"] * 1000) for s in doc["segments"]] == reference(path)
    assert not list(cached.parent.glob(".export-*"))  # no temporary left


def test_onnx_runtime_missing_is_a_usage_error_before_any_file(tmp_path):
    """onnxruntime unimportable in every process (a package on PYTHONPATH that refuses)."""
    shim = tmp_path / "shim" / "onnxruntime"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named onnxruntime')\n")
    paths = (str(shim.parent), os.environ.get("PYTHONPATH"))  # before the code under test
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    hint = (
        "segmenter: the onnx runtime needs onnxruntime, which comes with segmenter:"
        f" pip install -e '{Path(__file__).parents[1]}'\n"
    )
    recording = str(GOLDEN / "dev08_edgespink30db.flac")
    segment = subprocess.run(
        [SEGMENTER, "segment", recording, "--runtime", "onnx"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (segment.returncode, segment.stderr) == (2, hint)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.flac").write_bytes(Path(recording).read_bytes())
    out = tmp_path / "out"
    batch = subprocess.run(
        [SEGMENTER, "run", str(tmp_path / "in"), "-o", str(out), "--runtime", "onnx"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert (batch.returncode, batch.stderr, batch.stdout) == (2, hint, "")
    assert not out.exists()  # no file touched, no manifest of failures
