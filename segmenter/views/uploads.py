"""What a client of `segmenter serve` can make the server read, store or delete, bounded here and
not by Gradio: every request body counted as it arrives (`UploadLimit`), and only files that
arrived through this server's upload route segmented, then deleted (`Uploads`, `UploadsOnly`)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.responses import PlainTextResponse

KEEP_DOWNLOADS_S = 3600  # Gradio's copies of the downloads, then swept
KEEP_UPLOADS_S = KEEP_DOWNLOADS_S  # an upload never segmented goes with Gradio's cache sweep
MULTIPART_SLACK = 64 * 1024  # form fields and boundaries around an uploaded file


def too_large(size: int, limit_mb: float) -> str:
    """The refusal for an upload over the limit, naming the option that sets it."""
    return (
        f"The recording is {size / 1e6:.1f} MB; this server takes uploads up to {limit_mb:g} MB"
        " (set by segmenter serve --max-upload-mb)."
    )


RECEIVE_CHUNK = 1 << 16  # bytes per message when a counted body is handed on
JSON_LIMIT = 1 << 20  # a request's JSON body (the page's events are a few hundred bytes)


async def respond(scope, receive, send, text: str, status: int) -> None:
    """A plain-text refusal."""
    await PlainTextResponse(text, status_code=status)(scope, receive, send)


class UploadLimit:
    """ASGI middleware: every request body counted as it arrives, over the limit refused.

    A declared Content-Length over the limit is refused unread. Otherwise the body goes into an
    unlinked temporary file of ours (in memory while small) as it is received, counted on the
    bytes themselves, so a chunked upload or a lying header is refused as soon as it passes the
    limit, and nothing it sent stays anywhere (the file has no name; it is closed at once).
    Only a body within the limit is handed to the app, from that file.
    """

    def __init__(self, app, limit_mb: float, spool: str | None = None):
        self.app, self.limit_mb, self.spool = app, limit_mb, spool

    @property
    def limit(self) -> int:
        return int(self.limit_mb * 1e6) + MULTIPART_SLACK

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = int(dict(scope["headers"]).get(b"content-length", b"0") or 0)
        if declared > self.limit:
            await respond(scope, receive, send, too_large(declared, self.limit_mb), 413)
            return
        with tempfile.SpooledTemporaryFile(max_size=JSON_LIMIT, dir=self.spool) as body:
            received = await self._receive(receive, body)
            if received is None:  # the client went away
                return
            if received > self.limit:
                await respond(scope, receive, send, too_large(received, self.limit_mb), 413)
                return
            body.seek(0)
            await self.app(scope, replay(body, receive), send)

    async def _receive(self, receive, body) -> int | None:
        """Read the request body into `body`; its size (one byte over the limit at most), or
        None if the client disconnected."""
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.limit:
                return received
            body.write(chunk)
            if not message.get("more_body", False):
                return received


def replay(body, receive):
    """An ASGI `receive` that hands on a stored body, then waits for the client's disconnect."""
    pending, finished = body.read(RECEIVE_CHUNK), False

    async def receive_again():
        nonlocal pending, finished
        if finished:
            return await receive()
        chunk, pending = pending, body.read(RECEIVE_CHUNK)
        finished = not pending
        return {"type": "http.request", "body": chunk, "more_body": not finished}

    return receive_again


class Uploads:
    """The files this server's upload route stored, each until one request takes it.

    Keyed by their resolved path inside the upload folder: a client can name only a file it
    uploaded (the route's answer, a path under a hash of the content, is its proof), never a
    file elsewhere, a file of Gradio's cache that no upload made (a download), nor a symlink.
    Entries older than Gradio's own cache sweep are forgotten.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.lock = threading.Lock()
        self.stored: dict[str, list[float]] = {}  # resolved path -> when each upload came

    def _key(self, path: str | os.PathLike) -> str | None:
        """The resolved path, if it lies inside the upload folder."""
        resolved = Path(os.path.realpath(path))
        folder = Path(os.path.realpath(self.folder))
        return str(resolved) if resolved.is_relative_to(folder) and resolved != folder else None

    def add(self, path: str | os.PathLike) -> None:
        """A file the upload route stored."""
        key, now = self._key(path), time.monotonic()
        if key is None:
            return
        with self.lock:
            for name in [k for k, times in self.stored.items() if now - times[-1] > KEEP_UPLOADS_S]:
                del self.stored[name]
            self.stored.setdefault(key, []).append(now)

    def known(self, path: str | os.PathLike) -> bool:
        """Whether `path` names an upload not taken yet."""
        key = self._key(path)
        with self.lock:
            return key is not None and key in self.stored

    def take(self, path: str | os.PathLike) -> Path | None:
        """The upload `path` names, now the caller's to read and delete; None if it is none."""
        key = self._key(path)
        with self.lock:
            times = self.stored.get(key) if key is not None else None
            if not times:
                return None
            times.pop(0)
            if not times:
                del self.stored[key]
        return Path(key)


NOT_UPLOADED = (
    "This server segments only recordings uploaded to it: upload the file (or record it) and"
    " press Segment."
)


def file_paths(value: Any) -> Iterator[str]:
    """The paths of the file records (Gradio's FileData) anywhere in a request's JSON."""
    if isinstance(value, dict):
        meta = value.get("meta")
        if isinstance(meta, dict) and meta.get("_type") == "gradio.FileData":
            yield str(value.get("path"))
        for item in value.values():
            yield from file_paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from file_paths(item)


class UploadsOnly:
    """ASGI middleware: the upload route's answers are recorded in `uploads`; a JSON request
    with a file record of any other path is refused before Gradio reads (copies) that file."""

    def __init__(self, app, uploads: Uploads):
        self.app, self.uploads = app, uploads

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        if scope["path"].endswith("/upload"):
            await self.app(scope, receive, self._recording(send))
            return
        content_type = dict(scope["headers"]).get(b"content-type", b"")
        if not content_type.startswith(b"application/json"):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, JSON_LIMIT)
        if body is None:
            await respond(scope, receive, send, "request too large", 413)
            return
        try:
            paths = list(file_paths(json.loads(body or b"null")))
        except ValueError:
            paths = []  # not JSON: the app says so
        if not all(self.uploads.known(path) for path in paths):
            await respond(scope, receive, send, NOT_UPLOADED, 403)
            return
        await self.app(scope, replay(io.BytesIO(body), receive), send)

    def _recording(self, send):
        """`send` that records the paths of a successful upload's answer."""
        answer: list[bytes] = []
        status = 0

        async def send_and_record(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                answer.append(message.get("body", b""))
                if not message.get("more_body", False):
                    with contextlib.suppress(ValueError):
                        for path in json.loads(b"".join(answer)):
                            if isinstance(path, str):
                                self.uploads.add(path)
            await send(message)

        return send_and_record


async def read_body(receive, limit: int) -> bytes | None:
    """A whole request body, or None past `limit` bytes or if the client went away."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        if not message.get("more_body", False):
            return b"".join(chunks)


def upload_folder() -> str:
    """Where Gradio's upload route stores files (GRADIO_TEMP_DIR, else TMP/gradio)."""
    from gradio.utils import get_upload_folder

    return get_upload_folder()


def remove_upload(path: Path) -> None:
    """Delete an uploaded or recorded file and its folder if that is left empty."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()
