"""The toolkit: `quantize` (and pruning), `eval` of outputs against RTTMs, `bench`."""

import json

import pytest
import torch
from pyannote.core import Annotation, Segment
from pyannote.metrics.detection import (
    DetectionErrorRate,
    DetectionPrecision,
    DetectionRecall,
)

from segmenter.engines.model import bundled_model_dir
from segmenter.toolkit.evaluation import evaluate, read_rttm, score, score_model
from segmenter.vad import Vad

from .test_cli import run
from .test_parity import RECORDINGS, reference

# -- quantize ---------------------------------------------------------------------------------


def test_quantized_folder_loads_again_and_segments_as_int8(tmp_path, vad_int8):
    out = run("quantize", "-o", str(tmp_path / "q"))
    assert out.returncode == 0, out.stderr
    assert "model.pt 1.72 MB" in out.stdout and "model.int8.pt 0.5" in out.stdout
    folder = tmp_path / "q"
    assert not (folder / "model.pt").exists() and (folder / "model.int8.pt").is_file()
    fp32_size = (bundled_model_dir() / "model.pt").stat().st_size
    assert (folder / "model.int8.pt").stat().st_size < 0.35 * fp32_size
    loaded = Vad.load(folder, runtime="torch")  # torch INT8 weights (the onnx runtime refuses)
    assert loaded.precision == "int8"
    for path in RECORDINGS[:3]:
        assert loaded.segments(path) == vad_int8.segments(path), path.stem
    refused = run("segment", str(RECORDINGS[0]), "--model", str(folder), "--precision", "fp32")
    assert refused.returncode == 1 and "INT8 weights only" in refused.stderr


@pytest.mark.slow
def test_prune_zeroes_weights_and_reports_f1(tmp_path):
    evalset = tmp_path / "evalset"
    evalset.mkdir()
    for path in RECORDINGS[:2]:
        for suffix in (path.suffix, ".rttm"):
            (evalset / f"{path.stem}{suffix}").write_bytes(path.with_suffix(suffix).read_bytes())
    out = run("quantize", "-o", str(tmp_path / "p"), "--prune", "0.5", "--eval", str(evalset))
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("F1")]
    f1 = {line.split("(")[1].split(")")[0]: float(line.split()[-1]) for line in lines}
    assert set(f1) == {"fp32", "int8", "int8, pruned 0.5"}
    assert all(0.5 < v <= 1 for v in f1.values())
    state = torch.load(tmp_path / "p" / "model.int8.pt", weights_only=True)
    weight, _ = state["in_linear1.linear._packed_params._packed_params"]
    assert (weight.int_repr() == 0).float().mean() >= 0.5
    bench = run("bench", "--seconds", "10", "--model", str(tmp_path / "p"), "--json")
    rows = json.loads(bench.stdout)
    assert [(r["runtime"], r["precision"], r["agreement"]) for r in rows] == [
        ("torch", "int8", None)
    ]


# -- eval -------------------------------------------------------------------------------------


def test_scores_by_hand():
    half = score([(0.0, 1.0)], [(0.5, 1.5)])
    assert (half.hit, half.false_alarm, half.missed) == (50, 50, 50)
    assert half.precision == half.recall == half.f1 == 0.5
    assert half.detection_error_rate == 1.0
    late = score([(1.0, 2.0)], [(1.1, 2.0)])
    assert late.recall == 0.9 and late.precision == 1.0
    collared = score([(1.0, 2.0)], [(1.1, 2.0)], collar=0.2)  # 0.1 s each side is not scored
    assert collared.recall == collared.precision == 1.0 and collared.hit == 80
    assert score([(0.0, 1.0)], []).f1 == 0.0 and score([], []).detection_error_rate == 0.0
    assert score([], []).precision == score([], []).recall == 1.0


def as_annotation(spans):
    annotation = Annotation()
    for start, end in spans:
        annotation[Segment(start, end)] = "speech"
    return annotation


@pytest.mark.parametrize("collar", [0.0, 0.5])
def test_scores_agree_with_pyannote_metrics(collar):
    """FunASR's segments against the devset's ground truth, scored both ways."""
    for path in RECORDINGS:
        ref = read_rttm(path.with_suffix(".rttm"))
        hyp = [(a / 1000, b / 1000) for a, b in reference(path)]
        ours = score(ref, hyp, collar)
        r, h = as_annotation(ref), as_annotation(hyp)
        assert ours.precision == pytest.approx(DetectionPrecision(collar=collar)(r, h), abs=2e-3)
        assert ours.recall == pytest.approx(DetectionRecall(collar=collar)(r, h), abs=2e-3)
        assert ours.detection_error_rate == pytest.approx(
            DetectionErrorRate(collar=collar)(r, h), abs=2e-3
        )


