"""Whether Traefik applied a switch, as ``/status``, ``/metrics`` and ``"wait": "applied"`` say.

Each poller here is a loop of real HTTP requests on one keep-alive
connection, as Traefik's HTTP provider polls: a request, then the next one at
once.  A poller that stops is a Traefik that cannot reach the provider.
After each answer a poller also GETs the probe path the body names, as
Traefik's health checker does once it applied that body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from provider.core.applied import PROBE_NAME
from tests.api.test_long_poll import base_of, synced_app
from tests.waiting import eventually

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
AUTH = {"Authorization": "Bearer t"}
WAIT_S = 20.0


class LoopingPoller:
    """Polls ``/traefik`` in a loop until stopped, like one Traefik instance."""

    def __init__(self, base: str, query: str = "") -> None:
        self.session = aiohttp.ClientSession(base_url=base, connector=aiohttp.TCPConnector(limit=1))
        self.path = "/traefik" + query
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        """Poll; after each answer, check the probe it names, as Traefik's health check does."""
        while True:
            async with self.session.get(self.path) as response:
                body = json.loads(await response.read())
            probe = body["http"]["services"].get(PROBE_NAME)
            if probe is not None:
                path = probe["loadBalancer"]["healthCheck"]["path"]
                async with self.session.get(path) as answer:
                    await answer.read()

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
            await self.task
        await self.session.close()


@pytest.fixture
async def looping() -> AsyncIterator[Callable[..., LoopingPoller]]:
    made: list[LoopingPoller] = []

    def make(base: str, query: str = "") -> LoopingPoller:
        made.append(LoopingPoller(base, query))
        return made[-1]

    yield make
    for poller in made:
        await poller.stop()


async def traefik_of(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await client.get("/status/web")
    doc: dict[str, Any] = (await response.json())["traefik"]
    return doc


async def test_no_traefik_polling_is_null_and_a_wait_says_so(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Before any poll, applied is null; a switch that waits answers 504 naming the cause."""
    client = await aiohttp_client(synced_app(tmp_path, hold=0.5))
    expected = {"applied": None, "color": None, "since": None, "lag_s": None}
    assert expected == await traefik_of(client)
    assert [] == (await (await client.get("/status")).json())["traefik_pollers"]
    body = {"service": "web", "color": "green", "wait": "applied", "timeout": 0.2}
    response = await client.post("/switch", json=body, headers=AUTH)
    doc = await response.json()
    assert (504, "traefik_not_applied", "green") == (response.status, doc["error"], doc["active"])
    assert "no Traefik has polled" in doc["detail"]


async def test_applied_after_the_next_poll_and_a_switch_waits_for_it(
    aiohttp_client: ClientFactory, tmp_path: Path, looping: Callable[..., LoopingPoller]
) -> None:
    """A polling Traefik applies blue; a switch with wait answers 200 once green is applied."""
    client = await aiohttp_client(synced_app(tmp_path, hold=0.5))
    looping(base_of(client))

    async def applied_blue() -> bool:
        doc = await traefik_of(client)
        return bool(doc["applied"] and doc["color"] == "blue")

    await eventually("blue applied", applied_blue, WAIT_S)
    body = {"service": "web", "color": "green", "wait": "applied", "timeout": WAIT_S}
    response = await client.post("/switch", json=body, headers=AUTH)
    doc = await response.json()
    assert (200, True, "green") == (response.status, doc["traefik"]["applied"], doc["active"])
    assert "green" == doc["traefik"]["color"]
    assert doc["traefik"]["lag_s"] is not None
    metrics = await (await client.get("/metrics")).text()
    assert 'bluegreen_traefik_applied{service="web"} 1.0' in metrics
    assert 'bluegreen_traefik_pollers{live="true"} 1.0' in metrics


async def test_a_stalled_traefik_is_not_applied_and_the_wait_times_out(
    aiohttp_client: ClientFactory, tmp_path: Path, looping: Callable[..., LoopingPoller]
) -> None:
    """A Traefik that stopped polling never makes a new switch applied: 504 with its id."""
    client = await aiohttp_client(synced_app(tmp_path, hold=0.5))
    poller = looping(base_of(client), "?traefik=edge-a")

    async def applied() -> bool:
        return bool((await traefik_of(client))["applied"])

    await eventually("blue applied", applied, WAIT_S)
    await poller.stop()
    body = {"service": "web", "color": "green", "wait": "applied", "timeout": 1}
    response = await client.post("/switch", json=body, headers=AUTH)
    doc = await response.json()
    assert (504, False) == (response.status, doc["traefik"]["applied"])
    assert "edge-a" in doc["detail"]
    assert ["edge-a"] == [p["id"] for p in doc["traefik_pollers"]]


async def test_pollers_named_by_query_count_separately(
    aiohttp_client: ClientFactory, tmp_path: Path, looping: Callable[..., LoopingPoller]
) -> None:
    """Two Traefiks on one address, named ?traefik=a and ?traefik=b, are two pollers."""
    client = await aiohttp_client(synced_app(tmp_path, hold=0.5))
    looping(base_of(client), "?traefik=a")
    looping(base_of(client), "?traefik=b")

    async def both() -> list[str]:
        pollers = (await (await client.get("/status")).json())["traefik_pollers"]
        return sorted(p["id"] for p in pollers if p["live"] and p["applied_version"])

    assert ["a", "b"] == await eventually("two live pollers", both, WAIT_S)


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        ({"wait": "fetched"}, "takes only"),
        ({"timeout": 3}, "needs"),
        ({"wait": "applied", "timeout": 121}, "from 0 to 120"),
        ({"wait": "applied", "timeout": -1}, "from 0 to 120"),
    ],
)
async def test_wait_fields_are_checked_before_switching(
    aiohttp_client: ClientFactory, tmp_path: Path, extra: dict[str, Any], detail: str
) -> None:
    """A wrong wait or timeout is a 400 and nothing switches."""
    client = await aiohttp_client(synced_app(tmp_path, hold=0.5))
    response = await client.post("/switch", json={"service": "web", **extra}, headers=AUTH)
    doc = await response.json()
    assert (400, True) == (response.status, detail in doc["detail"])
    assert "blue" == (await (await client.get("/status/web")).json())["active"]
