"""Label errors freeze a service's shape, never its liveness; stopped containers freeze nothing.

Table tests of the pure core (``routing.observe``, ``routing.keep_shape``,
``check_switch``) and API tests through the controller: a frozen service keeps
its last good rule, entrypoints, middlewares and TLS, while its servers follow
what Docker reports now (never a dead URL); a container that is not running only
reports its label problems.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from provider import store
from provider.api import CONTROLLER
from provider.controller import Controller
from provider.core import routing
from provider.core.model import Color, Container, Health
from provider.core.render import render
from provider.core.routing import Options, ServiceView, check_switch, observe
from provider.errors import SwitchRefused
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container

OPTIONS = Options()
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]

RULE_A = {"bluegreen.rule": "Host(`a.example`)", "bluegreen.middlewares": "auth@file"}
RULE_B = {"bluegreen.rule": "Host(`b.example`)"}


def bad_port(color: str = "green", state: str = "running", created: float = 50.0) -> Container:
    """A container of service web whose port label is a typo."""
    return make_container("web", color, port="eighty", state=state, created=created)


def web(port: int, color: str = "blue", **kwargs: Any) -> Container:
    kwargs.setdefault("extra", RULE_A)
    return make_container("web", color, port=port, **kwargs)


def view_of(containers: list[Container]) -> ServiceView:
    return observe(containers, OPTIONS).services["web"]


def served(view: ServiceView, active: Color = Color.BLUE) -> dict[str, Any]:
    """The rendered http section of one service."""
    config = render({"web": view}, {"web": active}, OPTIONS)
    http: dict[str, Any] = config.get("http", {})
    return http


def urls(http: dict[str, Any], color: str = "blue") -> list[str]:
    servers = http["services"][f"web-{color}"]["loadBalancer"]["servers"]
    return [s["url"] for s in servers]


@pytest.mark.parametrize(
    ("state", "freezes"),
    [
        ("running", True),
        ("exited", False),
        ("created", False),
        ("dead", False),
        ("restarting", False),
        ("paused", False),
    ],
)
def test_only_running_containers_label_errors_freeze(state: str, freezes: bool) -> None:
    """A label problem is an error (the service freezes) only on a running container;
    otherwise it is a warning that names the container and changes nothing."""
    view = view_of([web(8081), bad_port(state=state)])
    problems = view.errors if freezes else view.warnings
    assert (1, 0) == (len(problems), len(view.warnings if freezes else view.errors))
    assert "eighty" in problems[0]


@pytest.mark.parametrize(
    ("others", "errors", "warnings", "rule"),
    [
        # Running containers that disagree cannot define the router.
        ([("running", RULE_B)], 1, 0, None),
        # A stopped leftover of a failed deploy with other labels is ignored.
        ([("exited", RULE_B)], 0, 1, "Host(`a.example`)"),
        ([("created", RULE_B), ("exited", RULE_B)], 0, 1, "Host(`a.example`)"),
        ([("exited", RULE_A)], 0, 0, "Host(`a.example`)"),
    ],
)
def test_stopped_containers_do_not_make_a_color_disagree(
    others: list[tuple[str, dict[str, str]]], errors: int, warnings: int, rule: str | None
) -> None:
    """Only running containers of one color must agree on their labels; a stopped one
    that differs is reported, and the running ones' route stands."""
    containers = [web(8081, created=1.0)] + [
        make_container("web", "blue", port=8090 + i, state=state, extra=extra, created=2.0 + i)
        for i, (state, extra) in enumerate(others)
    ]
    view = view_of(containers)
    blue = view.color(Color.BLUE).route
    assert (errors, warnings, rule) == (
        len(view.errors),
        len(view.warnings),
        blue.rule if blue else None,
    )


def test_color_with_only_stopped_containers_takes_the_newest_route() -> None:
    """With no running container, a color's route is its newest container's (a warning
    says they disagree): a stopped color never puts its service in error."""
    view = view_of(
        [
            web(8081),
            make_container("web", "green", port=8082, state="exited", extra=RULE_B, created=1.0),
            make_container("web", "green", port=8083, state="exited", extra=RULE_A, created=2.0),
        ]
    )
    green = view.color(Color.GREEN).route
    assert ((), "Host(`a.example`)") == (view.errors, green.rule if green else None)
    assert 1 == len(view.warnings)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Nothing changed but a bad container appeared: same servers.
        ([("a", Health.HEALTHY, "running")], ["http://127.0.0.1:8081"]),
        # The old server died: it is dropped, not served.
        ([("a", Health.HEALTHY, "exited")], []),
        # The old server turned unhealthy: dropped.
        ([("a", Health.UNHEALTHY, "running")], []),
        # A healthy replacement with good labels joins; the dead one goes.
        (
            [("a", Health.HEALTHY, "exited"), ("c", Health.HEALTHY, "running")],
            ["http://127.0.0.1:8083"],
        ),
        # A replacement still starting does not take traffic yet.
        ([("a", Health.HEALTHY, "exited"), ("c", Health.STARTING, "running")], []),
        # Both: the survivor and the newcomer.
        (
            [("a", Health.HEALTHY, "running"), ("c", Health.HEALTHY, "running")],
            ["http://127.0.0.1:8081", "http://127.0.0.1:8083"],
        ),
    ],
)
def test_frozen_service_keeps_its_shape_and_follows_liveness(
    now: list[tuple[str, Health, str]], expected: list[str]
) -> None:
    """A service in error keeps its last good rule, entrypoints, middlewares and TLS,
    but its servers are those routable now: never a dead URL."""
    ports = {"a": 8081, "c": 8083}
    good = view_of([web(8081, extra={**RULE_A, "bluegreen.tls": "true"})])
    current = view_of(
        [web(ports[key], health=health, state=state, extra=RULE_B) for key, health, state in now]
        + [bad_port(color="blue")]
    )
    assert current.errors
    frozen = routing.keep_shape(good, current)
    http = served(frozen)
    assert expected == urls(http)
    assert served(good)["routers"] == http["routers"]
    assert current.errors == frozen.errors


