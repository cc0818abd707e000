"""Engines: audio in, one speech score per 10 ms frame out (see `base.ScoreStream`).

`fsmn` (the default) is FunASR's FSMN-VAD, bundled; `silero` is silero-vad's model, bundled too
(`models/silero-vad/`); `fusion` runs both and combines their scores (`fusion.py`).
"""

from __future__ import annotations

ENGINES = ("fsmn", "silero", "fusion")
DEFAULT_ENGINE = "fsmn"


def needs_silero(engine: str) -> bool:
    """Whether an engine runs silero-vad's model."""
    return engine in ("silero", "fusion")


def check_available(engine: str) -> None:
    """Refuse an unknown engine, or one whose model an install lost (ModelError, one line)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    if needs_silero(engine):
        from .silero import model_path

        model_path()
