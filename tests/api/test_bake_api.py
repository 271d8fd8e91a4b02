"""``POST /bake`` through the HTTP API, ``/status``'s ``bake`` and the status page's line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from provider.api import CONTROLLER
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
AUTH = {"Authorization": "Bearer t"}


async def switched(aiohttp_client: ClientFactory, tmp_path: Path) -> TestClient[Any, Any]:
    """``web`` with blue and green ready, just switched to green by an operator."""
    app = build_app(Settings(state_file=tmp_path / "state.json", token="t"), watch_docker=False)
    await app[CONTROLLER].replace_containers(
        [make_container("web", "blue", port=8081), make_container("web", "green", port=8082)]
    )
    await app[CONTROLLER].mark_synced()
    client = await aiohttp_client(app)
    answer = await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)
    assert 200 == answer.status
    return client


async def test_a_bake_starts_and_shows_in_status_and_on_the_page(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """``POST /bake`` bakes the active color (interval capped at the duration); /status and
    the page show it running with the old color kept warm."""
    client = await switched(aiohttp_client, tmp_path)
    answer = await client.post(
        "/bake", json={"service": "web", "duration": "30s", "interval": "2m"}, headers=AUTH
    )
    assert 200 == answer.status
    bake = (await answer.json())["bake"]
    assert ("green", "blue", "running", 30.0, 30.0) == (
        bake["color"],
        bake["old"],
        bake["phase"],
        bake["duration"],
        bake["interval"],
    )
    status = await (await client.get("/status/web", headers=AUTH)).json()
    assert bake["started"] == status["bake"]["started"]
    html = await (await client.get("/")).text()
    assert "Baking green until" in html and "blue kept warm" in html


async def test_a_bake_needs_a_duration_and_a_switch_to_its_color(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """No duration: 400; the idle color: 409 bake_refused; nothing written."""
    client = await switched(aiohttp_client, tmp_path)
    missing = await client.post("/bake", json={"service": "web"}, headers=AUTH)
    idle = await client.post(
        "/bake", json={"service": "web", "duration": 10, "color": "blue"}, headers=AUTH
    )
    assert (400, 409) == (missing.status, idle.status)
    assert "bake_refused" == (await idle.json())["error"]
    status = await (await client.get("/status/web", headers=AUTH)).json()
    assert status["bake"] is None
