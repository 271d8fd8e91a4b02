"""The optional read token, over real HTTP: who may read the status, the events and the page.

In-process servers (a thread, raw sockets) pin every route's answer with and
without the read token, the operator token and the page's session cookie; a
real ``bluegreen serve`` takes the read token from a file and never logs it.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from provider.api import CONTROLLER
from provider.errors import SettingsError
from provider.read_access import COOKIE, SESSION_S, ReadAccess
from provider.server import build_app
from provider.settings import parse_args
from tests.api.test_openapi import check_response
from tests.hostile_http import (
    PROVIDER_TOKEN,
    TOKEN,
    HostileRequest,
    RawResponse,
    ThreadedApp,
    hostile_settings,
    observed,
    send,
)
from tests.testbed.provider import ProviderProcess, api_request

READ = "read-" + "9d2c" * 6
READ_ROUTES = ("/status", "/status/web", "/history", "/ui/services")
OPEN_ROUTES = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/ui/app.js", "/ui/login.js")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ThreadedApp]:
    app = build_app(hostile_settings(tmp_path, read_token=READ), watch_docker=False)
    with ThreadedApp(app) as running:
        running.call(app[CONTROLLER].replace_containers(observed()))
        running.call(app[CONTROLLER].mark_synced())
        yield running


def get(port: int, path: str, *headers: tuple[str, str]) -> RawResponse:
    return send(port, HostileRequest("GET", path, path, headers))


def bearer(token: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token}")


def login(port: int, token: str, *headers: tuple[str, str]) -> RawResponse:
    body = ('{"token": "' + token + '"}').encode()
    all_headers = (("Content-Type", "application/json"), *headers)
    return send(port, HostileRequest("POST", "/ui/login", "/ui/login", all_headers, body))


def events_status(port: int, *headers: tuple[str, str]) -> int:
    """The status line of GET /events (a stream: read its head only)."""
    lines = [b"GET /events HTTP/1.1", b"Host: x", *(f"{k}: {v}".encode() for k, v in headers)]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        head = sock.recv(4096)
    return int(head.split(b" ", 2)[1])


def test_reads_need_the_read_or_the_operator_token(server: ThreadedApp) -> None:
    """With --read-token: /status, /history, /ui/services and /events answer 401 without it
    or with a wrong one, 200 with the read token or the operator token; / shows the sign-in
    form (401, HTML, no service in it)."""
    port = server.port
    for path in READ_ROUTES:
        for headers in ((), (bearer(READ + "x"),), (bearer(PROVIDER_TOKEN),)):
            answer = get(port, path, *headers)
            assert (401, "unauthorized") == (answer.status, answer.json()["error"]), path
        for token in (READ, TOKEN):
            assert 200 == get(port, path, bearer(token)).status, path
    assert [401, 401, 200, 200] == [
        events_status(port, *h) for h in ((), (bearer("nope"),), (bearer(READ),), (bearer(TOKEN),))
    ]
    page = get(port, "/")
    assert (401, "text/html") == (page.status, page.content_type)
    assert b'id="login-form"' in page.body and b"web" not in page.body
    assert 200 == get(port, "/", bearer(READ)).status


def test_the_401s_are_the_documented_ones(server: ThreadedApp) -> None:
    """Each read route's 401 (and the page's sign-in form) matches /openapi.json."""
    for route, path in [("/status", "/status"), ("/status/{service}", "/status/web")]:
        check_response(route, "GET", get(server.port, path))
    for route in ("/history", "/ui/services", "/"):
        check_response(route, "GET", get(server.port, route))
    check_response("/ui/login", "POST", login(server.port, "wrong"))
    check_response("/ui/login", "POST", login(server.port, READ))


def test_probes_traefik_and_static_files_stay_open(server: ThreadedApp) -> None:
    """/healthz, /readyz, /metrics, /openapi.json and the scripts need no read token; /traefik
    keeps its own --provider-token."""
    for path in OPEN_ROUTES:
        assert 200 == get(server.port, path).status, path
    assert 200 == get(server.port, "/traefik", bearer(PROVIDER_TOKEN)).status
    assert 401 == get(server.port, "/traefik", bearer(READ)).status


def test_sign_in_sets_a_session_cookie_that_reads(server: ThreadedApp) -> None:
    """POST /ui/login with the read (or operator) token: an HttpOnly, SameSite=Strict cookie
    holding no token, which reads /status, /events and the page; a wrong token is 401 and
    sets nothing; a tampered cookie reads nothing."""
    port = server.port
    wrong = login(port, "guess")
    assert (401, None) == (wrong.status, wrong.headers.get("set-cookie"))
    for token in (READ, TOKEN):
        answer = login(port, token)
        assert 200 == answer.status
        cookie = answer.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "samesite", "path", "max-age"} <= attributes, cookie
        assert "samesite=strict" in cookie.lower() and "secure" not in attributes
        assert READ not in cookie and TOKEN not in cookie
        value = re.match(rf"{COOKIE}=([^;]+)", cookie)
        assert value is not None
        session = ("Cookie", f"{COOKIE}={value.group(1)}")
        assert 200 == get(port, "/status", session).status
        assert 200 == get(port, "/", session).status
        assert 200 == events_status(port, session)
        forged = ("Cookie", f"{COOKIE}={value.group(1)[:-1]}0")
        if forged != session:
            assert 401 == get(port, "/status", forged).status
    behind_https = login(port, READ, ("X-Forwarded-Proto", "https"))
    assert "secure" in behind_https.headers["set-cookie"].lower()


def test_a_session_expires_and_dies_with_its_read_token() -> None:
    """A session reads for 12 hours, not after; one signed with another read token never."""
    now = [1_000_000.0]
    access = ReadAccess(READ, TOKEN, clock=lambda: now[0])
    value, expires = access.session()
    assert expires == now[0] + SESSION_S and access.session_ok(value)
    assert not ReadAccess("another-read-token", TOKEN, clock=lambda: now[0]).session_ok(value)
    now[0] += SESSION_S
    assert not access.session_ok(value)
    for junk in ("", "1.2", "²." + "0" * 64, "9" * 5000, f"{expires}.{'g' * 64}"):
        assert not access.session_ok(junk)


def test_without_a_read_token_everything_reads_as_before(tmp_path: Path) -> None:
    """No --read-token: no token needed anywhere to read; sign-in answers 200 and no cookie."""
    app = build_app(hostile_settings(tmp_path), watch_docker=False)
    with ThreadedApp(app) as running:
        running.call(app[CONTROLLER].replace_containers(observed()))
        running.call(app[CONTROLLER].mark_synced())
        for path in (*READ_ROUTES, "/"):
            assert 200 == get(running.port, path).status, path
        assert 200 == events_status(running.port)
        answer = login(running.port, "anything")
        assert (200, None) == (answer.status, answer.headers.get("set-cookie"))


def test_read_token_settings_flag_env_yaml_and_file(tmp_path: Path) -> None:
    """--read-token, BLUEGREEN_READ_TOKEN, read_token in YAML, --read-token-file; redacted in
    logs; equal to the operator token is refused (every reader would be an operator)."""
    assert READ == parse_args(["--read-token", READ], {}).read_token
    assert READ == parse_args([], {"BLUEGREEN_READ_TOKEN": READ}).read_token
    config = tmp_path / "bluegreen.yaml"
    config.write_text(f"read_token: {READ}\n")
    assert READ == parse_args(["--config", str(config)], {}).read_token
    token_file = tmp_path / "read-token"
    token_file.write_text(READ + "\n")
    settings = parse_args(["--read-token-file", str(token_file)], {})
    assert READ == settings.read_token
    assert "set" == settings.redacted()["read_token"]
    with pytest.raises(SettingsError, match="read token"):
        parse_args(["--read-token", TOKEN, "--token", TOKEN], {})
    with pytest.raises(SettingsError, match="both"):
        parse_args(["--read-token-file", str(token_file)], {"BLUEGREEN_READ_TOKEN": READ})


def test_serve_with_a_read_token_file(tmp_path: Path) -> None:
    """A real `bluegreen serve --read-token-file F`: /status needs it, /healthz does not, and
    the token is in neither its command line nor its log."""
    token_file = tmp_path / "read-token"
    token_file.write_text(READ + "\n")
    os.chmod(token_file, 0o600)
    provider = ProviderProcess(
        tmp_path,
        docker_host=f"unix://{tmp_path}/no-docker.sock",
        extra_args=["--read-token-file", str(token_file)],
    )
    provider.start()
    try:
        anonymous = api_request(provider.port, "GET", "/status")
        with_read = api_request(
            provider.port, "GET", "/status", headers={"Authorization": f"Bearer {READ}"}
        )
        healthz = api_request(provider.port, "GET", "/healthz")
    finally:
        provider.terminate()
    assert (401, 200, 200) == (anonymous.status, with_read.status, healthz.status)
    assert READ not in provider.log_text()
