"""Output names that would collide, found among a run's recordings before any is segmented.

A recording `rel` writes `rel + suffix` for each suffix of its formats and, with clips, the
folder `rel.clips/`; the recordings of an input folder `f/` write inside the folder `OUT/f/`.
Two recordings clash when one would write a file or its clips folder where another needs the
same name:
- as a folder: an input folder `x.wav.json/` or `x.wav.clips/` holding recordings, beside
  `x.wav` (writing one would fail, or redoing `x.wav` would replace the other's outputs);
- as a file of its own: `x.wav` and `x.wav.whisper` with json and whisper both write
  `x.wav.whisper.json`, one over the other.

The run fails one recording of each clash, with a reason naming the other: the one to do in this
run (the owner of the suffix when both are), so a finished file is never taken back. What this
cannot see (a folder a user made in OUT, a name the filesystem refuses) fails at the write, for
that file alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..writers import CLIPS_SUFFIX


@dataclass(frozen=True)
class Clash:
    """`owner`'s output `name` (a file or its clips folder) is also what `other` needs: a
    folder for its outputs (`folder`), or the same file."""

    owner: str
    other: str
    name: str
    folder: bool

    def reason(self, failed: str) -> str:
        """Why `failed` (owner or other) is not segmented: one line naming the other."""
        what = "the clips folder" if self.name.endswith(CLIPS_SUFFIX) else "an output"
        if failed == self.owner and self.folder:
            return (
                f"{what} of it, {self.name}, is the folder where the outputs of {self.other}"
                " go (an input folder of that name): rename one of them, or run them into"
                " different OUTs"
            )
        if failed == self.owner:
            return (
                f"its output {self.name} is also an output of {self.other}: rename one of them,"
                " or run them into different OUTs"
            )
        if self.folder:
            return (
                f"its outputs would go inside {self.name}, {what} of {self.owner}: rename one of"
                " them, or run them into different OUTs"
            )
        return (
            f"its output {self.name} is also an output of {self.owner}: rename one of them,"
            " or run them into different OUTs"
        )


def clashes(
    suffixes: Iterable[str],
    matching: Callable[[str], Iterable[str]],
    exists: Callable[[str], bool],
) -> Iterator[Clash]:
    """The clashes among the recordings of a run that writes `suffixes` (`.clips` included
    when it cuts clips). `matching(glob)` gives the recordings whose name matches a GLOB
    pattern, `exists(rel)` whether a recording of that name is in the run: a few indexed
    queries, never the whole list in memory."""
    suffixes = sorted(set(suffixes))
    for suffix in suffixes:  # an output where another recording's outputs need a folder
        for inside in matching(f"*{suffix}/*"):
            for cut in _folders_ending(inside, suffix):
                owner = inside[: cut - len(suffix)]
                if owner and exists(owner):
                    yield Clash(owner, inside, inside[:cut], folder=True)
    for longer in suffixes:  # the same file: x.wav + ".whisper.json", x.wav.whisper + ".json"
        for shorter in suffixes:
            if longer != shorter and longer.endswith(shorter):
                middle = longer[: -len(shorter)]
                for other in matching(f"*{middle}"):
                    owner = other[: -len(middle)]
                    if owner and exists(owner):
                        yield Clash(owner, other, owner + longer, folder=False)


def _folders_ending(rel: str, suffix: str) -> Iterator[int]:
    """Where, in `rel`, each folder whose name ends with `suffix` ends (the index of its /)."""
    at = rel.find(suffix + "/")
    while at >= 0:
        yield at + len(suffix)
        at = rel.find(suffix + "/", at + 1)
