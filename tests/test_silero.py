"""The silero engine: silero-vad's own probabilities, spread over 10 ms frames the same way
whatever the block size, n // 160 frames for n samples, and a one-line hint without the package."""

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter.engines.model import ModelError
from segmenter.engines.silero import WINDOW, SileroEngine

from .conftest import REPO

REALSET = Path(__file__).parents[2] / "shared" / "realset"
GOLDEN = Path(__file__).parent / "data" / "golden"
RECORDINGS = sorted(REALSET.glob("*.wav")) or sorted(GOLDEN.glob("*.flac"))[:2]


@pytest.fixture(scope="module")
def engine() -> SileroEngine:
    pytest.importorskip("silero_vad", reason="the silero extra is not installed")
    return SileroEngine.load()


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


@pytest.mark.parametrize("package", ["silero_vad", "onnxruntime", "onnx"])
def test_a_missing_package_is_one_line_with_the_pip_hint(monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # import machinery: "not installed"
    with pytest.raises(ModelError) as raised:
        SileroEngine.load()
    message = str(raised.value)
    assert "\n" not in message and package in message
    assert f"pip install -e '{REPO}[silero]'" in message
