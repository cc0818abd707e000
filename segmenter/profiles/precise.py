"""The `precise` profile: segments from the per-frame speech score, edges set by the frame energy.

Offline, it is these steps on the 10 ms frames, each defined on the whole recording:
0. with `floor_weight` > 0, both thresholds rise by `floor_weight` x the noise floor (a low
   percentile of the recent scores; see `NoiseFloor`), so noisy recordings need surer speech;
1. hysteresis: speech starts at a frame scoring at least `enter_threshold` and lasts until a
   frame scores below `leave_threshold`;
2. pauses shorter than `min_silence_ms` are bridged, then runs shorter than `min_speech_ms`
   dropped;
3. a run longer than `max_single_segment_time` (less twice the padding) is cut at its least
   speech-like frame in the second half of the allowed length (that frame belongs to neither
   piece), again and again;
4. each piece's edges move inward past frames whose energy is less than `trim_db` above the
   energy floor (the `trim_quantile` percentile of the recent frame energies, on the noise
   floor's windows): its start to its first such louder frame, at most `trim_start_ms` later,
   its end back to its last one, at most `trim_end_ms` earlier; a piece with no such louder
   frame at all is dropped, and so is one left shorter than `min_speech_ms` unless it is part
   of a run cut in step 3.
   The networks' scores stay up for about 100 ms after speech ends (and rise a little before
   it starts): their context windows see speech that the frame itself no longer holds. The
   energy says where the sound is; it is read only near the edges the scores found, so noise
   and music between segments cannot make speech of their own;
5. each segment is widened by `pad_ms`, never past the file's edges and never closer than one
   frame to its neighbour (a short gap is shared), so segments never touch or overlap.

The scores come from an engine started with a past (`Profile.primed`; `engines.base.Primed`):
FSMN's network, from its zero start, scored any sound about 0.5-0.6 for 0.8 s, so noise made a
short segment at the start of a recording with no speech there; it first hears the
recording's first second reversed.

`PreciseDecision` computes exactly that while streaming: a frame is decided once the frames that
can change it have arrived (at most `min_silence_ms` + 2 `pad_ms` later, plus up to one floor
window at the start of a recording and one second after it when a floor is on), and it holds the
scores and energies of the open run only (at most the maximum length), so memory is bounded and
the output does not depend on the block sizes. Frames without energies (`Frames.energy_db` None:
a caller feeding scores alone) are not trimmed. The defaults were chosen by
`bench/tune_precise.py` for each engine (`ENGINE_DEFAULTS`; README, "Profiles").
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engines.base import FRAME_MS, Engine, Frames
from ..rules import Number, SettingError, check_value, field_rules
from ..segments import Segment
from .base import Profile, replace_checked
from .funasr_options import LONGEST_SEGMENT

FLOOR_STEP = 100  # frames (1 s) sharing one noise floor


@dataclass(frozen=True)
class PreciseOptions:
    """Settings of the `precise` decision (times in ms; scores in [0, 1]); each field's help and
    range rule are in its metadata (the CLI's `--precise-*` options and the job file's
    `precise_*` keys are derived from them). Defaults: bench/tune_precise.py."""

    enter_threshold: float = field(
        default=0.4,
        metadata={
            "help": "a frame scoring this (+ the floor term) or more starts speech",
            "rule": Number(whole=False, low=0, high=1),
        },
    )
    leave_threshold: float = field(
        default=0.4,
        metadata={
            "help": "speech goes on until a frame scores below this (+ floor term)",
            "rule": Number(whole=False, low=0, high=1),
        },
    )
    min_speech_ms: int = field(
        default=100,
        metadata={
            "help": "shorter speech (after bridging pauses) is dropped",
            "rule": Number(whole=True, low=0, high=60000, unit="ms"),
        },
    )
    min_silence_ms: int = field(
        default=200,
        metadata={
            "help": "shorter pauses are bridged",
            "rule": Number(whole=True, low=0, high=60000, unit="ms"),
        },
    )
    pad_ms: int = field(
        default=0,
        metadata={
            "help": "added on each side, within the file and the gap",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    max_single_segment_time: int = field(
        default=60000,
        metadata={
            "help": "longest segment, padding included (FunASR's name)",
            "rule": LONGEST_SEGMENT,
        },
    )
    floor_weight: float = field(
        default=0.5,
        metadata={
            "help": "thresholds rise by this times the noise floor (0: off)",
            "rule": Number(whole=False, low=0, high=1),
        },
    )
    floor_quantile: float = field(
        default=25.0,
        metadata={
            "help": "noise floor: this percentile of the window's scores",
            "rule": Number(whole=False, low=0, high=100, unit="percent"),
        },
    )
    floor_window_ms: int = field(
        default=30000,
        metadata={
            "help": "noise floor: scores (and energies) of this much audio",
            "rule": Number(whole=True, low=1000, high=600000, unit="ms"),
        },
    )
    trim_db: float = field(
        default=2.0,
        metadata={
            "help": "edges are trimmed past frames less loud than this (dB) above the energy floor",
            "rule": Number(whole=False, low=0, high=60, unit="dB"),
        },
    )
    trim_start_ms: int = field(
        default=100,
        metadata={
            "help": "a segment's start moves at most this much later (0: off)",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    trim_end_ms: int = field(
        default=200,
        metadata={
            "help": "a segment's end moves at most this much earlier (0: off)",
            "rule": Number(whole=True, low=0, high=10000, unit="ms"),
        },
    )
    trim_quantile: float = field(
        default=10.0,
        metadata={
            "help": "energy floor: this percentile of the window's energies",
            "rule": Number(whole=False, low=0, high=100, unit="percent"),
        },
    )

    def __post_init__(self):
        """Refuse settings the decision cannot honour, naming them (SettingError: a ValueError)."""
        if not 0.0 <= self.leave_threshold <= self.enter_threshold <= 1.0:
            raise SettingError("precise: need 0 <= leave_threshold <= enter_threshold <= 1")
        if min(self.min_speech_ms, self.min_silence_ms, self.pad_ms) < 0:
            raise SettingError("precise: min_speech_ms, min_silence_ms and pad_ms must be >= 0")
        if self.max_single_segment_time < 2 * self.pad_ms + 2 * FRAME_MS:
            raise SettingError("precise: max_single_segment_time must exceed 2 pad_ms + 20 ms")
        if self.min_speech_ms > self.max_single_segment_time - 2 * self.pad_ms:
            raise SettingError("precise: min_speech_ms must not exceed the longest segment")
        if self.floor_weight < 0 or not 0 <= self.floor_quantile <= 100:
            raise SettingError("precise: need floor_weight >= 0 and 0 <= floor_quantile <= 100")
        if min(self.trim_db, self.trim_start_ms, self.trim_end_ms) < 0:
            raise SettingError("precise: trim_db, trim_start_ms and trim_end_ms must be >= 0")
        if not 0 <= self.trim_quantile <= 100:
            raise SettingError("precise: need 0 <= trim_quantile <= 100")
        if self.floor_window_ms < FLOOR_STEP * FRAME_MS:
            raise SettingError(f"precise: floor_window_ms must be at least {FLOOR_STEP * FRAME_MS}")

    def with_overrides(self, **overrides: Any) -> PreciseOptions:
        """A copy with some settings replaced; unknown names raise TypeError, values out of
        range SettingError (a ValueError), by the fields' rules (the command line's too)."""
        return replace_checked(self, "precise", overrides, check_setting)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready settings."""
        return dataclasses.asdict(self)


