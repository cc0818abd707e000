"""The FSMN network of FSMN-VAD, built from `encoder_conf`, run in a stream with its memory carried.

Parameter names match FunASR's checkpoint so `model.pt` loads strictly. INT8 (dynamic
quantization of the linear layers) is made in one place, `quantize_int8`.
"""

from __future__ import annotations

import platform
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class _Linear(nn.Module):
    """FunASR wraps each nn.Linear in a module; keep its `.linear` level for the weight names."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class _Memory(nn.Module):
    """The FSMN memory: a causal depthwise filter over the last `lorder` frames, plus the input."""

    def __init__(self, dim: int, lorder: int, lstride: int):
        super().__init__()
        self.conv_left = nn.Conv2d(
            dim, dim, (lorder, 1), dilation=(lstride, 1), groups=dim, bias=False
        )
        self.lstride = lstride
        self.context = (lorder - 1) * lstride

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (dim, T), past (dim, context) -> (x + filtered, new past)."""
        padded = torch.cat([past, x], dim=1)
        weight = self.conv_left.weight.squeeze(-1)
        filtered = F.conv1d(padded[None], weight, dilation=self.lstride, groups=weight.shape[0])
        return x + filtered[0], padded[:, padded.shape[1] - self.context :]


class _Block(nn.Module):
    def __init__(self, linear_dim: int, proj_dim: int, lorder: int, lstride: int):
        super().__init__()
        self.linear = _Linear(linear_dim, proj_dim, bias=False)
        self.fsmn_block = _Memory(proj_dim, lorder, lstride)
        self.affine = _Linear(proj_dim, linear_dim)

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projected, past = self.fsmn_block(self.linear(x).T, past)
        return torch.relu_(self.affine(projected.T)), past


class FsmnEncoder(nn.Module):
    """FunASR's FSMN encoder (left context only, as in FSMN-VAD) with a softmax output."""

    def __init__(
        self,
        input_dim: int,
        input_affine_dim: int,
        fsmn_layers: int,
        linear_dim: int,
        proj_dim: int,
        lorder: int,
        rorder: int,
        lstride: int,
        rstride: int,
        output_affine_dim: int,
        output_dim: int,
        **_: Any,
    ):
        super().__init__()
        if rorder:
            raise ValueError("FSMN with right context (rorder > 0) cannot stream; unsupported")
        self.in_linear1 = _Linear(input_dim, input_affine_dim)
        self.in_linear2 = _Linear(input_affine_dim, linear_dim)
        self.fsmn = nn.ModuleList(
            _Block(linear_dim, proj_dim, lorder, lstride) for _ in range(fsmn_layers)
        )
        self.out_linear1 = _Linear(linear_dim, output_affine_dim)
        self.out_linear2 = _Linear(output_affine_dim, output_dim)

    def initial_state(self) -> list[torch.Tensor]:
        """Zero memory for every FSMN layer, as at the start of a recording."""
        return [
            torch.zeros(b.fsmn_block.conv_left.weight.shape[0], b.fsmn_block.context)
            for b in self.fsmn
        ]

    def forward(
        self, feats: torch.Tensor, state: list[torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """feats (T, input_dim) -> posteriors (T, output_dim), new state."""
        x = torch.relu_(self.in_linear2(self.in_linear1(feats)))
        new_state = []
        for block, past in zip(self.fsmn, state, strict=True):
            x, past = block(x, past)
            new_state.append(past)
        return torch.softmax(self.out_linear2(self.out_linear1(x)), dim=-1), new_state


def load_encoder(weights: str, encoder_conf: dict[str, Any]) -> FsmnEncoder:
    """Build the encoder from `encoder_conf` and load `model.pt` strictly."""
    encoder = FsmnEncoder(**encoder_conf)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    prefix = "encoder."
    encoder.load_state_dict({k.removeprefix(prefix): v for k, v in state.items()}, strict=True)
    return encoder.eval()


def pick_engine(machine: str, supported: list[str]) -> str | None:
    """The quantized kernel engine for a CPU: qnnpack on ARM (else "NoQEngine"), x86 elsewhere."""
    arm = machine.lower() in ("aarch64", "arm64", "armv7l", "armv8l")
    preferred = ("qnnpack",) if arm else ("x86", "fbgemm", "onednn", "qnnpack")
    return next((e for e in preferred if e in supported), None)


def load_int8_encoder(weights: str, encoder_conf: dict[str, Any]) -> nn.Module:
    """An INT8 folder's encoder (`segmenter quantize`): quantized structure, weights strictly."""
    quantized, precision = quantize_int8(FsmnEncoder(**encoder_conf))
    if precision != "int8":
        raise RuntimeError("this model is INT8 only and this CPU has no quantized engine")
    with warnings.catch_warnings():  # torch's own loader of quantized tensors: TypedStorage
        warnings.simplefilter("ignore", UserWarning)
        state = torch.load(weights, map_location="cpu", weights_only=True)
    quantized.load_state_dict(state, strict=True)
    return quantized.eval()


def quantize_int8(encoder: FsmnEncoder) -> tuple[nn.Module, str]:
    """Dynamic INT8 of the linear layers (per-channel weights); FP32 where no engine exists.

    Per-channel weights were the most faithful of the dynamic schemes measured (README, INT8).
    Returns the model and the precision it really runs in.
    """
    engine = pick_engine(platform.machine(), torch.backends.quantized.supported_engines)
    if engine is None:
        warnings.warn("no quantized engine on this CPU; running FP32", stacklevel=2)
        return encoder, "fp32"
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():  # torch.ao.quantization is deprecated upstream
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        config = {nn.Linear: per_channel_dynamic_qconfig}
        quantized = quantize_dynamic(encoder, config, dtype=torch.qint8)
    return quantized, "int8"


class NetworkStream:
    """Runs the encoder over consecutive feature batches, carrying the FSMN memory."""

    def __init__(self, encoder: nn.Module, sil_pdf_ids: tuple[int, ...]):
        self.encoder = encoder
        self.sil_pdf_ids = list(sil_pdf_ids)
        self.state = encoder.initial_state()

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        """Silence posteriors (T, len(sil_pdf_ids)) float32 for features (T, dim)."""
        if len(feats) == 0:
            return np.zeros((0, len(self.sil_pdf_ids)), np.float32)
        with torch.inference_mode():
            posteriors, self.state = self.encoder(torch.from_numpy(feats), self.state)
            return posteriors[:, self.sil_pdf_ids].numpy()
