"""`BatchSettings`: everything a batch run needs, checked as on the command line.

The workers receive it with each chunk (pickled), so it lives apart from the coordinator's
modules; `result_config()` is the part that changes a recording's outputs (its hash is each
manifest row's `config`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..chunking import ChunkOptions
from ..engines import DEFAULT_ENGINE
from ..engines.model import DEFAULT_RUNTIME, resolve_model
from ..profiles import DEFAULT_PROFILE
from ..settings import DecisionSettings, SettingError, check


@dataclass(frozen=True)
class BatchSettings:
    """Everything a run needs; what changes results goes into the manifest's config hash."""

    inputs: list[str]
    out: Path
    jobs: int | None = None  # None: the cores, as many as memory holds (pool.py)
    precision: str = "int8"
    runtime: str = DEFAULT_RUNTIME  # onnx: no torch in the workers; or torch (its extra)
    model: str | None = None
    # the engine (model/precision/runtime are FSMN's), the profile and its settings given
    decision: DecisionSettings = field(default_factory=DecisionSettings)
    channel: int | None = None
    clips: bool = False
    clip_pad_ms: int = 0
    clip_rate: int | None = None  # None: the source's rate
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    retry_failed: bool = False
    force: bool = False
    redo_changed: bool = False  # redo the files done with other settings (batch/changed.py)
    prune: bool = False  # remove the outputs and rows of gone recordings (batch/gone.py)
    quiet: bool = False
    report: bool = False  # write OUT/report.html at the end
    settle_seconds: float = 5.0
    stop_grace: float = 30.0  # seconds the files in flight get after SIGTERM/SIGINT
    rebuild_manifest: bool = False  # a damaged manifest: set it aside, rebuild from the JSONs
    formats: tuple[str, ...] = ("json", "rttm")
    chunking: ChunkOptions = field(default_factory=ChunkOptions)
    backend: str = "loky"  # or "dask": a dask.distributed cluster through joblib
    scheduler: str | None = None  # dask scheduler address; None starts a LocalCluster

    def result_config(self) -> dict[str, Any]:
        """The settings that change a recording's outputs."""
        files = resolve_model(self.model)
        engine, profile = self.decision.engine, self.decision.profile
        config = {
            "model": files.sha256,
            "precision": self.precision,
            "runtime": self.runtime,
            "options": self.decision.resolve(files.config).to_dict(),
            "channel": self.channel,
            "clips": [self.clip_pad_ms, self.clip_rate] if self.clips else None,
            "formats": sorted(self.formats),
            "chunking": asdict(self.chunking),
        }
        if profile != DEFAULT_PROFILE:  # so the default's hash, and past batches, stand
            config["profile"] = profile
        if engine != DEFAULT_ENGINE:  # likewise; the shipped silero-vad graph's version counts
            from ..engines.silero import UPSTREAM_VERSION  # (not the silero-vad package's: the
            # plain install has none, and the engine never reads it)

            config["engine"] = [engine, UPSTREAM_VERSION]
        return config

    def __post_init__(self) -> None:
        """The numbers checked as on the command line (settings.py), for library callers."""
        numbers = ("jobs", "channel", "clip_pad_ms", "clip_rate", "settle_seconds", "stop_grace")
        for name in numbers:
            if getattr(self, name) is not None:
                check(name, getattr(self, name))
        if self.scheduler and self.backend != "dask":
            raise SettingError(
                f"scheduler {self.scheduler} is a Dask scheduler: add --backend dask"
            )
