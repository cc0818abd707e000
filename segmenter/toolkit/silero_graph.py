"""Build the silero-vad graph segmenter ships, from the one silero-vad's package ships.

usage: python -m segmenter.toolkit.silero_graph  (needs silero-vad 6.2.2+ and onnx: the dev extra)

silero-vad's PyPI package (MIT) ships, from 6.2.2 on, its 16 kHz model as a "sequence" graph
(`silero_vad/data/silero_vad_16k_sequence.onnx`): the convolutional encoder runs on a batch of
windows at once and only the LSTM steps through them. Each window (512 samples and the 64 before
it) goes through a short-time Fourier transform (a convolution with 258 basis rows of 256 taps,
hop 128), a magnitude, four 1-D convolutions (kernel 3) over its few frames, the LSTM and a
sigmoid. onnxruntime runs such convolutions on images a few frames wide, where most of its time
is set-up; this tool writes the same arithmetic as matrix products over every window at once
(`matmul_graph`): the STFT as one product of the window's four used frames with the basis, each
encoder convolution as one product of its frames' taps side by side (the taps that only meet
zero padding are left out), the output convolution (kernel 1) as a product. The weights are
silero-vad's, rearranged; the LSTM node is silero-vad's. The build checks the new graph against
the published one on random windows (1e-5), tests/test_silero.py against silero-vad's own
probabilities on real speech (1e-4).

It writes the graph, silero-vad's licence and SOURCE.md (versions and checksums) into
`segmenter/models/silero-vad/`, so that the engine needs neither silero-vad, torch nor onnx at run
time. tests/test_silero.py checks that the shipped graph is what this tool makes from the graph
the installed silero-vad ships.
"""

from __future__ import annotations

import argparse
import hashlib
from importlib.metadata import distribution
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from ..engines.silero import CONTEXT, GRAPH, UPSTREAM_VERSION, WINDOW, bundled_dir

UPSTREAM_GRAPH = "silero_vad_16k_sequence.onnx"  # in silero_vad/data/


def upstream_graph() -> Path:
    """The sequence graph inside the installed silero-vad package (found without importing it:
    its package imports torch)."""
    spec = find_spec("silero_vad")
    if spec is None:
        raise SystemExit("silero-vad is not installed (pip install 'silero-vad>=6.2.2')")
    (folder,) = spec.submodule_search_locations
    path = Path(folder) / "data" / UPSTREAM_GRAPH
    if not path.is_file():
        raise SystemExit(f"silero-vad {installed_version()} has no {UPSTREAM_GRAPH} (needs 6.2.2+)")
    return path


def installed_version() -> str:
    """The version of the installed silero-vad package."""
    return distribution("silero-vad").version


def upstream_licence() -> str:
    """silero-vad's licence text, as its installed distribution carries it."""
    files = distribution("silero-vad").files or []
    (licence,) = [f for f in files if f.name.upper().startswith("LICENSE")]
    return licence.read_text(encoding="utf-8")


def shipped_graph(path: Path) -> bytes:
    """The graph segmenter ships, made from silero-vad's graph at `path` and checked against it."""
    import onnx

    upstream = onnx.load(str(path))
    model = matmul_graph(upstream)
    check_same_output(upstream, model)
    return model.SerializeToString()


def matmul_graph(upstream: Any) -> Any:
    """silero-vad's sequence graph as matrix products over all windows (see the module doc)."""
    from onnx import checker, helper, numpy_helper

    weights = {i.name: numpy_helper.to_array(i) for i in upstream.graph.initializer}
    _check_upstream(upstream, weights)
    lstm = next(n for n in upstream.graph.node if n.op_type == "LSTM")
    hidden = next(helper.get_attribute_value(a) for a in lstm.attribute if a.name == "hidden_size")
    graph = _Builder()
    x = _stft(graph, weights["stft.forward_basis_buffer"][:, 0, :])  # (windows, 4 frames, 129)
    x = _encoder(graph, x, weights)  # (windows, 128)
    steps = graph.node("Reshape", [x, graph.ints("recurrent/shape", -1, 1, hidden)], "recurrent/x")
    lstm_weights = [
        graph.const(f"recurrent/{k}", weights[n])
        for k, n in zip("WRB", lstm.input[1:4], strict=True)
    ]
    graph.nodes.append(
        helper.make_node(
            "LSTM",
            [steps, *lstm_weights, "", "h", "c"],
            ["recurrent/y", "hn", "cn"],
            name="recurrent/lstm",
            hidden_size=hidden,
        )
    )
    y = graph.node(
        "Reshape", ["recurrent/y", graph.ints("recurrent/flat", -1, hidden)], "recurrent/y2"
    )
    y = graph.node("Relu", [y], "recurrent/relu")
    logit = graph.affine(y, weights["output.weight"][:, :, 0].T, weights["output.bias"], "output")
    probability = graph.node("Sigmoid", [logit], "output/sigmoid")
    graph.node("Reshape", [probability, graph.ints("output/shape", -1)], "speech_probs")
    made = helper.make_graph(
        graph.nodes,
        "silero_vad_16k_sequence_matmul",
        list(upstream.graph.input),
        list(upstream.graph.output),
        graph.initializers,
    )
    model = helper.make_model(made, opset_imports=list(upstream.opset_import))
    model.ir_version = upstream.ir_version
    model.producer_name = "segmenter.toolkit.silero_graph"
    checker.check_model(model)
    return model


