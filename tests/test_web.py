"""The web page's handlers without a browser: segments, downloads, deletion of uploads, the size
limit, the shared model, the Batch tab; and `serve` without the web extra."""

import io
import json
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import soundfile as sf
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from segmenter.segments import Segment
from segmenter.settings import DecisionSettings
from segmenter.views import web
from segmenter.views.report import read_batch, speech_spans
from segmenter.writers import clip_name

from .conftest import BATCH_SAMPLES, REPO, SAMPLES

SAMPLE = SAMPLES / "standup_meeting.wav"


@pytest.fixture
def service(vad_fp32, batch_out, tmp_path):
    settings = web.ServeSettings(out=batch_out, precision="fp32")
    service = web.Service(settings, web.Engine(vad_fp32), web.Uploads(tmp_path / "gradio"))
    yield service
    service.workspace.close()


def upload(service: web.Service, source: Path = SAMPLE) -> Path:
    """A copy of `source` where Gradio puts uploads (a folder of its own), as the server's
    upload route records it."""
    folder = service.uploads.folder / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = Path(shutil.copy(source, folder))
    service.uploads.add(path)
    return path


def test_upload_gives_the_engine_segments_then_is_deleted(service, vad_fp32):
    path = upload(service)
    timeline, rows, totals, downloads, cleared = service.segment_upload(str(path), 0, 60)
    expected = vad_fp32.document(SAMPLE)["segments"]
    assert [(r[1], r[2]) for r in rows] == [(s["start"], s["end"]) for s in expected]
    assert [r[0] for r in rows] == list(range(1, len(expected) + 1))
    assert timeline.count('class="speech"') == len(expected)
    assert f"{SAMPLE.name}**: {len(expected)} segments" in totals
    assert cleared is None  # the page forgets the file the server deleted
    assert not path.exists() and not path.parent.exists()
    names = [Path(d).name for d in downloads]
    assert names == [f"{SAMPLE.name}.json", f"{SAMPLE.name}.rttm", f"{SAMPLE.name}.clips.zip"]
    document = json.loads(Path(downloads[0]).read_text())
    assert document["segments"] == expected and document["audio"]["path"] == SAMPLE.name
    assert len(Path(downloads[1]).read_text().splitlines()) == len(expected)
    with zipfile.ZipFile(downloads[2]) as clips:
        assert len(clips.namelist()) == len(expected)
        first = sf.info(io.BytesIO(clips.read(sorted(clips.namelist())[0])))
    assert first.duration == pytest.approx(expected[0]["end"] - expected[0]["start"], abs=1e-3)
    assert not (Path(downloads[0]).parent / f"{SAMPLE.name}.clips").exists()


def test_settings_reach_the_engine(service, vad_fp32):
    """Maximum segment in seconds, end silence in ms (0: FunASR's schedule), as the engine's."""
    for silence, longest, overrides in [
        (0, 2, {"max_single_segment_time": 2000}),
        (100, 60, {"max_end_silence_time": 100}),
    ]:
        rows = service.segment_upload(str(upload(service)), silence, longest)[1]
        expected = vad_fp32.segments(SAMPLE, **overrides)
        assert expected != vad_fp32.segments(SAMPLE)
        assert [(r[1], r[2]) for r in rows] == [(s.start / 1000, s.end / 1000) for s in expected]


def test_profile_control_reaches_the_engine(service, vad_fp32):
    """The precise profile from the page; the end silence slider is funasr's alone."""
    expected = vad_fp32.segments(SAMPLE, profile="precise", max_single_segment_time=60000)
    assert expected != vad_fp32.segments(SAMPLE)
    for silence in (0, 300):
        path = str(upload(service))
        rows = service.segment_upload(path, silence, 60, "precise")[1]
        assert [(r[1], r[2]) for r in rows] == [(s.start / 1000, s.end / 1000) for s in expected]


