"""The rendered config fed to the real Traefik binary: shapes accepted, traffic flows.

Backends are real busybox httpd processes on 127.0.0.1; the provider is the real
aiohttp app, fed normalized observations (the watcher's tier is tested elsewhere);
Traefik polls it through its HTTP provider.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from provider.api import CONTROLLER
from provider.core.model import Color, Health
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container
from tests.testbed.ports import free_port
from tests.testbed.tools import require
from tests.testbed.traefik import TraefikFactory

pytestmark = pytest.mark.traefik

ServerFactory = Callable[..., Awaitable[TestServer]]
TOKEN = "t"


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """Start busybox httpd processes answering their color; stop them by PID."""
    busybox = require("busybox")
    procs: list[subprocess.Popen[bytes]] = []

    def start(color: str) -> int:
        port = free_port()
        root = tmp_path / f"www-{port}"
        root.mkdir()
        (root / "index.html").write_text(f"{color}\n")
        (root / "api").mkdir()
        (root / "api" / "index.html").write_text(f"{color}\n")
        procs.append(
            subprocess.Popen(
                [busybox, "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(root)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        return port

    try:
        yield start
    finally:
        for proc in procs:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
    assert shutil.which("busybox")


async def test_real_traefik_routes_the_rendered_config(
    aiohttp_server: ServerFactory,
    traefik_factory: TraefikFactory,
    backends: Callable[[str], int],
    tmp_path: Path,
) -> None:
    """Main router → active color; preview header → either; switch moves traffic; an
    active color without servers answers 503, not 404."""
    blue, green = backends("blue"), backends("green")
    settings = Settings(state_file=tmp_path / "state.json", token=TOKEN)
    app: web.Application = build_app(settings, watch_docker=False)
    controller = app[CONTROLLER]
    blue_c = make_container(
        "web", "blue", port=blue, created=1.0, extra={"bluegreen.middlewares": "strip@http"}
    )
    green_c = make_container("web", "green", port=green, created=2.0)
    await controller.replace_containers([blue_c, green_c])
    await controller.mark_synced()
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    endpoint = f"http://127.0.0.1:{server.port}/traefik"

    traefik = await asyncio.to_thread(traefik_factory.start, http_endpoint=endpoint)

    def get(headers: dict[str, str] | None = None) -> Any:
        return traefik.request("/", host="web", headers=headers)

    # The middleware does not exist: Traefik disables that router, proving it reads the
    # field; drop it and the router is enabled.
    disabled = await asyncio.to_thread(traefik.wait_router, "web@http", 10.0, "disabled")
    assert "strip@http" in str(disabled.get("error"))
    await controller.replace_containers(
        [make_container("web", "blue", port=blue, created=1.0), green_c]
    )
    await asyncio.to_thread(traefik.wait_response, host="web", body="blue\n")
    assert (await asyncio.to_thread(get, {"X-Bluegreen-Color": "green"})).body == "green\n"
    assert (await asyncio.to_thread(get, {"X-Bluegreen-Color": "blue"})).body == "blue\n"

    await controller.switch("web", None)
    await asyncio.to_thread(traefik.wait_response, host="web", body="green\n")
    assert (await asyncio.to_thread(get, {"X-Bluegreen-Color": "blue"})).body == "blue\n"
    for name in ("web@http", "web-preview-blue@http", "web-preview-green@http"):
        assert traefik.router(name)["status"] == "enabled"
    for name in ("web@http", "web-blue@http", "web-green@http"):
        assert traefik.service(name)["status"] == "enabled"

    # Green loses its only container's health: the router stays, Traefik answers 503.
    sick = make_container("web", "green", port=green, created=2.0, health=Health.UNHEALTHY)
    await controller.replace_containers([make_container("web", "blue", port=blue), sick])
    result = await asyncio.to_thread(traefik.wait_response, host="web", status=503)
    assert result.status == 503
    assert "Error" not in traefik.log_text().split("web-green")[-1][:0]


async def test_tls_entrypoints_and_certresolver_shapes_are_accepted(
    aiohttp_server: ServerFactory,
    traefik_factory: TraefikFactory,
    backends: Callable[[str], int],
    tmp_path: Path,
) -> None:
    """TLS, a cert resolver name, extra entrypoints and rules with paths parse in Traefik."""
    port = backends("blue")
    app = build_app(Settings(state_file=tmp_path / "s.json"), watch_docker=False)
    controller = app[CONTROLLER]
    await controller.replace_containers(
        [
            make_container("web", "blue", port=port),
            make_container(
                "api",
                "blue",
                port=port,
                extra={
                    "bluegreen.rule": "Host(`api`) && PathPrefix(`/v1`)",
                    "bluegreen.tls": "true",
                },
            ),
        ]
    )
    await controller.mark_synced()
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    traefik = await asyncio.to_thread(
        traefik_factory.start, http_endpoint=f"http://127.0.0.1:{server.port}/traefik"
    )
    api_router = await asyncio.to_thread(traefik.wait_router, "api@http")
    assert {"web"} == set(api_router["entryPoints"])
    assert "tls" in api_router
    await asyncio.to_thread(traefik.wait_response, host="web", body="blue\n")
    log = traefik.log_text()
    assert "cannot decode configuration data" not in log
    assert "field not found" not in log


#: Issue 9, defect 4: passed the old check; its preview router matched every request.
HIJACK = 'Host("\\"")) || PathPrefix(`/`) || (Host("\\"")'


async def test_a_hijacking_rule_cannot_take_another_services_traffic(
    aiohttp_server: ServerFactory,
    traefik_factory: TraefikFactory,
    backends: Callable[[str], int],
    tmp_path: Path,
) -> None:
    """The rule from the issue is a label error of ``evil`` alone: through the real Traefik,
    ``Host: shop`` reaches shop with and without the preview header, never evil."""
    shop, evil = backends("shop"), backends("evil")
    app = build_app(Settings(state_file=tmp_path / "s.json"), watch_docker=False)
    controller = app[CONTROLLER]
    await controller.replace_containers(
        [
            make_container("shop", "blue", port=shop),
            *(
                make_container("evil", color, port=evil, extra={"bluegreen.rule": HIJACK})
                for color in ("blue", "green")
            ),
        ]
    )
    await controller.mark_synced()
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    traefik = await asyncio.to_thread(
        traefik_factory.start, http_endpoint=f"http://127.0.0.1:{server.port}/traefik"
    )
    await asyncio.to_thread(traefik.wait_router, "shop@http")
    for headers in ({}, {"X-Bluegreen-Color": "blue"}, {"X-Bluegreen-Color": "green"}):
        answer = await asyncio.to_thread(traefik.request, host="shop", headers=headers)
        assert (200, "shop\n") == (answer.status, answer.body), headers
    assert 404 == (await asyncio.to_thread(traefik.request, host="other")).status
    assert "evil" not in controller.body.decode()
    assert "position 11" in controller.observation.services["evil"].errors[0]


async def test_preview_routers_keep_a_path_split_between_services(
    aiohttp_server: ServerFactory,
    traefik_factory: TraefikFactory,
    backends: Callable[[str], int],
    tmp_path: Path,
) -> None:
    """Two services share a host, split by ``PathPrefix``: the preview header reaches each
    service's color on its own paths (equal preview priorities made it a coin toss).

    Three such hosts, so a tie would lose at least one of six toss-ups almost surely."""
    app = build_app(Settings(state_file=tmp_path / "s.json"), watch_docker=False)
    controller = app[CONTROLLER]
    hosts = ("shop-1", "shop-2", "shop-3")
    containers = []
    for host in hosts:
        for color in Color:
            containers += [
                make_container(
                    f"{host}-site",
                    color,
                    port=backends(f"{host}-site-{color}"),
                    extra={"bluegreen.rule": f"Host(`{host}`)"},
                ),
                make_container(
                    f"{host}-api",
                    color,
                    port=backends(f"{host}-api-{color}"),
                    extra={"bluegreen.rule": f"Host(`{host}`) && PathPrefix(`/api`)"},
                ),
            ]
    await controller.replace_containers(containers)
    await controller.mark_synced()
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    traefik = await asyncio.to_thread(
        traefik_factory.start, http_endpoint=f"http://127.0.0.1:{server.port}/traefik"
    )
    await asyncio.to_thread(traefik.wait_router, "shop-3-site-preview-green@http")
    await asyncio.to_thread(traefik.wait_response, host="shop-3", body="shop-3-site-blue\n")
    expected, actual = [], []
    for host in hosts:
        for color in Color:
            for path, service in (("/api/index.html", "api"), ("/index.html", "site")):
                answer = await asyncio.to_thread(
                    traefik.request, path, host=host, headers={"X-Bluegreen-Color": color}
                )
                expected.append((host, path, color, f"{host}-{service}-{color}\n"))
                actual.append((host, path, color, answer.body))
    assert expected == actual
