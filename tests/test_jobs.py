"""The committed job files, systemd units and crontab line are valid and run the nightly batch."""

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from segmenter.batch.runner import BatchSettings
from segmenter.settings import read_job

from .conftest import GOLDEN, SEGMENTER, alive

JOBS_DIR = Path(__file__).parents[1] / "jobs"
PAGE = Path(__file__).parents[1] / "docs" / "jobs" / "small-box.md"  # the cron and systemd page
JOBS = sorted(JOBS_DIR.glob("*.toml"))


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.name)
def test_job_file_uses_known_settings(job):
    settings = read_job(job)  # raises on unknown or renamed keys and bad values
    assert settings["inputs"] and settings["out"]


def test_units_run_the_nightly_job():
    service = (JOBS_DIR / "segmenter-nightly.service").read_text()
    assert "segmenter run --job" in service and "nightly.toml" in service
    assert "OnCalendar=" in (JOBS_DIR / "segmenter-nightly.timer").read_text()
    assert "nightly.toml" in (JOBS_DIR / "crontab").read_text()


def test_the_service_stop_timeout_covers_the_stop_grace():
    """systemd's SIGKILL must come after the run's grace period, and only to the coordinator
    first (KillMode=mixed), so a stop loses no file in flight."""
    settings = unit(JOBS_DIR / "segmenter-nightly.service")["Service"]
    grace = BatchSettings(inputs=["in"], out=Path("out")).stop_grace
    assert float(settings["TimeoutStopSec"]) > grace + 10
    assert settings["KillMode"] == "mixed" and settings["KillSignal"] == "SIGTERM"
    assert "143" in settings["SuccessExitStatus"].split()  # a stop is not a failure


def unit(path: Path) -> configparser.ConfigParser:
    """A systemd unit file read as INI (keys keep their case; a repeated key keeps the last)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return parser


def test_service_runs_the_installed_command_on_the_job():
    service = unit(JOBS_DIR / "segmenter-nightly.service")["Service"]
    command = shlex.split(service["ExecStart"])
    home = Path(service["WorkingDirectory"])
    assert service["Type"] == "oneshot"
    assert command[0] == str(home / ".venv" / "bin" / "segmenter")
    assert command[1:] == ["run", "--job", str(home / "jobs" / "nightly.toml")]
    # only a stop counts as success: a night with failed files (1), a full disk (4) or changed
    # settings (6) fails the unit, for `systemctl --failed` and OnFailure= to see
    assert service["SuccessExitStatus"].split() == ["143"]


def test_the_docs_say_how_to_make_the_services_user():
    """User= names a user docs/jobs/small-box.md says how to create and to give read on the
    inputs and write on OUT (the job's folders)."""
    user = unit(JOBS_DIR / "segmenter-nightly.service")["Service"]["User"]
    job = read_job(JOBS_DIR / "nightly.toml")
    blocks = re.findall(r"```sh\n(.*?)```", PAGE.read_text(), re.S)
    (block,) = [b for b in blocks if "useradd --system" in b]
    (useradd,) = [line for line in block.splitlines() if "useradd" in line]
    assert useradd.split("#")[0].split()[-1] == user
    readable = [line for line in block.splitlines() if "setfacl" in line and ":rX" in line]
    assert any(job["inputs"][0] in line and f"u:{user}:rX" in line for line in readable)
    assert any(f"-o {user}" in line and job["out"] in line for line in block.splitlines())


def test_timer_starts_the_service_nightly():
    timer = unit(JOBS_DIR / "segmenter-nightly.timer")
    assert timer["Timer"]["OnCalendar"] == "*-*-* 01:30:00"
    assert "Unit" not in timer["Timer"]  # so it starts segmenter-nightly.service, its namesake
    assert timer["Install"]["WantedBy"] == "timers.target"


@pytest.fixture
def install(tmp_path) -> Path:
    """/opt/segmenter as the units and the crontab expect it, in tmp_path, with a settled input.

    The console script is the test venv's; jobs/nightly.toml is the committed one with its
    folders moved under tmp_path, as its comments ask a user to set them.
    """
    home = tmp_path / "opt-segmenter"
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "segmenter").symlink_to(SEGMENTER)
    (home / "jobs").mkdir()
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    recording = incoming / "call.wav"
    recording.write_bytes((GOLDEN / "ami_dev00.wav").read_bytes())
    os.utime(recording, (time.time() - 3600,) * 2)  # older than the job's settle_seconds
    job = (JOBS_DIR / "nightly.toml").read_text()
    job = job.replace("/srv/recordings/incoming", str(incoming))
    job = job.replace("/srv/recordings/segments", str(tmp_path / "segments"))
    (home / "jobs" / "nightly.toml").write_text(job)
    return home