def _control(page: gr.Blocks, elem_id: str):
    return next(b for b in page.blocks.values() if getattr(b, "elem_id", None) == elem_id)


def test_serve_starts_with_the_profile_and_precise_settings_it_was_given():
    """One DecisionSettings: the model takes its profile's settings; the page's controls start
    from the two they give per request, which the model itself keeps at their defaults."""
    decision = DecisionSettings(
        profile="precise", overrides={"pad_ms": 0, "max_single_segment_time": 30000}
    )
    service = web.Service.start(web.ServeSettings(decision=decision))
    assert service.engine.vad.settings("precise").pad_ms == 0
    page = web.build(service)
    radio = _control(page, "profile")
    assert radio.value == "precise"
    assert _control(page, "max-segment").value == 30
    service.workspace.close()
    fixed = {"lookahead_time_end_point": 300, "max_end_silence_time": 500}
    service = web.Service.start(web.ServeSettings(decision=DecisionSettings(overrides=fixed)))
    assert service.engine.vad.settings("funasr").lookahead_time_end_point == 300
    assert service.engine.vad.settings("funasr").dynamic_silence  # the page's 0 keeps it
    page = web.build(service)
    assert _control(page, "profile").value == "funasr"
    assert _control(page, "end-silence").value == 500
    service.workspace.close()


def test_too_large_upload_names_the_option_and_is_deleted(vad_fp32, tmp_path):
    settings = web.ServeSettings(max_upload_mb=0.5)
    service = web.Service(settings, web.Engine(vad_fp32), web.Uploads(tmp_path))
    path = upload(service)  # 0.64 MB
    with pytest.raises(gr.Error) as refused:
        service.segment_upload(str(path), 0, 60)
    assert "0.6 MB" in refused.value.message and "--max-upload-mb" in refused.value.message
    assert not path.exists()
    service.workspace.close()


def test_unreadable_upload_is_one_clear_error_and_deleted(service):
    path = upload(service, SAMPLES / "README.md")
    bad = path.rename(path.with_name("notes.wav"))
    service.uploads.add(bad)
    with pytest.raises(gr.Error) as refused:
        service.segment_upload(str(bad), 0, 60)
    assert refused.value.message == "notes.wav: not audio (a text file)"  # no server path
    assert not bad.exists()


def test_one_model_shared_by_requests(monkeypatch, vad_fp32, tmp_path):
    loads, used = [], []
    monkeypatch.setattr(web.Vad, "load", lambda *a, **k: loads.append(1) or vad_fp32)
    real = web.Vad.document

    def document(self, *args, **kwargs):
        used.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(web.Vad, "document", document)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    service = web.Service.start(web.ServeSettings(precision="fp32"))
    for _ in range(2):
        service.segment_upload(str(upload(service)), 0, 60)
    assert len(loads) == 1 and len(used) == 2 and used[0] is used[1] is vad_fp32
    service.workspace.close()


def test_request_folders_are_swept(service, monkeypatch):
    first = service.workspace.new()
    monkeypatch.setattr(web, "SWEEP_REQUESTS_S", -1)
    second = service.workspace.new()
    assert not first.exists() and second.exists()


def test_upload_limit_refuses_before_reading():
    async def upload_route(request):
        return PlainTextResponse(f"read {len(await request.body())} bytes")

    app = Starlette()
    app.add_route("/gradio_api/upload", upload_route, methods=["POST"])
    client = TestClient(web.UploadLimit(app, limit_mb=1))
    small = client.post("/gradio_api/upload", files={"files": ("a.wav", b"x" * 900_000)})
    assert small.status_code == 200 and small.text.startswith("read 900")
    large = client.post("/gradio_api/upload", files={"files": ("a.wav", b"x" * 1_200_000)})
    assert large.status_code == 413
    assert "1.2 MB" in large.text and "up to 1 MB" in large.text and "--max-upload-mb" in large.text


