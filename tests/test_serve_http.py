"""`segmenter serve` attacked over real HTTP, as a client on the network would: file records that
name files the server was never given, chunked uploads past the limit, a login, and the warning
for an open bind. A real server on a free loopback port; no browser."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from .conftest import SAMPLES, SEGMENTER
from .test_browser import free_port, running_server, wait_until

SAMPLE = SAMPLES / "standup_meeting.wav"
LIMIT_MB = 1


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-http")
    with running_server(root, "--max-upload-mb", str(LIMIT_MB)) as running:
        running["root"] = root
        yield running


def file_record(path: str | Path, meta: bool = True) -> dict:
    """What the page sends for an audio input: Gradio's FileData."""
    record = {"path": str(path), "orig_name": Path(path).name}
    return record | ({"meta": {"_type": "gradio.FileData"}} if meta else {})


def call(url: str, data: list, opener=None) -> tuple[int, str]:
    """POST to the File tab's API (`segment_upload`), then read its event stream: (HTTP status,
    the stream or the refusal's text)."""
    open_url = (opener or urllib.request.build_opener()).open
    request = urllib.request.Request(
        url + "gradio_api/call/segment_upload",
        data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with open_url(request, timeout=60) as answer:
            event = json.load(answer)["event_id"]
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()
    with open_url(f"{url}gradio_api/call/segment_upload/{event}", timeout=120) as stream:
        return 200, stream.read().decode()


def multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return head + data + tail, f"multipart/form-data; boundary={boundary}"


def upload(url: str, path: Path, opener=None) -> str:
    """Upload through the page's route, as the browser does; the server's path for it."""
    body, content_type = multipart(path.name, path.read_bytes())
    request = urllib.request.Request(
        url + "gradio_api/upload", data=body, headers={"Content-Type": content_type}
    )
    with (opener or urllib.request.build_opener()).open(request, timeout=60) as answer:
        return json.load(answer)[0]


def files_named(folder: Path, name: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name == name]


def test_an_upload_is_segmented_then_deleted(server):
    path = upload(server["url"], SAMPLE)
    status, events = call(server["url"], [file_record(path), 0, 60, "funasr"])
    assert status == 200 and "event: complete" in events, events
    assert "standup_meeting.wav**: 2 segments" in events
    assert not Path(path).exists()
    again = call(server["url"], [file_record(path), 0, 60, "funasr"])  # taken once only
    assert "event: complete" not in again[1]


def test_a_record_naming_any_other_file_is_refused_unread(server, tmp_path):
    """The probe of issue 24: a file record naming a recording elsewhere on the server, a
    system file, a missing path. All get the same refusal (nothing can be probed), nothing is
    segmented, copied into Gradio's cache, or deleted."""
    secret = Path(shutil.copy(SAMPLE, tmp_path / "secret_meeting.wav"))
    for path in (secret, "/etc/passwd", tmp_path / "missing.wav"):
        status, text = call(server["url"], [file_record(path), 0, 60, "funasr"])
        assert status == 403, text
        assert text == web_refusal()
        bare = call(server["url"], [file_record(path, meta=False), 0, 60, "funasr"])
        assert "event: complete" not in bare[1]  # Gradio takes no record without its meta
    assert secret.read_bytes() == SAMPLE.read_bytes()
    assert files_named(server["uploads"], secret.name) == []  # Gradio made no copy


def web_refusal() -> str:
    from segmenter.views.web import NOT_UPLOADED

    return NOT_UPLOADED


def test_files_in_gradios_cache_that_no_upload_made_are_neither_read_nor_deleted(server):
    """Downloads of another request, a file another program put in the cache, a symlink in it:
    the server deletes only what its upload route stored."""
    done = call(server["url"], [file_record(upload(server["url"], SAMPLE)), 0, 60, "funasr"])
    assert "event: complete" in done[1]
    downloads = files_named(server["uploads"], SAMPLE.name + ".clips.zip")
    assert downloads
    planted = server["uploads"] / ("0" * 64) / "other_client.wav"
    planted.parent.mkdir(parents=True)
    shutil.copy(SAMPLE, planted)
    link = server["uploads"] / ("1" * 64) / "link.wav"
    link.parent.mkdir(parents=True)
    link.symlink_to(server["root"] / "serve.log")
    for path in (downloads[0], planted, link):
        status, text = call(server["url"], [file_record(path), 0, 60, "funasr"])
        assert status == 403 and "segments only recordings uploaded to it" in text
        assert path.exists()
    assert (server["root"] / "serve.log").exists()


def chunked_upload(
    url: str, total: int, path: str = "gradio_api/upload", name: str = "big.wav"
) -> tuple[int, str, int]:
    """POST `total` bytes of a multipart upload with Transfer-Encoding: chunked (no declared
    length) over a raw socket; (status, body, bytes sent before the answer came)."""
    parsed = urllib.parse.urlsplit(url)
    body, content_type = multipart(name, b"\0" * total)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=60)
    head = (
        f"POST /{path} HTTP/1.1\r\nHost: {parsed.netloc}\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode())
    sent, step = 0, 1 << 16
    try:
        while sent < len(body):
            chunk = body[sent : sent + step]
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
        sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # refused mid-way: the answer is waiting
    response = http.client.HTTPResponse(sock)
    response.begin()
    text = response.read().decode()
    sock.close()
    return response.status, text, sent


@pytest.mark.parametrize("megabytes", [5, 40])
def test_chunked_uploads_past_the_limit_are_refused_on_the_bytes_received(server, megabytes):
    before = {p for p in Path(server["root"]).rglob("*") if p.is_file()}
    status, text, sent = chunked_upload(server["url"], megabytes * 1_000_000)
    print(f"refused after {sent} bytes sent")
    assert status == 413, text
    assert f"up to {LIMIT_MB} MB" in text and "--max-upload-mb" in text
    after = {p for p in Path(server["root"]).rglob("*") if p.is_file()}
    assert files_named(server["uploads"], "big.wav") == []
    assert {p for p in after - before if p.name != "serve.log"} == set()  # nothing left behind
    small = chunked_upload(server["url"], 500_000, name="small.wav")  # within the limit: taken
    assert small[0] == 200 and json.loads(small[1])[0].endswith("/small.wav")


def test_other_upload_routes_are_held_to_the_limit_too(server):
    status, text, _ = chunked_upload(server["url"], 5_000_000, "gradio_api/process_recording")
    assert status == 413 and "--max-upload-mb" in text


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-login")
    logins = root / "logins"
    logins.write_text("# who may use the page\n\narchive:s3cret pass\n")
    with running_server(root, "--auth-file", str(logins)) as running:
        yield running


def test_a_login_is_asked_before_anything_is_uploaded_or_segmented(guarded):
    url = guarded["url"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        upload(url, SAMPLE)
    assert refused.value.code == 401
    assert call(url, [None, 0, 60, "funasr"])[0] == 401
    assert files_named(guarded["uploads"], SAMPLE.name) == []
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    wrong = urllib.parse.urlencode({"username": "archive", "password": "guess"}).encode()
    with pytest.raises(urllib.error.HTTPError):
        opener.open(url + "login", data=wrong, timeout=30)
    right = urllib.parse.urlencode({"username": "archive", "password": "s3cret pass"}).encode()
    opener.open(url + "login", data=right, timeout=30).close()
    status, events = call(url, [file_record(upload(url, SAMPLE, opener)), 0, 60, "funasr"], opener)
    assert status == 200 and "event: complete" in events


def serve_stderr(*args: str, until: str, tmp_path: Path) -> str:
    """Start `segmenter serve ARGS` on a free port; its stderr once `until` is on stdout."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        cmd = [SEGMENTER, "serve", *args, "--port", str(free_port())]
        env = {**os.environ, "GRADIO_TEMP_DIR": str(tmp_path / "gradio")}
        process = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, env=env)
        try:
            wait_until(lambda: until in out.read_text() or process.poll() is not None, 180)
        finally:
            process.terminate()
            process.wait(30)
    return err.read_text()


@pytest.mark.slow
def test_binding_beyond_loopback_without_a_login_is_warned_about(tmp_path):
    warned = serve_stderr("--host", "0.0.0.0", until="segmenter serve: http", tmp_path=tmp_path)
    assert warned.startswith(
        "segmenter serve: warning: 0.0.0.0 is reachable from other machines and no login is asked"
    )
    assert "--auth USER:PASSWORD" in warned
    quiet = serve_stderr(
        "--host", "0.0.0.0", "--auth", "a:b", until="segmenter serve: http", tmp_path=tmp_path
    )
    assert "warning" not in quiet
    assert "warning" not in serve_stderr(until="segmenter serve: http", tmp_path=tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--auth", "nopassword"], "--auth: expected USER:PASSWORD, both not empty"),
        (["--auth-file", "/nonexistent/logins"], "--auth-file /nonexistent/logins: cannot read"),
    ],
)
def test_malformed_logins_are_usage_errors(args, message):
    done = subprocess.run([SEGMENTER, "serve", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.startswith(f"segmenter: {message}")
    assert len(done.stderr.splitlines()) == 1


def test_serve_answers_while_a_slow_client_uploads(server):
    """A client that stalls mid-upload holds only its own request: the page still answers."""
    parsed = urllib.parse.urlsplit(server["url"])
    slow = socket.create_connection((parsed.hostname, parsed.port), timeout=30)
    slow.sendall(
        f"POST /gradio_api/upload HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "10\r\n--x\r\nContent-Dispo\r\n".encode()
    )
    began = time.monotonic()
    with urllib.request.urlopen(server["url"], timeout=30) as page:
        assert page.status == 200
    assert time.monotonic() - began < 30
    slow.close()
