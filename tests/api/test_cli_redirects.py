"""The CLI never follows a redirect: the operator token stays with the provider's URL.

Two real HTTP servers on 127.0.0.1: the one ``--url`` names answers every request
with a redirect to the other, which records what reaches it and answers like a
provider would (a 200 switch result). ``bluegreen`` runs as a subprocess, as a
user runs it. urllib's default handler would resend ``Authorization`` to the
second server and turn a redirected ``POST /switch`` into a ``GET`` whose 200
read as success.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.testbed.compose import REPO_ROOT

TOKEN = "redirect-test-token"
SWITCH_ANSWER = {
    "service": "web",
    "active": "green",
    "previous": "blue",
    "changed": True,
    "switch": None,
}


@dataclass
class Recorder:
    """What reached the redirect's target: (method, path, headers) per request."""

    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="redirect-test-http")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, Recorder]]:
    """The redirect's target: records every request, answers a provider-like 200."""
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            with recorder.lock:
                recorder.seen.append((self.command, self.path, dict(self.headers.items())))
            body = json.dumps(SWITCH_ANSWER).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``recorder``."""

    yield from ((url, recorder) for url in _serve(Handler))


def redirecting(code: int, target: str) -> Iterator[str]:
    """A server answering every request with ``code`` to the same path at ``target``."""

    class Handler(BaseHTTPRequestHandler):
        def _redirect(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send_response(code)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _redirect

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    return _serve(Handler)


def bluegreen(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *argv],
        env={"PYTHONPATH": str(REPO_ROOT), "BLUEGREEN_URL": url, "BLUEGREEN_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("code", [301, 302, 307, 308])
@pytest.mark.parametrize(
    "argv", [("switch", "web", "green"), ("status",)], ids=["switch", "status"]
)
def test_a_redirect_is_refused_and_nothing_reaches_its_target(
    code: int, argv: tuple[str, ...], elsewhere: tuple[str, Recorder]
) -> None:
    """A redirect from --url is an error (exit 3) naming the Location; its target sees no
    request, so neither the token nor the switch goes anywhere but the configured URL."""
    target, recorder = elsewhere
    for url in redirecting(code, target):
        result = bluegreen(url, *argv)

    assert [] == recorder.seen
    assert 3 == result.returncode, result.stderr
    assert f"answered a redirect ({code}) to {target}/" in result.stderr
    assert "follows no redirect" in result.stderr
    assert TOKEN not in result.stderr + result.stdout
