"""A held ``/traefik`` poll is answered once the body settles: a pair of changes is one push.

An auto-promotion changes the body twice within a few ms (the new color's
preview servers, then the switch).  Answering the held poll with the first
would leave the switch for Traefik's next tick; these tests pin that the
held poll carries both, and that a body that never settles is still pushed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from provider.api import CONTROLLER
from provider.core.model import Color
from provider.long_poll import LONG_POLL
from tests.api.test_long_poll import Poller, active_in, base_of, pollers, synced_app
from tests.factories import make_container
from tests.waiting import eventually

__all__ = ["pollers"]  # the fixture, used by name

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
WAIT_S = 10.0
BLUE = make_container("web", "blue", port=8081, created=1.0)
GREEN = make_container("web", "green", port=8082, created=2.0)


def green_servers(body: bytes) -> list[str]:
    services = json.loads(body)["http"]["services"]
    return [s["url"] for s in services["web-green"]["loadBalancer"]["servers"]]


async def test_preview_then_switch_reach_the_held_poll_together(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """New green servers, then the switch 5 ms later: the held poll gets both at once."""
    client = await aiohttp_client(synced_app(tmp_path))
    controller = client.app[CONTROLLER]
    traefik = pollers(base_of(client))
    await traefik.poll()
    held = asyncio.create_task(traefik.poll())
    await eventually("one held poll", lambda: client.app[LONG_POLL].held == 1, WAIT_S)

    newer = make_container("web", "green", port=8083, created=3.0)
    await controller.replace_containers([BLUE, GREEN, newer])
    await asyncio.sleep(0.005)
    await controller.switch("web", Color.GREEN, reason="test")
    status, body = await held

    assert (200, "web-green") == (status, active_in(body))
    assert "http://127.0.0.1:8083" in green_servers(body)
    assert controller.body == body


async def test_a_body_that_never_settles_is_still_pushed(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """Changes every 10 ms for seconds: the held poll is answered long before they stop."""
    client = await aiohttp_client(synced_app(tmp_path))
    controller = client.app[CONTROLLER]
    traefik = pollers(base_of(client))
    await traefik.poll()
    held = asyncio.create_task(traefik.poll())
    await eventually("one held poll", lambda: client.app[LONG_POLL].held == 1, WAIT_S)

    async def churn() -> None:
        for port in range(9000, 9400):
            extra = make_container("web", "green", port=port, created=3.0)
            await controller.replace_containers([BLUE, GREEN, extra])
            await asyncio.sleep(0.01)

    churning = asyncio.create_task(churn())
    try:
        status, body = await asyncio.wait_for(held, WAIT_S)
        assert 200 == status
        assert not churning.done()
        assert "http://127.0.0.1:9399" not in green_servers(body)
    finally:
        churning.cancel()
