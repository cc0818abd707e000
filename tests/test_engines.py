"""Engines through every door: `segment --engine`, job TOML `engine`, the manifest's config hash,
the fused stream's block-size invariance and the usage errors (their quality: test_quality.py)."""

import json

import numpy as np
import pytest
import soundfile as sf

from segmenter import cli
from segmenter.batch.manifest import config_hash
from segmenter.batch.runner import BatchSettings
from segmenter.profiles.precise import precise_defaults
from segmenter.segments import segments_of
from segmenter.settings import DecisionSettings
from segmenter.vad import Vad

from .conftest import GOLDEN, REPO
from .test_batch import rows, twenty_seconds
from .test_batch import run as run_batch
from .test_cli import run as run_cli
from .test_profiles import assert_separate

CLIP = GOLDEN / "dev00_clean.flac"


@pytest.fixture(scope="module")
def fusion() -> Vad:
    return Vad.load(engine="fusion")


@pytest.fixture(scope="module")
def silero() -> Vad:
    return Vad.load(engine="silero")


@pytest.mark.parametrize("engine", ["silero", "fusion"])
def test_segment_command_with_each_engine(engine):
    done = run_cli("segment", str(CLIP), "--engine", engine)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["model"]["engine"] == engine and document["profile"] == "precise"
    assert document["options"] == precise_defaults({}, engine).to_dict()
    assert "silero-vad" in document["model"]["name"]
    if engine == "fusion":  # both models named, each with its checksum
        assert document["model"]["fsmn"]["sha256"] and document["model"]["silero"]["sha256"]
    assert len(document["segments"]) >= 3
    assert_separate(segments_of(document))


def test_funasr_with_another_engine_is_a_usage_error_before_any_file(tmp_path):
    for engine in ("silero", "fusion"):
        done = run_cli(
            "segment",
            str(CLIP),
            "--engine",
            engine,
            "--profile",
            "funasr",
            "--formats",
            "json",
            "-o",
            str(tmp_path),
        )
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "profile funasr" in done.stderr and engine in done.stderr
    done = run_batch(GOLDEN, "-o", tmp_path / "out", "--engine", "silero", "--profile", "funasr")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert not list(tmp_path.iterdir())  # nothing written, no manifest made


def test_a_lost_silero_graph_is_a_usage_error_in_one_line(monkeypatch, capsys, tmp_path):
    """silero-vad's graph ships inside the package; an install that lost it says reinstall."""
    from segmenter.engines import silero

    monkeypatch.setattr(silero, "bundled_dir", lambda: tmp_path / "gone")
    args = ["run", str(GOLDEN), "-o", str(tmp_path / "out"), "--engine", "fusion", "--quiet"]
    for argv in (["segment", str(CLIP), "--engine", "silero"], args):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"missing; reinstall: pip install -e '{REPO}'" in err
    assert not list(tmp_path.iterdir())


def test_job_engine_and_an_engine_change_redoes_files(tmp_path):
    twenty_seconds(tmp_path / "in", "a.wav")
    job = tmp_path / "job.toml"
    job.write_text('inputs = ["in"]\nout = "out"\nengine = "fusion"\nformats = ["json", "srt"]\n')
    out = tmp_path / "out"
    assert run_batch("--job", job).returncode == 0
    document = json.loads((out / "a.wav.json").read_text())
    assert document["model"]["engine"] == "fusion" and document["profile"] == "precise"
    assert (out / "a.wav.srt").is_file()
    assert run_batch("--job", job).returncode == 0
    assert rows(out)["a.wav"]["attempts"] == 1  # same settings: nothing redone
    assert run_batch("--job", job, "--engine", "silero", "--redo-changed").returncode == 0
    assert rows(out)["a.wav"]["attempts"] == 2  # the engine is in the config hash
    assert json.loads((out / "a.wav.json").read_text())["model"]["engine"] == "silero"
    job.write_text('inputs = ["in"]\nout = "out"\nengine = "whisper"\n')
    done = run_batch("--job", job)
    assert done.returncode == 2 and "engine must be one of fsmn, silero, fusion" in done.stderr


def test_the_default_engines_config_hash_is_unchanged(tmp_path):
    # the hash of the default settings before engines existed (torch INT8 then): past batches
    # are not redone with --runtime torch; the onnx default gives other segments, so its own hash
    torch_int8 = BatchSettings(inputs=[], out=tmp_path, runtime="torch")
    assert config_hash(torch_int8.result_config()) == "8accc141d46fcd0b"
    assert config_hash(BatchSettings(inputs=[], out=tmp_path).result_config()) == "479b85aaa2f58a2b"
    hashes = {
        config_hash(BatchSettings([], tmp_path, decision=DecisionSettings(e)).result_config())
        for e in ("fsmn", "silero", "fusion")
    }
    assert len(hashes) == 3


def test_fusion_streams_block_size_invariant(fusion):
    samples = sf.read(CLIP, dtype="float32")[0][: 25 * 16000]
    whole = fusion.stream(keep_scores=True)
    found = whole.feed(samples) + whole.finish()
    scores = whole.speech_scores()
    assert len(scores) == len(samples) // 160 and len(found) >= 2
    for block in (160, 333, 512, 1234, 16000, 99991):
        stream = fusion.stream(keep_scores=True)
        got = []
        for at in range(0, len(samples), block):
            got += stream.feed(samples[at : at + block])
        assert got + stream.finish() == found, block
        np.testing.assert_array_equal(stream.speech_scores(), scores)


def test_fusion_buffers_only_the_engine_ahead(fusion):
    stream = fusion.engine.score_stream()
    samples = sf.read(CLIP, dtype="float32")[0]
    for at in range(0, len(samples), 16000):
        stream.feed(samples[at : at + 16000])
        # at most one FSMN feature batch (10 s) and one block of frames wait for the other engine
        assert max(len(p) for p in stream.pending) <= 1000 + 100 + 4


def test_api_engine_at_load(silero):
    assert silero.profile == "precise" and silero.settings() == precise_defaults({}, "silero")
    found = silero.segments(CLIP)
    assert found and found == silero.segments(CLIP, profile="precise")
    assert_separate(found)
    with pytest.raises(ValueError, match="profile funasr works only with the fsmn engine"):
        silero.segments(CLIP, profile="funasr")
    with pytest.raises(ValueError, match="profile funasr works only"):
        Vad.load(engine="fusion", profile="funasr")


def test_serve_with_the_fusion_engine(fusion, tmp_path):
    web = pytest.importorskip("segmenter.views.web", reason="the web extra is not installed")
    settings = web.ServeSettings(decision=DecisionSettings("fusion", "precise"))
    service = web.Service(settings, web.Engine(fusion))
    try:
        view = service.segment(CLIP, 0, 60, "precise")
        expected = [(s.start / 1000, s.end / 1000) for s in fusion.segments(CLIP)]
        assert [(r[1], r[2]) for r in view.rows] == expected
        page = web.build(service)
        blocks = list(page.blocks.values())
        radio = next(b for b in blocks if getattr(b, "elem_id", "") == "profile")
        assert [c[0] for c in radio.choices] == ["precise"]  # funasr cannot read fused scores
        texts = [getattr(b, "value", "") for b in blocks]
        assert any("FSMN-VAD + silero-vad" in str(t) for t in texts)
    finally:
        service.workspace.close()
