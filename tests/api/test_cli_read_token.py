"""The CLI against a provider that requires a read token: its token goes with reads too.

A provider started with ``--read-token`` refuses anonymous ``GET /status``,
``/history`` and ``/events``; the CLI sends ``BLUEGREEN_TOKEN`` (the operator
token, or the read token for a read-only operator) with every request, the
event stream included, and still to no other origin (redirects are refused).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.follow import EventStream, EventsUnavailable
from provider.api import CONTROLLER
from provider.server import build_app
from tests.hostile_http import TOKEN, ThreadedApp, hostile_settings, observed
from tests.testbed.provider import REPO_ROOT

READ = "read-" + "7e1f" * 6
CLI_TIMEOUT_S = 60.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedApp]:
    app = build_app(hostile_settings(tmp_path, read_token=READ), watch_docker=False)
    with ThreadedApp(app) as running:
        running.call(app[CONTROLLER].replace_containers(observed()))
        running.call(app[CONTROLLER].mark_synced())
        yield running


def cli(port: int, token: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEGREEN_", "DOCKER_"))}
    env["BLUEGREEN_URL"] = f"http://127.0.0.1:{port}"
    if token is not None:
        env["BLUEGREEN_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("token", [TOKEN, READ])
def test_status_and_history_read_with_the_operator_or_the_read_token(
    server: ThreadedApp, token: str
) -> None:
    """`bluegreen status` and `history` succeed with either token (both grant reads)."""
    status = cli(server.port, token, "status", "web")
    history = cli(server.port, token, "history")
    assert (0, 0) == (status.returncode, history.returncode), status.stderr + history.stderr
    assert "web" in status.stdout


def test_without_a_token_the_cli_says_which_token_to_set(server: ThreadedApp) -> None:
    """No token: the 401 becomes a one-line hint naming BLUEGREEN_TOKEN, not a traceback."""
    status = cli(server.port, None, "status")
    assert 0 != status.returncode
    assert "BLUEGREEN_TOKEN" in status.stderr
    assert "Traceback" not in status.stderr


def test_the_event_stream_carries_the_token(server: ThreadedApp) -> None:
    """The deploy's event stream opens with the token, and is refused without it."""
    url = f"http://127.0.0.1:{server.port}"
    with pytest.raises(EventsUnavailable, match="401"):
        EventStream(url, "web")
    stream = EventStream(url, "web", token=READ)
    stream.close()
