"""Hostile input to every endpoint: never a 5xx, always a JSON error, state untouched.

Hypothesis generates at least 1,000 requests per endpoint (random JSON, wrong
types, huge and unicode strings, missing and extra fields, bad query strings,
wrong methods and content types, oversized and deeply nested bodies) and sends
them as raw HTTP to one in-process server. Every answer is checked against the
same invariants; rejected requests must leave the state file's bytes as they were.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from provider.api import CONTROLLER
from provider.core import canary as canaries
from tests.hostile_http import (
    ENDPOINTS,
    MAX_BODY,
    TOKEN,
    HostileRequest,
    RawResponse,
    ThreadedApp,
    hostile_requests,
    send,
    stray_requests,
    synced_server,
)

EXAMPLES_PER_ENDPOINT = 1000
STRAY_EXAMPLES = 300
MUTATING = {"/switch", "/rollback", "/retire"}
#: Mutating too, but a 200 needs a canary in the right phase: no coverage demanded.
CANARY_ROUTES = {"/canary", "/canary/abort", "/canary/promote"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedApp]:
    """One synced provider for the whole module, served from a background thread."""
    with synced_server(tmp_path_factory.mktemp("hostile")) as running:
        yield running


#: The status page's routes answer these instead of JSON.
PAGE_TYPES = {
    "/": "text/html",
    "/ui/services": "text/html",
    "/ui/app.js": "application/javascript",
    "/ui/login.js": "application/javascript",
    "/ui/style.css": "text/css",
}


def state_file(server: ThreadedApp) -> Path:
    return server.app[CONTROLLER].settings.state_file


#: The maintenance page answers 503 by design (docs/safe-releases.md#maintenance-mode).
MAINTENANCE_PAGE = "/maintenance-page/{service}"


def designed_503(request: HostileRequest, status: int) -> bool:
    """A 503 the route is for: the maintenance page's, not a failure."""
    return request.route == MAINTENANCE_PAGE and status == 503


def check_answer(request: HostileRequest, response: RawResponse) -> None:
    """The invariants every answer to every request must hold."""
    if designed_503(request, response.status):
        assert response.headers.get("retry-after", "").isdigit(), (request, response)
        assert b"Traceback" not in response.body, (request, response.body[:500])
        return
    assert response.status < 500, (request, response)
    assert b"Traceback" not in response.body, (request, response.body[:500])
    if request.method == "HEAD":
        return
    if response.status >= 400:
        assert "application/json" == response.content_type, (request, response)
        doc = response.json()
        assert {"error", "detail"} == set(doc), (request, doc)
        assert isinstance(doc["error"], str) and doc["error"]
        assert isinstance(doc["detail"], str) and doc["detail"]
    elif request.route == "/metrics":
        assert response.body.startswith(b"# HELP")
    elif request.route in PAGE_TYPES:
        assert PAGE_TYPES[request.route] == response.content_type, (request, response)
    else:
        assert "application/json" == response.content_type, (request, response)
        response.json()


def stop_canaries(server: ThreadedApp) -> None:
    """Abort a canary a generated request started, so its driver writes nothing later."""
    controller = server.app[CONTROLLER]
    for name in list(controller.state.canaries):
        if canaries.running(controller.state, name) is not None:
            server.call(controller.canary_event(name, canaries.OperatorAbort("test cleanup")))


def fire(server: ThreadedApp, request: HostileRequest) -> RawResponse:
    """Send one request and check the answer and the state file's bytes."""
    before = state_file(server).read_bytes()
    response = send(server.port, request)
    check_answer(request, response)
    mutating = MUTATING | CANARY_ROUTES
    mutated = request.route in mutating and request.method == "POST" and response.status == 200
    if not mutated:
        assert before == state_file(server).read_bytes(), (request, response)
    return response


@pytest.mark.slow
@pytest.mark.parametrize("route", sorted(ENDPOINTS))
def test_endpoint_survives_hostile_requests(server: ThreadedApp, route: str) -> None:
    """1,000+ generated requests per endpoint: no 5xx, no traceback, JSON errors, state kept."""
    statuses: collections.Counter[int] = collections.Counter()
    if route == "/rollback":
        # Give rollback a previous color, so generated rollbacks can succeed too.
        server.call(server.app[CONTROLLER].switch("web", force=True, reason="setup"))

    @settings(
        max_examples=EXAMPLES_PER_ENDPOINT,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=hostile_requests(route))
    def run(request: HostileRequest) -> None:
        statuses[fire(server, request).status] += 1

    run()
    stop_canaries(server)
    assert sum(statuses.values()) >= EXAMPLES_PER_ENDPOINT, statuses
    failures = [s for s in statuses if s >= 500 and not (route == MAINTENANCE_PAGE and s == 503)]
    assert [] == failures, statuses
    if route in MUTATING:
        # The generator reaches past the guards: auth, body checks and the switch itself.
        assert {200, 400, 401, 413, 415} <= set(statuses), statuses