def check_setting(name: str, value: Any) -> None:
    """A precise setting's value by its field's rule (the command line's, too)."""
    check_value(field_rules(PreciseOptions)[name], value, name)


def hysteresis(scores: np.ndarray, on: bool, enter: float, leave: float) -> np.ndarray:
    """Speech state of each frame, starting from `on`: set at >= enter, cleared below leave."""
    event = np.where(scores >= enter, 1, np.where(scores < leave, 0, -1))
    last = np.maximum.accumulate(np.where(event >= 0, np.arange(len(scores)), -1))
    return np.where(last >= 0, event[last] == 1, on)


class SortedWindow:
    """The values of a window of frames, kept sorted as the window slides forward: a
    percentile then costs what one step's frames cost to move in and out (a partition of the
    whole window is slow where many values are equal, such as digital silence's energy)."""

    def __init__(self) -> None:
        self.values = np.zeros(0, np.float32)
        self.lo = self.hi = 0  # the window [lo, hi)

    def move(self, start: int, end: int, frames: np.ndarray, first: int) -> None:
        """Make the window [start, end) (neither edge moves back); frames[i] is frame
        first + i, and holds every frame from the old window's start on."""
        if start >= self.hi:  # no frame in common
            self.values, self.lo, self.hi = np.zeros(0, np.float32), start, start
        if start > self.lo:
            gone = np.sort(frames[self.lo - first : start - first])
            at = np.searchsorted(self.values, gone)  # the first of each run of equal values
            at += np.arange(len(gone)) - np.searchsorted(gone, gone)  # then the next ones
            kept = np.ones(len(self.values), bool)
            kept[at] = False
            self.values = self.values[kept]
        if end > self.hi:  # two sorted runs: the stable sort (timsort) merges them in one pass
            new = np.sort(frames[self.hi - first : end - first])
            self.values = np.sort(np.concatenate([self.values, new]), kind="stable")
        self.lo, self.hi = start, end

    def percentile(self, quantile: float) -> float:
        """The `quantile` percentile of the window's values (numpy's "lower" method)."""
        return float(self.values[math.floor(quantile / 100 * (len(self.values) - 1))])


