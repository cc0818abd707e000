"""What a setting accepts: a number in a range, text, a list of text, a flag (the rule classes).

A decision setting's rule sits in its options field's metadata (`field(metadata={"help": ...,
"rule": Number(...)})`, profiles/); settings.py holds the rules of the other settings and derives
the command line's, the job files' and the API's checks from both. This module imports nothing
from the package but errors.py, so the profiles can use it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import SegmenterError


class SettingError(SegmenterError, ValueError):
    """A setting given a value it does not accept; the message names both."""


@dataclass(frozen=True)
class Number:
    """A finite number (whole or not) within [low, high]; `above` makes low itself refused."""

    whole: bool
    low: float | None = None
    high: float | None = None
    unit: str = ""
    above: bool = False

    def describe(self) -> str:
        """What the setting accepts, in words: 'a whole number from 1 to 65535'."""
        kind = "a whole number" if self.whole else "a number"
        if self.low is not None and self.high is not None:
            span = f"from {plain(self.low)} to {plain(self.high)}"
        elif self.low is not None:
            span = f"{'>' if self.above else '>='} {plain(self.low)}"
        else:
            span = f"<= {plain(self.high)}"
        return f"{kind} {span}" + (f" ({self.unit})" if self.unit else "")

    def fits(self, value: Any) -> bool:
        """Whether a parsed value (TOML, Python) is of the right kind and in range."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.whole and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.above else value < self.low):
            return False
        return self.high is None or value <= self.high

    def parse(self, text: str) -> int | float | None:
        """The number a command-line word spells, or None if it spells none."""
        try:
            return int(text) if self.whole else float(text)
        except ValueError:
            return None


def plain(number: float) -> str:
    """A bound as people write it: 3600000, not 3.6e+06."""
    return str(int(number)) if float(number).is_integer() else str(number)


@dataclass(frozen=True)
class Text:
    """A string; with `choices`, one of them."""

    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"one of {', '.join(self.choices)}" if self.choices else "a string"

    def fits(self, value: Any) -> bool:
        return isinstance(value, str) and (not self.choices or value in self.choices)


@dataclass(frozen=True)
class Texts:
    """A list of strings (with `single`, one string is accepted too)."""

    single: bool = False

    def describe(self) -> str:
        return "a string or a list of strings" if self.single else "a list of strings"

    def fits(self, value: Any) -> bool:
        if self.single and isinstance(value, str):
            return True
        return isinstance(value, list) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def describe(self) -> str:
        return "true or false"

    def fits(self, value: Any) -> bool:
        return isinstance(value, bool)


Rule = Number | Text | Texts | Flag


def check_value(rule: Rule, value: Any, label: str) -> Any:
    """`value` if `rule` accepts it; else SettingError naming `label`."""
    if not rule.fits(value):
        raise SettingError(f"{label} must be {rule.describe()}, got {value!r}")
    return value


def field_rules(options_type: type) -> dict[str, Rule]:
    """The rule of each field of an options dataclass that has one (in its metadata)."""
    return {
        f.name: f.metadata["rule"] for f in dataclasses.fields(options_type) if "rule" in f.metadata
    }


def field_helps(options_type: type) -> dict[str, str]:
    """The help of each field of an options dataclass that has one (in its metadata)."""
    return {
        f.name: f.metadata["help"] for f in dataclasses.fields(options_type) if "help" in f.metadata
    }