def test_unknown_paths_survive_hostile_requests(server: ThreadedApp) -> None:
    """Paths the API does not have answer a JSON 404 (or 405), never a 5xx."""
    statuses: collections.Counter[int] = collections.Counter()

    @settings(
        max_examples=STRAY_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=stray_requests())
    def run(request: HostileRequest) -> None:
        statuses[fire(server, request).status] += 1

    run()
    assert sum(statuses.values()) >= STRAY_EXAMPLES
    assert {404, 405} >= set(statuses) - {200}, statuses


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"":' * 1500,
        b'{"service": ' + b"9" * 5000 + b"}",
        b'{"service": "web", "reason": "\\ud800"}',
        b'{"service": "web", "service": 1}',
        b'{"service": NaN}',
    ],
    ids=["deep-array", "deep-object", "huge-int", "lone-surrogate", "duplicate-key", "nan"],
)
@pytest.mark.parametrize("route", sorted(MUTATING))
def test_pathological_json_is_a_400(server: ThreadedApp, route: str, body: bytes) -> None:
    """Bodies that trip naive JSON handling are plain 400s (never a RecursionError 500)."""
    request = HostileRequest(
        "POST",
        route,
        route,
        (("Authorization", f"Bearer {TOKEN}"), ("Content-Type", "application/json")),
        body,
    )
    response = fire(server, request)
    assert (400, "bad_request") == (response.status, response.json()["error"])


def test_protocol_errors_are_4xx_without_traceback(server: ThreadedApp) -> None:
    """Requests aiohttp's parser refuses before the app sees them: 4xx, no traceback.

    These answers come from the HTTP layer (plain text, not the API's JSON): a
    request line or header past 8 KiB, or a method with illegal characters.
    """
    cases = [
        HostileRequest("GET", "(parser)", "/history?service=" + "s" * 9000),
        HostileRequest("GET", "(parser)", "/status", (("X-Junk", "j" * 9000),)),
        HostileRequest("G(E)T", "(parser)", "/status"),
        HostileRequest("BREW", "(parser)", "/status"),
    ]
    for request in cases:
        response = send(server.port, request)
        assert 400 <= response.status < 500, (request, response)
        assert b"Traceback" not in response.body


def test_every_error_code_is_reached(server: ThreadedApp) -> None:
    """A smoke table over the guards so a regression in any of them shows by name."""
    auth = ("Authorization", f"Bearer {TOKEN}")
    ctype = ("Content-Type", "application/json")
    table = [
        (HostileRequest("POST", "/switch", "/switch", (ctype,), b"{}"), 401),
        (HostileRequest("POST", "/switch", "/switch", (auth, ctype), b"{}"), 400),
        (HostileRequest("POST", "/switch", "/switch", (auth, ctype), b"x" * (MAX_BODY + 1)), 413),
        (
            HostileRequest(
                "POST", "/switch", "/switch", (auth, ("Content-Type", "text/plain")), b"{}"
            ),
            415,
        ),
        (HostileRequest("GET", "/switch", "/switch"), 405),
        (HostileRequest("GET", "/traefik", "/traefik"), 401),
        (HostileRequest("GET", "/status/{service}", "/status/nope"), 404),
        (HostileRequest("GET", "/history", "/history?color=blue"), 400),
    ]
    for request, expected in table:
        assert expected == fire(server, request).status, request


def test_hostile_run_leaves_a_consistent_history(server: ThreadedApp) -> None:
    """After everything above, history is an unbroken chain of switches per service.

    A canary's step and abort records are not switches (the active color stays).
    """
    history = server.app[CONTROLLER].history()
    not_switches = {canaries.REASON_STEP, canaries.REASON_ABORT}
    for name in ("web", "api"):
        chain = [h for h in history if h["service"] == name and h["reason"] not in not_switches]
        for before, after in itertools.pairwise(chain):
            assert before["to"] == after["from"]
