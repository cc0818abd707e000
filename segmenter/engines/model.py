"""Model folders in the ModelScope/FunASR layout: model.pt, config.yaml, am.mvn.

The bundled FSMN-VAD is the default; a local folder or a ModelScope id can replace it. A folder
made by `segmenter quantize` holds model.int8.pt instead of model.pt; model.onnx and
model.int8.onnx (from `segmenter export-onnx`) serve the onnx runtime, the default. A folder
without them has them exported once (`ensure_onnx`, with torch: the `torch` extra) into the
user's cache; `export.py` beside this holds the export itself.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import EXIT_FAILED, SegmenterError

BUNDLED_MODEL_NAME = "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch"
REQUIRED_FILES = ("config.yaml", "am.mvn")
WEIGHTS = {"fp32": "model.pt", "int8": "model.int8.pt"}  # torch weights, by how they are stored
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
PRECISIONS = ("int8", "fp32")
RUNTIMES = ("onnx", "torch")
DEFAULT_RUNTIME = "onnx"  # onnxruntime: no torch in the workers (~115 MB each instead of ~290)


class ModelError(SegmenterError):
    """A model that cannot be found or loaded; the message is one line."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class ModelFiles:
    """A resolved model folder with its parsed configuration and CMVN statistics."""

    name: str
    directory: Path
    config: dict[str, Any]
    cmvn: np.ndarray  # (2, dim) float32: shift to add, then scale to multiply
    weights: Path  # model.pt, or model.int8.pt in a folder that is INT8 only
    sha256: str  # of the weights

    @property
    def int8_only(self) -> bool:
        """True for a folder made by `segmenter quantize` (no FP32 weights to run)."""
        return self.weights.name == WEIGHTS["int8"]

    def onnx_file(self, precision: str) -> Path:
        """Where the ONNX network for a precision is: the folder's own, else its place in the
        cache (keyed by the weights' hash). Only looks: `ensure_onnx` exports a missing one."""
        path = self.directory / ONNX_FILES[precision]
        if path.is_file():
            return path
        return onnx_cache() / self.sha256 / ONNX_FILES[precision]


def ensure_onnx(files: ModelFiles, precision: str) -> Path:
    """The ONNX network for a precision, exported once into the cache (with torch, the `torch`
    extra) where the folder has none, so any FSMN folder runs on the default runtime. Vad.load
    and a batch (once, before its workers start) call it."""
    path = files.onnx_file(precision)
    if path.is_file():
        return path
    if files.int8_only:
        raise ModelError(
            f"model {files.name}: holds torch INT8 weights only (from segmenter quantize) and no"
            f" {ONNX_FILES[precision]}; run it with --runtime torch"
        )
    _export(files, path, precision)
    return path


def _export(files: ModelFiles, path: Path, precision: str) -> None:
    """Export the network to `path` (written under a temporary name, then renamed: workers
    that export at once never read half a file)."""
    from ..install import extra_hint

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".export-", suffix=".onnx", dir=path.parent)
    os.close(handle)
    try:
        from .export import export_onnx, fp32_encoder  # torch, onnx, onnxscript

        export_onnx(fp32_encoder(files), Path(temporary), int8=precision == "int8")
        os.replace(temporary, path)
    except ImportError as exc:
        what = f"model {files.name} has no {path.name}; exporting it to ONNX"
        raise ModelError(f"{extra_hint('torch', what)} ({exc})") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


def onnx_cache() -> Path:
    """Where ONNX files exported for model folders without them are kept (XDG cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "segmenter" / "onnx"


def bundled_model_dir() -> Path:
    """The FSMN-VAD folder shipped inside the package."""
    return Path(str(resources.files("segmenter") / "models" / "fsmn-vad"))


def resolve_model(model: str | os.PathLike | None = None) -> ModelFiles:
    """Find and parse a model: None (bundled), a local folder, or a ModelScope id."""
    if model is None:
        return _read_folder(BUNDLED_MODEL_NAME, bundled_model_dir())
    path = Path(model).expanduser()
    if path.is_dir():
        return _read_folder(str(path), path)
    if path.exists() or str(model).startswith((".", "/", "~")) or str(model).count("/") != 1:
        raise ModelError(f"model {model}: not a model folder or a ModelScope id (owner/name)")
    return _read_folder(str(model), _download(str(model)))


def _download(model_id: str) -> Path:
    """Fetch a ModelScope model into its cache (offline when already cached)."""
    from ..install import extra_hint

    try:
        from modelscope import snapshot_download
    except ImportError:
        raise ModelError(extra_hint("modelscope", f"model {model_id}: a ModelScope id")) from None
    try:
        return Path(snapshot_download(model_id))
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear line
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model {model_id}: cannot download from ModelScope and not cached ({reason})"
        ) from None


def _read_folder(name: str, directory: Path) -> ModelFiles:
    weights = [directory / w for w in WEIGHTS.values() if (directory / w).is_file()]
    missing = [] if weights else [WEIGHTS["fp32"]]
    missing += [f for f in REQUIRED_FILES if not (directory / f).is_file()]
    if missing:
        raise ModelError(f"model {name}: {directory} lacks {', '.join(missing)}")
    with open(directory / "config.yaml", encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    if not isinstance(config, dict) or "encoder_conf" not in config:
        raise ModelError(f"model {name}: config.yaml has no encoder_conf")
    return ModelFiles(
        name=name,
        directory=directory,
        config=config,
        cmvn=read_cmvn(directory / "am.mvn"),
        weights=weights[0],
        sha256=sha256_of(weights[0]),
    )


def read_cmvn(path: Path) -> np.ndarray:
    """The <AddShift> and <Rescale> vectors of a Kaldi nnet-format am.mvn, as (2, dim)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    vectors: dict[str, list[float]] = {}
    for tag, following in zip(lines, lines[1:], strict=False):
        key = tag.split()[0] if tag.split() else ""
        if key in ("<AddShift>", "<Rescale>") and following.startswith("<LearnRateCoef>"):
            vectors[key] = [float(v) for v in following.split()[3:-1]]
    if set(vectors) != {"<AddShift>", "<Rescale>"}:
        raise ModelError(f"{path}: no <AddShift>/<Rescale> statistics")
    return np.array([vectors["<AddShift>"], vectors["<Rescale>"]], dtype=np.float32)


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, hex: names a model's exact weights in documents and hashes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
