"""What a run did, in the lines printed at its end (cron mails them), and its exit code."""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field

from ..names import shown
from .discovery import Source
from .diskfull import EXIT_DISK_FULL

log = logging.getLogger(__name__)

SHOWN_FAILURES = 5  # the summary names this many failed files, then says where the rest are


@dataclass
class Summary:
    """What a run did, for the lines printed at its end (cron mails them)."""

    done: int = 0
    skipped: int = 0
    audio_s: float = 0.0
    speech_s: float = 0.0
    wall_s: float = 0.0
    unsettled: int = 0
    failed: int = 0  # recordings of this run's inputs that are failed now (this run's or not)
    failures: list[tuple[str, str]] = field(default_factory=list)  # the first few: (file, reason)
    out: str = "OUT"
    settle_seconds: float = 5.0
    changed: int = 0  # inputs that changed while they were read: redone by the next run
    left: int = 0  # files of this run's plan still to do (a stop, a full disk)
    stopped: str = ""  # the signal that stopped the run
    disk_full: str = ""  # the line saying which disk is full and what it needs
    rebuilt: str = ""  # what --rebuild-manifest did
    unmatched: list[str] = field(default_factory=list)  # --include patterns that took no file
    gone: int = 0  # recordings under the inputs whose input is gone (batch/gone.py)
    pruned: int = 0  # of them, removed by --prune (and their outputs, `pruned_outputs`)
    pruned_outputs: int = 0

    def left_for_later(self, source: Source) -> None:
        """A recording still changing: counted and logged (by its name under OUT, as every
        line of the log names a recording), taken by the next run."""
        self.unsettled += 1
        log.info("%s: still changing, left for the next run", source.rel)

    def lines(self) -> list[str]:
        """Counts, hours, the failed files (a few, then where the list is) and a settle hint."""
        counts = f"{self.done} done, {self.skipped} already done, {self.failed} failed"
        if self.unsettled:
            counts += f", {self.unsettled} still changing (left for the next run)"
        if self.changed:
            counts += f", {self.changed} changed while read (redone by the next run)"
        if self.left:
            counts += f", {self.left} left to do"
        if self.gone:
            counts += f", {self.gone} gone"
        rate = self.audio_s / self.wall_s if self.wall_s else 0.0
        lines = [self.rebuilt] if self.rebuilt else []
        lines += [
            f"files: {counts}",
            f"audio: {self.audio_s / 3600:.3f} h, speech: {self.speech_s / 3600:.3f} h,"
            f" in {self.wall_s:.1f} s" + (f" ({rate:.0f}x real time)" if rate else ""),
        ]
        shown_failures = self.failures[:SHOWN_FAILURES]
        lines += [f"failed: {shown(name)}: {shown(why)}" for name, why in shown_failures]
        if self.failed > len(self.failures):
            lines.append(
                f"... and {self.failed - len(self.failures)} more failed:"
                f" `segmenter status {self.out}` lists them all, as does {self.out}/segmenter.log"
            )
        if self.unsettled and self.unsettled > self.done + self.failed:
            lines.append(
                f"hint: {self.unsettled} file(s) changed in the last {self.settle_seconds:g} s"
                " (still being copied?); a later run takes them, or --settle-seconds 0 now"
            )
        for pattern in self.unmatched:
            lines.append(
                f"hint: --include {pattern!r} matched no file under the inputs (a pattern"
                " matches a file's name or its path under its input, in any case)"
            )
        if self.stopped:
            lines.append(f"stopped by {self.stopped}: the next run takes the files left to do")
        return lines + self._gone_lines()

    def _gone_lines(self) -> list[str]:
        """What became of recordings whose inputs are gone (batch/gone.py)."""
        if self.pruned:
            return [
                f"pruned: {self.pruned} gone recording(s): {self.pruned_outputs} output(s)"
                " and their manifest rows removed"
            ]
        if not self.gone:
            return []
        return [
            f"gone: {self.gone} recording(s) whose input is no longer there (moved or deleted):"
            " their outputs stay, not counted in the totals; `segmenter status"
            f" {self.out}` lists them, a run with --prune removes them"
        ]

    @property
    def exit_code(self) -> int:
        """4 disk full, 128 + the signal that stopped it, 1 some failed, else 0."""
        if self.disk_full:
            return EXIT_DISK_FULL
        if self.stopped:
            return 128 + signal.Signals[self.stopped]
        return 1 if self.failed else 0
