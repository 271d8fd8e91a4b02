"""Every response /openapi.json documents is one a test has seen, validated against it.

``tests/api/test_openapi.py`` checks that what the server answers is documented;
this module checks the converse: for each (path, method, status) in the
document, a row of :data:`CASES` makes the server answer it, and the answer
validates (status, content type, body schema). A documented status no request
can produce is a promise nobody checks, so the table must cover the document
exactly: a new route or status needs a row, a dead one leaves the document.
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provider.api import CONTROLLER
from provider.core.model import State
from provider.errors import StateFileError, StateStoreUnavailable
from provider.openapi import SPEC
from provider.server import build_app
from tests.api.test_openapi import check_response
from tests.hostile_http import (
    MAX_BODY,
    PROVIDER_TOKEN,
    TOKEN,
    HostileRequest,
    RawResponse,
    ThreadedApp,
    hostile_settings,
    observed,
    parse_response,
    send,
)

READ = "read-only-token"
JSON = ("Content-Type", "application/json")
OPERATOR = ("Authorization", f"Bearer {TOKEN}")
READER = ("Authorization", f"Bearer {READ}")
TRAEFIK = ("Authorization", f"Bearer {PROVIDER_TOKEN}")
MUTATIONS = (
    "/switch",
    "/rollback",
    "/retire",
    "/canary",
    "/canary/abort",
    "/canary/promote",
    "/bake",
)
#: Routes whose answer never ends: only the head is read.
STREAMS = {"/events"}


@dataclass(frozen=True)
class Case:
    """One documented response and a request that produces it.

    ``server``: ``synced`` (operator, provider and read tokens), ``unsynced``
    (no Docker sync yet), ``no_token`` (no operator token) or ``one_stream``
    (``--events-max-clients 1`` and a stream already open). ``before``: POST
    bodies (route, JSON) that must succeed first. ``commit_fails``: then every
    state commit raises this. ``error``: the answer's error code, when the row
    pins which refusal it means.
    """

    route: str
    method: str
    status: int
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    server: str = "synced"
    before: tuple[tuple[str, str], ...] = ()
    commit_fails: type[StateFileError] | None = None
    error: str | None = None


def get(route: str, status: int, target: str | None = None, *headers: tuple[str, str]) -> Case:
    return Case(route, "GET", status, target or route, headers)


def post(route: str, status: int, doc: Any, *headers: tuple[str, str], **kw: Any) -> Case:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return Case(route, "POST", status, route, headers, body, **kw)


WEB = {"service": "web"}
#: ``"wait": "applied"`` with no time to wait and no Traefik polling: 504 at once.
WAIT_NOW = {"wait": "applied", "timeout": 0}
NOT_APPLIED = "traefik_not_applied"
CANARY_RUNS = (("/canary", '{"service": "web"}'),)
#: The body that makes each mutation succeed (200), and what must happen first.
ACCEPTED: dict[str, tuple[dict[str, Any], tuple[tuple[str, str], ...]]] = {
    "/switch": (WEB, ()),
    "/rollback": (WEB, (("/switch", '{"service": "web"}'),)),
    "/retire": ({"service": "web", "color": "green"}, ()),
    "/canary": (WEB, ()),
    "/canary/abort": (WEB, CANARY_RUNS),
    "/canary/promote": (WEB, CANARY_RUNS),
    "/bake": ({"service": "web", "duration": "60s"}, (("/switch", '{"service": "web"}'),)),
}
#: A body each mutation refuses with 409, and the refusal's code (api's green is still
#: starting; web has no previous color and blue is active; no canary runs).
REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "/switch": ({"service": "api"}, "switch_refused"),
    "/rollback": (WEB, "switch_refused"),
    "/retire": ({"service": "web", "color": "blue"}, "retire_refused"),
    "/canary": ({"service": "api"}, "canary_refused"),
    "/canary/abort": (WEB, "canary_not_running"),
    "/canary/promote": (WEB, "canary_not_running"),
    "/bake": ({"service": "web", "duration": "60s"}, "bake_refused"),
}


def mutation_cases(route: str) -> list[Case]:
    accepted, before = ACCEPTED[route]
    refused, refusal = REFUSED[route]
    op = (JSON, OPERATOR)
    fails: dict[str, Any] = {"before": before, "commit_fails": StateFileError}
    unavailable: dict[str, Any] = {"before": before, "commit_fails": StateStoreUnavailable}
    return [
        post(route, 200, accepted, *op, before=before),
        post(route, 400, {"service": "web", "bogus": 1}, *op, error="bad_request"),
        post(route, 401, accepted, JSON, error="unauthorized"),
        post(route, 403, accepted, JSON, server="no_token", error="forbidden"),
        post(route, 404, {**accepted, "service": "nope"}, *op, error="unknown_service"),
        post(route, 409, refused, *op, error=refusal),
        post(route, 413, b'{"service": "' + b"w" * MAX_BODY + b'"}', *op),
        post(route, 415, accepted, ("Content-Type", "text/plain"), OPERATOR),
        post(route, 500, accepted, *op, **fails, error="state_write_failed"),
        post(route, 503, accepted, *op, **unavailable, error="state_store_unavailable"),
    ]


def release_cases() -> list[Case]:
    """``POST /releases``: it changes no state, so no 404, 409 or store failures."""
    route, op = "/releases", (JSON, OPERATOR)
    ok = {"service": "web", "color": "green", "command": "migrate", "exit_code": 1}
    return [
        post(route, 200, ok, *op),
        post(route, 400, {**ok, "output_tail": [1]}, *op, error="bad_request"),
        post(route, 401, ok, JSON, error="unauthorized"),
        post(route, 403, ok, JSON, server="no_token", error="forbidden"),
        post(route, 413, b'{"service": "' + b"w" * MAX_BODY + b'"}', *op),
        post(route, 415, ok, ("Content-Type", "text/plain"), OPERATOR),
    ]


def maintenance_cases() -> list[Case]:
    """``POST /maintenance`` (nothing refuses it with 409: on twice is "unchanged") and
    the page, which answers every method with 503, or 404 for a path with no service."""
    route, op = "/maintenance", (JSON, OPERATOR)
    on = {"service": "web", "on": True, "retry_after": 5}
    fails: dict[str, Any] = {"commit_fails": StateFileError}
    unavailable: dict[str, Any] = {"commit_fails": StateStoreUnavailable}
    page = "/maintenance-page/{service}"
    html, json_accept = ("Accept", "text/html"), ("Accept", "application/json")
    return [
        post(route, 200, on, *op),
        post(route, 400, {**on, "retry_after": 0}, *op, error="bad_request"),
        post(route, 401, on, JSON, error="unauthorized"),
        post(route, 403, on, JSON, server="no_token", error="forbidden"),
        post(route, 404, {**on, "service": "nope"}, *op, error="unknown_service"),
        post(route, 413, b'{"service": "' + b"w" * MAX_BODY + b'"}', *op),
        post(route, 415, on, ("Content-Type", "text/plain"), OPERATOR),
        post(route, 500, on, *op, **fails, error="state_write_failed"),
        post(route, 503, on, *op, **unavailable, error="state_store_unavailable"),
        Case(page, "GET", 503, "/maintenance-page/web", (html,)),
        Case(page, "GET", 404, "/maintenance-page/"),
        Case(page, "POST", 503, "/maintenance-page/web", (json_accept,), b"x=1"),
        Case(page, "PUT", 503, "/maintenance-page/web", (json_accept,)),
        Case(page, "PATCH", 503, "/maintenance-page/web"),
        Case(page, "DELETE", 503, "/maintenance-page/web", (json_accept,)),
    ]


CASES: list[Case] = [
    get("/traefik", 200, None, TRAEFIK),
    get("/traefik", 401),
    Case("/traefik", "GET", 503, "/traefik", (TRAEFIK,), server="unsynced"),
    get("/traefik/applied/{probe}", 200, "/traefik/applied/{current}"),
    get("/traefik/applied/{probe}", 404, "/traefik/applied/0123456789abcdef01234567"),
    post("/switch", 504, {**WAIT_NOW, "service": "web"}, JSON, OPERATOR, error=NOT_APPLIED),
    post(
        "/rollback",
        504,
        {**WAIT_NOW, "service": "web"},
        JSON,
        OPERATOR,
        before=(("/switch", '{"service": "web"}'),),
        error=NOT_APPLIED,
    ),
    get("/status", 200, None, READER),
    get("/status", 401),
    get("/status/{service}", 200, "/status/web", READER),
    get("/status/{service}", 401, "/status/web"),
    get("/status/{service}", 404, "/status/nope", OPERATOR),
    *(case for route in MUTATIONS for case in mutation_cases(route)),
    *release_cases(),
    *maintenance_cases(),
    get("/history", 200, "/history?service=web", READER),
    get("/history", 400, "/history?color=blue", READER),
    get("/history", 401),
    get("/auth", 200, None, OPERATOR),
    get("/auth", 401, None, READER),
    Case("/auth", "GET", 403, "/auth", (OPERATOR,), server="no_token"),
    get("/healthz", 200),
    get("/readyz", 200),
    Case("/readyz", "GET", 503, "/readyz", server="unsynced"),
    get("/metrics", 200),
    get("/openapi.json", 200),
    get("/events", 200, None, READER),
    get("/events", 400, "/events?service=", READER),
    get("/events", 401),
    Case("/events", "GET", 503, "/events", (READER,), server="one_stream"),
    get("/", 200, None, READER),
    get("/", 401),
    get("/ui/services", 200, None, READER),
    get("/ui/services", 401),
    get("/ui/app.js", 200),
    get("/ui/style.css", 200),
    post("/ui/login", 200, {"token": READ}, JSON),
    post("/ui/login", 400, {"token": READ, "extra": 1}, JSON),
    post("/ui/login", 401, {"token": "guess"}, JSON),
    post("/ui/login", 413, b'{"token": "' + b"x" * MAX_BODY + b'"}', JSON),
    post("/ui/login", 415, {"token": READ}, ("Content-Type", "text/plain")),
    get("/ui/login.js", 200),
]


def documented() -> set[tuple[str, str, int]]:
    return {
        (route, method.upper(), int(status))
        for route, operations in SPEC["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    }


class FailingStore:
    """A state store whose every commit fails with ``error`` (nothing is written)."""

    def __init__(self, inner: Any, error: type[StateFileError]) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.version = inner.version
        self.error = error

    async def commit(self, state: State) -> str | None:
        raise self.error("the test's store refuses every commit")

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = self.inner.summary()
        return summary


def stream_head(port: int, request: HostileRequest) -> tuple[socket.socket, RawResponse]:
    """Open a stream and read its head (and a refusal's whole body); the caller closes it.

    A 200's body is the stream, which never ends: it is left unread (empty here).
    """
    lines = [f"{request.method} {request.target} HTTP/1.1", "Host: x"]
    lines += [f"{name}: {value}" for name, value in request.headers]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data and (chunk := sock.recv(65536)):
            data += chunk
        head = data.partition(b"\r\n\r\n")[0]
        if head.startswith(b"HTTP/1.1 200 "):  # chunked, unlike every other answer
            fields = (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:])
            return sock, RawResponse(200, {k.strip().lower(): v.strip() for k, _, v in fields})
        response = parse_response(data, head_only=True)
        length = int(response.headers.get("content-length", "0"))
        while len(data.partition(b"\r\n\r\n")[2]) < length and (chunk := sock.recv(65536)):
            data += chunk
        response = parse_response(data)
    except BaseException:
        sock.close()
        raise
    return sock, response


def run(case: Case, tmp_path: Path) -> RawResponse:
    """Start the case's server, do its ``before`` steps, send its request."""
    overrides: dict[str, Any] = {"read_token": READ}
    if case.server == "no_token":
        overrides["token"] = None
    if case.server == "one_stream":
        overrides["events_max_clients"] = 1
    app = build_app(hostile_settings(tmp_path, **overrides), watch_docker=False)
    with ThreadedApp(app) as server:
        controller = app[CONTROLLER]
        server.call(controller.replace_containers(observed()))
        if case.server != "unsynced":
            server.call(controller.mark_synced())
        for route, body in case.before:
            prepared = HostileRequest("POST", route, route, (JSON, OPERATOR), body.encode())
            assert 200 == send(server.port, prepared).status, (case, route)
        if case.commit_fails is not None:
            controller.store = FailingStore(controller.store, case.commit_fails)
        target = case.target.replace("{current}", controller.pollers.current_probe)
        request = HostileRequest(case.method, case.route, target, case.headers, case.body)
        if case.route not in STREAMS:
            return send(server.port, request)
        with contextlib.ExitStack() as streams:
            if case.server == "one_stream":
                first = HostileRequest("GET", "/events", "/events", (READER,))
                held, opened = stream_head(server.port, first)
                streams.callback(held.close)
                assert 200 == opened.status
            sock, response = stream_head(server.port, request)
            sock.close()
        return response


def test_the_table_covers_exactly_the_documented_responses() -> None:
    """Each documented (path, method, status) has a row, and no row claims another."""
    table = [(case.route, case.method, case.status) for case in CASES]
    assert len(table) == len(set(table)), "a response has two rows"
    assert documented() == set(table)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.method} {c.route} {c.status}" for c in CASES])
def test_every_documented_response_is_produced_and_matches(case: Case, tmp_path: Path) -> None:
    """The row's request gets the documented status, and the answer validates."""
    response = run(case, tmp_path)
    assert case.status == response.status, (case, response.body[:300])
    check_response(case.route, case.method, response)
    if case.error is not None:
        assert case.error == response.json()["error"], (case, response.body[:300])
