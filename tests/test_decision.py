"""The vectorized endpoint detector against a literal per-frame port of FunASR's logic."""

import numpy as np
import pytest

from segmenter.engines.fsmn_features import FrontendConfig
from segmenter.profiles.funasr_decision import EndpointDetector
from segmenter.profiles.funasr_options import VadOptions

from .funasr_oracle import Oracle

FRONTEND = FrontendConfig()


def random_flags(rng, n):
    """Speech/silence runs of varied lengths with some isolated flips, like real posteriors."""
    flags, speech = [], bool(rng.integers(2))
    while len(flags) < n:
        flags += [int(speech)] * int(rng.geometric(1 / rng.choice([5, 40, 150, 600])))
        speech = not speech
    flags = np.array(flags[:n])
    flips = rng.random(n) < rng.choice([0.0, 0.02, 0.1])
    return np.where(flips, 1 - flags, flags)


def random_options(rng):
    window = int(rng.choice([100, 200, 300]))
    return VadOptions(
        detect_mode=int(rng.choice([1, 1, 1, 0])),
        window_size_ms=window,
        sil_to_speech_time_thres=int(rng.integers(1, window // 10 + 1) * 10),
        speech_to_sil_time_thres=int(rng.integers(1, window // 10 + 1) * 10),
        max_end_silence_time=int(rng.choice([150, 300, 800, 1500])),
        max_start_silence_time=int(rng.choice([500, 3000])),
        do_extend=int(rng.integers(2)),
        lookback_time_start_point=int(rng.choice([0, 200, 300])),
        lookahead_time_end_point=int(rng.choice([0, 100, 250])),
        max_single_segment_time=int(rng.choice([1000, 5000, 60000])),
        dynamic_silence=bool(rng.integers(2)),
        schedule_chunk_ms=15000,
    )


def detector_segments(options, flags, samples, rng):
    """Feed posteriors for `flags` in random blocks, as the pipeline does."""
    detector = EndpointDetector(options, FRONTEND)
    posteriors = np.where(flags == 1, 0.05, 0.95).astype(np.float32)[:, None]
    decibels = np.full(len(flags), -20.0)
    found, i = [], 0
    while i < len(flags):
        j = min(len(flags), i + int(rng.integers(1, 3000)))
        seen = samples if j == len(flags) else min(samples, (j + 2) * 160 + 400)
        found += detector.push(posteriors[i:j], decibels[i:j], seen)
        i = j
    return found + detector.finish()


@pytest.mark.parametrize("seed", range(60))
def test_matches_funasr_frame_by_frame(seed):
    rng = np.random.default_rng(seed)
    options = random_options(rng)
    samples = int(rng.integers(16000, 16000 * 70))
    n = FRONTEND.frames_in(samples)
    flags = random_flags(rng, n)
    chunk = options.schedule_chunk_ms * 16
    boundaries = (
        [FRONTEND.frames_in(k * chunk) - 2 for k in range(1, samples // chunk + 1)]
        if options.dynamic_silence
        else []
    )
    expected = Oracle(options, boundaries).run(flags.tolist())
    assert detector_segments(options, flags, samples, rng) == expected


def test_speech_threshold_follows_the_mode():
    """Under the schedule FunASR uses 0.5; a fixed end silence brings back the config's 0.6."""
    posteriors = np.full((300, 1), 0.22, np.float32)  # speech if s <= 0.25, not if s <= 0.2
    for options, expected in ((VadOptions(), 1), (VadOptions(dynamic_silence=False), 0)):
        detector = EndpointDetector(options, FRONTEND)
        found = detector.push(posteriors, np.full(300, -20.0), 300 * 160 + 240)
        assert len(found + detector.finish()) == expected


def test_decibel_and_snr_thresholds_gate_speech():
    posteriors = np.full((300, 1), 0.05, np.float32)
    quiet = np.full(300, -50.0)
    for options, expected in ((VadOptions(), 1), (VadOptions(decibel_thres=-40.0), 0)):
        detector = EndpointDetector(options, FRONTEND)
        found = detector.push(posteriors, quiet, 300 * 160 + 240)
        assert len(found + detector.finish()) == expected
