"""The web server: how long `segmenter serve` takes to answer, and to segment a 20 s upload.

usage: python bench/serve.py [--starts 5] [--audio FILE] [--markdown PATH]

Each start runs the real `segmenter serve` (default settings: INT8 on the default runtime, no
batch folder) on a free loopback port, as a user would, and talks to it over real HTTP with the
standard library, as the page's browser does, without one: "answers" is the time from starting
the process to the first HTTP 200 for the page (Python's start, Gradio's import, the model's
load); "upload" posts FILE (default samples/standup_meeting.wav, 20 s) to Gradio's upload route;
"segment" is from calling the File tab's `segment_upload` API to the end of its event stream
(the server reads the upload, segments it, draws the waveform and writes the downloads), first
on a fresh server and then again with a second upload. The server is stopped after each start.
Wall seconds of each start, then their medians; on a loaded machine they move.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pages  # bench/pages.py, same folder: --markdown PATH writes the output as a docs page

ROOT = Path(__file__).resolve().parents[1]
SEGMENTER = Path(sys.executable).parent / "segmenter"
SAMPLE = ROOT / "samples" / "standup_meeting.wav"
COLUMNS = ("answers s", "upload s", "segment s (first)", "segment s (second)")


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    """Whether the page answers with HTTP 200."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def upload(url: str, path: Path) -> str:
    """POST the file to Gradio's upload route as multipart form data; the server's path."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"'
        "\r\nContent-Type: audio/wav\r\n\r\n"
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        url + "gradio_api/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.load(answer)[0]


def segment(url: str, server_path: str) -> str:
    """Call the File tab's API on an upload (FunASR's schedule, 60 s segments at most) and read
    the event stream to its end; the stream."""
    record = {"path": server_path, "orig_name": Path(server_path).name}
    record["meta"] = {"_type": "gradio.FileData"}
    request = urllib.request.Request(
        url + "gradio_api/call/segment_upload",
        data=json.dumps({"data": [record, 0, 60, "funasr"]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        event = json.load(answer)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/segment_upload/{event}", timeout=300) as s:
        return s.read().decode()


def one_start(audio: Path, folder: Path) -> list[float]:
    """Start a server, time its first answer, an upload and two segmentations; stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    (folder / "tmp").mkdir(parents=True)
    env = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "gradio"), "TMPDIR": str(folder / "tmp")}
    log = folder / "serve.log"
    with open(log, "w") as out:
        began = time.perf_counter()
        process = subprocess.Popen(
            [str(SEGMENTER), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            while not answers(url):
                if process.poll() is not None or time.perf_counter() - began > 300:
                    raise RuntimeError(f"the server did not answer: {log.read_text()[-2000:]}")
                time.sleep(0.05)
            times = [time.perf_counter() - began]
            began = time.perf_counter()
            server_path = upload(url, audio)
            times.append(time.perf_counter() - began)
            for again in (False, True):
                if again:
                    server_path = upload(url, audio)
                began = time.perf_counter()
                events = segment(url, server_path)
                times.append(time.perf_counter() - began)
                if "event: complete" not in events:
                    raise RuntimeError(f"segment_upload did not complete: {events[-2000:]}")
        finally:
            process.terminate()
            process.wait(30)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=5, help="servers started one after another")
    ap.add_argument("--audio", type=Path, default=SAMPLE, help="the recording to upload")
    pages.add_argument(ap)
    args = ap.parse_args()
    with pages.page(args.markdown, __doc__):
        print(f"{args.starts} starts of `segmenter serve`; upload {args.audio.name}\n")
        print("| start | " + " | ".join(COLUMNS) + " |")
        print("| ---: |" + " ---: |" * len(COLUMNS))
        runs = []
        for number in range(1, args.starts + 1):
            with tempfile.TemporaryDirectory(prefix="segmenter-serve-bench-") as folder:
                runs.append(one_start(args.audio, Path(folder)))
            print(f"| {number} | " + " | ".join(f"{t:.2f}" for t in runs[-1]) + " |", flush=True)
        medians = [statistics.median(column) for column in zip(*runs, strict=True)]
        print("| median | " + " | ".join(f"{t:.2f}" for t in medians) + " |")


if __name__ == "__main__":
    main()