def _check_upstream(upstream: Any, weights: dict[str, np.ndarray]) -> None:
    """Refuse a graph this rewrite does not know (another silero-vad release may differ)."""
    expected = {
        "stft.forward_basis_buffer": (258, 1, 256),
        "encoder.0.weight": (128, 129, 3),
        "encoder.1.weight": (64, 128, 3),
        "encoder.2.weight": (64, 64, 3),
        "encoder.3.weight": (128, 64, 3),
        "output.weight": (1, 128, 1),
    }
    shapes = {name: weights[name].shape if name in weights else None for name in expected}
    convs = [n.op_type for n in upstream.graph.node if n.op_type in ("Conv", "LSTM")]
    if shapes != expected or convs != ["Conv"] * 5 + ["LSTM", "Conv"]:
        raise SystemExit(f"not the silero-vad sequence graph this tool rewrites: {shapes}, {convs}")


class _Builder:
    """Nodes and initializers of the graph being made; each node's output is named as the node."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def ints(self, name: str, *values: int) -> str:
        return self.const(name, np.array(values, np.int64))

    def node(self, op: str, inputs: list[str], name: str, **attributes: Any) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attributes))
        return name

    def take(self, x: str, start: int, end: int, axis: int, name: str) -> str:
        """x[start:end] along `axis`."""
        bounds = [self.ints(f"{name}/start", start), self.ints(f"{name}/end", end)]
        return self.node("Slice", [x, *bounds, self.ints(f"{name}/axis", axis)], name)

    def affine(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
        """x @ weight + bias."""
        product = self.node("MatMul", [x, self.const(f"{name}/w", weight)], f"{name}/product")
        return self.node("Add", [product, self.const(f"{name}/b", bias)], f"{name}/out")


def _stft(graph: _Builder, basis: np.ndarray) -> str:
    """The magnitudes (windows, 4, bins) of the frames silero-vad's model reads: it pads each
    window by reflection (128 samples each side), takes 5 frames of 256 at hop 128 and drops the
    first, so frames 1-4 are the window's samples 0-639, the last 64 reflected."""
    bins, hop = len(basis) // 2, basis.shape[1] // 2
    right = 5 * hop - (WINDOW + CONTEXT)  # 64: what frame 4 reads past the window
    pads = graph.ints("stft/pads", 0, 0, 0, right)
    padded = graph.node("Pad", ["input", pads], "stft/padded", mode="reflect")
    hops = graph.node("Reshape", [padded, graph.ints("stft/hops_shape", -1, 5, hop)], "stft/hops")
    halves = [graph.take(hops, 0, 4, 1, "stft/first"), graph.take(hops, 1, 5, 1, "stft/second")]
    frames = graph.node("Concat", halves, "stft/frames", axis=2)  # (windows, 4, 256)
    spectrum = graph.node("MatMul", [frames, graph.const("stft/basis", basis.T)], "stft/spectrum")
    real = graph.take(spectrum, 0, bins, 2, "stft/real")
    imaginary = graph.take(spectrum, bins, 2 * bins, 2, "stft/imaginary")
    squares = [
        graph.node("Mul", [real, real], "stft/real2"),
        graph.node("Mul", [imaginary, imaginary], "stft/imaginary2"),
    ]
    return graph.node("Sqrt", [graph.node("Add", squares, "stft/power")], "stft/magnitude")


def _taps(weight: np.ndarray) -> np.ndarray:
    """Conv weights (out, in, taps) as a product's (taps x in, out): tap-major rows, as the
    frames a tap reads are laid side by side."""
    return np.concatenate([weight[:, :, k].T for k in range(weight.shape[2])])


