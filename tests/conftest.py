"""Shared fixtures: one loaded model per precision for the whole session."""

from pathlib import Path

import pytest

from segmenter.vad import Vad

GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.fixture(scope="session")
def vad_fp32() -> Vad:
    return Vad.load(precision="fp32")


@pytest.fixture(scope="session")
def vad_int8() -> Vad:
    return Vad.load(precision="int8")
