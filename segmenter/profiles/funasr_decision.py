"""FunASR's FSMN-VAD endpoint state machine, streamed and vectorized.

Per frame, FunASR smooths speech/silence decisions over a sliding window and runs a small state
machine (start point not detected / in segment) with lookback, lookahead, end-silence and
maximum-length rules. Most frames change nothing but counters, so runs of such frames are
skipped in bulk with numpy; only frames where something happens go through `_step`, a
frame-by-frame rendering of FunASR's `DetectOneFrame`. The output is the same either way.

FunASR 1.4 re-reads its end-silence schedule at each 60 s chunk boundary of the audio (see
`VadOptions.dynamic_silence`); those boundaries are reproduced here from the sample count.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..engines.fsmn_features import FrontendConfig
from .funasr_options import VadOptions

START_NOT_DETECTED, IN_SEGMENT, STOPPED = 0, 1, 2
_LOOKAHEAD_FIRST = 64  # frames examined per bulk skip before widening the search


class EndpointDetector:
    """Turns per-frame silence posteriors and energies into (start_ms, end_ms) segments."""

    def __init__(self, options: VadOptions, frontend: FrontendConfig):
        o = self.options = options
        if o.dynamic_silence and o.schedule_chunk_ms < 15000:
            raise ValueError("schedule_chunk_ms below 15000 is FunASR's live mode; unsupported")
        self.frontend = frontend
        fm = self.frame_ms = o.frame_in_ms
        self.win = int(o.window_size_ms / fm)
        self.to_speech = int(o.sil_to_speech_time_thres / fm)
        self.to_sil = int(o.speech_to_sil_time_thres / fm)
        self.latency = self.win + (int(o.lookback_time_start_point / fm) if o.do_extend else 0)
        self.lookahead = int(o.lookahead_time_end_point / fm)
        self.max_frames = o.max_single_segment_time / fm
        self.speech_thres = (
            o.schedule_speech_noise_thres if o.dynamic_silence else o.speech_noise_thres
        )
        self.chunk_samples = o.schedule_chunk_ms * frontend.fs // 1000
        # window detector
        self.window = np.zeros(self.win, np.int64)
        self.pre_speech = False
        # state machine (FunASR's Stats)
        self.state = START_NOT_DETECTED
        self.silence_count = 0
        self.latest_speech = 0
        self.latest_silence = -1
        self.data_start = 0
        self.confirmed_start = -1
        self.ends_detected = 0
        self.end_silence = o.max_end_silence_time - o.speech_to_sil_time_thres
        self.noise_db = -100.0
        self.segment: list[int] | None = None
        self.done: list[tuple[int, int]] = []
        # dynamic schedule, evaluated before each chunk of `schedule_chunk_ms`
        self.accumulated_ms = 0
        self.in_speech = False
        self.ended_in_chunk = False
        self.chunk = 0
        # frames received and not yet decided
        self.t = 0
        self.samples_seen = 0
        self.flags = np.zeros(0, np.int64)
        self.flags_start = 0
        self._apply_schedule()

    # -- input -----------------------------------------------------------------------------

    def push(
        self, sil_posteriors: np.ndarray, decibels: np.ndarray, samples_seen: int
    ) -> list[tuple[int, int]]:
        """Add frames; returns the segments that ended. The last frame waits for `finish`."""
        self.samples_seen = samples_seen
        self._add_flags(sil_posteriors, decibels)
        self._run(self._frames_available() - 1, total_known=False)
        return self._take_done()

    def finish(self) -> list[tuple[int, int]]:
        """End of audio: decide the remaining frames, the last one as FunASR's final frame."""
        last = self._frames_available() - 1
        if last >= 0:
            self._run(last, total_known=True)
            self._before_frame(total_known=True)
            self._step(last, int(self.flags[last - self.flags_start]), final=True)
            self.t = last + 1
        return self._take_done()

    def _frames_available(self) -> int:
        return self.flags_start + len(self.flags)

    def _take_done(self) -> list[tuple[int, int]]:
        done, self.done = self.done, []
        return done

    def _add_flags(self, sil_posteriors: np.ndarray, decibels: np.ndarray) -> None:
        """Per-frame speech (1) / silence (0), FunASR's GetFrameState, kept until decided."""
        o = self.options
        sil = np.asarray(sil_posteriors, np.float64).reshape(len(decibels), -1).sum(axis=1)
        db = np.asarray(decibels, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            noise = np.log(sil) * o.speech_2_noise_ratio
            speech = np.log(1.0 - sil)
            likely = np.exp(speech) >= np.exp(noise) + self.speech_thres
        loud = db >= o.decibel_thres
        snr = db - self._noise_before_each(db, loud & ~likely)
        flags = likely & loud & (snr >= o.snr_thres)
        if not math.fabs(1.0) > o.fe_prior_thres:
            flags[:] = False
        keep = self.flags[self.t - self.flags_start :]
        self.flags_start = self.t
        self.flags = np.concatenate([keep, flags.astype(np.int64)])

    def _noise_before_each(self, db: np.ndarray, updates: np.ndarray) -> np.ndarray:
        """The running noise level each frame sees (FunASR's noise_average_decibel)."""
        n = self.options.noise_frame_num_used_for_snr
        index = np.flatnonzero(updates)

        def step(avg: float, d: float) -> float:
            return d if avg < -99.9 else (d + avg * (n - 1)) / n

        levels = np.fromiter(
            itertools.accumulate(db[index].tolist(), step, initial=self.noise_db),
            np.float64,
            len(index) + 1,
        )
        self.noise_db = float(levels[-1])
        return levels[np.searchsorted(index, np.arange(len(db)), side="left")]

    # -- the dynamic end-silence schedule ---------------------------------------------------

    def _boundary(self) -> tuple[int, int]:
        """(first frame, samples needed) of the next schedule chunk."""
        samples = (self.chunk + 1) * self.chunk_samples
        return self.frontend.frames_in(samples) - (self.frontend.lfr_m - 1) // 2, samples

    def _before_frame(self, total_known: bool) -> bool:
        """Crosses a chunk boundary at frame t if there is one; False if it is not known yet."""
        if not self.options.dynamic_silence:
            return True
        frame, samples = self._boundary()
        if self.t < frame:
            return True
        if self.samples_seen < samples:
            return total_known  # unknown until more audio arrives, or no boundary at all
        if self.ended_in_chunk:
            self.accumulated_ms, self.in_speech = 0, False
        self.ended_in_chunk = False
        self.chunk += 1
        self._apply_schedule()
        return True

    def _apply_schedule(self) -> None:
        o = self.options
        if not o.dynamic_silence:
            return
        if self.state == IN_SEGMENT or self.in_speech:
            self.accumulated_ms += o.schedule_chunk_ms
            self.in_speech = True
        for limit, silence_ms in o.silence_schedule:
            if self.accumulated_ms <= limit:
                self.end_silence = max(silence_ms - o.speech_to_sil_time_thres, 0)
                break

    # -- frame processing -------------------------------------------------------------------

    def _run(self, end: int, total_known: bool) -> None:
        """Decide frames t..end-1 (none of them the final frame)."""
        while self.t < end:
            if not self._before_frame(total_known):
                return
            stop = end
            if self.options.dynamic_silence:
                stop = min(stop, max(self._boundary()[0], self.t + 1))
            while self.t < stop:
                if self.state == STOPPED:
                    self.t = stop
                    break
                event = self._skip(stop)
                if event < stop:
                    self._step(event, int(self.flags[event - self.flags_start]), final=False)
                    self.t = event + 1

    def _skip(self, stop: int) -> int:
        """Apply, in bulk, the frames from t that cause no event; returns the next event frame."""
        horizon = _LOOKAHEAD_FIRST
        while True:
            end = min(stop, self.t + horizon)
            event = self._first_event(end)
            if event < end or end == stop:
                self._bulk(event)
                return event
            horizon *= 4

    def _window_sums(self, end: int) -> np.ndarray:
        """Sliding-window speech counts FunASR's window detector would see at frames t..end-1."""
        f = self.flags[self.t - self.flags_start : end - self.flags_start]
        csum = np.concatenate([[0], np.cumsum(np.concatenate([self.window, f]))])
        return csum[self.win + 1 :] - csum[1 : len(f) + 1]

    def _first_event(self, end: int) -> int:
        """First frame in t..end-1 where state changes or a segment rule fires; else end."""
        sums = self._window_sums(end)
        t, candidates = self.t, [end]
        if self.state == START_NOT_DETECTED or not self.pre_speech:
            hits = np.flatnonzero(sums >= self.to_speech)
        else:
            hits = np.flatnonzero(sums <= self.to_sil)
        if len(hits):
            candidates.append(t + int(hits[0]))
        if self.state == IN_SEGMENT:
            candidates.append(self.confirmed_start + math.floor(self.max_frames))
            if not self.pre_speech:
                needed = math.ceil(self.end_silence / self.frame_ms)
                candidates.append(t + max(0, needed - self.silence_count - 1))
        elif self.options.detect_mode == 0:
            needed = math.floor(self.options.max_start_silence_time / self.frame_ms) + 1
            candidates.append(t + max(0, needed - self.silence_count - 1))
        return max(t, min(candidates))

    def _bulk(self, end: int) -> None:
        """Frames t..end-1 with no event: only counters, the window and the open segment move."""
        n = end - self.t
        if n <= 0:
            return
        f = self.flags[self.t - self.flags_start : end - self.flags_start]
        self.window = np.concatenate([self.window, f])[-self.win :]
        if self.state == START_NOT_DETECTED:  # silence continues
            self.silence_count += n
            if end - 1 >= self.latency:
                self.latest_silence = end - 1 - self.latency
                self.data_start = max(self.data_start, self.latest_silence)
        elif self.pre_speech:  # speech continues
            self.silence_count = 0
            self._voice(self.t, end)
        else:  # silence inside a segment: lookahead keeps the first frames
            if self.options.do_extend:
                kept = self.t + max(0, self.lookahead - self.silence_count)
                self._voice(self.t, min(end, kept))
            self.silence_count += n
        self.t = end

    # -- one frame, as FunASR's DetectOneFrame --------------------------------------------------

    def _step(self, t: int, flag: int, final: bool) -> None:
        if self.state == STOPPED:
            return
        self.window = np.concatenate([self.window[1:], [flag]])
        total = int(self.window.sum())
        if not self.pre_speech and total >= self.to_speech:
            self.pre_speech = True
            self._sil_to_speech(t, final)
        elif self.pre_speech and total <= self.to_sil:
            self.pre_speech = False
            self._speech_to_sil(t, final)
        elif self.pre_speech:
            self._speech_to_sil(t, final)  # speech continues: the same rules apply
        else:
            self._sil_to_sil(t, final)
        if self.state == STOPPED and self.options.detect_mode == 1:
            self._reset()

    def _sil_to_speech(self, t: int, final: bool) -> None:
        self.silence_count = 0
        if self.state == START_NOT_DETECTED:
            start = max(self.data_start, t - self.latency)
            self.confirmed_start = start
            self.segment = [start * self.frame_ms, start * self.frame_ms]
            self._pop(start, start + 1)
            self.state = IN_SEGMENT
            self._voice(start + 1, t + 1)
        elif self.state == IN_SEGMENT:
            self._voice(self.latest_speech + 1, t)
            self._speech_to_sil(t, final)

    def _speech_to_sil(self, t: int, final: bool) -> None:
        self.silence_count = 0
        if self.state != IN_SEGMENT:
            return
        if self._too_long(t):
            self._end(t)
        elif not final:
            self._voice(t, t + 1)
        else:
            self._end(t)

    def _sil_to_sil(self, t: int, final: bool) -> None:
        self.silence_count += 1
        fm = self.frame_ms
        if self.state == START_NOT_DETECTED:
            single_timeout = (
                self.options.detect_mode == 0
                and self.silence_count * fm > self.options.max_start_silence_time
            )
            if single_timeout or (final and self.ends_detected == 0):
                if t - 1 > self.latest_silence:
                    self.latest_silence = t - 1
                    self.data_start = max(self.data_start, t - 1)
                self.confirmed_start = 0 if self.confirmed_start == -1 else self.confirmed_start
                self.ends_detected += 1  # a zero-length decision: nothing is output
                self.state = STOPPED
            elif t >= self.latency:
                self.latest_silence = t - self.latency
                self.data_start = max(self.data_start, self.latest_silence)
        elif self.state == IN_SEGMENT:
            if self.silence_count * fm >= self.end_silence:
                lookback = int(self.end_silence / fm)
                if self.options.do_extend:
                    lookback = max(0, lookback - self.lookahead - 1)
                self._end(t - lookback)
            elif self._too_long(t):
                self._end(t)
            elif self.options.do_extend and not final:
                if self.silence_count <= self.lookahead:
                    self._voice(t, t + 1)
            elif final:
                self._end(t)

    def _too_long(self, t: int) -> bool:
        return t - self.confirmed_start + 1 > self.max_frames

    def _pop(self, first: int, stop: int) -> None:
        """Frames first..stop-1 go to the open segment (FunASR's PopDataToOutputBuf)."""
        self.data_start = max(self.data_start, first) + (stop - first)
        self.segment[1] = stop * self.frame_ms

    def _voice(self, first: int, stop: int) -> None:
        """Frames first..stop-1 are confirmed speech (FunASR's OnVoiceDetected, in bulk)."""
        if stop > first:
            self._pop(first, stop)
            self.latest_speech = stop - 1

    def _end(self, frame: int) -> None:
        """Close the open segment at `frame` (FunASR's OnVoiceEnd)."""
        self._voice(self.latest_speech + 1, frame)
        self._pop(frame, frame + 1)
        self.done.append((self.segment[0], self.segment[1]))
        self.segment = None
        self.ends_detected += 1
        self.ended_in_chunk = True
        self.state = STOPPED

    def _reset(self) -> None:
        """FunASR's ResetDetection: look for the next segment with a fresh window."""
        self.silence_count = 0
        self.latest_speech = 0
        self.latest_silence = -1
        self.confirmed_start = -1
        self.state = START_NOT_DETECTED
        self.window = np.zeros(self.win, np.int64)
        self.pre_speech = False
