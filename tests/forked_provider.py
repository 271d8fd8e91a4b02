"""``bluegreen serve`` started hundreds of times a test, fast, so it can be SIGKILLed at will.

A fresh interpreter spends most of a second importing aiohttp, aiodocker and
structlog before it serves. The crash tests restart the provider hundreds of
times, so they start it from a small *zygote*: ``python -m tests.forked_provider``
imports those modules once, then forks on request. Each child runs the real
``bluegreen serve`` entry point (``deploy.cli.main``) with real flags, as a
process of its own; the test SIGKILLs it by its PID and the zygote reaps it.
When its stdin closes, the zygote SIGKILLs any child it still has and exits.

Protocol: one JSON object per line each way.
``{"start": [argv...], "log": path}`` answers ``{"pid": N}``;
``{"reap": N}`` waits for that child and answers ``{"status": exit status}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from tests.testbed.provider import ApiAnswer, api_request
from tests.waiting import wait_until

START_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.005
REPO_ROOT = Path(__file__).resolve().parents[1]


def _child(argv: list[str], log_path: str) -> None:
    """In the forked child: stdio to the log, default signals, then the real CLI."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.close(null)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    from deploy.cli import main

    code = 1
    try:
        code = main(argv)
    finally:
        sys.stdout.flush()
        os._exit(code)


def zygote() -> None:
    """Import the provider once, then fork children on request (see the module doc)."""
    import aiodocker  # noqa: F401 - imported once here, shared by every child
    import aiohttp.web  # noqa: F401

    import deploy.cli  # noqa: F401
    import provider.docker_watch
    import provider.server  # noqa: F401

    children: set[int] = set()
    try:
        for line in sys.stdin:
            request = json.loads(line)
            if "start" in request:
                pid = os.fork()
                if pid == 0:
                    _child(request["start"], request["log"])
                children.add(pid)
                answer: dict[str, Any] = {"pid": pid}
            else:
                pid = int(request["reap"])
                _, status = os.waitpid(pid, 0)
                children.discard(pid)
                answer = {"status": status}
            print(json.dumps(answer), flush=True)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


class Zygote:
    """The zygote process, owned by a test: start it, fork providers, close it."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forked_provider"],
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] | None = self._proc.stdin
        stdout: IO[str] | None = self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"zygote exited with {self._proc.wait(5)}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def fork(self, argv: Sequence[str], log_path: Path) -> int:
        return int(self._ask({"start": list(argv), "log": str(log_path)})["pid"])

    def reap(self, pid: int) -> int:
        return int(self._ask({"reap": pid})["status"])

    def close(self) -> None:
        """Close its stdin (it SIGKILLs leftover children) and wait; SIGKILL if it hangs."""
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


class ForkedProvider:
    """One provider on a fixed 127.0.0.1 port and state file, restartable."""

    def __init__(self, zygote: Zygote, argv: Sequence[str], port: int, log_path: Path) -> None:
        self.zygote = zygote
        self.argv = list(argv)
        self.port = port
        self.log_path = log_path
        self.starts = 0
        self.pid: int | None = None

    def start(self) -> None:
        if self.pid is not None:
            raise RuntimeError("provider already running")
        self.pid = self.zygote.fork(self.argv, self.log_path)
        self.starts += 1

    def get(self, path: str, timeout: float = 2.0) -> ApiAnswer:
        return api_request(self.port, "GET", path, timeout=timeout)

    def wait_ready(self, path: str = "/readyz", timeout: float = START_TIMEOUT_S) -> None:
        """Poll ``path`` until it answers 200 (bounded in time)."""
        wait_until(
            f"{path} to answer 200",
            lambda: self.get(path, timeout=1.0).status == 200,
            timeout,
            interval=POLL_INTERVAL_S,
            tolerate=(OSError,),
            fail=lambda message: TimeoutError(f"{message}:\n{self.log_tail()}"),
        )

    def kill(self) -> None:
        """SIGKILL by PID, as a crash would, and have the zygote reap it."""
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGKILL)
        self.zygote.reap(self.pid)
        self.pid = None

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""


if __name__ == "__main__":
    zygote()
