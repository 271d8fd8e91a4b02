"""The published OpenAPI document says what the server does.

The document must be valid OpenAPI 3.0, list exactly the routes the server
has, and every answer to generated requests must use a declared status code
and validate against the declared schema. For the POST endpoints the check
runs both ways: a body the schema accepts is never refused as malformed, and
a body the server acts on always matches the schema. The converse, that every
documented response is produced by some request, is tests/api/test_openapi_coverage.py.
"""

from __future__ import annotations

import collections
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate as validate_spec

from provider import openapi
from provider.api import CONTROLLER
from provider.core import canary as canaries
from provider.core.model import Color, Health, MarkKind
from provider.events import EventKind
from provider.openapi import SPEC
from provider.server import build_app
from provider.state_store import FileStateStore
from provider.swarm_state import SwarmStateStore
from tests.hostile_http import (
    ENDPOINTS,
    MAX_BODY,
    STREAMING,
    TOKEN,
    HostileRequest,
    RawResponse,
    ThreadedApp,
    hostile_requests,
    hostile_settings,
    observed,
    send,
    synced_server,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = 200
#: POST routes that need no operator token (the status page's sign-in).
OPEN_POSTS = {"/ui/login"}
#: Statuses any endpoint may answer that an OpenAPI operation does not list:
#: none. (405 and 404 for unknown paths belong to no operation.)


def validator(schema: dict[str, Any]) -> OAS30Validator:
    """A validator for ``schema`` that resolves ``#/components/...`` against the spec."""
    return OAS30Validator({**schema, "components": SPEC["components"]})


def operation(route: str, method: str) -> dict[str, Any]:
    op: dict[str, Any] = SPEC["paths"][route][method.lower()]
    return op


def check_response(route: str, method: str, response: RawResponse) -> None:
    """The status is declared for the operation and the body matches its schema."""
    responses = operation(route, method)["responses"]
    assert str(response.status) in responses, (route, method, response.status, response.body)
    declared = responses[str(response.status)]["content"]
    assert response.content_type in declared, (route, response.status, response.content_type)
    schema = declared[response.content_type]["schema"]
    body: Any = response.body.decode()
    if response.content_type == "application/json":
        body = json.loads(body)
    errors = [e.message for e in validator(schema).iter_errors(body)]
    assert [] == errors, (route, method, response.status, body)


def all_printable(value: Any) -> bool:
    if isinstance(value, str):
        return value.isprintable()
    if isinstance(value, dict):
        return all(all_printable(k) and all_printable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(all_printable(v) for v in value)
    return True


def request_body_verdict(route: str, request: HostileRequest) -> bool | None:
    """Whether the spec accepts the request's body; ``None`` if a guard decides first."""
    headers = dict(request.headers)
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
    needs_token = route not in OPEN_POSTS
    if (
        (needs_token and (scheme.lower(), token.strip()) != ("bearer", TOKEN))
        or ctype != "application/json"
        or request.body is None
        or len(request.body) > MAX_BODY
    ):
        return None
    try:
        doc = json.loads(request.body)
    except (ValueError, RecursionError):
        return False
    schema = operation(route, "POST")["requestBody"]["content"]["application/json"]["schema"]
    return validator(schema).is_valid(doc) and all_printable(doc)


def stop_canaries(server: ThreadedApp) -> None:
    """Abort a canary a generated request started, so its driver writes nothing later."""
    controller = server.app[CONTROLLER]
    for name in list(controller.state.canaries):
        if canaries.running(controller.state, name) is not None:
            server.call(controller.canary_event(name, canaries.OperatorAbort("test cleanup")))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedApp]:
    with synced_server(tmp_path_factory.mktemp("openapi")) as running:
        yield running


def test_document_is_valid_openapi_and_is_what_is_served(server: ThreadedApp) -> None:
    """The spec validates as OpenAPI 3.0 and GET /openapi.json serves exactly it."""
    validate_spec(SPEC)
    response = send(server.port, HostileRequest("GET", "/openapi.json", "/openapi.json"))
    assert 200 == response.status
    assert SPEC == response.json()
    check_response("/openapi.json", "GET", response)


def test_document_lists_exactly_the_routes(server: ThreadedApp) -> None:
    """Every (path, method) the router has is documented, and nothing else is."""
    served = {
        (resource.canonical, route.method.lower())
        for resource in server.app.router.resources()
        for route in resource
        if route.method != "HEAD"
    }
    documented = {(path, method) for path, ops in SPEC["paths"].items() for method in ops}
    assert documented == served
    assert set(ENDPOINTS) | set(STREAMING) == {path for path, _ in served}


def test_served_bytes_are_the_packaged_file_with_sorted_keys(server: ThreadedApp) -> None:
    """GET /openapi.json answers openapi.yaml as JSON with sorted keys, the same bytes each
    time (house style 5), and the wheel ships the file (package data)."""
    answers = [
        send(server.port, HostileRequest("GET", "/openapi.json", "/openapi.json")) for _ in range(2)
    ]
    assert [openapi.serialize(openapi.load())] * 2 == [answer.body for answer in answers]
    assert json.dumps(answers[0].json(), sort_keys=True).encode() == answers[0].body
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert openapi.RESOURCE in pyproject["tool"]["setuptools"]["package-data"]["provider"]
    assert (ROOT / "provider" / openapi.RESOURCE).is_file()


def test_enums_follow_the_code() -> None:
    """The document's enums that mirror a Python enum (or a store's kind) list its values."""
    schemas = SPEC["components"]["schemas"]
    mirrored = [
        (Color, schemas["SwitchRecord"]["properties"]["to"]),
        (Health, schemas["Container"]["properties"]["health"]),
        (MarkKind, schemas["ColorMark"]["properties"]["kind"]),
        (canaries.Phase, schemas["Canary"]["properties"]["phase"]),
        (canaries.Verdict, schemas["CanaryStep"]["properties"]["verdict"]),
        (EventKind, schemas["Event"]["properties"]["event"]),
    ]
    for kind, schema in mirrored:
        assert [member.value for member in kind] == schema["enum"], kind
    stores = [FileStateStore.kind, SwarmStateStore.kind]
    assert stores == schemas["StateFile"]["properties"]["store"]["enum"]


def test_undocumented_answers_fail_the_check() -> None:
    """check_response refuses a status the operation does not list, another content type,
    and a body its schema does not accept: what the API answers must be documented."""
    json_type = {"content-type": "application/json"}
    ok = RawResponse(200, json_type, b'{"status": "alive"}')
    check_response("/healthz", "GET", ok)
    wrong = [
        ("/healthz", RawResponse(418, json_type, b'{"error": "teapot", "detail": ""}')),
        ("/healthz", RawResponse(200, {"content-type": "text/plain"}, b"alive")),
        ("/healthz", RawResponse(200, json_type, b'{"status": "dead"}')),
        ("/auth", RawResponse(401, json_type, b'{"error": "unauthorized"}')),
    ]
    for route, response in wrong:
        with pytest.raises(AssertionError):
            check_response(route, "GET", response)


@pytest.mark.slow
@pytest.mark.parametrize("route", sorted(ENDPOINTS))
def test_answers_match_the_document(server: ThreadedApp, route: str) -> None:
    """Generated requests with the declared method get declared statuses and bodies."""
    method = ENDPOINTS[route]
    statuses: collections.Counter[int] = collections.Counter()
    state = server.app[CONTROLLER].settings.state_file

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(generated=hostile_requests(route))
    def run(generated: HostileRequest) -> None:
        request = HostileRequest(method, route, generated.target, generated.headers, generated.body)
        before = state.read_bytes()
        response = send(server.port, request)
        statuses[response.status] += 1
        check_response(route, method, response)
        if method != "POST":
            return
        verdict = request_body_verdict(route, request)
        if verdict is True:
            assert response.status not in (400, 413, 415), (request, response)
        if response.status == 200:
            assert verdict is True, (request, response)
        else:
            assert before == state.read_bytes()

    run()
    stop_canaries(server)
    assert sum(statuses.values()) >= EXAMPLES_PER_OPERATION


def test_unsynced_answers_match_the_document(tmp_path: Path) -> None:
    """Before the first sync: /traefik and /readyz answer their declared 503s."""
    app = build_app(hostile_settings(tmp_path, provider_token=None), watch_docker=False)
    with ThreadedApp(app) as running:
        for route in ("/traefik", "/readyz", "/status", "/healthz", "/history", "/metrics"):
            response = send(running.port, HostileRequest("GET", route, route))
            check_response(route, "GET", response)
            if route in ("/traefik", "/readyz"):
                assert 503 == response.status


def test_forbidden_without_token_matches_the_document(tmp_path: Path) -> None:
    """With no token configured, the POST endpoints answer a declared 403."""
    app = build_app(hostile_settings(tmp_path, token=None), watch_docker=False)
    with ThreadedApp(app) as running:
        running.call(app[CONTROLLER].replace_containers(observed()))
        running.call(app[CONTROLLER].mark_synced())
        for route in ("/switch", "/rollback", "/retire"):
            request = HostileRequest(
                "POST",
                route,
                route,
                (("Content-Type", "application/json"),),
                b'{"service": "web", "color": "green"}',
            )
            response = send(running.port, request)
            assert 403 == response.status
            check_response(route, "POST", response)
