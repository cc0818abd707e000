"""The public engine: load FSMN-VAD once, then segment files, arrays or a live stream of blocks.

vad = Vad.load()                       # bundled model, INT8 on onnxruntime, one thread
vad.segments("meeting.wav")            # [Segment(start=890, end=22800), ...] in ms
stream = vad.stream(max_end_silence_time=500)
found = []
for block in blocks:                   # 16 kHz mono samples: float, or int16 (scaled by 1/32768)
    found += stream.feed(block)        # segments that ended so far
found += stream.finish()               # the end of the audio closes the last segment: keep it
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, open_audio
from .chunking import ChunkOptions, asr_chunks
from .engines import DEFAULT_ENGINE, check_available, needs_silero
from .engines.base import Engine, Frames, frame_stream
from .engines.fsmn import FsmnEngine
from .engines.fsmn_features import FrontendConfig
from .engines.fusion import FusionEngine
from .engines.model import (
    DEFAULT_RUNTIME,
    PRECISIONS,
    RUNTIMES,
    ModelError,
    ModelFiles,
    ensure_onnx,
    resolve_model,
)
from .engines.silero import SileroEngine
from .profiles import PROFILES, PreciseOptions, default_profile, get_profile, profile_of
from .profiles.funasr_options import FunasrOptions, VadOptions
from .segments import FileResult, Segment, segments_document
from .settings import DecisionSettings


class VadStream:
    """Segments a recording fed as 16 kHz mono float32 blocks of any size.

    The engine turns the audio into per-frame scores; the profile whose `options` these are
    turns them into segments. Both carry their state across blocks, so the segments do not
    depend on how the audio was cut, and memory stays flat however long the recording is.
    """

    def __init__(
        self, vad: Vad, options: FunasrOptions | PreciseOptions, keep_scores: bool = False
    ):
        self.profile = profile_of(options)
        self.decision = self.profile.start(options, vad.engine)  # refuses an engine it can't read
        # FunASR's options name the network outputs that are silence; other profiles keep the
        # model's own
        sil_pdf_ids = getattr(options, "sil_pdf_ids", None)
        engine = vad.engine
        self.frames = frame_stream(
            engine.score_stream(sil_pdf_ids)
            if sil_pdf_ids
            else engine.score_stream(primed=self.profile.primed),
            energy=self.profile.energy,
        )
        self.scores: list[np.ndarray] | None = [] if keep_scores else None

    def speech_scores(self) -> np.ndarray | None:
        """Per-frame speech score (1 - silence posterior) so far, if the stream keeps them."""
        if self.scores is None:
            return None
        return np.concatenate(self.scores) if self.scores else np.zeros(0, np.float32)

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """Add audio; returns the segments that ended within what was seen so far.

        `samples` is 16 kHz mono: 1-D floats in [-1, 1], or 1-D int16 or int32 PCM (scaled by
        1/32768 or 1/2**31). A 2-D (multi-channel) array, or any other dtype, raises ValueError:
        mix it down or pick a channel first.
        """
        return self._decide(self.frames.feed_frames(mono_float32(samples)))

    def finish(self) -> list[Segment]:
        """End of the recording: returns the remaining segments (often the last one; keep them)."""
        return self._decide(self.frames.finish_frames()) + self.decision.finish()

    def _decide(self, frames: Frames) -> list[Segment]:
        """Keep the scores if asked, then let the profile decide on the frames."""
        if self.scores is not None:
            self.scores.append(frames.scores)
        return self.decision.push(frames)


class Vad:
    """An engine (FSMN-VAD with FunASR's front end, silero-vad, or both fused) and a decision
    profile; load once, use for many files.

    `options` are the `funasr` profile's settings; `profile` is the one used when a call names
    none, and `defaults` hold each profile's settings (precise's tuned for this engine).
    """

    def __init__(
        self,
        files: ModelFiles,
        precision: str,
        options: FunasrOptions | None = None,
        runtime: str = DEFAULT_RUNTIME,
        threads: int | None = None,
        profile: str | None = None,
        engine: str = DEFAULT_ENGINE,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}")
        check_available(engine)
        self.files = files
        self.runtime = runtime
        self.frontend = FrontendConfig.from_config(files.config.get("frontend_conf", {}))
        self.profile = get_profile(profile or default_profile(engine)).name
        self.defaults = {name: p.defaults(files.config, engine) for name, p in PROFILES.items()}
        if options is not None:
            self.defaults["funasr"] = options
        self.encoder, self.precision = None, precision
        self.engine = self._engine(engine, threads)
        get_profile(self.profile).check_engine(self.engine)

    def _engine(self, name: str, threads: int | None) -> Engine:
        """The named engine: FSMN on this model's network, silero-vad's model, or both fused."""
        silero = SileroEngine.load(threads) if needs_silero(name) else None
        if name == "silero":
            return silero
        self.encoder, self.precision = _load_network(
            self.files, self.precision, self.runtime, threads
        )
        fsmn = FsmnEngine(
            self.frontend, self.files.cmvn, self.network_stream, self.options.sil_pdf_ids
        )
        return FusionEngine(fsmn, silero) if name == "fusion" else fsmn

    @classmethod
    def load(
        cls,
        model: str | os.PathLike | None = None,
        precision: str = "int8",
        threads: int | None = 1,
        runtime: str = DEFAULT_RUNTIME,
        profile: str | None = None,
        engine: str = DEFAULT_ENGINE,
        settings: DecisionSettings | None = None,
        **overrides: Any,
    ) -> Vad:
        """Load a model (None: the bundled one; a folder; or a ModelScope id).

        `threads` sets the network's intra-op threads (None leaves the runtime's default);
        `runtime` "onnx" (default) runs the network on onnxruntime and never imports torch,
        "torch" on torch (the `torch` extra);
        `engine` "fsmn" (default), "silero" (silero-vad's model; `model`, `precision` and
        `runtime` are FSMN's and do not change it) or "fusion" (both, combined);
        `profile` is the decision used when a call names none ("funasr" or "precise"; None:
        funasr on the fsmn engine, precise on the others, which funasr cannot read);
        `overrides` replace that profile's settings (for funasr: from the model's config).
        `settings` (a `DecisionSettings`) gives the engine, profile and overrides as one
        object, as the command line builds it, instead of those keywords.
        """
        if settings is None:
            settings = DecisionSettings(engine, profile, overrides)
        elif profile is not None or engine != DEFAULT_ENGINE or overrides:
            raise TypeError("Vad.load: give settings, or engine, profile and overrides; not both")
        files = resolve_model(model)
        vad = cls(files, precision, None, runtime, threads, settings.profile, settings.engine)
        vad.defaults[vad.profile] = settings.resolve(files.config)
        return vad

    @property
    def options(self) -> FunasrOptions:
        """The funasr profile's settings (FunASR's names), as calls that name none get them."""
        return self.defaults["funasr"]

    def network_stream(self, sil_pdf_ids: tuple[int, ...]):
        """A fresh network stream (zero FSMN memory) on this model's runtime."""
        if self.runtime == "onnx":
            from .engines.fsmn_onnx import OnnxStream

            return OnnxStream(self.encoder, sil_pdf_ids)
        from .engines.fsmn_network import NetworkStream

        return NetworkStream(self.encoder, sil_pdf_ids)

    @property
    def model_info(self) -> dict[str, Any]:
        """What the per-file document says of the engine: its model(s), versions and checksums."""
        if self.engine.name == "silero":
            return self.engine.info()
        fsmn = {
            "engine": "fsmn",
            "name": self.files.name,
            "sha256": self.files.sha256,
            "precision": self.precision,
            "runtime": self.runtime,
        }
        if self.engine.name == "fsmn":
            return fsmn
        silero = self.engine.silero.info()
        return {
            "engine": "fusion",
            "name": f"{self.files.name} + {silero['name']}",
            "precision": self.precision,  # FSMN's; silero-vad's model runs as it comes
            "runtime": self.runtime,
            "fsmn": fsmn,
            "silero": silero,
        }

    def settings(
        self, profile: str | None = None, **overrides: Any
    ) -> FunasrOptions | PreciseOptions:
        """The settings of `profile` (None: this Vad's) with `overrides` on top."""
        return self.defaults[get_profile(profile or self.profile).name].with_overrides(**overrides)

    def stream(
        self, keep_scores: bool = False, profile: str | None = None, **overrides: Any
    ) -> VadStream:
        """A new streaming session; `profile` and `overrides` apply to it alone."""
        return VadStream(self, self.settings(profile, **overrides), keep_scores)

    def segments(
        self, audio: str | os.PathLike | np.ndarray, profile: str | None = None, **overrides: Any
    ) -> list[Segment]:
        """Speech segments of a file, or of 16 kHz mono samples (as `VadStream.feed` takes)."""
        if isinstance(audio, np.ndarray):
            stream = self.stream(profile=profile, **overrides)
            return stream.feed(audio) + stream.finish()
        return self.process_file(audio, profile=profile, **overrides).segments

    def document(
        self,
        path: str | os.PathLike,
        *,
        channel: int | None = None,
        chunking: ChunkOptions | None = None,
        profile: str | None = None,
        **overrides: Any,
    ) -> dict[str, Any]:
        """The per-file document of a recording, chunked for ASR if `chunking` asks."""
        chunking = chunking or ChunkOptions()
        keep = chunking.limit_ms is not None  # splitting long segments needs the scores
        options = self.settings(profile, **overrides)
        result = self.process_file(path, channel=channel, keep_scores=keep, options=options)
        if chunking.active:
            duration_ms = round(result.info.duration * 1000)
            chunks = asr_chunks(result.segments, result.speech_scores, duration_ms, chunking)
            result = FileResult(result.info, chunks)
        name = profile_of(options).name
        document = segments_document(result, self.model_info, options, name)
        if chunking.active:
            document["chunking"] = dataclasses.asdict(chunking)
        return document

    def process_file(
        self,
        path: str | os.PathLike,
        *,
        channel: int | None = None,
        keep_scores: bool = False,
        profile: str | None = None,
        options: FunasrOptions | PreciseOptions | None = None,
        **overrides: Any,
    ) -> FileResult:
        """Decode a file block by block and segment it (with `options` if given, else those of
        `profile` with `overrides`)."""
        stream = VadStream(self, options or self.settings(profile, **overrides), keep_scores)
        found: list[Segment] = []
        with open_audio(path, channel=channel) as audio:
            for block in audio:
                found += stream.feed(block)
            info = audio.info
        found += stream.finish()
        return FileResult(info, found, stream.speech_scores())


