"""Many small files: a real `segmenter run` killed with SIGKILL, mid-way and at random moments.

Results are recorded in groups (outputs written and synced, then one manifest commit), so
these check what the grouping must not change: a file the manifest calls done has complete
outputs whenever the kill comes, and a resumed batch loses nothing and redoes nothing done.
"""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf

from segmenter.writers import document_json

from .test_batch import SEGMENTER, SPEECH, done_count, rows, run

KILLS = 4


def tiny_tree(root: Path, count: int, per_folder: int = 500) -> Path:
    """`count` one-second recordings of speech: hard links to one WAV, `per_folder` a folder."""
    seed = root.parent / f"{root.name}-seed.wav"
    sf.write(seed, SPEECH[16000 * 5 : 16000 * 6], 16000)
    for i in range(count):
        folder = root / f"d{i // per_folder:03d}"
        if i % per_folder == 0:
            folder.mkdir(parents=True)
        os.link(seed, folder / f"r{i:05d}.wav")
    return root


def start(src: Path, out: Path, jobs: int) -> subprocess.Popen:
    """A batch in its own process group, so one kill takes the coordinator and its workers."""
    cmd = [SEGMENTER, "run", str(src), "-o", str(out), "--jobs", str(jobs), "--quiet"]
    return subprocess.Popen([*cmd, "--settle-seconds", "0"], start_new_session=True)


def wait_for(out: Path, count: int, batch: subprocess.Popen, timeout: float = 180) -> int:
    """Poll until at least `count` rows are done; the count then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and batch.poll() is None:
        if (done := done_count(out)) >= count:
            return done
        time.sleep(0.005)
    raise AssertionError(f"the batch did not reach {count} done files")


def kill(batch: subprocess.Popen) -> None:
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()


def assert_done_files_are_whole(out: Path) -> dict[str, dict]:
    """Every row marked done has all its outputs, parseable and agreeing with the row."""
    found = rows(out)
    for rel, row in found.items():
        if row["status"] != "done":
            continue
        names = json.loads(row["outputs"])
        assert names == [f"{rel}.json", f"{rel}.rttm"], rel
        document = json.loads((out / names[0]).read_text())
        rttm = (out / names[1]).read_text().splitlines()
        assert all(len(line.split()) == 10 for line in rttm), rel
        assert len(document["segments"]) == len(rttm) == row["segments"], rel
    return found


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_every_done_file_whole(tmp_path):
    src = tiny_tree(tmp_path / "in", 1500)
    out = tmp_path / "out"
    chance = random.Random(16)
    done_before: dict[str, int] = {}
    for attempt in range(KILLS):
        batch = start(src, out, jobs=1)
        seen = wait_for(out, done_count(out) + 1, batch)
        if attempt % 2:  # at a random moment of the run
            time.sleep(chance.uniform(0, 0.7))
        else:  # right after a commit: as soon as the done count moves on
            wait_for(out, seen + 1, batch)
        kill(batch)
        found = assert_done_files_are_whole(out)
        done = {rel: row["attempts"] for rel, row in found.items() if row["status"] == "done"}
        assert done_before.items() <= done.items()  # nothing done was lost, or redone
        done_before = done
    assert len(done_before) < 1500, "the batch finished before the last kill"
    assert run(src, "-o", out, "--jobs", "1").returncode == 0
    final = assert_done_files_are_whole(out)
    assert len(final) == 1500 and all(r["status"] == "done" for r in final.values())
    assert all(final[rel]["attempts"] == n for rel, n in done_before.items())
    assert not list(out.rglob(".tmp-*"))


# the 10^4 files: 31 s on a quiet 2-core machine (140 s when it was shared with other
# jobs); SEGMENTER_TEST_TREE=2000 makes it quicker where that matters
TREE = int(os.environ.get("SEGMENTER_TEST_TREE", "10000"))


@pytest.mark.slow
def test_kill_9_mid_way_through_a_tree_of_small_files_resumes(tmp_path):
    src = tiny_tree(tmp_path / "in", TREE, per_folder=1000)
    out = tmp_path / "out"
    batch = start(src, out, jobs=2)
    wait_for(out, TREE // 3, batch, timeout=300)
    kill(batch)
    interrupted = assert_done_files_are_whole(out)
    done_before = {rel for rel, row in interrupted.items() if row["status"] == "done"}
    assert TREE // 3 <= len(done_before) < TREE
    assert run(src, "-o", out, "--jobs", "2", timeout=600).returncode == 0
    final = assert_done_files_are_whole(out)
    assert len(final) == TREE and all(r["status"] == "done" for r in final.values())
    assert all(final[rel]["attempts"] == 1 for rel in done_before)  # none done twice
    assert sum(1 for _ in out.rglob("*.json")) == TREE
    assert not list(out.rglob(".tmp-*"))


def test_document_json_is_json_dumps_with_indent_1(tmp_path):
    """The batch's fast rendering writes the very bytes `json.dumps(indent=1)` would."""
    src = tiny_tree(tmp_path / "in", 2)
    assert run(src, "-o", tmp_path / "out", "--jobs", "1").returncode == 0
    document = json.loads((tmp_path / "out" / "d000" / "r00000.wav.json").read_text())
    odd = {"a": {}, "b": [], "options": {"k": [1, {"z": None}], "s": "x\ny"}, "é": "ü\u2028"}
    for doc in (document, {**document, "chunking": {"limit_ms": 30000}}, odd, {}):
        for _ in range(2):  # rendered, then from the cache
            assert document_json(doc) == json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    written = (tmp_path / "out" / "d000" / "r00000.wav.json").read_text()
    assert written == json.dumps(document, indent=1, ensure_ascii=False) + "\n"