def test_batch_overview(service):
    summary, files, failures, chosen = service.overview()
    assert "2 done, 1 failed, 0 to do" in summary
    assert [f[:2] for f in files] == sorted(
        [[n, "done"] for n in BATCH_SAMPLES] + [["broken.wav", "failed"]]
    )
    assert failures == [["broken.wav", failures[0][1], 1]] and "not audio" in failures[0][1]
    assert (
        chosen["choices"] == sorted(BATCH_SAMPLES) and chosen["value"] == sorted(BATCH_SAMPLES)[0]
    )


def test_batch_file_and_segment_playback_from_the_source(service, batch_out):
    name = BATCH_SAMPLES[0]
    row = next(r for r in read_batch(batch_out).files if r.rel == name)
    spans = speech_spans(batch_out, row)
    timeline, rows, choices = service.batch_file(name)
    assert timeline.count('class="speech"') == len(spans) == len(rows) == len(choices["choices"])
    assert "<polygon" in timeline  # the source is there: its waveform is drawn
    wav = service.play_segment(name, 2)
    start, end = spans[1]
    assert sf.info(wav).duration == pytest.approx(end - start, abs=1e-3)
    source = sf.read(row.path)[0]
    played = sf.read(wav)[0]
    offset = round(start * 16000)
    assert np.allclose(played, source[offset : offset + len(played)], atol=1e-4)


def test_segment_playback_takes_the_runs_clip(vad_fp32, batch_out, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(batch_out, out)
    name = BATCH_SAMPLES[0]
    start, end = speech_spans(out, next(r for r in read_batch(out).files if r.rel == name))[0]
    clips = out / f"{name}.clips"
    clips.mkdir()
    tone = np.sin(np.arange(8000) / 5).astype(np.float32) * 0.1  # not the recording
    segment = Segment(round(start * 1000), round(end * 1000))
    sf.write(clips / clip_name(0, segment), tone, 16000)
    service = web.Service(web.ServeSettings(out=out), web.Engine(vad_fp32))
    played = service.play_segment(name, 1)
    assert Path(played).read_bytes() == (clips / clip_name(0, segment)).read_bytes()
    service.workspace.close()


def test_serve_without_the_web_extra_says_how_to_get_it():
    blocked = "import sys; sys.modules['gradio'] = None; from segmenter.cli import main; "
    done = subprocess.run(
        [sys.executable, "-c", blocked + "sys.exit(main(['serve']))"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr == f"segmenter: serve needs the web extra: pip install -e '{REPO}[web]'\n"


def test_batch_runs_without_any_web_package(tmp_path):
    """`make run` needs no web dependency: a run with a report, the web packages unimportable."""
    (tmp_path / "in").mkdir()
    shutil.copy(SAMPLE, tmp_path / "in")
    blocked = "import sys\nfor m in ('gradio', 'fastapi', 'uvicorn', 'selenium'):\n"
    blocked += "    sys.modules[m] = None\nfrom segmenter.cli import main\n"
    args = ["run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--settle-seconds", "0"]
    done = subprocess.run(
        [sys.executable, "-c", blocked + f"sys.exit(main({[*args, '--quiet', '--report']!r}))"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "report.html").is_file()


def test_uploads_are_taken_once_and_only_inside_the_upload_folder(tmp_path):
    uploads = web.Uploads(tmp_path / "gradio")
    stored = tmp_path / "gradio" / "abc" / "x.wav"
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"RIFF")
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF")
    link = tmp_path / "gradio" / "abc" / "link.wav"
    link.symlink_to(outside)
    for path in (stored, stored, outside, link, tmp_path / "gradio"):
        uploads.add(path)
    assert not uploads.known(outside) and not uploads.known(link)  # resolved: outside
    assert uploads.take(str(tmp_path / "gradio" / "abc" / ".." / "abc" / "x.wav")) == stored
    assert uploads.take(stored) == stored  # uploaded twice (two clients, same bytes)
    assert uploads.take(stored) is None and uploads.take(link) is None
