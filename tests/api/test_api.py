"""The HTTP API through pytest-aiohttp's client: every status code, concurrency, restart."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from provider import store
from provider.api import CONTROLLER, create_app
from provider.controller import Controller
from provider.core.applied import PROBE_NAME
from provider.core.model import Color, Health
from provider.errors import StateFileError
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"state_file": tmp_path / "state.json", "token": TOKEN}
    values.update(overrides)
    return Settings(**values)


async def started(
    aiohttp_client: ClientFactory,
    settings: Settings,
    containers: list[Any] | None = None,
    *,
    sync: bool = True,
) -> TestClient[Any, Any]:
    app = build_app(settings, watch_docker=False)
    controller = app[CONTROLLER]
    if containers is not None:
        await controller.replace_containers(containers)
    if sync:
        await controller.mark_synced()
    return await aiohttp_client(app)


def blue_and_green(green_health: Health = Health.HEALTHY) -> list[Any]:
    return [
        make_container("web", "blue", port=8081, created=1.0),
        make_container("web", "green", port=8082, created=2.0, health=green_health),
        make_container("api", "blue", port=9001, created=1.0),
    ]


async def test_traefik_answers_503_until_first_sync(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Before the first full sync /traefik is 503 (Traefik keeps its config), then 200."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green(), sync=False)
    resp = await client.get("/traefik")
    assert resp.status == 503
    assert (await resp.json())["error"] == "not_synced"
    assert (await client.get("/readyz")).status == 503
    await client.app[CONTROLLER].mark_synced()
    resp = await client.get("/traefik")
    assert resp.status == 200
    config = await resp.json()
    assert config["http"]["services"]["web"]["weighted"]["services"] == [
        {"name": "web-blue", "weight": 1}
    ]
    assert (await client.get("/readyz")).status == 200
    assert (await client.get("/healthz")).status == 200


async def test_traefik_body_is_cached_bytes(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Repeated polls get identical bytes; renders only count real changes."""
    # hold=0: five polls on one keep-alive connection, not held (tests/api/test_long_poll.py)
    client = await started(aiohttp_client, make_settings(tmp_path, hold=0), blue_and_green())
    bodies = {await (await client.get("/traefik")).read() for _ in range(5)}
    assert len(bodies) == 1
    controller = client.app[CONTROLLER]
    renders = controller.metrics.renders
    await controller.replace_containers(blue_and_green())  # same facts, new ids
    await controller.replace_containers(list(controller.containers.values()))
    assert renders + 1 >= controller.metrics.renders


async def test_provider_token_guards_traefik(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """With --provider-token, /traefik needs it (401 otherwise)."""
    client = await started(
        aiohttp_client, make_settings(tmp_path, provider_token="ptok"), blue_and_green()
    )
    assert (await client.get("/traefik")).status == 401
    assert (await client.get("/traefik", headers=AUTH)).status == 401
    ok = await client.get("/traefik", headers={"Authorization": "Bearer ptok"})
    assert ok.status == 200


async def test_switch_and_rollback(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Switch moves traffic, is recorded with who/why/when, and rollback goes back."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    resp = await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)
    assert resp.status == 200
    body = await resp.json()
    assert (body["active"], body["previous"], body["changed"]) == ("green", "blue", True)
    assert {"from": "blue", "to": "green", "reason": "manual", "actor": "api"}.items() <= body[
        "switch"
    ].items()
    config = await (await client.get("/traefik")).json()
    assert config["http"]["services"]["web"]["weighted"]["services"][0]["name"] == "web-green"

    again = await (
        await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)
    ).json()
    assert (again["changed"], again["switch"]) == (False, None)

    back = await client.post("/rollback", json={"service": "web"}, headers=AUTH)
    assert back.status == 200
    assert (await back.json())["active"] == "blue"
    history = (await (await client.get("/history?service=web")).json())["history"]
    assert [(h["from"], h["to"], h["reason"]) for h in history] == [
        ("blue", "green", "manual"),
        ("green", "blue", "rollback"),
    ]
    status = await (await client.get("/status/web")).json()
    assert (status["active"], status["previous"]) == ("blue", "green")
    assert status["last_switch"]["reason"] == "rollback"
    assert status["colors"]["green"]["routable"] == 1


async def test_switch_without_color_goes_to_the_other(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Omitting color switches to the idle color."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    body = await (await client.post("/switch", json={"service": "web"}, headers=AUTH)).json()
    assert body["active"] == "green"


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, {"service": "web"}, 401, "unauthorized"),
        ({"Authorization": "Bearer wrong"}, {"service": "web"}, 401, "unauthorized"),
        ({"Authorization": TOKEN}, {"service": "web"}, 401, "unauthorized"),
        (AUTH, {"service": "nope"}, 404, "unknown_service"),
        (AUTH, {"service": "web", "color": "red"}, 400, "bad_request"),
        (AUTH, {"service": 5}, 400, "bad_request"),
        (AUTH, {"service": "web", "force": "yes"}, 400, "bad_request"),
        (AUTH, {"service": "web", "extra": 1}, 400, "bad_request"),
        (AUTH, [], 400, "bad_request"),
        (AUTH, {"service": "web", "color": "green"}, 409, "switch_refused"),
    ],
)
async def test_switch_errors(
    aiohttp_client: ClientFactory,
    tmp_path: Path,
    headers: dict[str, str],
    body: Any,
    status: int,
    code: str,
) -> None:
    """Each failure has its status and a JSON {error, detail}; state stays unchanged."""
    client = await started(
        aiohttp_client, make_settings(tmp_path), blue_and_green(green_health=Health.STARTING)
    )
    before = (tmp_path / "state.json").read_bytes()
    resp = await client.post("/switch", json=body, headers=headers)
    assert status == resp.status
    doc = await resp.json()
    assert code == doc["error"]
    assert isinstance(doc["detail"], str) and doc["detail"]
    assert before == (tmp_path / "state.json").read_bytes()


