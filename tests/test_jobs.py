"""The committed job files are valid for `segmenter run --job`."""

from pathlib import Path

import pytest

from segmenter.batch.runner import BatchSettings
from segmenter.settings import read_job

JOBS = sorted((Path(__file__).parents[1] / "jobs").glob("*.toml"))


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.name)
def test_job_file_uses_known_settings(job):
    settings = read_job(job)  # raises on unknown or renamed keys and bad values
    assert settings["inputs"] and settings["out"]


def test_units_run_the_nightly_job():
    folder = Path(__file__).parents[1] / "jobs"
    service = (folder / "segmenter-nightly.service").read_text()
    assert "segmenter run --job" in service and "nightly.toml" in service
    assert "OnCalendar=" in (folder / "segmenter-nightly.timer").read_text()
    assert "nightly.toml" in (folder / "crontab").read_text()


def test_the_service_stop_timeout_covers_the_stop_grace():
    """systemd's SIGKILL must come after the run's grace period, and only to the coordinator
    first (KillMode=mixed), so a stop loses no file in flight."""
    service = (Path(__file__).parents[1] / "jobs" / "segmenter-nightly.service").read_text()
    settings = dict(
        line.split("=", 1) for line in service.splitlines() if "=" in line and line[0] != "#"
    )
    grace = BatchSettings(inputs=["in"], out=Path("out")).stop_grace
    assert float(settings["TimeoutStopSec"]) > grace + 10
    assert settings["KillMode"] == "mixed" and settings["KillSignal"] == "SIGTERM"
