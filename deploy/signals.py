"""SIGTERM and SIGINT during a command: clean up as Ctrl-C does, and pass them on to compose.

A container runtime (``docker stop``) or a CI job's cancel sends SIGTERM, then
SIGKILL after a deadline (often 10 s). So SIGTERM becomes :class:`Terminated`, a
:class:`KeyboardInterrupt`: every cleanup written for Ctrl-C (stop the new color
unless the provider made it active) runs for it too, and the command exits 143
(128 + 15; Ctrl-C: 130).

The compose child runs in its own process group (``docker compose`` is the
``docker`` CLI starting the compose plugin, and only a signal to the group
reaches both), so a signal meant for the CLI does not reach it by itself:
:func:`stop_child` forwards the one that interrupted us to the child's group,
waits a bounded while, then kills the group. Otherwise ``compose up`` would run
on, create the new color after our cleanup, and the provider could promote it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

#: How long compose may take to exit after the forwarded signal before the group is killed.
CHILD_GRACE_S = 5.0
EXIT_SIGTERM = 128 + signal.SIGTERM
EXIT_SIGINT = 128 + signal.SIGINT


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread where it was waiting, like Ctrl-C's KeyboardInterrupt."""


@dataclass
class Received:
    """Whether a SIGTERM arrived during the command: its exit code is then 143, not 130."""

    terminated: bool = False

    def exit_code(self) -> int:
        return EXIT_SIGTERM if self.terminated else EXIT_SIGINT


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Received]:
    """SIGTERM raises :class:`Terminated` in the main thread while the block runs."""
    received = Received()

    def handler(signum: int, frame: FrameType | None) -> None:
        received.terminated = True
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests calling main() in a worker)
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


class HeldInterrupts:
    """SIGINT and SIGTERM wait while a child starts; :meth:`release` delivers them.

    An interrupt between ``Popen`` and the ``try`` that forwards it would leave
    compose running with nobody to stop it (seen under load: the signal landed
    while the output reader started). Held, it is raised again by :meth:`release`,
    inside that ``try``. The handlers are Python-level only: the child inherits
    no blocked signal mask. Outside the main thread it holds nothing.
    """

    def __init__(self) -> None:
        self.pending: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> HeldInterrupts:
        with contextlib.suppress(ValueError):  # not the main thread: nothing to hold
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._hold)
        return self

    def _hold(self, signum: int, frame: FrameType | None) -> None:
        self.pending.append(signum)

    def release(self) -> None:
        """Restore the handlers; raise the first held interrupt through its own handler."""
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous = {}
        pending, self.pending = self.pending, []
        if pending:
            signal.raise_signal(pending[0])

    def __exit__(self, *exc: object) -> None:
        self.release()


def signal_of(interrupt: KeyboardInterrupt) -> signal.Signals:
    """The signal behind ``interrupt``: SIGTERM for :class:`Terminated`, else SIGINT."""
    return signal.SIGTERM if isinstance(interrupt, Terminated) else signal.SIGINT


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop_child(proc: subprocess.Popen[str], signum: int) -> None:
    """Forward ``signum`` to ``proc``'s process group; SIGKILL it after :data:`CHILD_GRACE_S`.

    ``proc`` must lead its own group (``process_group=0``). Another interrupt
    while waiting kills the group at once. Returns once ``proc`` is reaped;
    whatever else of the group is left gets SIGKILL then too.
    """
    _signal_group(proc.pid, signum)
    with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
        proc.wait(timeout=CHILD_GRACE_S)
    # The group outlives its leader while a member (e.g. the compose plugin) runs.
    _signal_group(proc.pid, signal.SIGKILL)
    proc.wait()
