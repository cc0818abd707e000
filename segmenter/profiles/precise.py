"""The `precise` profile: segments from the per-frame speech score, edges set by the frame energy.

Offline, it is these steps on the 10 ms frames, each defined on the whole recording:
0. with `floor_weight` > 0, both thresholds rise by `floor_weight` x the noise floor (a low
   percentile of the recent scores; see `NoiseFloor`), so noisy recordings need surer speech;
1. hysteresis: speech starts at a frame scoring at least `enter_threshold` and lasts until a
   frame scores below `leave_threshold`;
2. pauses shorter than `min_silence_ms` are bridged, and so are pauses shorter than
   `bridge_ms` where the sound goes on: the mean of their frames' energy above the energy floor
   (step 4's) is at least `bridge_db`. Far-field speech that the networks score low (a distant
   or quiet talker, words lost in the room's reverberation) still sounds, where the room's own
   silence between turns is back at its floor; the energy is read only between two stretches the
   scores found, so a sound alone cannot make a segment. Then runs shorter than `min_speech_ms`
   are dropped;
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
can change it have arrived (at most the longer of `min_silence_ms` and `bridge_ms`, + 2 `pad_ms`
later, plus up to one floor
window at the start of a recording and one second after it when a floor is on), and it holds the
scores and energies of the open run only (at most the maximum length), so memory is bounded and
the output does not depend on the block sizes. Frames without energies (`Frames.energy_db` None:
a caller feeding scores alone) are not trimmed. The defaults were chosen by
`bench/tune_cv.py` for each engine (`precise_options.ENGINE_DEFAULTS`; docs/farfield.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..engines.base import FRAME_MS, Engine, Frames
from ..segments import Segment
from .base import Profile
from .precise_options import FLOOR_STEP, PreciseOptions, precise_defaults


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


@dataclass
class Run:
    """A stretch of speech not yet final: frames [start, end), pauses bridged into it."""

    start: int
    end: int
    going: bool = True  # its last raw run is still going: `end` is not known yet
    was_cut: bool = False  # cut for length: what is left is kept however short


class PreciseDecision:
    """Streams the steps of the module docstring over one recording's frames.

    Frames are counted from the recording's start. The scores and energies of frames from
    `held_from` on are held (those of the open run, or of none), and a piece of speech waits in
    `pieces` until its neighbours are known, so its padding can be shared."""

    def __init__(self, options: PreciseOptions, engine: Engine | None = None):
        self.options = options
        self.min_speech = frames_of(options.min_speech_ms)  # these four in frames
        self.min_silence = frames_of(options.min_silence_ms)
        self.pad = frames_of(options.pad_ms)
        self.bridge = frames_of(options.bridge_ms)
        self.longest = options.max_single_segment_time // FRAME_MS - 2 * self.pad
        self.trim_start = frames_of(options.trim_start_ms)
        self.trim_end = frames_of(options.trim_end_ms)
        self.received = 0  # frames decided by hysteresis (past the floors' wait)
        self.speaking = False  # hysteresis state of the last of them
        self.run: Run | None = None
        self.held_from = 0  # first frame whose score (and energy) is held
        self.held_scores = np.zeros(0, np.float32)  # after the score floor
        self.held_energy = np.zeros(0, np.float32)  # dB above the energy floor
        self.pieces: list[tuple[int, int]] = []  # final, not yet padded and handed out
        self.last_end = -1  # padded end of the last segment handed out
        # trimming and bridging read the energies above their floor
        loudness = self.trim_start > 0 or self.trim_end > 0 or self.bridge > 0
        window = frames_of(options.floor_window_ms)
        # with energies read, scores and energies go through floors of the same windows, so
        # both come out for the same frames (a score floor of weight 0 only delays them)
        self.score_floor = (
            NoiseFloor(options.floor_weight, options.floor_quantile, window)
            if options.floor_weight or loudness
            else None
        )
        self.energy_floor = NoiseFloor(1.0, options.trim_quantile, window) if loudness else None

    def push(self, frames: Frames) -> list[Segment]:
        """Segments settled by these frames."""
        if frames.energy_db is None and self.energy_floor is not None:
            self._without_energies()
        scores = np.asarray(frames.scores, np.float32)
        self._decide(*self._floored(scores, frames.energy_db))
        return self._hand_out(final=False)

    def finish(self) -> list[Segment]:
        """The rest, the recording's end now known."""
        if self.score_floor:
            self._decide(*self._floored(None, None))
        if self.speaking:
            self._stop(self.received)
            self.speaking = False
        self._settle(final=True)
        return self._hand_out(final=True)

    def _without_energies(self) -> None:
        """Frames that carry no energies (scores fed alone): nothing is trimmed."""
        floor = self.energy_floor
        if floor.first + len(floor.scores):
            raise ValueError("precise: frames without energies after frames with them")
        self.energy_floor = None

    def _floored(
        self, scores: np.ndarray | None, energy: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Step 0 on these scores (None: the recording's end), and the energies above their
        floor, of the same frames."""
        if self.score_floor is None:
            return scores, None
        floor = self.score_floor
        scores = floor.finish() if scores is None else floor.push(scores)
        if self.energy_floor is None:
            return scores, None
        floor = self.energy_floor
        return scores, floor.finish() if energy is None else floor.push(energy)

    def _decide(self, scores: np.ndarray, energy: np.ndarray | None = None) -> None:
        """Step 1 on these (shifted) scores, then as much of steps 2 to 4 as is settled."""
        if not len(scores):
            return
        first = self.received
        o = self.options
        state = hysteresis(scores, self.speaking, o.enter_threshold, o.leave_threshold)
        edges = np.diff(np.concatenate([[self.speaking], state]).astype(np.int8))
        self.held_scores = np.concatenate([self.held_scores, scores])
        if energy is not None:
            self.held_energy = np.concatenate([self.held_energy, energy])
        self.received += len(scores)
        for frame in np.flatnonzero(edges):
            if edges[frame] > 0:
                self._start(first + int(frame))
            else:
                self._stop(first + int(frame))
        self.speaking = bool(state[-1])
        self._settle(final=False)

    def _held(self, values: np.ndarray, start: int, end: int) -> np.ndarray:
        """The held values (scores or energies) of frames [start, end)."""
        return values[start - self.held_from : end - self.held_from]

    def _start(self, frame: int) -> None:
        """A raw run starts: bridge it to the open run or begin a new one."""
        run = self.run
        if run is not None and (
            frame - run.end < self.min_silence or self._bridged(run.end, frame)
        ):
            run.going = True
            return
        self._close_run()
        self.run = Run(frame, frame)

    def _bridged(self, start: int, end: int) -> bool:
        """Whether the pause [start, end) holds sound enough to be bridged."""
        if end - start >= self.bridge:
            return False
        if not len(self.held_energy):  # no energies: nothing says the sound goes on
            return False
        pause = self._held(self.held_energy, start, end)
        return float(np.mean(pause)) >= self.options.bridge_db

    def _stop(self, frame: int) -> None:
        """The current raw run ends before `frame`."""
        self.run.end, self.run.going = frame, False

    def _settle(self, final: bool) -> None:
        """Cut the run for length where it is known to be long; close it if it is over."""
        run = self.run
        if run is not None:
            self._cut(self.received if run.going else run.end)
            wait = max(self.min_silence, self.bridge)
            if final or (not run.going and self.received - run.end >= wait):
                self._close_run()
        keep = self.run.start if self.run is not None else self.received
        self.held_scores = self.held_scores[keep - self.held_from :]
        self.held_energy = self.held_energy[keep - self.held_from :]
        self.held_from = keep

    def _cut(self, known_end: int) -> None:
        """While the run reaches past the longest length, cut at its least speech-like frame."""
        run = self.run
        while known_end - run.start > self.longest:
            first, stop = run.start + self.longest // 2, run.start + self.longest
            cut = first + int(np.argmin(self._held(self.held_scores, first, stop)))
            self._keep(run.start, cut, whole=False)
            run.start, run.was_cut = cut + 1, True
            run.end = max(run.end, run.start)

    def _close_run(self) -> None:
        """The run is over: keep it if long enough (or what is left after a cut)."""
        run = self.run
        if run is None:
            return
        self._cut(run.end)
        if run.end > run.start and (run.was_cut or run.end - run.start >= self.min_speech):
            self._keep(run.start, run.end, whole=not run.was_cut)
        self.run = None

    def _keep(self, start: int, end: int, whole: bool) -> None:
        """Step 4: a final piece, its edges trimmed where the energy is back at the floor; a
        `whole` run (not a piece of one cut for length) trimmed below the minimum is dropped."""
        if self.energy_floor is not None and (self.trim_start or self.trim_end):
            loud = self._held(self.held_energy, start, end) >= self.options.trim_db
            start, end = trimmed(loud, start, end, self.trim_start, self.trim_end)
        if end > start and (not whole or end - start >= self.min_speech):
            self.pieces.append((start, end))

    def _hand_out(self, final: bool) -> list[Segment]:
        """Pad the final pieces whose neighbours are known, as segments in ms."""
        out = []
        while self.pieces:
            start, end = self.pieces[0]
            if len(self.pieces) > 1:
                room = self.pieces[1][0] - end - 1
                after = min(self.pad, room - min(self.pad, room // 2))
            else:
                nearest = self.run.start if self.run is not None else self.received
                if not final and nearest < end + 2 * self.pad + 1:
                    break  # a neighbour could still come within the padding
                after = min(self.pad, self.received - end)
            begin = max(start - self.pad, self.last_end + 1, 0)
            self.last_end = end + after
            out.append(Segment(begin * FRAME_MS, self.last_end * FRAME_MS))
            self.pieces.pop(0)
        return out


PRECISE = Profile(
    name="precise",
    options_type=PreciseOptions,
    defaults=precise_defaults,
    decision=PreciseDecision,
    energy=True,
    primed=True,
)
