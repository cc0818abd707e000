"""Unit tests of the batch run's pieces, beside the behaviour tests of test_batch.py and
test_faults.py: the typed results (tasks.py), one worker's task (worker.py), the chunks, window
and isolation of dispatch.py, the recorder's checks and rows (recorder.py), and the figures and
output names (records.py) that the recorder and --rebuild-manifest share."""

import os
import threading
import time
from concurrent.futures import Future
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segmenter.batch import dispatch, recorder, worker
from segmenter.batch.discovery import Source
from segmenter.batch.manifest import Manifest
from segmenter.batch.rebuild import rebuild
from segmenter.batch.records import DocumentStats, document_stats, listed_outputs
from segmenter.batch.settings import BatchSettings
from segmenter.batch.summary import Summary
from segmenter.batch.tasks import Changed, Done, Failed, Task
from segmenter.writers import output_suffixes

from .test_batch import SPEECH

DOCUMENT = {
    "audio": {"path": "/in/a.wav", "duration": 60.0},
    "speech_duration": 12.5,
    "segments": [{"start": 1.0, "end": 7.0}, {"start": 9.0, "end": 15.5}],
}


def settings(tmp_path: Path, **changes) -> BatchSettings:
    """A run's settings into tmp_path/out, one worker (in this process)."""
    return BatchSettings(
        **{"inputs": [str(tmp_path)], "out": tmp_path / "out", "jobs": 1} | changes
    )


# -- tasks.py and records.py --------------------------------------------------------------------


def test_results_are_typed_and_frozen():
    done = Done("a.wav", DOCUMENT, (), 1.5)
    with pytest.raises(FrozenInstanceError):
        done.seconds = 2.0
    assert Failed("a.wav", "why").seconds is None  # a dead worker's file: no worker seconds
    assert Changed("a.wav", "modified").seconds is None


def test_a_documents_figures_and_outputs_are_computed_one_way():
    assert document_stats(DOCUMENT) == DocumentStats(duration=60.0, speech=12.5, segments=2)
    formats = ("rttm", "json", "lhotse", "json")  # a format named twice is written once
    assert output_suffixes(formats, clips=True) == [
        ".rttm",
        ".json",
        ".recording.jsonl",
        ".supervisions.jsonl",
        ".clips",
    ]
    assert listed_outputs("d/a.wav", formats, clips=True) == [
        "d/a.wav.rttm",
        "d/a.wav.json",
        "d/a.wav.recording.jsonl",
        "d/a.wav.supervisions.jsonl",
        "d/a.wav.clips/",
    ]
    assert listed_outputs("a.wav", ("json",), clips=False) == ["a.wav.json"]


# -- worker.py ----------------------------------------------------------------------------------


def test_a_worker_task_gives_done_with_the_document_and_clips(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, SPEECH[: 20 * 16000], 16000)
    clips = tmp_path / "out" / "a.wav.clips"
    result = worker.segment_task(Task("a.wav", str(wav), str(clips)), settings(tmp_path))
    assert isinstance(result, Done) and result.rel == "a.wav"
    assert result.document["segments"] and result.seconds > 0
    assert len(result.clips) == len(result.document["segments"])
    assert sorted(os.listdir(clips)) == sorted(result.clips)


