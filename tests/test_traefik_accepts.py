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
from provider.model import Health
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container
from tests.infra.ports import free_port
from tests.infra.tools import require
from tests.infra.traefik import TraefikFactory

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
    controller.mark_synced()
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
    controller.mark_synced()
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
