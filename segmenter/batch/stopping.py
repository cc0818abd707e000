"""Stopping a batch on SIGTERM or SIGINT: no new files, and the ones in flight get a grace period.

systemd and cron stop a job with SIGTERM (then SIGKILL after a timeout), a terminal with SIGINT.
The first signal stops handing out files; the files in flight may finish for `grace` seconds,
after which an alarm abandons them (they stay to do, like the files never started). A second
signal abandons them at once. The run then releases OUT and prints its summary as usual.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Abandon(BaseException):  # noqa: N818 - an order, not an error
    """Stop at once: raised in the main thread when the grace period ends or a second signal
    comes; the files in flight are left to do.

    A BaseException, as KeyboardInterrupt is: with one worker the files are segmented in the
    coordinator's main thread, where a handler of a file's errors (`except Exception`) would
    otherwise take the order for that file's failure and record it failed."""


@dataclass
class StopState:
    """The stop signal received (None: none), and whether the files in flight were abandoned."""

    signum: int | None = None
    abandoned: bool = False
    settled: bool = False  # the processing is over: a signal has nothing left to stop

    def settle(self) -> None:
        """Processing is over: from now on the signals are ignored until the run ends."""
        self.settled = True

    @property
    def name(self) -> str:
        """SIGTERM or SIGINT."""
        return signal.Signals(self.signum).name if self.signum else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a shell reports a process the signal ended: 143, 130."""
        return 128 + (self.signum or 0)


STATE = StopState()  # signals are the process's, so is their state


def stop_requested() -> bool:
    """Whether a stop signal came: no file may be handed out any more."""
    return STATE.signum is not None


def _say(line: str) -> None:
    """One line on stderr, unbuffered: a signal handler must not reenter a buffered stream."""
    os.write(2, f"segmenter: {line}\n".encode())


@contextmanager
def stop_on_signals(grace: float) -> Iterator[StopState]:
    """SIGTERM and SIGINT stop the run gracefully inside the block (main thread only; a run
    started from another thread keeps the process's handlers)."""
    STATE.signum, STATE.abandoned, STATE.settled = None, False, False
    if threading.current_thread() is not threading.main_thread():
        yield STATE
        return

    def on_stop(signum: int, frame) -> None:
        if STATE.abandoned or STATE.settled:
            return
        if STATE.signum is not None:
            _abandon(f"second {signal.Signals(signum).name}: stopping now")
        STATE.signum = signum
        _say(
            f"{STATE.name}: stopping; files in flight get up to {grace:g} s to finish"
            f" (send {STATE.name} again to stop now)"
        )
        if grace > 0:
            signal.setitimer(signal.ITIMER_REAL, grace)
        else:
            _abandon("no grace period: stopping now")

    def on_alarm(signum: int, frame) -> None:
        if STATE.signum is not None and not (STATE.abandoned or STATE.settled):
            _abandon(f"the {grace:g} s grace period is over: stopping now")

    handlers = {signal.SIGALRM: on_alarm} | {s: on_stop for s in STOP_SIGNALS}
    previous = {s: signal.signal(s, handler) for s, handler in handlers.items()}
    try:
        yield STATE
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _abandon(why: str) -> None:
    """Give up on the files in flight (once), saying why."""
    STATE.abandoned = True
    _say(f"{why}; the files in flight are left to do")
    raise Abandon(why)