def placed(text: str, home: Path) -> str:
    """A unit or crontab with /opt/segmenter moved to `home` and the log beside it."""
    text = text.replace("/var/log/segmenter-cron.log", str(home.parent / "cron.log"))
    return text.replace("/opt/segmenter", str(home))


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(install):
    for name in ("segmenter-nightly.service", "segmenter-nightly.timer"):
        (install / name).write_text(placed((JOBS_DIR / name).read_text(), install))
    units = [str(install / "segmenter-nightly.service"), str(install / "segmenter-nightly.timer")]
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr  # warnings exit 0


def test_crontab_line_runs_the_batch_as_cron_would(install):
    lines = (JOBS_DIR / "crontab").read_text().splitlines()
    (entry,) = [line for line in lines if line.strip() and not line.startswith("#")]
    fields = entry.split(maxsplit=5)
    assert fields[:5] == ["30", "1", "*", "*", "*"]
    cron_env = ["env", "-i", f"HOME={install.parent}", "LOGNAME=segmenter", "SHELL=/bin/sh"]
    cron_env.append("PATH=/usr/bin:/bin")
    command = [*cron_env, "/bin/sh", "-c", placed(fields[5], install)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    log = (install.parent / "cron.log").read_text()
    assert done.returncode == 0, log
    doc = json.loads((install.parent / "segments" / "call.wav.json").read_text())
    assert doc["model"]["precision"] == "int8" and doc["segments"]  # the job's settings
    assert doc["options"]["max_end_silence_time"] == 800


def cron(install: Path) -> int:
    """Run the crontab line's command as cron would; its exit code (the log is cron.log)."""
    lines = (JOBS_DIR / "crontab").read_text().splitlines()
    (entry,) = [line for line in lines if line.strip() and not line.startswith("#")]
    cron_env = ["env", "-i", f"HOME={install.parent}", "LOGNAME=segmenter", "SHELL=/bin/sh"]
    command = [
        *cron_env,
        "PATH=/usr/bin:/bin",
        "/bin/sh",
        "-c",
        placed(entry.split(maxsplit=5)[5], install),
    ]
    return subprocess.run(command, capture_output=True, timeout=300).returncode


STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")  # a line's local date and time


def test_cron_log_says_plainly_when_the_job_settings_changed(install):
    assert cron(install) == 0
    job = install / "jobs" / "nightly.toml"
    job.write_text(
        job.read_text().replace("max_end_silence_time = 800", "max_end_silence_time = 500")
    )
    assert cron(install) == 7  # refused: nothing overwritten without being told
    last = (install.parent / "cron.log").read_text().splitlines()[-1]
    assert "settings differ from the batch's: 1 file(s) done with other settings would be" in last
    assert "(max_end_silence_time: 800 -> 500); nothing done: run again with --redo-changed" in last
    job.write_text(job.read_text() + "redo_changed = true\n")
    assert cron(install) == 0
    log = (install.parent / "cron.log").read_text().splitlines()
    assert len(log) >= 5 and all(STAMP.match(line) for line in log), log  # which night


def test_cron_log_holds_no_tracker_warning_after_a_kill_9(install, tmp_path):
    """kill -9 of a two-worker run: multiprocessing's resource tracker frees the pool's
    semaphores and says nothing into the cron log (it warned of leaked semaphores)."""
    incoming = tmp_path / "incoming"
    for i in range(24):
        shutil.copyfile(incoming / "call.wav", incoming / f"call{i:02d}.wav")
        os.utime(incoming / f"call{i:02d}.wav", (time.time() - 3600,) * 2)
    lines = (JOBS_DIR / "crontab").read_text().splitlines()
    (entry,) = [line for line in lines if line.strip() and not line.startswith("#")]
    env = ["env", "-i", f"HOME={install.parent}", "SHELL=/bin/sh", "PATH=/usr/bin:/bin"]
    shell = subprocess.Popen([*env, "/bin/sh", "-c", placed(entry.split(maxsplit=5)[5], install)])
    segments = tmp_path / "segments"
    deadline = time.monotonic() + 120
    while not list(segments.glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    family = descendants(shell.pid)
    (coordinator,) = [p for p in family if "segmenter run" in cmdline(p).replace("\0", " ")]
    os.kill(coordinator, signal.SIGKILL)
    shell.wait(timeout=60)
    while any(alive(p) for p in family) and time.monotonic() < deadline + 60:
        time.sleep(0.1)  # the tracker writes its warning, if any, as it exits
    assert len(list(segments.glob("*.json"))) < 25  # killed mid-way
    log = (install.parent / "cron.log").read_text()
    assert "leaked semaphore" not in log and "Warning" not in log, log


def descendants(pid: int) -> list[int]:
    """Every process below `pid`."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(c) for c in found.split()]
    return children + [d for c in children for d in descendants(c)]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""
