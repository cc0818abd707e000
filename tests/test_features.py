"""The front end against an independent Kaldi fbank (kaldi-native-fbank) and FunASR's LFR rules."""

import kaldi_native_fbank as knf
import numpy as np
import pytest
import soundfile as sf

from segmenter.engines.fsmn_features import (
    LOG_FLOOR,
    Fbank,
    FeatureStream,
    FrontendConfig,
    mel_matrix,
)

from .conftest import GOLDEN

CFG = FrontendConfig()


def knf_fbank(samples: np.ndarray) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "hamming"
    opts.mel_opts.num_bins = 80
    opts.energy_floor = 0.0
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(16000, (samples * 32768).tolist())
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


def test_fbank_matches_kaldi_native_fbank():
    samples, _ = sf.read(GOLDEN / "dev01_pink20db.flac", dtype="float32", frames=16000 * 8)
    mine, ref = Fbank(CFG)(samples), knf_fbank(samples)
    assert mine.shape == ref.shape == (798, 80)
    assert np.abs(mine - ref).mean() < 1e-4
    assert np.abs(mine - ref).max() < 5e-3


def frame_by_frame_fbank(samples: np.ndarray) -> np.ndarray:
    """Kaldi's fbank step by step on each frame, in float64: DC removal, pre-emphasis of the
    frame, window, zero-padded FFT, power, mel, log."""
    n = CFG.frames_in(len(samples))
    if n == 0:
        return np.zeros((0, 80), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(samples, 400)[::160][:n]
    x = frames.astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    x[:, 1:] -= 0.97 * x[:, :-1]
    x[:, 0] *= 0.03
    x *= 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(400) / 399)
    power = np.abs(np.fft.rfft(x, n=512, axis=1)) ** 2
    return np.log(np.maximum(power @ mel_matrix(CFG, 512) * 2.0**30, LOG_FLOOR)).astype(np.float32)


@pytest.mark.parametrize("seconds", [0.0249, 0.025, 1.0, 1.28, 1.2801, 12.345])
def test_fbank_equals_the_frame_by_frame_computation(seconds):
    """The fbank pre-emphasises the signal once, sums frames from shared blocks and runs frames
    in chunks; each frame's features are those of the plain per-frame steps (chunk edges and a
    DC offset, which the mean shift handles, included)."""
    rng = np.random.default_rng(7)
    samples = (rng.standard_normal(int(seconds * 16000)) * 0.05 + 0.3).astype(np.float32)
    samples[: len(samples) // 3] *= 0.01  # a quiet stretch: small energies, same rule
    mine, plain = Fbank(CFG)(samples), frame_by_frame_fbank(samples)
    assert mine.shape == plain.shape == (CFG.frames_in(len(samples)), 80)
    np.testing.assert_allclose(mine, plain, rtol=0, atol=2e-6)
    assert (mine == plain).all() if len(mine) < 100 else (mine == plain).mean() > 0.999


def stream_features(samples, block, batch_frames=1000):
    stream = FeatureStream(CFG, np.array([np.zeros(400), np.ones(400)], np.float32), batch_frames)
    out = []
    for i in range(0, len(samples), block):
        out += stream.accept(samples[i : i + block])
    out += stream.finish()
    return np.concatenate([f for f, _ in out]), np.concatenate([d for _, d in out])


def test_lfr_stacks_neighbours_and_repeats_edges():
    samples = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    feats, decibels = stream_features(samples, 16000)
    n = CFG.frames_in(len(samples))
    fb = Fbank(CFG)(samples)
    assert feats.shape == (n, 400) and decibels.shape == (n,)
    idx = np.clip(np.arange(n)[:, None] + np.arange(-2, 3), 0, n - 1)
    np.testing.assert_array_equal(feats, fb[idx].reshape(n, 400))


def test_features_do_not_depend_on_block_size():
    samples = np.random.default_rng(1).standard_normal(16000 * 5 + 77).astype(np.float32) * 0.1
    ref = stream_features(samples, len(samples))
    for block in (1, 159, 161, 4097):
        got = stream_features(samples, block, batch_frames=37)
        np.testing.assert_array_equal(got[0], stream_features(samples, 999, 37)[0])
        assert got[0].shape == ref[0].shape


def test_too_short_audio_has_no_frames():
    stream = FeatureStream(CFG, np.zeros((2, 400), np.float32))
    assert stream.accept(np.zeros(399, np.float32)) == [] and stream.finish() == []
