"""The `precise` profile on hand-made and random score sequences: its rules, streaming, and that
segments never touch or overlap; and the profile seam's refusal of an engine it cannot read."""

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from segmenter.engines.base import SILENT_DB, Frames, frame_energy, frame_stream
from segmenter.profiles import PROFILES, get_profile
from segmenter.profiles.base import ProfileError
from segmenter.profiles.precise import NoiseFloor, PreciseDecision, PreciseOptions
from segmenter.settings import PRECISE_KEYS, PROFILE_NAMES, SettingError

from .conftest import REPO

BARE = PreciseOptions(
    0.5,
    0.35,
    min_speech_ms=0,
    min_silence_ms=0,
    pad_ms=0,
    floor_weight=0,
    trim_start_ms=0,
    trim_end_ms=0,
)


def decide(scores, options=BARE, blocks=None, energy=None):
    """Segments (ms) of the scores (and frame energies, dB) fed in blocks of the given sizes
    (default: all at once)."""
    decision = PreciseDecision(options)
    scores = np.asarray(scores, np.float32)
    found, at = [], 0

    def frames(a, b):
        part = None if energy is None else np.asarray(energy[a:b], np.float32)
        return Frames(scores[a:b], b, energy_db=part)

    for size in blocks or [len(scores)]:
        if at >= len(scores):
            break
        found += decision.push(frames(at, at + size))
        at += size
    found += decision.push(frames(at, len(scores))) + decision.finish()
    return [(s.start, s.end) for s in found]


def floored(values, weight, quantile, window_ms):
    """Each second's values less `weight` x the `quantile` percentile of its window's values."""
    if not weight:
        return values
    window, out = window_ms // 10, values.copy()
    for k in range(0, len(values), 100):
        end = max(k + 100, window)
        floor = np.percentile(values[max(0, end - window) : end], quantile, method="lower")
        out[k : k + 100] = values[k : k + 100] - weight * float(floor)
    return out


def trim(pieces, energy, o: PreciseOptions):
    """Step 4, frame by frame: each edge moves inward while its frame is not loud enough; a
    whole run (not a piece of a cut one) left shorter than min_speech_ms is dropped."""
    trimming = o.trim_start_ms or o.trim_end_ms
    if energy is None or not trimming:
        return [(start, end) for start, end, _ in pieces]
    above = floored(np.asarray(energy, np.float32), 1.0, o.trim_quantile, o.floor_window_ms)
    loud = above >= o.trim_db
    out = []
    for start, end, whole in pieces:
        if not loud[start:end].any():  # no sound at all
            continue
        moved = 0
        while start < end and moved < round(o.trim_start_ms / 10) and not loud[start]:
            start, moved = start + 1, moved + 1
        moved = 0
        while end > start and moved < round(o.trim_end_ms / 10) and not loud[end - 1]:
            end, moved = end - 1, moved + 1
        if end > start and (not whole or end - start >= round(o.min_speech_ms / 10)):
            out.append((start, end))
    return out


