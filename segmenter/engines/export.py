"""Model export, beside the model: INT8 model folders (optionally pruned first) and the ONNX
export of the FSMN network (torch, onnx, onnxscript: the torch extra). `model.ensure_onnx` calls
it for a folder without ONNX files; `segmenter quantize` and `export-onnx` are its commands."""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .fsmn_network import FsmnEncoder, load_encoder, quantize_int8
from .model import ONNX_FILES, REQUIRED_FILES, WEIGHTS, ModelError, ModelFiles

FOLDER_EXTRAS = ("configuration.json", "LICENSE", "SOURCE.md")  # copied when present


def fp32_encoder(files: ModelFiles) -> FsmnEncoder:
    """The FP32 network of a model folder; INT8-only folders cannot be re-exported."""
    if files.int8_only:
        raise ModelError(f"model {files.name}: INT8 only; export from a folder with model.pt")
    return load_encoder(str(files.weights), files.config["encoder_conf"])


def prune_linear(encoder: nn.Module, amount: float) -> nn.Module:
    """Zero the `amount` share of smallest-magnitude weights in every linear layer (L1)."""
    from torch.nn.utils import prune

    if not 0.0 <= amount < 1.0:
        raise ValueError("prune amount must be in [0, 1)")
    for module in encoder.modules():
        if isinstance(module, nn.Linear) and amount > 0:
            prune.l1_unstructured(module, "weight", amount)
            prune.remove(module, "weight")  # make the zeros permanent, drop the mask
    return encoder


def write_int8_folder(files: ModelFiles, out: Path, prune: float = 0.0) -> Path:
    """A model folder holding INT8 weights (model.int8.pt) that `--model out` loads again."""
    quantized, precision = quantize_int8(prune_linear(fp32_encoder(files), prune))
    if precision != "int8":
        raise ModelError("this CPU has no quantized engine; cannot write INT8 weights")
    out.mkdir(parents=True, exist_ok=True)
    for name in (*REQUIRED_FILES, *FOLDER_EXTRAS):
        if (files.directory / name).is_file():
            shutil.copyfile(files.directory / name, out / name)
    torch.save(quantized.state_dict(), out / WEIGHTS["int8"])
    return out / WEIGHTS["int8"]


class _Graph(nn.Module):
    """The encoder with its FSMN memories as separate inputs and outputs, as ONNX needs them."""

    def __init__(self, encoder: FsmnEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(
        self, feats: torch.Tensor, memories: list[torch.Tensor]
    ) -> tuple[torch.Tensor, ...]:
        posteriors, state = self.encoder(feats, memories)
        return (posteriors, *state)


def export_onnx(encoder: FsmnEncoder, path: Path, int8: bool = False, exact: bool = True) -> Path:
    """Write the network as ONNX with a dynamic time axis; FP32 with its memory filters as 2-D
    convolutions (onnxruntime's blocked depthwise kernel: `onnx_graph.conv1d_as_2d`); `int8`:
    onnxruntime's dynamic INT8 of the graph as exported, its quantized memory filters then run
    as exact float 2-D convolutions of the same integers (`exact`; off only to compare)."""
    state = encoder.initial_state()
    names = [f"memory{i}" for i in range(len(state))]
    feats = torch.zeros(100, encoder.in_linear1.linear.in_features)
    frames = torch.export.Dim("frames", min=1)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            _Graph(encoder).eval(),
            (feats, state),
            input_names=["feats", *names],
            output_names=["posteriors", *[f"{n}_out" for n in names]],
            dynamic_shapes=({0: frames}, [None] * len(state)),
            dynamo=True,
            verbose=False,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path if not int8 else Path(tempfile.mkdtemp()) / ONNX_FILES["fp32"]
    program.save(str(target))
    _finish_graph(target, blocked=not int8)
    if int8:
        _quantize_onnx(target, path, exact)
        shutil.rmtree(target.parent)
    return path


def _finish_graph(path: Path, blocked: bool) -> None:
    """Call the dynamic axis "frames" in the graph's signature (torch.export names it s<N>);
    `blocked`: make the memory's 1-D convolutions 2-D ones (the FP32 network 14% faster on AVX2,
    the same products: posteriors within 2e-6, FunASR's segments unchanged)."""
    import onnx

    from .onnx_graph import conv1d_as_2d

    model = onnx.load(str(path))
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "frames"
    onnx.save(conv1d_as_2d(model) if blocked else model, str(path))


def _quantize_onnx(source: Path, path: Path, exact: bool = True) -> None:
    """onnxruntime's dynamic INT8 with unsigned weights: with signed weights its AVX2 kernels
    saturate and kept 59% of golden boundaries within 10 ms (unsigned: 96%, as torch's INT8).

    Measured and not taken (yet): the matrix products alone, with signed 7-bit weights
    (reduce_range, no saturation, the faster u8 x s8 kernel) and the memory filters as FP32 2-D
    convolutions: the INT8 network 23% faster, F1 within 0.0002 of FP32 on the golden, devset and
    realset groups, 96.8% of golden boundaries within 10 ms; but its chunk edges moved by 20 ms
    on tests/test_whisper.py's call and Whisper then placed one line outside its turn."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # it suggests a pre-processing step meant for CNNs
    try:
        quantize_dynamic(str(source), str(path), per_channel=True, weight_type=QuantType.QUInt8)
    finally:
        logging.disable(logging.NOTSET)
    if exact:  # ConvInteger's generic path -> float Conv of the same integers (bit-identical)
        import onnx

        from .onnx_graph import conv1d_as_2d, exact_integer_filters

        onnx.save(conv1d_as_2d(exact_integer_filters(onnx.load(str(path)))), str(path))
