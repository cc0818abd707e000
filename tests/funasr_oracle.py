"""A literal, frame-by-frame transcription of FunASR 1.4.16's fsmn-vad decision logic.

Test oracle only: slow and unvectorized on purpose, following FunASR's structure (window
detector with a circular buffer, data buffer start frame, OnVoiceStart/Detected/End, the
dynamic schedule applied per chunk) so the product's vectorized detector can be checked
against it on random inputs and settings.
"""

from __future__ import annotations

import math


class Oracle:
    def __init__(self, o, chunk_boundaries):
        """o: VadOptions; chunk_boundaries: first frame of each schedule chunk after the first."""
        self.o = o
        fm = o.frame_in_ms
        self.win = [0] * int(o.window_size_ms / fm)
        self.win_pos = 0
        self.win_sum = 0
        self.pre_speech = False
        self.s2sp = int(o.sil_to_speech_time_thres / fm)
        self.sp2s = int(o.speech_to_sil_time_thres / fm)
        self.state = 1  # 1 start not detected, 2 in segment, 3 end detected
        self.cnt = 0
        self.latest_speech = 0
        self.latest_sil = -1
        self.data_start = 0
        self.cs = -1
        self.n_end = 0
        self.max_end_sil = o.max_end_silence_time - o.speech_to_sil_time_thres
        self.out = []  # [start_ms, end_ms, complete]
        self.boundaries = set(chunk_boundaries)
        self.accumulated = 0
        self.in_speech = False
        self.emitted_in_chunk = False
        self._schedule()

    def _schedule(self):
        o = self.o
        if not o.dynamic_silence:
            return
        if self.state == 2 or self.in_speech:
            self.accumulated += o.schedule_chunk_ms
            self.in_speech = True
        for limit, sil in o.silence_schedule:
            if self.accumulated <= limit:
                self.max_end_sil = max(sil - o.speech_to_sil_time_thres, 0)
                break

    def run(self, flags):
        for t, f in enumerate(flags):
            if t in self.boundaries:
                if self.emitted_in_chunk:
                    self.accumulated, self.in_speech = 0, False
                self.emitted_in_chunk = False
                self._schedule()
            if self.state == 3:
                continue  # single-utterance mode after its end: nothing more
            self.frame(f, t, t == len(flags) - 1)
        return [(s, e) for s, e, _ in self.out]

    # window detector
    def detect(self, f):
        self.win_sum += f - self.win[self.win_pos]
        self.win[self.win_pos] = f
        self.win_pos = (self.win_pos + 1) % len(self.win)
        if not self.pre_speech and self.win_sum >= self.s2sp:
            self.pre_speech = True
            return "sil2speech"
        if self.pre_speech and self.win_sum <= self.sp2s:
            self.pre_speech = False
            return "speech2sil"
        return "speech2speech" if self.pre_speech else "sil2sil"

    def latency(self):
        o = self.o
        lat = len(self.win)
        if o.do_extend:
            lat += int(o.lookback_time_start_point / o.frame_in_ms)
        return lat

    # FunASR's data buffer bookkeeping
    def pop_till(self, frame):
        while self.data_start < frame:
            self.data_start += 1

    def pop_out(self, start, n, first, last):
        self.pop_till(start)
        fm = self.o.frame_in_ms
        if not self.out or first:
            self.out.append([start * fm, start * fm, False])
        self.data_start += n
        self.out[-1][1] = (start + n) * fm
        if last:
            self.out[-1][2] = True

    def on_silence(self, frame):
        self.latest_sil = frame
        if self.state == 1:
            self.pop_till(frame)

    def on_voice(self, frame):
        self.latest_speech = frame
        self.pop_out(frame, 1, False, False)

    def on_start(self, frame, fake=False):
        if self.cs == -1:
            self.cs = frame
        if not fake and self.state == 1:
            self.pop_out(self.cs, 1, True, False)

    def on_end(self, frame, fake, final):
        for t in range(self.latest_speech + 1, frame):
            self.on_voice(t)
        if not fake:
            self.pop_out(frame, 1, False, True)
            self.emitted_in_chunk = True
        self.n_end += 1

    def maybe_end(self, final, t):
        if final:
            self.on_end(t, False, True)
            self.state = 3

    def too_long(self, t):
        return t - self.cs + 1 > self.o.max_single_segment_time / self.o.frame_in_ms

    def frame(self, f, t, final):
        o = self.o
        fm = o.frame_in_ms
        if not math.fabs(1.0) > o.fe_prior_thres:
            f = 0
        change = self.detect(f)
        if change == "sil2speech":
            self.cnt = 0
            if self.state == 1:
                start = max(self.data_start, t - self.latency())
                self.on_start(start)
                self.state = 2
                for k in range(start + 1, t + 1):
                    self.on_voice(k)
            elif self.state == 2:
                for k in range(self.latest_speech + 1, t):
                    self.on_voice(k)
                if self.too_long(t):
                    self.on_end(t, False, False)
                    self.state = 3
                elif not final:
                    self.on_voice(t)
                else:
                    self.maybe_end(final, t)
        elif change in ("speech2sil", "speech2speech"):
            self.cnt = 0
            if self.state == 2:
                if self.too_long(t):
                    self.on_end(t, False, False)
                    self.state = 3
                elif not final:
                    self.on_voice(t)
                else:
                    self.maybe_end(final, t)
        else:
            self.cnt += 1
            if self.state == 1:
                timeout = o.detect_mode == 0 and self.cnt * fm > o.max_start_silence_time
                if timeout or (final and self.n_end == 0):
                    for k in range(self.latest_sil + 1, t):
                        self.on_silence(k)
                    self.on_start(0, fake=True)
                    self.on_end(0, True, False)
                    self.state = 3
                elif t >= self.latency():
                    self.on_silence(t - self.latency())
            elif self.state == 2:
                if self.cnt * fm >= self.max_end_sil:
                    back = int(self.max_end_sil / fm)
                    if o.do_extend:
                        back = max(0, back - int(o.lookahead_time_end_point / fm) - 1)
                    self.on_end(t - back, False, False)
                    self.state = 3
                elif self.too_long(t):
                    self.on_end(t, False, False)
                    self.state = 3
                elif o.do_extend and not final:
                    if self.cnt <= int(o.lookahead_time_end_point / fm):
                        self.on_voice(t)
                else:
                    self.maybe_end(final, t)
        if self.state == 3 and o.detect_mode == 1:
            self.cnt = 0
            self.latest_speech = 0
            self.latest_sil = -1
            self.cs = -1
            self.state = 1
            self.win = [0] * len(self.win)
            self.win_pos = 0
            self.win_sum = 0
            self.pre_speech = False