def mono_float32(samples: np.ndarray) -> np.ndarray:
    """1-D float32 samples from floats or signed integer PCM; refuses what would be misread."""
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(
            f"expected 1-D mono samples, got shape {array.shape}; mix down"
            " (samples.mean(axis=1)) or pick a channel (samples[:, 0]) first"
        )
    if array.dtype in (np.int16, np.int32):  # PCM: full scale is -iinfo.min
        return (array / -np.iinfo(array.dtype).min).astype(np.float32)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected float, int16 or int32 samples, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def _load_network(files: ModelFiles, precision: str, runtime: str, threads: int | None):
    """The network (torch module or onnxruntime session) and the precision it really runs in."""
    if files.int8_only and precision != "int8":
        raise ModelError(f"model {files.name}: holds INT8 weights only; use precision int8")
    if runtime == "onnx":
        from .engines.fsmn_onnx import load_session

        return load_session(ensure_onnx(files, precision), threads), precision
    try:
        import torch
    except ImportError:
        from .install import extra_hint

        raise ModelError(extra_hint("torch", "the torch runtime")) from None
    from .engines.fsmn_network import load_encoder, load_int8_encoder, quantize_int8

    if threads is not None:
        torch.set_num_threads(threads)
    if files.int8_only:
        return load_int8_encoder(str(files.weights), files.config["encoder_conf"]), "int8"
    encoder = load_encoder(str(files.weights), files.config["encoder_conf"])
    return quantize_int8(encoder) if precision == "int8" else (encoder, "fp32")


def steady_allocator() -> None:
    """Keep glibc from unmapping and re-faulting the engine's multi-MB batch buffers.

    Process-wide, so the commands and workers call it, not `Vad.load`. Under glibc's defaults
    the front end's fresh buffers are page-faulted every batch (`segmenter segment` on an hour:
    13.7 s instead of 10.0, 740k page faults instead of 50k); Dask's
    nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also freezes the mmap
    threshold at 128 KiB, and the engine ran at half speed (bench/batch.py --backend dask).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return
    libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD


def one_core_process() -> None:
    """Set this process up to run the engine on one core, as a batch worker is.

    One BLAS thread (numpy's OpenBLAS would otherwise spin a thread per core beside the
    engine's own) and glibc thresholds that keep the batch buffers mapped.
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    steady_allocator()


__all__ = [
    "SAMPLE_RATE",
    "DecisionSettings",
    "FileResult",
    "FunasrOptions",
    "PreciseOptions",
    "Segment",
    "Vad",
    "VadOptions",
    "VadStream",
]