def reference(scores, o: PreciseOptions, energy=None):
    """The module docstring's steps, frame by frame on the whole recording (ms)."""
    scores = np.asarray(scores, np.float32)
    scores = floored(scores, o.floor_weight, o.floor_quantile, o.floor_window_ms)
    runs, on = [], False
    for i, x in enumerate(scores):
        now = x >= o.enter_threshold or (on and x >= o.leave_threshold)
        if now and not on:
            runs.append([i, i + 1])
        elif now:
            runs[-1][1] = i + 1
        on = now
    above = None
    if energy is not None:
        above = floored(np.asarray(energy, np.float32), 1.0, o.trim_quantile, o.floor_window_ms)
    bridged = []
    for run in runs:
        gap = run[0] - bridged[-1][1] if bridged else None
        sounding = (
            gap is not None
            and above is not None
            and gap < round(o.bridge_ms / 10)
            and np.mean(above[bridged[-1][1] : run[0]]) >= o.bridge_db
        )
        if bridged and (gap < round(o.min_silence_ms / 10) or sounding):
            bridged[-1][1] = run[1]
        else:
            bridged.append(run)
    pad = round(o.pad_ms / 10)
    longest = o.max_single_segment_time // 10 - 2 * pad
    pieces = []
    for start, end in bridged:
        if end - start < round(o.min_speech_ms / 10):
            continue
        whole = end - start <= longest
        while end - start > longest:
            first = start + longest // 2
            cut = first + int(np.argmin(scores[first : start + longest]))
            pieces.append((start, cut, False))
            start = cut + 1
        if end > start:
            pieces.append((start, end, whole))
    pieces = trim(pieces, energy, o)
    out, last_end = [], -1
    for i, (start, end) in enumerate(pieces):
        if i + 1 < len(pieces):
            room = pieces[i + 1][0] - end - 1
            after = min(pad, room - min(pad, room // 2))
        else:
            after = min(pad, len(scores) - end)
        begin = max(start - pad, last_end + 1, 0)
        last_end = end + after
        out.append((begin * 10, last_end * 10))
    return out


def random_scores(rng, n):
    """Runs of speech-like, pause-like and in-between scores, with noise."""
    levels = rng.choice([0.05, 0.45, 0.9], size=n // 5 + 1)
    lengths = rng.integers(1, 40, size=len(levels))
    scores = np.repeat(levels, lengths)[:n] + rng.normal(0, 0.15, size=min(n, lengths.sum()))
    return np.clip(scores, 0, 1).astype(np.float32)


def random_options(rng):
    enter = float(rng.choice([0.4, 0.5, 0.6]))
    pad = int(rng.choice([0, 10, 30, 50]))
    return PreciseOptions(
        enter_threshold=enter,
        leave_threshold=enter - float(rng.choice([0.0, 0.1, 0.2])),
        min_speech_ms=int(rng.choice([0, 30, 100])),
        min_silence_ms=int(rng.choice([0, 20, 100, 300])),
        pad_ms=pad,
        max_single_segment_time=int(rng.choice([300, 800, 60000])) + 2 * pad,
        floor_weight=float(rng.choice([0.0, 0.0, 0.5, 1.5])),
        floor_quantile=float(rng.choice([10, 50])),
        floor_window_ms=int(rng.choice([1000, 3000, 30000])),
        trim_db=float(rng.choice([0.0, 3.0, 6.0])),
        trim_start_ms=int(rng.choice([0, 50])),
        trim_end_ms=int(rng.choice([0, 100, 200])),
        trim_quantile=float(rng.choice([10, 50])),
        bridge_ms=int(rng.choice([0, 0, 200, 1000])),
        bridge_db=float(rng.choice([3.0, 6.0, 10.0])),
    )


def random_energy(rng, scores):
    """Frame energies (dB) that follow the scores loosely, as speech over noise does."""
    return (-60 + 30 * scores + rng.normal(0, 4, size=len(scores))).astype(np.float32)


@pytest.mark.parametrize("seed", range(60))
def test_random_scores_match_the_definition_and_never_touch(seed):
    rng = np.random.default_rng(seed)
    scores = random_scores(rng, int(rng.integers(1, 3000)))
    options = random_options(rng)
    energy = random_energy(rng, scores) if seed % 4 else None  # a quarter without energies
    expected = reference(scores, options, energy)
    sizes = [int(s) for s in rng.integers(1, 400, size=len(scores))]
    for blocks in (None, [1] * len(scores), [7] * len(scores), sizes):
        assert decide(scores, options, blocks, energy) == expected
    for (_, end), (start, _) in zip(expected, expected[1:], strict=False):
        assert start - end >= 10  # at least one frame apart
    for start, end in expected:
        assert 0 <= start < end <= 10 * len(scores)
        assert end - start <= options.max_single_segment_time


def test_hysteresis_enters_high_and_leaves_low():
    scores = [0.2, 0.45, 0.6, 0.45, 0.41, 0.39, 0.45, 0.2]
    options = BARE.with_overrides(enter_threshold=0.5, leave_threshold=0.4)
    assert decide(scores, options) == [(20, 50)]  # 0.45 before 0.6 does not start, after does
    assert decide(scores, options.with_overrides(leave_threshold=0.5)) == [(20, 30)]


def test_short_speech_dropped_and_short_pauses_bridged():
    speech = [0.9] * 30
    scores = [0.0] * 10 + speech + [0.0] * 5 + speech + [0.0] * 50 + [0.9] * 10 + [0.0] * 10
    options = BARE.with_overrides(min_silence_ms=100, min_speech_ms=150)
    assert decide(scores, options) == [(100, 750)]  # 50 ms pause bridged, 100 ms burst dropped
    bridging_less = options.with_overrides(min_silence_ms=50, min_speech_ms=100)
    assert decide(scores, bridging_less) == [(100, 400), (450, 750), (1250, 1350)]


def test_padding_stays_in_the_file_and_off_the_neighbours():
    scores = [0.9] * 20 + [0.0] * 3 + [0.9] * 20 + [0.0] * 40 + [0.9] * 10
    options = BARE.with_overrides(pad_ms=50)
    assert decide(scores, options) == [(0, 210), (220, 480), (780, 930)]


def test_long_speech_is_cut_at_its_weakest_frame():
    scores = np.full(250, 0.9)
    scores[130] = 0.6
    options = BARE.with_overrides(max_single_segment_time=1500)
    assert decide(scores, options) == [(0, 1300), (1310, 2500)]
    no_dip = decide(np.full(1000, 0.9), options)
    assert all(end - start <= 1500 for start, end in no_dip)
    assert all(b[0] - a[1] == 10 for a, b in zip(no_dip, no_dip[1:], strict=False))


def test_noise_floor_raises_the_thresholds_of_a_noisy_stretch():
    quiet = np.r_[[0.0] * 100, [0.6] * 50, [0.0] * 150]  # floor 0: 0.6 is speech
    noisy = np.r_[[0.4] * 100, [0.6] * 50, [0.4] * 150]  # floor 0.4: 0.6 is 0.6 - 0.4 / 2
    options = BARE.with_overrides(floor_weight=0.5, floor_window_ms=3000)
    assert decide(quiet, options) == [(1000, 1500)]
    assert decide(noisy, options) == []
    assert decide(noisy, BARE) == [(1000, 3000)]  # without the floor, the noise is speech


def test_edges_are_trimmed_where_the_energy_is_back_at_the_floor():
    scores = [0.0] * 100 + [0.9] * 100 + [0.0] * 100
    energy = np.full(300, -60.0)
    energy[110:180] = -20.0  # the sound lies inside what the scores found
    options = BARE.with_overrides(trim_db=3.0, trim_start_ms=200, trim_end_ms=300)
    assert decide(scores, BARE, energy=energy) == [(1000, 2000)]  # trimming off
    assert decide(scores, options, energy=energy) == [(1100, 1800)]
    assert decide(scores, options.with_overrides(trim_end_ms=100), energy=energy) == [(1100, 1900)]
    assert decide(scores, options) == [(1000, 2000)]  # no energies: nothing trimmed
    quiet = np.full(300, -60.0)  # scores with no sound at all under them: dropped, however
    assert decide(scores, options.with_overrides(trim_start_ms=1000), energy=quiet) == []
    assert decide(scores, options, energy=quiet) == []  # little the trim may take


def test_a_run_the_trim_leaves_shorter_than_the_minimum_is_dropped():
    scores = [0.0] * 100 + [0.9] * 20 + [0.0] * 100  # 200 ms, over the 100 ms minimum
    energy = np.full(220, -60.0)
    energy[112:114] = -20.0  # but only 20 ms of it is louder than the floor
    options = BARE.with_overrides(min_speech_ms=100, trim_db=3.0, trim_start_ms=100)
    assert decide(scores, options.with_overrides(trim_end_ms=200), energy=energy) == []
    assert decide(scores, options.with_overrides(min_speech_ms=20, trim_end_ms=200), energy=energy)
    kept = options.with_overrides(trim_end_ms=0)  # the start moves 100 ms: 100 ms are left
    assert decide(scores, kept, energy=energy) == [(1100, 1200)]
    cut = dataclasses.replace(options, max_single_segment_time=150, trim_end_ms=200)
    energy[100:112] = -20.0  # a run cut for length keeps its short pieces
    assert decide(scores, cut, energy=energy) == [(1000, 1070), (1080, 1140)]


def noise(colour: str, seconds: float, dbfs: float, seed: int) -> np.ndarray:
    """Gaussian noise, white, pink (power 1/f) or brown (1/f^2), at `dbfs` RMS."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.arange(len(spectrum)), 1.0)
    spectrum /= {"white": 1.0, "pink": np.sqrt(f), "brown": f}[colour]
    x = np.fft.irfft(spectrum, n)
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (dbfs / 20)).astype(np.float32)


@pytest.fixture(scope="module")
def engines() -> dict:
    return {}


@pytest.mark.parametrize(
    "engine, profile",
    [("fsmn", "funasr"), ("fsmn", "precise"), ("silero", "precise"), ("fusion", "precise")],
)
def test_a_minute_of_noise_makes_no_segment(engines, engine, profile):
    """Every engine with every profile it runs (funasr reads FSMN's frames alone): white, pink
    and brown noise from -70 to -30 dBFS, fed in the reader's 10 s blocks, is no speech (the
    precise profile on FSMN once found [0.1, 0.31] s in white noise at -55 dBFS)."""
    if engine != "fsmn":
        pytest.importorskip("silero_vad", reason="the silero extra is not installed")
    from segmenter.vad import Vad

    if engine not in engines:
        engines[engine] = Vad.load(engine=engine)
    vad = engines[engine]
    for seed, (colour, level) in enumerate(
        (c, level) for c in ("white", "pink", "brown") for level in (-70, -60, -55, -50, -40, -30)
    ):
        x = noise(colour, 60, level, seed)
        stream = vad.stream(profile=profile)
        found = [s for i in range(0, len(x), 160_000) for s in stream.feed(x[i : i + 160_000])]
        found += stream.finish()
        assert found == [], f"{colour} noise at {level} dBFS: {found}"


def scored(stream, audio: np.ndarray, block: int) -> np.ndarray:
    """A score stream's scores of `audio` fed in blocks of `block` samples, then finished."""
    out = [stream.feed(audio[i : i + block]) for i in range(0, len(audio), block)]
    return np.concatenate([*out, stream.finish()])


def test_a_primed_fsmn_stream_forgets_its_zero_start_whatever_the_blocks():
    """The mirrored first second fills FSMN's memory: the scores are those after a longer
    mirrored past (to INT8's rounding), not the zero start's, frame for frame, in any blocks."""
    from segmenter.engines.base import PRIME_SAMPLES
    from segmenter.vad import Vad

    engine = Vad.load().engine
    audio = np.r_[
        noise("pink", 3, -45, 1),
        sf.read(REPO / "tests/data/golden/dev00_clean.flac", dtype="float32")[0][:48_000],
    ]
    plain = scored(engine.score_stream(), audio, 16_000)
    primed = scored(engine.score_stream(primed=True), audio, 16_000)
    past = np.r_[audio[: 3 * PRIME_SAMPLES][::-1], audio]  # three seconds of mirrored past
    longer = scored(engine.score_stream(), past, 16_000)[3 * PRIME_SAMPLES // 160 :]
    assert len(primed) == len(plain) == len(longer)
    assert np.abs(primed - longer).max() < 0.03  # INT8 kernels round the two pasts apart
    assert plain[:80].max() > 0.45 > primed[:80].max()  # the zero start scores noise as speech
    for block in (1, 159, 4_000, PRIME_SAMPLES + 1, len(audio)):
        stream = engine.score_stream(primed=True)
        assert np.array_equal(scored(stream, audio, block), primed)
    for n in (0, 100, 160, 4_800, PRIME_SAMPLES - 1):  # shorter than the prefix: all of it
        short = audio[:n]
        got = scored(engine.score_stream(primed=True), short, 1_000)
        assert len(got) == len(scored(engine.score_stream(), short, 1_000))


def test_energies_ride_with_the_frames_of_any_engine_whatever_the_blocks():
    class Early:  # scores frame i as soon as any of its samples has come (as silero's windows)
        def __init__(self):
            self.fed = 0
            self.scored = 0

        def feed(self, samples):
            self.fed += len(samples)
            ready = -(-self.fed // 160)
            out = np.full(ready - self.scored, 0.5, np.float32)
            self.scored = ready
            return out

        def finish(self):
            return np.full(2, 0.5, np.float32)  # two frames past the audio

    rng = np.random.default_rng(3)
    audio = (rng.normal(0, 0.1, 16_037) * np.repeat(rng.uniform(0, 1, 101), 160)[:16_037]).astype(
        np.float32
    )
    expected = np.r_[frame_energy(audio), [SILENT_DB] * 2]
    for size in (1, 100, 160, 1000, 16_037):
        stream = frame_stream(Early(), energy=True)
        frames = [stream.feed_frames(audio[i : i + size]) for i in range(0, len(audio), size)]
        frames.append(stream.finish_frames())
        assert np.allclose(np.concatenate([f.energy_db for f in frames]), expected)
        assert sum(len(f.scores) for f in frames) == len(expected)


@pytest.mark.parametrize("seed", range(5))
def test_noise_floor_is_the_windows_percentile_also_where_values_tie(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5000))
    values = np.round(rng.normal(-40, 15, n) / 10) * 10  # few distinct values, as silence gives
    values[rng.random(n) < 0.4] = SILENT_DB
    values = values.astype(np.float32)
    weight, quantile, window = (
        1.0,
        float(rng.choice([0, 10, 50, 100])),
        int(rng.choice([100, 3000])),
    )
    expected = floored(values, weight, quantile, window * 10)
    for block in (1, 37, 1000):
        floor = NoiseFloor(weight, quantile, window)
        pieces = [floor.push(values[i : i + block]) for i in range(0, n, block)]
        assert np.array_equal(np.concatenate([*pieces, floor.finish()]), expected)


def test_memory_stays_bounded_on_an_hour_of_speech_and_pauses():
    rng = np.random.default_rng(7)
    scores = random_scores(rng, 360_000)
    scores[100_000:200_000] = 0.95  # 1000 s without a pause: cut for length, never held whole
    options = PreciseOptions(max_single_segment_time=30000)
    decision, held, found = PreciseDecision(options), 0, []
    for at in range(0, len(scores), 1000):
        found += decision.push(Frames(scores[at : at + 1000], at + 1000))
        held = max(
            held, len(decision.held_scores), len(decision.score_floor.scores), len(decision.pieces)
        )
    found += decision.finish()
    assert held <= 3000 + 1000 + 100  # one floor window, one block, one step
    assert max(s.end - s.start for s in found) <= 30000 and len(found) > 1000


def test_bad_options_are_refused_with_their_names():
    with pytest.raises(ValueError, match="leave_threshold"):
        PreciseOptions(enter_threshold=0.4, leave_threshold=0.5)
    with pytest.raises(TypeError, match="max_end_silence_time"):
        PreciseOptions().with_overrides(max_end_silence_time=500)
    with pytest.raises(SettingError, match="pad_ms must be a whole number from 0 to 10000"):
        PreciseOptions().with_overrides(pad_ms=-5)
    with pytest.raises(SettingError, match="max_single_segment_time must be"):
        PreciseOptions().with_overrides(max_single_segment_time=30)
    settable = {f"precise_{f.name}" for f in dataclasses.fields(PreciseOptions)}
    assert set(PRECISE_KEYS) == settable - {"precise_max_single_segment_time"}


class OtherEngine:
    name = "silero"


def test_funasr_profile_refuses_an_engine_without_fsmn_frames():
    with pytest.raises(ProfileError, match="funasr works only with the fsmn engine"):
        get_profile("funasr").check_engine(OtherEngine())
    PROFILES["precise"].check_engine(OtherEngine())  # scores are all it reads
    with pytest.raises(ProfileError, match="unknown profile 'exact'"):
        get_profile("exact")
    assert tuple(PROFILES) == PROFILE_NAMES  # the command line's and job files' choices
