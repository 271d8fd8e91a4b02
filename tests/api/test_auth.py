"""Authentication of the mutating endpoints, and secrets kept out of the logs.

In-process tests pin the answers (401 for every wrong token, 403 with a fix
when no token is configured, 413 past the body cap) and that the comparison
goes through ``hmac.compare_digest`` on the whole value; a real ``bluegreen
serve`` subprocess, logging JSON at debug level, proves that neither its
tokens nor the wrong ones clients sent ever reach its output.
"""

from __future__ import annotations

import hmac
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider import store
from provider.api import CONTROLLER
from provider.core.model import Color, ServiceState, State
from provider.server import build_app
from tests.hostile_http import (
    HostileRequest,
    RawResponse,
    ThreadedApp,
    hostile_settings,
    observed,
    send,
)
from tests.testbed.provider import ProviderProcess, api_request

TOKEN = "s3cret-token"


def switch_request(
    authorization: str | None, body: bytes = b'{"service": "web"}'
) -> HostileRequest:
    headers = [("Content-Type", "application/json")]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    return HostileRequest("POST", "/switch", "/switch", tuple(headers), body)


def wrong_tokens(token: str) -> list[str]:
    """Wrong tokens of every length up to twice the right one's, and near misses."""
    wrong = ["x" * n for n in range(2 * len(token) + 2)]
    wrong += [token[:n] for n in range(len(token))]  # every proper prefix
    wrong += [token + "x", "x" + token, token.upper(), token[::-1]]
    wrong += [token[:i] + chr(ord(token[i]) ^ 1) + token[i + 1 :] for i in range(len(token))]
    return [w for w in wrong if w != token]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedApp]:
    app = build_app(hostile_settings(tmp_path, token=TOKEN, max_body=1024), watch_docker=False)
    with ThreadedApp(app) as running:
        running.call(app[CONTROLLER].replace_containers(observed()))
        running.call(app[CONTROLLER].mark_synced())
        yield running


def error_of(response: RawResponse) -> tuple[int, str]:
    return response.status, response.json()["error"]


def test_every_wrong_token_is_401(server: ThreadedApp) -> None:
    """Any length, any prefix, one flipped character: 401 and the state file untouched."""
    state = server.app[CONTROLLER].settings.state_file
    before = state.read_bytes()
    for wrong in wrong_tokens(TOKEN):
        for header in (f"Bearer {wrong}", wrong):
            assert (401, "unauthorized") == error_of(send(server.port, switch_request(header)))
    assert (401, "unauthorized") == error_of(send(server.port, switch_request(None)))
    assert before == state.read_bytes()
    assert 200 == send(server.port, switch_request(f"Bearer {TOKEN}")).status


