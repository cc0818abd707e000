"""Build the silero-vad graph segmenter ships, from the one silero-vad's package ships.

usage: python -m segmenter.toolkit.silero_graph  (needs silero-vad 6.2.2+ and onnx: the dev extra)

silero-vad's PyPI package (MIT) ships, from 6.2.2 on, its 16 kHz model as a "sequence" graph
(`silero_vad/data/silero_vad_16k_sequence.onnx`): the convolutional encoder runs on a batch of
windows at once and only the LSTM steps through them. This tool rewrites every 1-D convolution of
that graph as a 2-D one of height 1 (Unsqueeze, zero channel padding to a multiple of 8, Conv,
Squeeze), which onnxruntime runs on its blocked (NCHWc) kernels: about 3x faster on one core, and
the probabilities stay within 1e-4 of silero-vad's own. The weights are not otherwise changed.

It writes the rewritten graph, silero-vad's licence and SOURCE.md (versions and checksums) into
`segmenter/models/silero-vad/`, so that the engine needs neither silero-vad, torch nor onnx at run
time. tests/test_silero.py checks that the shipped graph is this rewrite of the graph the
installed silero-vad ships.
"""

from __future__ import annotations

import argparse
import hashlib
from importlib.metadata import distribution
from importlib.util import find_spec
from pathlib import Path

from ..engines.silero import GRAPH, UPSTREAM_VERSION, bundled_dir
from .onnx_graph import conv1d_as_2d

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


def blocked_graph(path: Path) -> bytes:
    """The graph at `path` with every 1-D convolution made one onnxruntime runs blocked (NCHWc)."""
    import onnx

    return conv1d_as_2d(onnx.load(str(path))).SerializeToString()


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
| {GRAPH} | {shipped_sha256} | that graph with its 1-D convolutions rewritten as 2-D ones |
| LICENSE | | silero-vad's licence, from its distribution |

Made by `python -m segmenter.toolkit.silero_graph` (silero-vad {UPSTREAM_VERSION} and onnx
installed): every 1-D Conv becomes Unsqueeze, zero padding of its input channels to a multiple of
8, a 2-D Conv of height 1 and Squeeze, which onnxruntime runs on its blocked (NCHWc) kernels
(about 3x faster on one core). The weights are unchanged but for the zero padding; the
probabilities stay within 1e-4 of silero-vad's own (tests/test_silero.py checks both: that this
file is the rewrite of the installed package's graph, and the probabilities on real speech).
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
    graph = blocked_graph(source)
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