class NoiseFloor:
    """Scores less `weight` x the noise floor, streamed: the same as raising both thresholds.

    The floor of the frames [k S, (k+1) S) (S = FLOOR_STEP) is the `quantile` percentile of the
    `window` scores ending at frame max((k+1) S, window) (cut short by the end of the
    recording): the recent past, and at the start the first `window` frames. A step's frames
    are handed on once its window is complete, so memory stays at one window and a step.
    """

    def __init__(self, weight: float, quantile: float, window: int):
        self.weight, self.quantile, self.window = weight, quantile, window
        self.scores = np.zeros(0, np.float32)  # from frame `first` on
        self.first = 0
        self.done = 0  # frames handed on
        self.sorted = SortedWindow()

    def push(self, x: np.ndarray) -> np.ndarray:
        """The shifted scores of the steps whose windows are now complete."""
        self.scores = np.concatenate([self.scores, x])
        return self._hand_on(self.first + len(self.scores))

    def finish(self) -> np.ndarray:
        """The shifted scores still held, the recording's end known."""
        return self._hand_on(None)

    def _hand_on(self, known: int | None) -> np.ndarray:
        """Shift and hand on every step whose window ends by `known` (None: all of them)."""
        total = self.first + len(self.scores)
        out = []
        while self.done < total:
            end = max(self.done + FLOOR_STEP, self.window)
            if known is not None and end > known:
                break
            start, end = max(0, end - self.window), min(end, total)
            self.sorted.move(start, end, self.scores, self.first)
            floor = self.sorted.percentile(self.quantile)
            stop = min(self.done + FLOOR_STEP, total)
            step = self.scores[self.done - self.first : stop - self.first]
            out.append(step - self.weight * floor)
            self.done = stop
        keep = min(self.sorted.lo, self.done)  # the window's frames leave it later
        self.scores, self.first = self.scores[keep - self.first :], keep
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def trimmed(loud: np.ndarray, start: int, end: int, most_start: int, most_end: int):
    """[start, end) with its edges moved inward past frames not `loud` (loud[i]: frame
    start + i), by at most `most_start` and `most_end` frames; empty if no frame is loud."""
    if not loud.any():  # no sound above the floor at all: nothing for the edges to keep
        return start, start
    head = np.flatnonzero(loud[:most_start])
    new_start = start + (int(head[0]) if len(head) else min(most_start, end - start))
    low = max(new_start, end - most_end)
    tail = np.flatnonzero(loud[low - start :])
    new_end = low + int(tail[-1]) + 1 if len(tail) else low
    return new_start, new_end


