"""`segmenter serve`: the web page (Gradio). "File" segments an upload or a microphone recording;
"Batch" shows an output folder: its manifest, its files and failures, a file's timeline and the
playback of a segment.

One model per server process, loaded at start and shared by every request. An upload is deleted
as soon as it is segmented; the downloads it gave live in a request folder that is swept later.

What a client can make the server read, store or delete is bounded here, not by Gradio:
- only files that arrived through this server's upload route are segmented (and then deleted):
  `Uploads` records the paths the route returned, and a file record naming any other path, a
  file elsewhere on the server or another file in Gradio's cache, is refused before Gradio
  copies it (`UploadsOnly`) and again in the handler, after resolving symlinks;
- every request body is counted as it arrives (`UploadLimit`): over `--max-upload-mb` the request
  is refused with a message naming the option, whatever its headers said (chunked uploads
  too), and what it sent is dropped (it was held in an unlinked file of ours, never Gradio's);
- `--auth USER:PASSWORD` or `--auth-file FILE` asks for a login; binding an address other than
  loopback without one is warned about at start.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI

from ..audio import AudioError
from ..batch.manifest import FileRow
from ..engines.model import DEFAULT_RUNTIME
from ..names import shown
from ..profiles import DEFAULT_PROFILE
from ..segments import Segment, segments_of
from ..settings import DecisionSettings
from ..vad import Vad, steady_allocator
from ..writers import clips_folder, find_clip, write_clips, write_formats
from .page import ENGINE_LABELS, TABLE_HEADERS, build  # noqa: F401 - importable here too
from .report import hours, read_batch, read_file_row, speech_spans
from .timeline import clock, envelope, waveform_svg
from .uploads import (  # noqa: F401 - the guards, importable from here as before
    KEEP_DOWNLOADS_S,
    NOT_UPLOADED,
    UploadLimit,
    Uploads,
    UploadsOnly,
    remove_upload,
    too_large,
    upload_folder,
)

SWEEP_REQUESTS_S = 300  # our request folders, copied by Gradio as the request ends
# settings the page's controls give with each request (ms, FunASR's names); the model's own
# stay without them, so the end silence control's 0 keeps FunASR's schedule
PAGE_CONTROLS = ("max_end_silence_time", "max_single_segment_time")


@dataclass(frozen=True)
class ServeSettings:
    """What `segmenter serve` was started with."""

    out: Path | None = None
    host: str = "127.0.0.1"
    port: int = 6006
    model: str | None = None
    precision: str = "int8"
    runtime: str = DEFAULT_RUNTIME
    # the engine, the page's starting profile and its settings; the page's two controls (end
    # silence, longest segment) start from theirs, and a request's values replace them
    decision: DecisionSettings = field(default_factory=DecisionSettings)
    max_upload_mb: float = 200.0
    logins: tuple[tuple[str, str], ...] = ()  # (user, password) pairs; none: no login asked


class Engine:
    """The server's one model, shared by requests; a lock keeps them one at a time in it."""

    def __init__(self, vad: Vad):
        self.vad = vad
        self.lock = threading.Lock()

    def document(self, path: Path, profile: str | None = None, **overrides: Any) -> dict[str, Any]:
        """The per-file document, one request at a time."""
        with self.lock:
            return self.vad.document(path, profile=profile, **overrides)


