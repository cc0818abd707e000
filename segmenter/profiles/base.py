"""The seam every profile fits: an engine's frames in, finished speech segments out, streaming.

A profile is a name, a typed options class (defaults, overrides, a JSON form for the per-file
document and the batch's config hash) and a per-recording `Decision`. A profile that reads more
than the speech scores names the engines whose frames carry it, and refuses any other; one that
reads frame energies says so, and gets them from any engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..engines.base import Engine, Frames
from ..errors import SegmenterError
from ..segments import Segment


class Decision(Protocol):
    """Per-recording state of a profile: push frames in order, then finish once."""

    def push(self, frames: Frames) -> list[Segment]:
        """The segments that these frames finished."""
        ...

    def finish(self) -> list[Segment]:
        """The remaining segments, at the end of the recording."""
        ...


class ProfileOptions(Protocol):
    """A profile's settings: an immutable dataclass."""

    def with_overrides(self, **overrides: Any) -> ProfileOptions:
        """A copy with some settings replaced; unknown names raise TypeError."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready settings."""
        ...


class ProfileError(SegmenterError, ValueError):
    """A profile asked of an engine whose frames it cannot read."""


@dataclass(frozen=True)
class Profile:
    """A decision strategy: its name, options type, the engines it reads, and its factory."""

    name: str
    options_type: type
    # (a model's config.yaml, an engine's name) -> the default options for that engine
    defaults: Callable[[dict[str, Any], str], Any]
    decision: Callable[[Any, Engine], Decision]
    engines: tuple[str, ...] | None = None  # engines whose frames it reads; None: any engine
    energy: bool = False  # whether it reads each frame's energy (Frames.energy_db)
    # whether the engine's network starts with the recording's mirrored first second as its
    # past, where its zero start is misread (engines.base.Primed); FunASR's exact decision
    # needs the zero start
    primed: bool = False
    summary: str = ""

    def reads(self, engine: str) -> bool:
        """Whether the frames of the engine of this name carry what this profile reads."""
        return self.engines is None or engine in self.engines

    def check_engine(self, engine: Engine | str) -> None:
        """Refuse an engine (or an engine's name) whose frames lack what this profile reads."""
        name = engine if isinstance(engine, str) else engine.name
        if not self.reads(name):
            raise ProfileError(
                f"profile {self.name} works only with the {' or '.join(self.engines)} engine"
                f" (not {name}): {self.summary}"
            )

    def start(self, options: Any, engine: Engine) -> Decision:
        """A fresh decision for one recording."""
        if not isinstance(options, self.options_type):
            raise TypeError(f"profile {self.name} takes {self.options_type.__name__}")
        self.check_engine(engine)
        return self.decision(options, engine)


def replace_checked(
    options: Any,
    kind: str,
    overrides: dict[str, Any],
    check: Callable[[str, Any], None] | None = None,
) -> Any:
    """`dataclasses.replace` that names unknown settings in its TypeError and passes each new
    value through `check` first."""
    names = {f.name for f in dataclasses.fields(options)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"unknown {kind} option(s): {', '.join(unknown)}")
    for name, value in overrides.items() if check else ():
        check(name, value)
    return dataclasses.replace(options, **overrides) if overrides else options
