"""A child process that logs to a file, with bounded waits that show its log on failure.

Shared by the Traefik and provider process wrappers: both are started by tests,
polled until some condition holds, and must fail with the tail of their own
log rather than a bare timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.waiting import wait_until

LOG_TAIL_CHARS = 4000
#: How long to wait for a process to go after SIGKILL.
KILL_WAIT_S = 10.0


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM by PID, wait up to ``timeout``, then SIGKILL by PID; the exit code."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=KILL_WAIT_S)
    return proc.returncode


class LoggedProcess:
    """Mixin: the subclass sets ``log_path``, ``_proc`` (once started) and :attr:`label`."""

    label = "process"
    poll_interval_s = 0.1
    log_path: Path
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID while running, else ``None``."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.pid is not None

    def log_text(self) -> str:
        """Everything the process logged so far."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL by PID, as a crash would; no shutdown code runs. Idempotent."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=KILL_WAIT_S)
        self._proc = None

    def terminate(self, timeout: float) -> int | None:
        """SIGTERM by PID, wait, SIGKILL fallback; the exit code (``None`` if not running
        since the last stop). Idempotent."""
        proc = self._proc
        if proc is None:
            return None
        code = terminate(proc, timeout)
        self._proc = None
        return code

    def _fail(self, message: str) -> TimeoutError:
        tail = self.log_text()[-LOG_TAIL_CHARS:]
        return TimeoutError(f"{message}\n--- {self.label} log tail ({self.log_path}) ---\n{tail}")

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        """Poll ``check`` until true; bounded in time and count; fails early if the process died."""

        def alive_and_done() -> bool:
            if not self.alive():
                raise self._fail(f"{self.label} is not running while waiting for {what}")
            try:
                return check()
            except OSError:  # not listening yet (the died error above is one too)
                return False

        wait_until(what, alive_and_done, timeout, interval=self.poll_interval_s, fail=self._fail)
