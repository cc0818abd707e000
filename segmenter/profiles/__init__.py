"""Profiles: an engine's per-frame output in, speech segments out (see `base.Profile`).

`funasr` (the default) is FunASR's own state machine, exact; `precise` decides from the speech
score alone, with hysteresis, minimum durations and padding, for tight, separate segments.
"""

from __future__ import annotations

from typing import Any

from .base import Profile, ProfileError
from .funasr import FUNASR
from .funasr_options import FunasrOptions, VadOptions
from .precise import PRECISE, PreciseOptions

PROFILES: dict[str, Profile] = {p.name: p for p in (FUNASR, PRECISE)}
DEFAULT_PROFILE = FUNASR.name


def default_profile(engine: str) -> str:
    """The profile used when none is named: funasr on FSMN, precise on engines funasr cannot
    read (silero, fusion)."""
    return DEFAULT_PROFILE if engine == "fsmn" else PRECISE.name


def get_profile(name: str) -> Profile:
    """The profile of that name; a ValueError naming the choices otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; choose from {', '.join(PROFILES)}") from None


def profile_of(options: Any) -> Profile:
    """The profile whose options these are."""
    for profile in PROFILES.values():
        if isinstance(options, profile.options_type):
            return profile
    raise TypeError(f"{type(options).__name__} are no profile's options")


__all__ = [
    "DEFAULT_PROFILE",
    "default_profile",
    "PROFILES",
    "FunasrOptions",
    "PreciseOptions",
    "VadOptions",
    "Profile",
    "get_profile",
    "profile_of",
]