def frames_of(ms: int) -> int:
    """Whole frames in `ms` milliseconds, rounded."""
    return round(ms / FRAME_MS)


class PreciseDecision:
    """Streams the steps of the module docstring over one recording's frames."""

    def __init__(self, options: PreciseOptions, engine: Engine | None = None):
        self.o = options
        self.min_speech = frames_of(options.min_speech_ms)
        self.min_silence = frames_of(options.min_silence_ms)
        self.pad = frames_of(options.pad_ms)
        self.longest = options.max_single_segment_time // FRAME_MS - 2 * self.pad
        self.t = 0  # frames received
        self.on = False  # speech state of frame t - 1
        self.run: list[int] | None = None  # bridged run [start, end) not yet final
        self.open = False  # whether the run's last raw run is still going (end unknown)
        self.was_cut = False  # the run was cut for length: keep what is left however short
        self.scores = np.zeros(0, np.float32)  # scores from frame `scores_from` on
        self.scores_from = 0
        self.final: list[tuple[int, int]] = []  # final runs, not yet padded and handed out
        self.last_end = -1  # padded end of the last segment handed out
        self.trim_start, self.trim_end = (
            frames_of(options.trim_start_ms),
            frames_of(options.trim_end_ms),
        )
        trim = self.trim_start > 0 or self.trim_end > 0
        self.energy = np.zeros(0, np.float32)  # energy above its floor, frames as `scores`
        window = frames_of(options.floor_window_ms)
        # with trimming, scores and energies go through floors of the same windows, so both
        # come out for the same frames (a score floor of weight 0 only delays them)
        self.floor = (
            NoiseFloor(options.floor_weight, options.floor_quantile, window)
            if options.floor_weight or trim
            else None
        )
        self.energy_floor = NoiseFloor(1.0, options.trim_quantile, window) if trim else None

    def push(self, frames: Frames) -> list[Segment]:
        """Segments settled by these frames."""
        if frames.energy_db is None and self.energy_floor is not None:
            self._without_energies()
        x = np.asarray(frames.scores, np.float32)
        self._decide(*self._floored(x, frames.energy_db))
        return self._hand_out(final=False)

    def finish(self) -> list[Segment]:
        """The rest, the recording's end now known."""
        if self.floor:
            self._decide(*self._floored(None, None))
        if self.on:
            self._stop(self.t)
            self.on = False
        self._settle(final=True)
        return self._hand_out(final=True)

    def _without_energies(self) -> None:
        """Frames that carry no energies (scores fed alone): nothing is trimmed."""
        floor = self.energy_floor
        if floor.first + len(floor.scores):
            raise ValueError("precise: frames without energies after frames with them")
        self.energy_floor = None

    def _floored(
        self, x: np.ndarray | None, energy: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Step 0 on these scores (None: the recording's end), and the energies above their
        floor, of the same frames."""
        if self.floor is None:
            return x, None
        scores = self.floor.finish() if x is None else self.floor.push(x)
        if self.energy_floor is None:
            return scores, None
        floor = self.energy_floor
        return scores, floor.finish() if x is None else floor.push(energy)

    def _decide(self, x: np.ndarray, energy: np.ndarray | None = None) -> None:
        """Step 1 on these (shifted) scores, then as much of steps 2 to 4 as is settled."""
        if not len(x):
            return
        t0 = self.t
        state = hysteresis(x, self.on, self.o.enter_threshold, self.o.leave_threshold)
        edges = np.diff(np.concatenate([[self.on], state]).astype(np.int8))
        self.scores = np.concatenate([self.scores, x])
        if energy is not None:
            self.energy = np.concatenate([self.energy, energy])
        self.t += len(x)
        for frame in np.flatnonzero(edges):
            if edges[frame] > 0:
                self._start(t0 + int(frame))
            else:
                self._stop(t0 + int(frame))
        self.on = bool(state[-1])
        self._settle(final=False)

    def _start(self, frame: int) -> None:
        """A raw run starts: bridge it to the open run or begin a new one."""
        if self.run is not None and frame - self.run[1] < self.min_silence:
            self.open = True
            return
        self._close_run()
        self.run, self.open, self.was_cut = [frame, frame], True, False

    def _stop(self, frame: int) -> None:
        """The current raw run ends before `frame`."""
        self.run[1], self.open = frame, False

    def _settle(self, final: bool) -> None:
        """Cut the run for length where it is known to be long; close it if it is over."""
        if self.run is not None:
            self._cut(self.t if self.open else self.run[1])
            if final or (not self.open and self.t - self.run[1] >= self.min_silence):
                self._close_run()
        keep = self.run[0] if self.run is not None else self.t
        self.scores = self.scores[keep - self.scores_from :]
        self.energy = self.energy[keep - self.scores_from :]
        self.scores_from = keep

    def _cut(self, known_end: int) -> None:
        """While the run reaches past the longest length, cut at its least speech-like frame."""
        run = self.run
        while known_end - run[0] > self.longest:
            first, stop = run[0] + self.longest // 2, run[0] + self.longest
            window = self.scores[first - self.scores_from : stop - self.scores_from]
            cut = first + int(np.argmin(window))
            self._keep(run[0], cut, whole=False)
            run[0], self.was_cut = cut + 1, True
            if run[1] < run[0]:
                run[1] = run[0]

    def _close_run(self) -> None:
        """The run is over: keep it if long enough (or what is left after a cut)."""
        if self.run is None:
            return
        self._cut(self.run[1])
        start, end = self.run
        if end > start and (self.was_cut or end - start >= self.min_speech):
            self._keep(start, end, whole=not self.was_cut)
        self.run = None

    def _keep(self, start: int, end: int, whole: bool) -> None:
        """Step 4: a final piece, its edges trimmed where the energy is back at the floor; a
        `whole` run (not a piece of one cut for length) trimmed below the minimum is dropped."""
        if self.energy_floor is not None:
            loud = self.energy[start - self.scores_from : end - self.scores_from]
            loud = loud >= self.o.trim_db
            start, end = trimmed(loud, start, end, self.trim_start, self.trim_end)
        if end > start and (not whole or end - start >= self.min_speech):
            self.final.append((start, end))

    def _hand_out(self, final: bool) -> list[Segment]:
        """Pad the final runs whose neighbours are known, as segments in ms."""
        out = []
        while self.final:
            start, end = self.final[0]
            if len(self.final) > 1:
                room = self.final[1][0] - end - 1
                after = min(self.pad, room - min(self.pad, room // 2))
            else:
                nearest = self.run[0] if self.run is not None else self.t
                if not final and nearest < end + 2 * self.pad + 1:
                    break  # a neighbour could still come within the padding
                after = min(self.pad, self.t - end)
            begin = max(start - self.pad, self.last_end + 1, 0)
            self.last_end = end + after
            out.append(Segment(begin * FRAME_MS, self.last_end * FRAME_MS))
            self.final.pop(0)
        return out


# Each engine's scores have their own shape, so each has its own defaults: the fields' defaults
# are FSMN's; these replace some of them for the other engines. All chosen by
# bench/tune_precise.py --engine NAME (README, "Profiles").
ENGINE_DEFAULTS: dict[str, dict[str, Any]] = {
    "fsmn": {},
    "silero": {
        "enter_threshold": 0.3,
        "leave_threshold": 0.2,
        "min_silence_ms": 100,
        "pad_ms": 50,
        "trim_db": 4.0,
        "trim_end_ms": 300,
    },
    "fusion": {
        "enter_threshold": 0.3,
        "leave_threshold": 0.3,
        "min_speech_ms": 200,
        "min_silence_ms": 100,
        "pad_ms": 30,
        "trim_db": 4.0,
        "trim_end_ms": 300,
    },
}


def precise_defaults(config: dict[str, Any], engine: str = "fsmn") -> PreciseOptions:
    """The precise settings tuned for `engine`'s scores (the model's config is not read)."""
    return PreciseOptions(**ENGINE_DEFAULTS[engine])


PRECISE = Profile(
    name="precise",
    options_type=PreciseOptions,
    defaults=precise_defaults,
    decision=PreciseDecision,
    energy=True,
    primed=True,
)