async def test_force_switch_to_unready_color(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """force overrides the replicas check (409 without it)."""
    client = await started(
        aiohttp_client, make_settings(tmp_path), blue_and_green(green_health=Health.UNHEALTHY)
    )
    resp = await client.post("/switch", json={"service": "web", "force": True}, headers=AUTH)
    assert resp.status == 200
    assert (await resp.json())["active"] == "green"


async def test_malformed_bodies(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Not JSON: 400; wrong content type: 415; oversized: 413."""
    client = await started(aiohttp_client, make_settings(tmp_path, max_body=1024), blue_and_green())
    resp = await client.post(
        "/switch", data=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert (resp.status, (await resp.json())["error"]) == (400, "bad_request")
    resp = await client.post(
        "/switch", data=b"service=web", headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert (resp.status, (await resp.json())["error"]) == (415, "unsupported_media_type")
    big = json.dumps({"service": "web", "reason": "x" * 5000})
    resp = await client.post(
        "/switch", data=big, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert (resp.status, (await resp.json())["error"]) == (413, "payload_too_large")


async def test_no_token_configured_is_403(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Without a server token, mutations are refused with how to enable them."""
    client = await started(aiohttp_client, make_settings(tmp_path, token=None), blue_and_green())
    for path in ("/switch", "/rollback"):
        resp = await client.post(path, json={"service": "web"}, headers=AUTH)
        assert resp.status == 403
        assert "BLUEGREEN_TOKEN" in (await resp.json())["detail"]


async def test_rollback_without_previous_is_409(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A service that never switched has nothing to roll back to."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    resp = await client.post("/rollback", json={"service": "web"}, headers=AUTH)
    assert (resp.status, (await resp.json())["error"]) == (409, "switch_refused")


async def test_unknown_routes_and_methods_are_json(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """404 and 405 answer JSON too."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    resp = await client.get("/nope")
    assert (resp.status, (await resp.json())["error"]) == (404, "not_found")
    resp = await client.get("/switch")
    assert (resp.status, (await resp.json())["error"]) == (405, "method_not_allowed")
    resp = await client.get("/status/nope")
    assert (resp.status, (await resp.json())["error"]) == (404, "unknown_service")
    resp = await client.get("/history?color=blue")
    assert resp.status == 400


async def test_status_documents_every_key(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """/status carries the documented keys scripts rely on."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    doc = await (await client.get("/status")).json()
    assert {"api", "web"} == set(doc["services"])
    web_status = doc["services"]["web"]
    assert {
        "service",
        "active",
        "previous",
        "adopted",
        "colors",
        "last_switch",
        "marks",
        "pending_promotion",
        "pending_rollback",
        "errors",
        "warnings",
        "serving_last_good_config",
        "docker_connected",
        "canary",
        "traefik",
        "maintenance",
        "bake",
    } == set(web_status)
    assert {"applied", "color", "since", "lag_s"} == set(web_status["traefik"])
    container = web_status["colors"]["blue"]["containers"][0]
    assert {
        "id",
        "name",
        "state",
        "health",
        "health_output",
        "address",
        "created",
        "routable",
        "problem",
        "image",
        "image_id",
    } == set(container)
    assert web_status == await (await client.get("/status/web")).json()


async def test_metrics_text(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Prometheus text: switches by reason, active color, routable containers, requests."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    await client.post("/switch", json={"service": "web"}, headers=AUTH)
    text = await (await client.get("/metrics")).text()
    assert 'bluegreen_switches_total{reason="manual",service="web"} 1' in text
    assert 'bluegreen_active_color{color="green",service="web"} 1' in text
    assert 'bluegreen_routable_containers{color="blue",service="web"} 1' in text
    assert "bluegreen_renders_total" in text
    assert 'bluegreen_api_requests_total{method="POST",route="/switch",status="200"} 1' in text


async def test_concurrent_switches_are_serialized(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """100 concurrent /switch calls: consistent state, history == the changes made."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    colors = ["green" if i % 3 else "blue" for i in range(100)]
    responses = await asyncio.gather(
        *(client.post("/switch", json={"service": "web", "color": c}, headers=AUTH) for c in colors)
    )
    bodies = [await r.json() for r in responses]
    assert {200} == {r.status for r in responses}
    changes = [b["switch"] for b in bodies if b["changed"]]
    history = (await (await client.get("/history")).json())["history"]
    assert sorted(c["seq"] for c in changes) == [h["seq"] for h in history]
    for before, after in itertools.pairwise(history):
        assert before["to"] == after["from"]
    on_disk = store.load(tmp_path / "state.json")
    assert history[-1]["to"] == on_disk.services["web"].active.value
    assert len(history) == len(on_disk.history)
    status = await (await client.get("/status/web")).json()
    assert history[-1]["to"] == status["active"]


def without_probe(body: bytes) -> dict[str, Any]:
    """The config minus the probe router and service (see provider/core/applied.py)."""
    config: dict[str, Any] = json.loads(body)
    for kind in ("routers", "services"):
        config["http"][kind].pop(PROBE_NAME, None)
    return config


async def test_restart_serves_same_active_color(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A restarted provider reads the state file and serves the same colors."""
    settings = make_settings(tmp_path)
    client = await started(aiohttp_client, settings, blue_and_green())
    await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)
    body = without_probe(await (await client.get("/traefik")).read())
    await client.close()
    again = await started(aiohttp_client, settings, blue_and_green())
    # The same config, but for Traefik's probe: its URL names this test server's port.
    assert body == without_probe(await (await again.get("/traefik")).read())
    assert (await (await again.get("/status/web")).json())["active"] == "green"


def test_corrupt_state_file_stops_the_server(tmp_path: Path) -> None:
    """A corrupt state file is an error with a clear message, never a silent reset."""
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(StateFileError, match="not valid JSON"):
        build_app(make_settings(tmp_path), watch_docker=False)
    (tmp_path / "state.json").write_text('{"version": 1, "services": {"web": {}}}')
    with pytest.raises(StateFileError, match="unexpected shape"):
        build_app(make_settings(tmp_path), watch_docker=False)


async def test_bad_labels_keep_last_good_config(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A bad label on one service keeps that service's last good config; others move on."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    controller: Controller = client.app[CONTROLLER]
    good = json.loads(controller.body)
    bad = make_container("web", "green", port="eighty", created=3.0)
    api_green = make_container("api", "green", port=9002, created=3.0)
    await controller.update_containers([bad, api_green])
    served = json.loads(controller.body)
    assert good["http"]["services"]["web-blue"] == served["http"]["services"]["web-blue"]
    assert good["http"]["routers"]["web"] == served["http"]["routers"]["web"]
    assert served["http"]["services"]["api-green"] == {
        "loadBalancer": {
            "servers": [{"url": "http://127.0.0.1:9002"}],
            "serversTransport": "bluegreen",
        }
    }
    status = await (await client.get("/status/web")).json()
    assert status["serving_last_good_config"]
    assert "eighty" in status["errors"][0]
    assert (await (await client.get("/status/api")).json())["errors"] == []


async def test_no_state_adopts_routable_color(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """With no state, green-only routable means green active, and it is persisted."""
    client = await started(
        aiohttp_client,
        make_settings(tmp_path),
        [
            make_container("web", "blue", health=Health.UNHEALTHY),
            make_container("web", "green"),
        ],
    )
    assert (await (await client.get("/status/web")).json())["active"] == "green"
    assert store.load(tmp_path / "state.json").services["web"].active == Color.GREEN


def test_app_is_created_without_docker(tmp_path: Path) -> None:
    """create_app needs only a controller."""
    from provider.core.model import State

    app = create_app(Controller(make_settings(tmp_path), State()))
    assert isinstance(app[CONTROLLER], Controller)


async def test_retire_marks_an_idle_color_persisted_and_shown(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """POST /retire: 401 without the token, 404 unknown service, 409 for the active color,
    200 for the idle one, written to the state file before the answer and shown in /status;
    a switch to the color clears the mark."""
    settings = make_settings(tmp_path)
    client = await started(aiohttp_client, settings, blue_and_green())
    body = {"service": "web", "color": "green"}

    no_token = await client.post("/retire", json=body)
    unknown = await client.post("/retire", json={"service": "nope", "color": "green"}, headers=AUTH)
    active = await client.post("/retire", json={"service": "web", "color": "blue"}, headers=AUTH)
    no_color = await client.post("/retire", json={"service": "web"}, headers=AUTH)
    ok = await client.post("/retire", json=body, headers=AUTH)

    assert [401, 404, 409, 400, 200] == [
        r.status for r in (no_token, unknown, active, no_color, ok)
    ]
    assert "retire_refused" == (await active.json())["error"]
    answer = await ok.json()
    assert ("web", "green", "blue") == (answer["service"], answer["color"], answer["active"])
    assert {"green"} == set(answer["marks"])
    mark = answer["marks"]["green"]
    assert ("retiring", "retired by api") == (mark["kind"], mark["reason"])
    on_disk = json.loads(settings.state_file.read_text())["services"]["web"]["marks"]
    assert answer["marks"] == on_disk
    assert answer["marks"] == (await (await client.get("/status/web")).json())["marks"]
    assert [] == (await (await client.get("/history")).json())["history"]

    await client.post("/switch", json=body, headers=AUTH)
    assert {} == (await (await client.get("/status/web")).json())["marks"]


async def test_rollback_marks_the_color_it_leaves_and_checks_the_expected_color(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """POST /rollback marks the color it leaves rejected; with "color" it refuses (409,
    nothing changed) when the previous color is another one."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)

    wrong = await client.post("/rollback", json={"service": "web", "color": "green"}, headers=AUTH)
    right = await client.post("/rollback", json={"service": "web", "color": "blue"}, headers=AUTH)

    assert (409, "switch_refused") == (wrong.status, (await wrong.json())["error"])
    assert (200, "blue") == (right.status, (await right.json())["active"])
    marks = (await (await client.get("/status/web")).json())["marks"]
    assert ("rejected", "rollback") == (marks["green"]["kind"], marks["green"]["reason"])


async def test_retiring_a_color_of_a_never_adopted_service_serves_the_other_at_once(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A service whose only container is still starting is not adopted; retiring that color
    adopts the service with the other color active, and /traefik follows before the answer
    (found by the state machine: the body kept routing to the retiring color)."""
    starting = make_container("web", "blue", port=8081, health=Health.STARTING)
    client = await started(aiohttp_client, make_settings(tmp_path, hold=0), [starting])
    before = await (await client.get("/traefik")).json()

    retired = await client.post("/retire", json={"service": "web", "color": "blue"}, headers=AUTH)
    after = await (await client.get("/traefik")).json()

    assert 200 == retired.status
    assert [{"name": "web-blue", "weight": 1}] == before["http"]["services"]["web"]["weighted"][
        "services"
    ]
    assert [{"name": "web-green", "weight": 1}] == after["http"]["services"]["web"]["weighted"][
        "services"
    ]


def test_every_error_code_is_declared_once() -> None:
    """Each code the API can answer is one constant, one edge error's ``code`` or one
    refusal's entry in ``REFUSALS``, never two; every refusal the core can raise has its
    answer; the state file's and the settings' errors are part of the one hierarchy."""
    from provider import errors
    from provider.core import refusals

    def subclasses(cls: type[errors.BlueGreenError]) -> list[type[errors.BlueGreenError]]:
        found = [cls]
        for sub in cls.__subclasses__():
            found += subclasses(sub)
        return found

    edge = subclasses(errors.EdgeError)
    constants = [errors.NOT_FOUND, errors.METHOD_NOT_ALLOWED, errors.PAYLOAD_TOO_LARGE]
    codes = [cls.code for cls in edge] + [code for _, code in errors.REFUSALS.values()]
    codes += constants
    assert sorted(set(codes)) == sorted(codes)
    assert {errors.StateFileError, errors.SettingsError} <= set(edge)
    assert (500, "state_write_failed") == (errors.StateFileError.status, errors.StateFileError.code)
    assert set(subclasses(refusals.Refused)) - {refusals.Refused} == set(errors.REFUSALS)
    assert {errors.EdgeError, errors.Refused} == set(errors.BlueGreenError.__subclasses__())


def test_refusals_answer_their_status_and_code() -> None:
    """The core's refusals carry no status: the one table gives the answers they had as
    HTTP errors, and the edge's names (``BadRequest``) still denote them."""
    from provider import errors

    expected = {
        "BadRequest": (400, "bad_request"),
        "UnknownService": (404, "unknown_service"),
        "SwitchRefused": (409, "switch_refused"),
        "RetireRefused": (409, "retire_refused"),
        "CanaryRefused": (409, "canary_refused"),
        "CanaryNotRunning": (409, "canary_not_running"),
        "Unauthorized": (401, "unauthorized"),
        "StateStoreUnavailable": (503, "state_store_unavailable"),
    }
    actual = {name: errors.answer_for(getattr(errors, name)("x")) for name in expected}
    assert expected == actual
    assert not any(hasattr(cls, "status") for cls in errors.REFUSALS)
    assert errors.BadRequest is errors.BadCommand
