"""A user's error is a SegmenterError with its documented exit code; anything else is a bug and
shows its traceback (issue 27)."""

import errno
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import segmenter
from segmenter import cli
from segmenter.audio import AudioError
from segmenter.batch.changed import SettingsChanged
from segmenter.batch.discovery import InputError
from segmenter.batch.diskfull import DiskFull
from segmenter.batch.manifest import (
    LockedError,
    ManifestDamaged,
    ManifestNewer,
    ManifestUnwritable,
)
from segmenter.batch.stopping import Abandon
from segmenter.engines.model import ModelError
from segmenter.errors import RunFailed, SegmenterError, UsageError
from segmenter.profiles.base import ProfileError
from segmenter.settings import SettingError
from segmenter.writers import WriteError

# each user error, one of it, and the words cli.EXIT_CODES (what --help prints) says its code by
ERRORS = [
    (UsageError("bad"), "usage error"),
    (SettingError("bad"), "usage error"),
    (ProfileError("bad"), "usage error"),
    (InputError("bad"), "usage error"),
    (ManifestNewer(Path("m.sqlite"), 9), "usage error"),
    (WriteError(Path("x.json"), OSError(errno.EACCES, "Permission denied")), "usage error"),
    (AudioError("bad"), "some files failed"),
    (ModelError("bad"), "some files failed"),
    (LockedError("bad"), "OUT in use by another run"),
    (DiskFull("bad"), "OUT's disk is full"),
    (ManifestDamaged(Path("m.sqlite"), "not a database"), "OUT's manifest is damaged"),
    (RunFailed("bad"), "the run stopped on an error that is no one file's"),
    (
        ManifestUnwritable(Path("m.sqlite"), "read-only"),
        "the run stopped on an error that is no one file's",
    ),
    (SettingsChanged("bad"), "the settings differ from the batch's"),
]


def _documented_code(words: str) -> int:
    """The code the exit-code table gives these words: `...; N <words>...`."""
    table = " ".join(cli.EXIT_CODES.split())
    before = table[: table.index(f" {words}")]
    return int(before.rsplit(" ", 1)[-1])


@pytest.mark.parametrize(("error", "words"), ERRORS, ids=lambda e: type(e).__name__)
def test_each_user_error_exits_with_its_documented_code(error, words, monkeypatch, capsys):
    def command(args):
        raise error

    monkeypatch.setattr(cli, "run_status", command)
    assert isinstance(error, SegmenterError)
    code = cli.main(["status", "somewhere"])
    assert code == error.exit_code == _documented_code(words)
    err = capsys.readouterr().err
    assert err.startswith("segmenter: ") and err.count("\n") == 1, err


def test_user_errors_keep_the_bases_their_callers_catch():
    assert issubclass(SettingError, ValueError) and issubclass(ProfileError, ValueError)
    assert issubclass(InputError, ValueError) and issubclass(WriteError, OSError)
    assert not issubclass(Abandon, Exception)  # an order to stop, never caught as an error


# Modules that change the process that imports them (the fork server's last preload freezes the
# garbage collector and ends the process with os._exit(0) at exit: imported here, it made pytest
# exit 0 whatever failed); they define no exception class.
PROCESS_MODULES = {"segmenter.batch.in_fork_server", "segmenter.__main__"}


def _segmenter_exceptions() -> list[type[BaseException]]:
    """Every exception class defined in segmenter's modules (those that import here)."""
    for info in pkgutil.walk_packages(segmenter.__path__, "segmenter."):
        if info.name in PROCESS_MODULES:
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an extra this environment lacks (its classes are not checked)
            continue
    found, todo = set(), [BaseException]
    while todo:
        for kind in todo.pop().__subclasses__():
            todo.append(kind)
            if kind.__module__.startswith("segmenter."):
                found.add(kind)
    return sorted(found, key=lambda kind: kind.__qualname__)


def test_every_error_class_of_segmenter_is_a_segmenter_error():
    """A new error class must say what exit code it means (Abandon is an order, not one)."""
    kinds = _segmenter_exceptions()
    assert {kind.__name__ for kind, _ in ((type(e), w) for e, w in ERRORS)} <= {
        kind.__name__ for kind in kinds
    }
    strays = [
        k.__qualname__ for k in kinds if k is not Abandon and not issubclass(k, SegmenterError)
    ]
    assert strays == []


BUG = """
import sys
from segmenter import cli

def command(args):
    return len(None)  # a deliberate TypeError: a bug, not a user's mistake

cli.run_status = command
sys.exit(cli.main(["status", "somewhere"]))
"""


def test_a_bug_shows_its_traceback_and_exits_1():
    done = subprocess.run([sys.executable, "-c", BUG], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "TypeError: object of type 'NoneType' has no len()" in done.stderr


def test_a_file_a_command_cannot_read_or_write_is_one_line_and_exit_2(monkeypatch, capsys):
    """An OSError of a command (a path it was given) stays the user's to fix, as before."""
    from segmenter.cli_commands import own_files

    def command(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/out/model")

    monkeypatch.setattr(cli, "run_status", own_files(command))
    assert cli.main(["status", "somewhere"]) == 2
    assert capsys.readouterr().err == (
        "segmenter: [Errno 13] Permission denied: '/srv/out/model'\n"
    )


def test_precise_thresholds_out_of_order_are_a_setting_error():
    """Each in range, the pair not: PreciseOptions refuses it (a SettingError, one line)."""
    from .conftest import SEGMENTER

    sample = Path(__file__).parent.parent / "samples" / "standup_meeting.wav"
    cmd = [SEGMENTER, "segment", str(sample), "--profile", "precise"]
    cmd += ["--precise-leave-threshold", "0.6", "--precise-enter-threshold", "0.4"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "segmenter: precise: need 0 <= leave_threshold <= enter_threshold <= 1\n"
    )