def test_eval_finds_outputs_by_relative_path(tmp_path):
    refs, out = tmp_path / "refs", tmp_path / "out"
    (refs / "day1").mkdir(parents=True)
    (out / "day1").mkdir(parents=True)
    (refs / "day1" / "a.rttm").write_text("SPEAKER a 1 0.000 1.000 <NA> <NA> speech <NA> <NA>\n")
    (refs / "b.rttm").write_text("SPEAKER b 1 0.000 1.000 <NA> <NA> speech <NA> <NA>\n")
    doc = {"segments": [{"start": 0.5, "end": 1.5}]}
    (out / "day1" / "a.wav.json").write_text(json.dumps(doc))
    (out / "day1" / "a.wav.whisper.json").write_text("not the segment document")
    result = evaluate(refs, out)
    assert [f["file"] for f in result["files"]] == ["day1/a"] and result["missing"] == ["b"]
    assert result["overall"]["f1"] == 0.5
    cli = run("eval", str(refs), str(out), "--json")
    assert cli.returncode == 1 and json.loads(cli.stdout)["missing"] == ["b"]


def test_eval_with_nothing_matched_prints_no_score(tmp_path, vad_int8):
    refs, out = tmp_path / "refs", tmp_path / "out"
    refs.mkdir()
    out.mkdir()
    (refs / "a.rttm").write_text("SPEAKER a 1 0.000 1.000 <NA> <NA> speech <NA> <NA>\n")
    table = run("eval", str(refs), str(out))
    assert table.returncode == 1 and "1.0000" not in table.stdout
    assert "no output matched a reference RTTM" in table.stdout
    as_json = run("eval", str(refs), str(out), "--json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["overall"] is None
    with pytest.raises(ValueError, match="no recording with a reference RTTM"):
        score_model(vad_int8, refs)


def test_eval_of_a_batch_output_matches_its_segments(tmp_path):
    path = RECORDINGS[0]
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / f"{path.stem}.rttm").write_bytes(path.with_suffix(".rttm").read_bytes())
    batch = run("run", str(path), "-o", str(tmp_path / "out"), "--precision", "fp32", "--jobs", "1")
    assert batch.returncode == 0, batch.stderr
    out = run("eval", str(refs), str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    hyp = [(a / 1000, b / 1000) for a, b in reference(path)]
    expected = score(read_rttm(path.with_suffix(".rttm")), hyp).f1
    overall = out.stdout.splitlines()[-1].split()
    assert overall[0] == "overall" and float(overall[3]) == pytest.approx(expected, abs=1e-4)


# -- bench ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bench_measures_every_runtime_and_precision():
    out = run("bench", "--seconds", "30", "--json")
    assert out.returncode == 0, out.stderr
    rows = {(r["runtime"], r["precision"]): r for r in json.loads(out.stdout)}
    assert set(rows) == {("torch", "fp32"), ("torch", "int8"), ("onnx", "fp32"), ("onnx", "int8")}
    for (runtime, _), row in rows.items():
        assert row["torch_imported"] is (runtime == "torch")
        assert row["audio_s"] == 30.0 and row["process_s"] > 0 and row["n_segments"] > 0
        assert row["rss_peak_mb"] >= row["rss_load_mb"] > 0
    assert rows["onnx", "fp32"]["agreement"] == 1.0
    assert rows["torch", "int8"]["model_mb"] < rows["torch", "fp32"]["model_mb"] / 2
    table = run("bench", "--seconds", "10")
    assert table.returncode == 0
    assert sum(line.startswith(("| torch", "| onnx")) for line in table.stdout.splitlines()) == 4


def test_bench_agreement_matches_boundaries_by_nearest():
    from segmenter.toolkit.benchmark import agreement

    same = [[0, 100], [200, 300]]
    assert agreement(same, same) == 1.0
    assert agreement([[0, 100], [150, 160], [200, 300]], same) == 1.0  # an extra cut costs nothing
    assert agreement([[0, 120]], [[0, 100]]) == 0.5
    assert agreement([], []) == 1.0 and agreement([[1, 2]], []) == 0.0
