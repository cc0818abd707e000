"""Batches an unlucky archive or an attacker makes (issue 24): names that are not UTF-8, too long
or full of newlines, layouts whose outputs would collide, inputs inside OUT, symlinks that lead
nowhere, a stop with one worker, manifests that are read-only, newer or reshaped. A per-file
problem fails that file with one line and the batch goes on; a run-wide one is one line."""

import signal
import sqlite3
from pathlib import Path

from .test_batch import rows, run
from .test_cli import holds_open
from .test_faults import minutes, start, statuses, wait_for


def planned(out: Path) -> bool:
    """Whether the run has planned (its rows are in the manifest; False while it is made)."""
    try:
        with sqlite3.connect(f"file:{out / 'manifest.sqlite'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM files").fetchone()[0] > 0
    except sqlite3.Error:
        return False


def test_a_stop_past_the_grace_leaves_the_file_in_flight_to_do_with_one_worker(tmp_path):
    """With --jobs 1 the coordinator segments the files itself: the grace period's end must
    leave the file in flight to do, as with several workers, not record it failed."""
    src = tmp_path / "in"
    for i in range(2):
        minutes(src, f"f{i}.wav", 10, offset=i)
    out = tmp_path / "out"
    batch = start(src, out, "--jobs", "1", "--stop-grace", "0.2")
    wait_for(lambda: planned(out) and any(map(holds_open, src.iterdir())), batch)
    batch.send_signal(signal.SIGTERM)
    stdout, stderr = batch.communicate(timeout=120)
    assert batch.returncode == 143, stderr
    said = "the 0.2 s grace period is over: stopping now; the files in flight are left to do"
    assert said in stderr
    assert set(statuses(out).values()) <= {"pending", "running"}, rows(out)  # none failed
    assert "2 left to do" in stdout
    again = run(src, "-o", out, "--jobs", "1")
    assert again.returncode == 0, again.stdout
    assert set(statuses(out).values()) == {"done"}
