"""The silero engine: the shipped graph is silero-vad's (rewritten as SOURCE.md says), its scores
silero-vad's own probabilities, spread over 10 ms frames the same way whatever the block size,
n // 160 frames for n samples; it runs without silero-vad, torch or onnx."""

import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter.engines import silero
from segmenter.engines.model import ModelError, sha256_of
from segmenter.engines.silero import GRAPH, UPSTREAM_VERSION, WINDOW, SileroEngine

from .conftest import REPO

REALSET = Path(__file__).parents[2] / "shared" / "realset"
GOLDEN = Path(__file__).parent / "data" / "golden"
RECORDINGS = sorted(REALSET.glob("*.wav")) or sorted(GOLDEN.glob("*.flac"))[:2]


@pytest.fixture(scope="module")
def engine() -> SileroEngine:
    return SileroEngine.load()


def needs_silero_vad() -> None:
    """Skip where silero-vad's package (the dev extra) is not installed."""
    if find_spec("silero_vad") is None:
        pytest.skip("silero-vad is not installed (the dev extra)")


def samples_of(path: Path) -> np.ndarray:
    """16 kHz mono float32 samples of a test recording."""
    samples, rate = sf.read(path, dtype="float32")
    assert rate == 16000 and samples.ndim == 1, path
    return samples


def silero_window_probabilities(model, samples: np.ndarray) -> np.ndarray:
    """silero-vad's own per-window probabilities, windows fed as its get_speech_timestamps does."""
    import torch

    model.reset_states()
    audio = torch.from_numpy(samples)
    found = []
    for start in range(0, len(samples), WINDOW):
        window = audio[start : start + WINDOW]
        window = torch.nn.functional.pad(window, (0, WINDOW - len(window)))
        found.append(model(window, 16000).item())
    return np.array(found, np.float32)


def stream_scores(engine: SileroEngine, samples: np.ndarray, block: int) -> np.ndarray:
    """Frame scores of `samples` fed in blocks of `block` samples."""
    stream = engine.score_stream()
    parts = [stream.feed(samples[i : i + block]) for i in range(0, len(samples), block)]
    return np.concatenate([*parts, stream.finish()])


@pytest.mark.parametrize("onnx", [True, False], ids=["onnx", "jit"])
@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.stem)
def test_scores_are_silero_vads_own_probabilities(engine, path, onnx):
    needs_silero_vad()
    from silero_vad import load_silero_vad

    samples = samples_of(path)
    windows = silero_window_probabilities(load_silero_vad(onnx=onnx), samples)
    centres = np.arange(len(samples) // 160) * 160 + 80
    scores = stream_scores(engine, samples, 16000)
    np.testing.assert_allclose(scores, windows[centres // WINDOW], rtol=0, atol=1e-4)
    assert windows.min() < 0.1 and windows.max() > 0.9  # a recording with speech and pauses


def test_scores_do_not_depend_on_the_block_size(engine):
    samples = samples_of(RECORDINGS[0])[: 8 * 16000]
    whole = stream_scores(engine, samples, len(samples))
    for block in (1000, 160, 512, 513, 4099, 100_000):
        np.testing.assert_array_equal(stream_scores(engine, samples, block), whole)


@pytest.mark.parametrize("length", [0, 1, 159, 160, 239, 240, 511, 512, 513, 1024, 16_000, 16_111])
def test_one_frame_per_whole_10ms(engine, length):
    samples = samples_of(RECORDINGS[0])[:length]
    assert len(stream_scores(engine, samples, 300)) == length // 160
    stream = engine.score_stream()
    given = len(stream.feed(samples))
    assert given <= length // 160 and given + len(stream.finish()) == length // 160


def test_shipped_graph_is_the_rewrite_of_the_one_silero_vad_ships():
    """The same graph, node for node and weight for weight, as the build tool makes from the
    installed silero-vad's (a new silero-vad with other weights fails here: rebuild)."""
    needs_silero_vad()
    onnx = pytest.importorskip("onnx")
    from segmenter.toolkit.silero_graph import shipped_graph, upstream_graph

    ours = onnx.load_model_from_string(silero.model_path().read_bytes())
    theirs = onnx.load_model_from_string(shipped_graph(upstream_graph()))
    assert ours.graph == theirs.graph
    assert len(ours.graph.node) > 20 and any(n.op_type == "LSTM" for n in ours.graph.node)
    upstream = onnx.load(str(upstream_graph()))
    lstm = next(n for n in upstream.graph.node if n.op_type == "LSTM")
    kept = {w.name: w for w in ours.graph.initializer}
    for k, name in zip("WRB", lstm.input[1:4], strict=True):  # silero-vad's LSTM, as published
        assert kept[f"recurrent/{k}"].raw_data == next(
            w.raw_data for w in upstream.graph.initializer if w.name == name
        )


def test_source_names_the_shipped_files():
    """SOURCE.md gives the version and the checksum of the graph that is shipped, beside its
    MIT licence; the per-file document names the same."""
    folder = silero.bundled_dir()
    source = (folder / "SOURCE.md").read_text(encoding="utf-8")
    assert f"| {GRAPH} | {sha256_of(folder / GRAPH)} |" in source
    assert f"`silero-vad`\n{UPSTREAM_VERSION} ships it" in source
    assert (folder / "LICENSE").read_text().startswith("MIT License")
    info = SileroEngine.load().info()
    assert info["name"] == f"silero-vad {UPSTREAM_VERSION}"
    assert info["sha256"] == sha256_of(folder / GRAPH)


def test_runs_without_silero_vad_torch_or_onnx(monkeypatch, engine):
    """Loading and scoring import none of them (the plain install's venv: test_lean.py)."""
    for package in ("silero_vad", "torch", "onnx"):
        monkeypatch.setitem(sys.modules, package, None)  # import machinery: "not installed"
    scores = stream_scores(SileroEngine.load(), samples_of(RECORDINGS[0]), 16000)
    np.testing.assert_array_equal(scores, stream_scores(engine, samples_of(RECORDINGS[0]), 16000))


def test_a_lost_graph_is_one_line_saying_reinstall(monkeypatch, tmp_path):
    monkeypatch.setattr(silero, "bundled_dir", lambda: tmp_path)
    with pytest.raises(ModelError) as raised:
        SileroEngine.load()
    message = str(raised.value)
    assert "\n" not in message and f"missing; reinstall: pip install -e '{REPO}'" in message