class Workspace:
    """Request folders under one temporary folder; old ones are swept, all removed at exit."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="segmenter-serve-"))

    def new(self) -> Path:
        """A fresh request folder, after removing those older than SWEEP_REQUESTS_S."""
        for old in self.root.iterdir():
            if time.time() - old.stat().st_mtime > SWEEP_REQUESTS_S:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root))

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class FileView:
    """What the File tab shows for one recording."""

    timeline: str
    rows: list[list[float]]
    totals: str
    downloads: list[str]


class Service:
    """The page's handlers, around the shared engine."""

    def __init__(self, settings: ServeSettings, engine: Engine, uploads: Uploads | None = None):
        self.settings, self.engine, self.workspace = settings, engine, Workspace()
        self.uploads = uploads or Uploads(upload_folder())
        self.names: dict[str, str] = {}  # the Batch tab's escaped names -> the manifest's

    @classmethod
    def start(cls, settings: ServeSettings) -> Service:
        """Load the server's one model, with the profiles' settings it was given."""
        decision = settings.decision
        own = {k: v for k, v in decision.overrides.items() if k not in PAGE_CONTROLS}
        vad = Vad.load(
            settings.model,
            precision=settings.precision,
            runtime=settings.runtime,
            settings=dataclasses.replace(decision, overrides=own),
        )
        return cls(settings, Engine(vad))

    # -- File tab ----------------------------------------------------------------------------

    def segment_upload(
        self,
        upload: str | None,
        end_silence_ms: float,
        max_segment_s: float,
        profile: str = DEFAULT_PROFILE,
    ):
        """Segment an uploaded or recorded file, then delete it; the File tab's outputs.

        Only a file this server's upload route stored is read, and deleted: any other path a
        request names is refused untouched.
        """
        if not upload:
            raise gr.Error("Upload a recording or record one first.")
        source = self.uploads.take(upload)
        if source is None:
            raise gr.Error(NOT_UPLOADED)
        try:
            size = source.stat().st_size if source.exists() else 0
            if size > self.settings.max_upload_mb * 1e6:
                raise gr.Error(too_large(size, self.settings.max_upload_mb))
            view = self.segment(source, end_silence_ms, max_segment_s, profile)
        finally:
            remove_upload(source)
        return view.timeline, view.rows, view.totals, view.downloads, None

    def segment(
        self,
        source: Path,
        end_silence_ms: float,
        max_segment_s: float,
        profile: str = DEFAULT_PROFILE,
    ) -> FileView:
        """Segments, waveform and downloads of one recording, with the page's settings."""
        overrides = {"max_single_segment_time": round(max_segment_s * 1000)}
        if end_silence_ms and profile == "funasr":  # 0 keeps FunASR's schedule
            overrides["max_end_silence_time"] = round(end_silence_ms)
        began = time.perf_counter()
        try:
            document = self.engine.document(source, profile, **overrides)
            peaks = envelope(source)
        except AudioError as exc:
            raise gr.Error(str(exc).replace(str(source), source.name)) from None
        seconds = time.perf_counter() - began
        document["audio"]["path"] = source.name  # not the server's temporary path
        spans = [(s["start"], s["end"]) for s in document["segments"]]
        duration = document["audio"]["duration"]
        return FileView(
            waveform_svg(duration, spans, peaks),
            segment_rows(spans),
            totals(document, seconds),
            self.downloads(source, document),
        )

    def downloads(self, source: Path, document: dict[str, Any]) -> list[str]:
        """JSON, RTTM and a zip of the clips, in a new request folder."""
        folder = self.workspace.new()
        base = folder / source.name
        files = [str(p) for p in write_formats(base, document, ("json", "rttm"))]
        clips = folder / f"{source.name}.clips"
        write_clips(source, clips, segments_of(document))
        files.append(shutil.make_archive(str(clips), "zip", root_dir=clips))
        shutil.rmtree(clips)
        return files

    # -- Batch tab ---------------------------------------------------------------------------

    def overview(self):
        """The manifest's state, the files, the failures, and the finished files to pick from."""
        out = self.settings.out
        if out is None:
            empty = gr.update(choices=[], value=None)
            return "Start the server with an output folder: `segmenter serve OUT`.", [], [], empty
        batch = read_batch(out)
        counts = batch.status["counts"]
        audio, speech = batch.status["audio_hours"], batch.status["speech_hours"]
        summary = (
            f"**{out}**: {counts['done']} done, {counts['failed']} failed,"
            f" {counts['pending'] + counts['running']} to do; {hours(audio)} of audio,"
            f" {hours(speech)} of speech"
        )
        files = [file_line(row) for row in batch.files]
        failures = [
            [shown(f["file"]), shown(f["error"] or ""), f["attempts"]]
            for f in batch.status["failures"]
        ]
        done = [row.rel for row in batch.files if row.status == "done"]
        self.names.update((shown(rel), rel) for rel in done if shown(rel) != rel)
        done = [shown(rel) for rel in done]  # JSON cannot carry a name that is not UTF-8
        return summary, files, failures, gr.update(choices=done, value=done[0] if done else None)

    def batch_file(self, rel: str | None):
        """A finished file's timeline and segments, and its segments to pick from."""
        if not rel:
            return "", [], gr.update(choices=[], value=None)
        row, spans = self._finished(rel)
        rows = segment_rows(spans)
        choices = [(f"{i}: {a:.2f}-{b:.2f} s", i) for i, (a, b) in enumerate(spans, 1)]
        timeline = waveform_svg(row.duration or 0.0, spans, source_envelope(row))
        return timeline, rows, gr.update(choices=choices, value=None)

    def play_segment(self, rel: str | None, index: int | None) -> str | None:
        """A WAV of one segment: its clip if the run cut clips, else cut from the source."""
        if not rel or not index:
            return None
        row, spans = self._finished(rel)
        if not (isinstance(index, int) and 1 <= index <= len(spans)):
            raise gr.Error(f"{shown(rel)}: no segment {index} (it has {len(spans)})")
        start, end = spans[index - 1]
        segment = Segment(round(start * 1000), round(end * 1000))
        folder = self.workspace.new()
        clip = find_clip(clips_folder(self.settings.out, row.rel), index - 1)
        if clip is not None:
            return shutil.copy(clip, folder)
        source = Path(row.path)
        try:
            names = write_clips(source, folder / "clip", [segment])
        except AudioError as exc:
            raise gr.Error(f"Cannot play it: the source cannot be read ({exc})") from None
        return str(folder / "clip" / names[0])

    def _finished(self, rel: str) -> tuple[FileRow, list[tuple[float, float]]]:
        out = self.settings.out
        rel = self.names.get(rel, rel)  # a name the page shows escaped
        row = read_file_row(out, rel)
        spans = speech_spans(out, row) if row is not None else None
        if spans is None:
            raise gr.Error(f"{shown(rel)}: no finished file with a JSON or RTTM output in {out}")
        return row, spans


