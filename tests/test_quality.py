"""Segment quality held at its measured level: each engine with the precise profile (its tuned
defaults, what `segmenter segment --engine NAME` gives) on the shared data's groups, on a long
synthetic meeting and on generated meetings (far-field, quiet, dense, noisy) that the tuning
never saw.

The floors are the figures measured here (bench/quality.py gives the same on the shared groups;
docs/farfield.md and docs/engines.md), truncated to 0.001 and less 0.001 for INT8 kernels that
round differently on another CPU: a change that loses quality fails here. Skipped without
../shared (the data lives beside the checkout; the far-field meetings take real speech from it).
"""

import subprocess
import sys
from pathlib import Path

import pytest

from bench.make_farfield import GROUPS as FAR_GROUPS
from bench.make_farfield import REALSET, make_group, make_noisy_group
from segmenter.toolkit.evaluation import Score, read_rttm, score
from segmenter.vad import Vad

SHARED = Path(__file__).resolve().parents[2] / "shared"
GROUPS = {
    "devset": ("devset", ("dev*.wav",)),
    "ten": ("realset", ("ten_*.wav",)),
    "meeting": ("realset", ("ami_*.wav", "pyannote_*.wav")),
}
# frame F1 at collar 0, pooled per group; "long": two 10-minute meetings made below; "far": two
# 90 s far-field meetings made below (bench/make_farfield.py, seed 9: a seed its groups do not
# use). Measured (onnxruntime INT8): fsmn 0.9752, 0.9276, 0.9456, 0.9780, 0.9124; silero
# 0.9806, 0.9279, 0.9452, 0.9816, 0.8819; fusion 0.9795, 0.9256, 0.9521, 0.9838, 0.9319. The
# peers on "far": the funasr profile 0.8504, silero-vad 0.8572, ten-vad 0.9264 (fusion is above
# all three there; on the shared groups see docs/farfield.md).
# "quiet", "dense", "noisy": two 60 s recordings in each style of the second round's groups
# (made below). Measured: fsmn 0.9656, 0.9645, 0.9706; silero 0.9627, 0.9600, 0.9737; fusion
# 0.9681, 0.9632, 0.9717. The peers there: the funasr profile 0.9355, 0.9619, 0.9013;
# silero-vad 0.9602, 0.9650, 0.9677; ten-vad 0.9606, 0.9618, 0.9663.
STYLED = ("quiet", "dense", "noisy")
FLOORS = {
    "fsmn": {"devset": 0.974, "ten": 0.926, "meeting": 0.944, "long": 0.977, "far": 0.911},
    "silero": {"devset": 0.979, "ten": 0.926, "meeting": 0.944, "long": 0.980, "far": 0.880},
    "fusion": {"devset": 0.978, "ten": 0.924, "meeting": 0.951, "long": 0.982, "far": 0.930},
}
FLOORS["fsmn"].update(quiet=0.964, dense=0.963, noisy=0.969)
FLOORS["silero"].update(quiet=0.961, dense=0.959, noisy=0.972)
FLOORS["fusion"].update(quiet=0.967, dense=0.962, noisy=0.970)
# pooled over the shared groups and the long meetings (measured 0.9947, 0.9921, 0.9936)
RECALL_FLOOR = 0.99
# recall on the meeting groups (measured: fsmn 0.9416, 0.9467; silero 0.9229, 0.8610; fusion
# 0.9413, 0.9836; issue 26 asks 0.93: fsmn and fusion reach it on both); on quiet, dense,
# noisy: fsmn 0.9863, 0.9775, 0.9877; silero 0.9679, 0.9559, 0.9788; fusion 0.9823, 0.9718,
# 0.9788 (every engine above 0.93 on all three). The noisy pair's samples are the same in every
# run since make_noisy_group puts sox in repeatable mode (its dither was random: fsmn's F1 on
# it moved between 0.9671 and 0.9696 from run to run; now 0.9696, silero 0.9737, fusion 0.9717)
MEETING_RECALL = {
    "fsmn": {"meeting": 0.940, "far": 0.945, "quiet": 0.985, "dense": 0.976, "noisy": 0.986},
    "silero": {"meeting": 0.921, "far": 0.859, "quiet": 0.966, "dense": 0.954, "noisy": 0.977},
    "fusion": {"meeting": 0.940, "far": 0.982, "quiet": 0.981, "dense": 0.970, "noisy": 0.977},
}

pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data at {SHARED}")


@pytest.fixture(scope="module")
def long_meetings(tmp_path_factory) -> list[Path]:
    """Two 10-minute synthetic meetings (clean, pink noise at 20 dB) by the shared tool, with a
    seed the shared devset and bench/quality.py's 60 minutes do not use."""
    folder = tmp_path_factory.mktemp("long")
    tool = SHARED / "tools" / "make_devset.py"
    made = [sys.executable, str(tool), str(folder), "--files", "2", "--seconds", "600"]
    subprocess.run([*made, "--seed", "7", "--prefix", "long"], check=True, capture_output=True)
    return sorted(folder.glob("long*.wav"))


@pytest.fixture(scope="module")
def far_meetings(tmp_path_factory) -> list[Path]:
    """Two 90 s far-field meetings (reverberant rooms, talkers 1-4 m away, room noise) made by
    bench/make_farfield.py with seed 9, real speech from the realset among espeak-ng voices."""
    return make_group(tmp_path_factory.mktemp("far"), 2, 90.0, 9, "far", REALSET)


@pytest.fixture(scope="module")
def styled_meetings(tmp_path_factory) -> dict[str, list[Path]]:
    """Two 60 s recordings in each style of bench/make_farfield.py's second-round groups, from
    seeds those groups do not use (espeak-ng voices only): "quiet" (far_quiet's quiet far
    talkers, turn labels), "dense" (dense_close's close-talk conversation, overlaps, a music
    bed in some), "noisy" (make_devset's meetings at 5-20 dB SNR)."""
    folder = tmp_path_factory.mktemp("styled")
    return {
        "quiet": make_group(folder, 2, 60.0, 19, "quiet", None, FAR_GROUPS["far_quiet"].style),
        "dense": make_group(folder, 2, 60.0, 29, "dense", None, FAR_GROUPS["dense_close"].style),
        "noisy": make_noisy_group(folder, 2, 60.0, 39, "noisy"),
    }


@pytest.fixture(scope="module")
def vads() -> dict[str, Vad]:
    return {}


def engine_vad(vads: dict[str, Vad], engine: str) -> Vad:
    """The engine with its defaults (precise implied for silero and fusion), loaded once."""
    if engine not in vads:
        vads[engine] = Vad.load(engine=engine, profile="precise")
    return vads[engine]


def group_wavs(group: str, made: dict[str, list[Path]]) -> list[Path]:
    if group in made:
        return made[group]
    folder, patterns = GROUPS[group]
    return [w for p in patterns for w in sorted((SHARED / folder).glob(p))]


def pooled(vad: Vad, wavs: list[Path]) -> Score:
    """Frame counts of the engine's segments against each recording's RTTM, pooled."""
    total = Score()
    for wav in wavs:
        found = [(s.start / 1000, s.end / 1000) for s in vad.segments(wav)]
        total += score(read_rttm(wav.with_suffix(".rttm")), found)
    return total


@pytest.fixture(scope="module")
def made(long_meetings, far_meetings, styled_meetings) -> dict[str, list[Path]]:
    return {"long": long_meetings, "far": far_meetings, **styled_meetings}


@pytest.mark.parametrize("group", ["devset", "ten", "meeting", "long", "far", *STYLED])
@pytest.mark.parametrize("engine", FLOORS)
def test_precise_quality_floor(vads, made, engine, group):
    total = pooled(engine_vad(vads, engine), group_wavs(group, made))
    assert total.hit > 0
    assert total.f1 >= FLOORS[engine][group], f"{engine} on {group}: F1 {total.f1:.4f}"


@pytest.mark.slow
@pytest.mark.parametrize("engine", FLOORS)
def test_precise_recall_over_every_file(vads, made, engine):
    vad = engine_vad(vads, engine)
    groups = ("devset", "ten", "meeting", "long")
    total = sum((pooled(vad, group_wavs(g, made)) for g in groups), Score())
    assert total.recall >= RECALL_FLOOR


@pytest.mark.parametrize("group", ["meeting", "far", *STYLED])
@pytest.mark.parametrize("engine", FLOORS)
def test_precise_keeps_far_field_speech(vads, made, engine, group):
    total = pooled(engine_vad(vads, engine), group_wavs(group, made))
    floor = MEETING_RECALL[engine][group]
    assert total.recall >= floor, f"{engine} on {group}: recall {total.recall:.4f}"
