"""The `funasr` profile: FunASR's own endpoint state machine, exactly (`funasr_decision.py`).

It reads FSMN's silence posteriors and frame energies, not just the speech scores, so it runs
only on the fsmn engine.
"""

from __future__ import annotations

from ..engines.base import Frames
from ..engines.fsmn import FsmnEngine, FsmnFrames
from ..segments import Segment
from .base import Profile, ProfileError
from .funasr_decision import EndpointDetector
from .funasr_options import FunasrOptions


class FunasrDecision:
    """FunASR's state machine over the frames of one recording."""

    def __init__(self, options: FunasrOptions, engine: FsmnEngine):
        self.detector = EndpointDetector(options, engine.frontend)

    def push(self, frames: Frames) -> list[Segment]:
        """Segments that ended; the frames must be FSMN's (posteriors and energies)."""
        if not isinstance(frames, FsmnFrames):
            raise ProfileError("profile funasr needs FSMN frames (silence posteriors and dB)")
        if not len(frames.scores):
            return []
        found = self.detector.push(frames.sil_posteriors, frames.decibels, frames.samples_seen)
        return [Segment(*s) for s in found]

    def finish(self) -> list[Segment]:
        """The segments still open at the end."""
        return [Segment(*s) for s in self.detector.finish()]


FUNASR = Profile(
    name="funasr",
    options_type=FunasrOptions,
    defaults=lambda config, engine="fsmn": FunasrOptions.from_config(config.get("model_conf", {})),
    decision=FunasrDecision,
    engines=("fsmn",),
    summary="FunASR's state machine reads FSMN's silence posteriors and frame energies;"
    " use --profile precise with other engines",
)
