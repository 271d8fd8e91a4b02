"""The in-namespace load generator (tests/testbed/netns_load.py) is bounded, counts every
answer and error, and still reports when stopped early. Run here in the test's own
namespace against a loopback server (no Docker, no namespaces needed)."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.testbed.netns_load import result_from_output
from tests.testbed.ports import free_port
from tests.testbed.swarm import load_argv
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


class ColorServer(http.server.ThreadingHTTPServer):
    """Answers "blue\\n" and remembers the Host headers it saw."""

    daemon_threads = True
    hosts: list[str]


class ColorHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, ColorServer)
        server.hosts.append(self.headers.get("Host", ""))
        body = b"blue\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: thousands of requests."""


@pytest.fixture
def color_server() -> Iterator[ColorServer]:
    """A loopback HTTP server in a thread, shut down at teardown."""
    server = ColorServer(("127.0.0.1", free_port()), ColorHandler)
    server.hosts = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def url_of(server: ColorServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_stops_at_the_request_count_and_counts_bodies(color_server: ColorServer) -> None:
    """Exactly --max-requests requests, all 200 with body "blue\\n", Host header sent."""
    argv = load_argv(url_of(color_server), host="web.test", max_requests=50, max_seconds=60)
    out, _ = start(argv).communicate(timeout=60)

    result = result_from_output(out)

    assert (50, 50, 0, "done") == (result.total, result.ok, result.failed, result.stopped_by)
    assert {"blue\n": 50} == result.bodies
    assert {"web.test"} == set(color_server.hosts)


def test_sigterm_stops_it_early_and_it_still_reports(color_server: ColorServer) -> None:
    """SIGTERM mid-run: it exits, prints its one JSON line, and names the signal."""
    argv = load_argv(url_of(color_server), max_requests=10_000_000, max_seconds=120)
    proc = start(argv)
    wait_until("20 requests served", lambda: len(color_server.hosts) >= 20, 30)

    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    result = result_from_output(out)

    assert ("SIGTERM", 0) == (result.stopped_by, result.failed)
    assert result.total == result.ok >= 20


def test_refused_connections_are_counted_as_failures() -> None:
    """No server: every request of the budget fails with the error's class name."""
    argv = load_argv(
        f"http://127.0.0.1:{free_port()}/", max_requests=5, max_seconds=30, concurrency=1
    )
    out, _ = start(argv).communicate(timeout=60)

    result = result_from_output(out)

    assert (5, 0, 5) == (result.total, result.ok, result.failed)
    assert {"ConnectionRefusedError": 5} == result.errors