def segment_rows(spans: list[tuple[float, float]]) -> list[list[float]]:
    """The segment table: index, start, end, duration (seconds)."""
    return [[i, a, b, round(b - a, 3)] for i, (a, b) in enumerate(spans, 1)]


def source_envelope(row: FileRow):
    """The waveform of a batch file's source, if it can still be read."""
    try:
        return envelope(row.path)
    except AudioError:
        return None


def totals(document: dict[str, Any], seconds: float) -> str:
    """One line on a segmented recording."""
    duration, speech = document["audio"]["duration"], document["speech_duration"]
    share = 100 * speech / duration if duration else 0.0
    model = document["model"]
    return (
        f"**{document['audio']['path']}**: {plural(len(document['segments']), 'segment')},"
        f" {clock(speech)} of speech in"
        f" {clock(duration)} ({share:.0f}%). Segmented in {seconds:.2f} s"
        f" ({model['runtime']} {model['precision']}); the recording was then deleted from the"
        " server."
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def file_line(row: FileRow) -> list:
    """A row of the Batch tab's file list."""
    share = round(100 * row.speech / row.duration) if row.duration else None
    return [
        shown(row.rel),
        row.status,
        round(row.duration, 1) if row.duration is not None else None,
        round(row.speech, 1) if row.speech is not None else None,
        share,
        row.segments,
    ]


def create_app(service: Service) -> FastAPI:
    """The page mounted on a FastAPI app that counts request bodies against the limit (the
    outer middleware), then lets through only file records of this server's uploads; behind
    a login when the settings have any."""
    app = FastAPI()
    app.add_middleware(UploadsOnly, uploads=service.uploads)
    app.add_middleware(UploadLimit, limit_mb=service.settings.max_upload_mb)
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    logins = list(service.settings.logins) or None
    page = build(service)
    return gr.mount_gradio_app(app, page, path="/", theme=theme, footer_links=[], auth=logins)


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address or name: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_to_network_warning(settings: ServeSettings) -> str | None:
    """The warning for a server others can reach without a login, if it is one."""
    if is_loopback(settings.host) or settings.logins:
        return None
    return (
        f"segmenter serve: warning: {settings.host} is reachable from other machines and no login"
        " is asked: anyone who reaches port"
        f" {settings.port} can segment recordings and see the batch; add --auth USER:PASSWORD"
        " or --auth-file FILE (and serve it behind HTTPS)"
    )


def serve(settings: ServeSettings) -> None:
    """Load the model, then serve the page until interrupted."""
    began = time.perf_counter()
    if warning := open_to_network_warning(settings):
        print(warning, file=sys.stderr, flush=True)
    steady_allocator()
    service = Service.start(settings)
    app = create_app(service)
    print(
        f"segmenter serve: http://{settings.host}:{settings.port}/"
        f" (ready in {time.perf_counter() - began:.1f} s)",
        flush=True,
    )
    # uvicorn stops gracefully on SIGTERM or Ctrl-C, then raises it again: exit quietly, and
    # let the request folders go too
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: sys.exit(0))
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        service.workspace.close()