def test_frozen_service_shows_a_new_color_without_a_router_of_its_own() -> None:
    """A color that appeared after the freeze gets its healthy servers (reachable once
    switched to) but no preview router, whose rule its labels cannot be trusted for."""
    good = view_of([web(8081)])
    current = view_of([web(8081), web(8082, color="green"), bad_port(color="green")])
    http = served(routing.keep_shape(good, current))
    assert ["http://127.0.0.1:8082"] == urls(http, "green")
    assert sorted(served(good)["routers"]) == sorted(http["routers"])


def test_check_switch_refuses_a_service_with_label_errors() -> None:
    """A manual switch of a service with label errors is refused even to a ready color;
    force overrides it."""
    view = view_of([web(8081), web(8082, color="green"), bad_port(color="green")])
    assert view.color(Color.GREEN).ready
    with pytest.raises(SwitchRefused, match="label errors"):
        check_switch(view, Color.GREEN, force=False)
    check_switch(view, Color.GREEN, force=True)


# -- through the controller and the API ---------------------------------------------------


async def client_for(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    app = build_app(Settings(state_file=tmp_path / "state.json", token=TOKEN), watch_docker=False)
    return await aiohttp_client(app)


def body_of(controller: Controller) -> dict[str, Any]:
    http: dict[str, Any] = json.loads(controller.body)["http"]
    return http


async def test_stopped_bad_container_does_not_freeze_the_service(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """The leftover of a failed deploy (a stopped green with a typo'd label) is a warning
    in /status; blue's replacement is served and no last good config is used."""
    client = await client_for(aiohttp_client, tmp_path)
    controller: Controller = client.app[CONTROLLER]
    await controller.replace_containers([web(8081, created=1.0), bad_port(state="exited")])
    await controller.mark_synced()
    await controller.replace_containers([web(8083, created=3.0), bad_port(state="exited")])
    assert ["http://127.0.0.1:8083"] == urls(body_of(controller))
    status = await (await client.get("/status/web")).json()
    assert ([], False) == (status["errors"], status["serving_last_good_config"])
    assert 1 == len(status["warnings"])
    assert "eighty" in status["warnings"][0]


async def test_frozen_service_drops_dead_servers_and_adds_replacements(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """With a running bad-label container, blue's dead server leaves the body and its
    healthy replacement joins, under the last good router."""
    client = await client_for(aiohttp_client, tmp_path)
    controller: Controller = client.app[CONTROLLER]
    first = web(8081, created=1.0)
    await controller.replace_containers([first])
    await controller.mark_synced()
    good = body_of(controller)
    bad = bad_port(state="running", created=2.0)
    await controller.update_containers([bad])
    dead = dataclasses.replace(first, state="exited")
    await controller.replace_containers([dead, bad, web(8085, created=4.0, extra=RULE_B)])
    now = body_of(controller)
    assert ["http://127.0.0.1:8085"] == urls(now)
    assert good["routers"] == now["routers"]
    status = await (await client.get("/status/web")).json()
    assert status["serving_last_good_config"]


async def test_manual_switch_of_a_service_with_label_errors_is_409(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """POST /switch without force is refused (409) while the service has label errors,
    even though the target color is ready; nothing changes."""
    client = await client_for(aiohttp_client, tmp_path)
    controller: Controller = client.app[CONTROLLER]
    await controller.replace_containers([web(8081), web(8082, color="green")])
    await controller.mark_synced()
    await controller.update_containers([bad_port(state="running")])
    resp = await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)
    assert 409 == resp.status
    doc = await resp.json()
    assert "switch_refused" == doc["error"]
    assert "label errors" in doc["detail"]
    assert Color.BLUE == store.load(tmp_path / "state.json").services["web"].active


async def test_service_with_label_errors_is_not_adopted(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A service first seen with label errors pins nothing in the state file (its
    observation cannot be trusted); once the bad container goes, it is adopted."""
    client = await client_for(aiohttp_client, tmp_path)
    controller: Controller = client.app[CONTROLLER]
    green = web(8082, color="green")
    await controller.replace_containers([green, bad_port(color="blue", state="running")])
    await controller.mark_synced()
    assert "web" not in store.load(tmp_path / "state.json").services
    assert False is (await (await client.get("/status/web")).json())["adopted"]
    await controller.replace_containers([green])
    assert Color.GREEN == store.load(tmp_path / "state.json").services["web"].active