def test_token_is_compared_with_compare_digest(
    server: ThreadedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each check is one constant-time compare_digest of the whole supplied value."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("provider.read_access.hmac.compare_digest", spy)
    for supplied in ("s3cret-tokeX", "s", TOKEN + "-and-more"):
        send(server.port, switch_request(f"Bearer {supplied}"))
    assert [(s.encode(), TOKEN.encode()) for s in ("s3cret-tokeX", "s", TOKEN + "-and-more")] == [
        (bytes(a), bytes(b)) for a, b in calls
    ]


def test_get_auth_checks_the_token_and_changes_nothing(server: ThreadedApp) -> None:
    """GET /auth: 200 for the operator token, 401 for a wrong or missing one; no state change."""
    state = server.app[CONTROLLER].settings.state_file
    before = state.read_bytes()

    def get(auth: str | None) -> RawResponse:
        headers = () if auth is None else (("Authorization", auth),)
        return send(server.port, HostileRequest("GET", "/auth", "/auth", headers))

    right, wrong, missing = get(f"Bearer {TOKEN}"), get(f"Bearer {TOKEN}x"), get(None)

    assert (200, {"authorized": True}) == (right.status, right.json())
    assert [(401, "unauthorized")] * 2 == [error_of(wrong), error_of(missing)]
    assert before == state.read_bytes()


def test_no_token_configured_is_403_with_how_to_set_one(tmp_path: Path) -> None:
    """Without a server token /switch and /rollback answer 403 naming --token and the env var
    (and GET /auth a 403 too)."""
    app = build_app(hostile_settings(tmp_path, token=None), watch_docker=False)
    with ThreadedApp(app) as running:
        running.call(app[CONTROLLER].replace_containers(observed()))
        running.call(app[CONTROLLER].mark_synced())
        for path in ("/switch", "/rollback"):
            for auth in (None, f"Bearer {TOKEN}", "Bearer "):
                request = switch_request(auth)
                request = HostileRequest(request.method, path, path, request.headers, request.body)
                response = send(running.port, request)
                assert (403, "forbidden") == error_of(response)
                detail = response.json()["detail"]
                assert "--token" in detail and "BLUEGREEN_TOKEN" in detail
        auth = HostileRequest("GET", "/auth", "/auth", (("Authorization", f"Bearer {TOKEN}"),))
        assert (403, "forbidden") == error_of(send(running.port, auth))
        assert 200 == send(running.port, HostileRequest("GET", "/status", "/status")).status


@pytest.mark.parametrize("size", [1025, 4096, 1024 * 1024])
def test_body_over_the_cap_is_413(server: ThreadedApp, size: int) -> None:
    """A body past --max-body (1 KiB here) is refused with 413, even when it is valid JSON."""
    body = b'{"service": "web"' + b" " * size + b"}"
    response = send(server.port, switch_request(f"Bearer {TOKEN}", body))
    assert (413, "payload_too_large") == error_of(response)
    at_cap = b'{"service": "web"' + b" " * (1024 - 18) + b"}"
    assert 1024 == len(at_cap)
    assert 200 == send(server.port, switch_request(f"Bearer {TOKEN}", at_cap)).status


def test_tokens_never_reach_the_logs(tmp_path: Path) -> None:
    """A real provider at debug level, right and wrong tokens sent: no token in its output."""
    token = "tok-" + "7f3a9c" * 5
    provider_token = "ptok-" + "b41e" * 6
    seed = State(services={"web": ServiceState(active=Color.BLUE)})
    store.save(tmp_path / "state.json", seed)
    provider = ProviderProcess(
        tmp_path,
        docker_host=f"unix://{tmp_path}/no-docker.sock",  # switches need no Docker (force)
        token=token,
        provider_token=provider_token,
        extra_args=["--log-level", "debug"],
    )
    wrong = [token[:-1], token + "0", "Bearer " + token, provider_token, "tok-guess-12345678"]
    provider.start()
    try:
        for color in ("green", "blue", "green"):
            answer = provider.post("/switch", {"service": "web", "color": color, "force": True})
            assert 200 == answer.status, answer.body
        for bad in wrong:
            assert 401 == provider.post("/switch", {"service": "web"}, token=bad).status
            assert 401 == provider.post("/rollback", {"service": "web"}, token=bad).status
        headers = {"Authorization": f"Bearer {token}"}
        assert 401 == api_request(provider.port, "GET", "/traefik", headers=headers).status
        rollback = provider.post("/rollback", {"service": "web", "force": True})
        assert 200 == rollback.status, rollback.body
        # Surface anything buffered, then stop the process before reading its output.
        provider.get("/metrics")
    finally:
        provider.terminate()
    output = provider.log_text()
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert any(line.get("event") == "service_switched" for line in lines)
    for secret in {token, provider_token, *wrong}:
        assert secret not in output, f"{secret!r} appears in the provider's output"
    assert "Bearer" not in output


def test_serve_with_token_file_accepts_the_token_and_keeps_it_off_the_command_line(
    tmp_path: Path,
) -> None:
    """`bluegreen serve --token-file F` (a real process): the file's token switches, others
    get 401, and neither /proc/<pid>/cmdline nor `ps` shows the token."""
    token = "filetok-" + "5c2e" * 6
    token_file = tmp_path / "operator-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    store.save(tmp_path / "state.json", State(services={"web": ServiceState(active=Color.BLUE)}))
    provider = ProviderProcess(
        tmp_path, docker_host=f"unix://{tmp_path}/no-docker.sock", token_file=token_file
    )
    provider.start()
    try:
        assert provider.pid is not None
        cmdline = Path(f"/proc/{provider.pid}/cmdline").read_bytes().split(b"\0")
        ps = subprocess.run(
            ["ps", "-ww", "-o", "args=", "-p", str(provider.pid)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        wrong = provider.post("/switch", {"service": "web", "force": True}, token=token[:-1])
        right = provider.post("/switch", {"service": "web", "color": "green", "force": True})
    finally:
        provider.terminate()
    assert (401, 200) == (wrong.status, right.status), right.body
    assert ("green", True) == (right.json["active"], right.json["changed"])
    assert str(token_file).encode() in cmdline
    assert "--token-file" in ps
    assert [] == [part for part in cmdline if token.encode() in part]
    assert token not in ps
    assert token not in provider.log_text()