def test_a_worker_task_that_cannot_be_read_or_written_gives_failed(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not a recording\n")
    failed = worker.segment_task(Task("notes.wav", str(text), None), settings(tmp_path))
    assert isinstance(failed, Failed) and "notes.wav" in failed.error
    long = "x" * 300 + ".wav"  # its outputs' names are longer than any filesystem takes
    failed = worker.segment_task(Task(long, str(text), None), settings(tmp_path))
    assert isinstance(failed, Failed) and "bytes long" in failed.error


def test_a_full_disk_in_a_worker_stops_the_run_not_the_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(worker, "worker_vad", full)
    with pytest.raises(OSError) as raised:
        worker.segment_task(Task("a.wav", str(tmp_path / "a.wav"), None), settings(tmp_path))
    assert type(raised.value) is OSError and raised.value.errno == 28  # plain: it pickles


# -- dispatch.py --------------------------------------------------------------------------------


def test_chunks_send_long_recordings_alone_and_cut_the_tail_finer(tmp_path):
    big, small = dispatch.CHUNK_BYTES, 1000
    todo = [(f"big{i}.wav", f"/in/big{i}.wav", big) for i in range(3)]
    todo += [(f"s{i:03}.wav", f"/in/s{i:03}.wav", small) for i in range(200)]
    flight = dispatch.InFlight()
    chunks = list(dispatch.chunks(iter(todo), len(todo), settings(tmp_path, jobs=2), flight))
    assert [len(c) for c in chunks[:3]] == [1, 1, 1]  # each long one alone
    sizes = [len(c) for c in chunks[3:]]
    assert max(sizes) <= dispatch.CHUNK_FILES and sizes[-1] < sizes[0]  # finer at the end
    assert [t.rel for c in chunks for t in c] == [rel for rel, _, _ in todo]  # none held back
    assert flight.handed == len(todo) and len(flight.take()) == len(todo)
    assert chunks[0][0] == Task("big0.wav", "/in/big0.wav", None)


def test_in_flight_marks_each_handed_file_once_and_keeps_the_suspects():
    flight = dispatch.InFlight()
    flight.hand([Task("a", "/a", None), Task("b", "/b", None)])
    assert flight.to_mark() == ["a", "b"] and flight.to_mark() == []
    flight.finish("a")
    assert flight.take() == [Task("b", "/b", None)] and flight.take() == []


def test_the_window_keeps_at_most_ahead_chunks_in_flight():
    pending: list[Future] = []
    most = []

    def submit(chunk):
        future = Future()
        pending.append(future)
        most.append(sum(not f.done() for f in pending))
        threading.Timer(0.01, future.set_result, [[chunk]]).start()
        return future

    chunks = [[Task(str(i), str(i), None)] for i in range(10)]
    results = list(dispatch._windowed(submit, iter(chunks), ahead=3))
    assert sorted(r[0][0].rel for r in results) == [str(i) for i in range(10)]
    assert max(most) <= 3


def test_isolation_fails_only_the_file_that_kills_its_worker(tmp_path, monkeypatch):
    from loky.process_executor import TerminatedWorkerError

    def parallel(chunks, _settings):
        for chunk in chunks:
            if chunk[0].rel == "bad.wav":
                raise TerminatedWorkerError("SIGSEGV")
            yield [Done(chunk[0].rel, DOCUMENT, (), 0.1)]

    class Recording:  # what isolate uses of a Recorder
        def __init__(self):
            self.flight, self.results, self.flushes = dispatch.InFlight(), [], 0

        def add(self, results):
            self.results += results

        def flush(self):
            self.flushes += 1

    monkeypatch.setattr(dispatch, "parallel", parallel)
    rec = Recording()
    suspects = [Task("good.wav", "/g", None), Task("bad.wav", "/b", None)]
    dispatch.isolate(suspects, settings(tmp_path), rec, "SIGSEGV")
    assert [type(r) for r in rec.results] == [Done, Failed]
    assert rec.results[1].rel == "bad.wav" and "worker process died" in rec.results[1].error
    assert rec.flushes == 2 and rec.flight.take() == []


# -- recorder.py --------------------------------------------------------------------------------


@pytest.fixture
def planned(tmp_path):
    """A manifest that planned one real input, a.wav, and its settings."""
    wav = tmp_path / "in" / "a.wav"
    wav.parent.mkdir()
    sf.write(wav, np.zeros(16000, dtype="float32"), 16000)
    run = BatchSettings(inputs=[str(wav.parent)], out=tmp_path / "out", jobs=1)
    manifest = Manifest.open(run.out)
    stat = wav.stat()
    manifest.plan([Source(wav, "a.wav", stat.st_size, stat.st_mtime)], "cfg", False, False)
    yield wav, run, manifest
    manifest.close()


def test_the_recorder_looks_at_the_input_again_before_it_records(planned):
    wav, _, manifest = planned
    done = Done("a.wav", DOCUMENT, (), 0.5)
    kept = recorder.checked(manifest, done)
    assert isinstance(kept, Done) and kept.document["batch"]["rel"] == "a.wav"
    assert "path" not in kept.document["batch"] and "batch" not in done.document
    assert recorder.checked(manifest, Failed("a.wav", "bad", 0.2)) == Failed("a.wav", "bad", 0.2)
    later = wav.stat().st_mtime + 5
    os.utime(wav, (later, later))
    assert recorder.checked(manifest, done) == Changed("a.wav", "modified")
    wav.write_bytes(b"shorter")
    assert isinstance(recorder.checked(manifest, done), Changed)
    wav.unlink()
    gone = recorder.checked(manifest, done)
    assert isinstance(gone, Failed) and "deleted while it was read" in gone.error
    assert gone.seconds == 0.5


def test_each_result_type_makes_its_row(planned):
    _, _, manifest = planned
    outputs = ["a.wav.json"]
    recorder.record_row(manifest, Done("a.wav", DOCUMENT, (), 0.5), outputs)
    (row,) = manifest.files("a.wav")
    assert (row.status, row.duration, row.speech, row.segments) == ("done", 60.0, 12.5, 2)
    assert row.outputs == outputs
    recorder.record_row(manifest, Failed("a.wav", "not audio", 0.2), None)
    (row,) = manifest.files("a.wav")
    assert (row.status, row.error) == ("failed", "not audio")
    recorder.record_row(manifest, Changed("a.wav", "modified"), None)
    (row,) = manifest.files("a.wav")
    assert row.status == "pending" and "changed while it was read (modified)" in row.error


def test_a_group_is_written_and_listed_as_rebuild_lists_it(planned, tmp_path):
    """The recorder's outputs list and --rebuild-manifest's, of the same files, are one."""
    wav, run, manifest = planned
    run = replace(run, formats=("json", "rttm", "lhotse"), clips=True)
    sf.write(wav, SPEECH[: 20 * 16000], 16000)
    stat = wav.stat()
    manifest.plan([Source(wav, "a.wav", stat.st_size, stat.st_mtime)], "cfg", False, False)
    done = worker.segment_task(dispatch.task_for("a.wav", str(wav), run), run)
    done = recorder.checked(manifest, done)
    assert isinstance(done, Done) and done.clips
    outputs, unwritten = recorder.write_group(run, [done])
    assert unwritten == {}
    assert outputs["a.wav"] == listed_outputs("a.wav", run.formats, clips=True)
    assert all((run.out / name).exists() for name in outputs["a.wav"])
    manifest.close()
    rebuild(run.out, run.formats)
    rebuilt = Manifest.open(run.out)
    try:
        assert rebuilt.files("a.wav")[0].outputs == outputs["a.wav"]
    finally:
        rebuilt.close()


def test_a_recorder_flushes_what_waits_when_no_more_results_come(planned, monkeypatch):
    """The timer thread records a lone result (a long file still on another worker)."""
    _, run, manifest = planned
    monkeypatch.setattr(recorder, "write_group", lambda *a: ({"a.wav": ["a.wav.json"]}, {}))

    class Progress:
        def set_postfix_str(self, *a, **k):
            pass

        def update(self, n):
            pass

    summary = Summary()
    flight = dispatch.InFlight()
    flight.hand([Task("a.wav", "/a", None)])
    with recorder.Recorder(run, manifest, summary, Progress(), flight) as rec:
        rec.since = time.monotonic()  # not due yet when added
        rec.results.append(Done("a.wav", DOCUMENT, (), 0.5))
        deadline = time.monotonic() + 10
        while rec.results and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not rec.results, "the timer did not flush"
    assert summary.done == 1 and summary.audio_s == 60.0 and summary.speech_s == 12.5
    assert manifest.files("a.wav")[0].status == "done"