def _encoder(graph: _Builder, x: str, weights: dict[str, np.ndarray]) -> str:
    """The four convolutions (kernel 3, padding 1; strides 1, 2, 2, 1) over each window's 4
    frames, with their ReLUs: 4 -> 4 -> 2 -> 1 -> 1 frames."""
    w = {k: weights[f"encoder.{k}.weight"] for k in range(4)}
    b = {k: weights[f"encoder.{k}.bias"] for k in range(4)}
    # encoder.0, stride 1: output t reads frames t-1, t, t+1 of the zero-padded 6
    padded = graph.node(
        "Pad", [x, graph.ints("encoder.0/pads", 0, 1, 0, 0, 1, 0)], "encoder.0/padded"
    )
    taps = [graph.take(padded, k, k + 4, 1, f"encoder.0/tap{k}") for k in range(3)]
    columns = graph.node("Concat", taps, "encoder.0/columns", axis=2)
    x = graph.node(
        "Relu", [graph.affine(columns, _taps(w[0]), b[0], "encoder.0")], "encoder.0/relu"
    )
    # encoder.1, stride 2: outputs read frames -1..1 and 1..3 (-1 is the padding)
    padded = graph.node(
        "Pad", [x, graph.ints("encoder.1/pads", 0, 1, 0, 0, 0, 0)], "encoder.1/padded"
    )
    width = 3 * w[1].shape[1]
    outputs = [
        graph.node(
            "Reshape",
            [
                graph.take(padded, s, s + 3, 1, f"encoder.1/at{s}"),
                graph.ints(f"encoder.1/shape{s}", 0, 1, width),
            ],
            f"encoder.1/columns{s}",
        )
        for s in (0, 2)
    ]
    columns = graph.node("Concat", outputs, "encoder.1/columns", axis=1)  # (windows, 2, 384)
    x = graph.node(
        "Relu", [graph.affine(columns, _taps(w[1]), b[1], "encoder.1")], "encoder.1/relu"
    )
    # encoder.2, stride 2: one output, reading the padding and frames 0, 1 (taps 1, 2)
    flat = graph.node(
        "Reshape", [x, graph.ints("encoder.2/shape", -1, 2 * w[2].shape[1])], "encoder.2/flat"
    )
    x = graph.node(
        "Relu", [graph.affine(flat, _taps(w[2][:, :, 1:]), b[2], "encoder.2")], "encoder.2/relu"
    )
    # encoder.3, stride 1 over one frame: only the centre tap meets it
    return graph.node(
        "Relu", [graph.affine(x, w[3][:, :, 1].T, b[3], "encoder.3")], "encoder.3/relu"
    )


def check_same_output(upstream: Any, model: Any, windows: int = 300) -> None:
    """Both graphs on the same random windows (and carried state, in two calls): the
    probabilities within 1e-5, else the build stops."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    runs = []
    for graph in (upstream, model):
        session = ort.InferenceSession(
            graph.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        h = c = np.zeros((1, 1, 128), np.float32)
        found = []
        for part in (windows, 7):
            batch = (rng.standard_normal((part, WINDOW + CONTEXT)) * 0.1).astype(np.float32)
            probabilities, h, c = session.run(None, {"input": batch, "h": h, "c": c})
            found.append(probabilities)
        runs.append(np.concatenate(found))
        rng = np.random.default_rng(0)
    worst = float(np.abs(runs[0] - runs[1]).max())
    if worst > 1e-5:
        raise SystemExit(f"the rewritten graph differs from silero-vad's by {worst:.2e}")


def sha256_hex(data: bytes) -> str:
    """SHA-256 of some bytes, hex."""
    return hashlib.sha256(data).hexdigest()


def source_text(upstream_sha256: str, shipped_sha256: str) -> str:
    """SOURCE.md of the shipped folder: where the graph came from and what was done to it."""
    return f"""# Bundled model: silero-vad (16 kHz)

The model of `--engine silero` (and of `fusion`, beside FSMN-VAD): silero-vad by the Silero Team,
published under the MIT License (text in `LICENSE`), as its PyPI package `silero-vad`
{UPSTREAM_VERSION} ships it in `silero_vad/data/{UPSTREAM_GRAPH}` (the "sequence" graph, from
6.2.2 on: the convolutional encoder runs on a batch of 32 ms windows, the LSTM steps through them).

| file | sha256 | what |
| --- | --- | --- |
| (silero-vad {UPSTREAM_VERSION}) {UPSTREAM_GRAPH} | {upstream_sha256} | the published graph |
| {GRAPH} | {shipped_sha256} | the same weights and LSTM as matrix products over all windows |
| LICENSE | | silero-vad's licence, from its distribution |

Made by `python -m segmenter.toolkit.silero_graph` (silero-vad {UPSTREAM_VERSION} and onnx
installed; its docstring says how): the STFT and the four encoder convolutions, which onnxruntime
runs slowly on images a few frames wide, become matrix products over every window at once (the
basis and the convolution taps rearranged, the taps that only meet padding left out), about 3.5x
faster than the published graph on one core. The build checks the probabilities against the
published graph's (1e-5); tests/test_silero.py checks that this file is what the tool makes from
the installed package's graph, and the probabilities against silero-vad's own on real speech
(1e-4).
At run time the engine needs onnxruntime alone: no silero-vad, torch or onnx.
"""


def build(folder: Path) -> None:
    """Write the rewritten graph, the licence and SOURCE.md into `folder`."""
    if installed_version() != UPSTREAM_VERSION:
        raise SystemExit(
            f"silero-vad {installed_version()} is installed; the engine names {UPSTREAM_VERSION}"
            " (segmenter/engines/silero.py UPSTREAM_VERSION): change one of them first"
        )
    source = upstream_graph()
    graph = shipped_graph(source)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / GRAPH).write_bytes(graph)
    (folder / "LICENSE").write_text(upstream_licence(), encoding="utf-8")
    text = source_text(sha256_hex(source.read_bytes()), sha256_hex(graph))
    (folder / "SOURCE.md").write_text(text, encoding="utf-8")
    print(f"wrote {folder / GRAPH} ({len(graph):,} bytes), LICENSE and SOURCE.md")


def main() -> None:
    """Build the shipped folder (or another one)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=bundled_dir(), help="default: the package's")
    build(ap.parse_args().out)


if __name__ == "__main__":
    main()
