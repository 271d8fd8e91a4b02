"""The gate webhook wired to a real Controller and AutoSwitcher, a real aiohttp approver on
127.0.0.1 (no Docker, no Traefik): a rejection blocks the promotion and says why, an approval
lets it through, a slow approver is a rejection at --gate-timeout; every request is signed
(verified with the ``standardwebhooks`` library) and carries the candidate. (Through the
real Traefik: tests/traefik/test_gate_webhook.py.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import standardwebhooks
from aiohttp import web
from aiohttp.test_utils import TestServer

from provider.auto_switch import AutoSwitcher, policy_from, smoke_settings
from provider.controller import Controller
from provider.core.model import Color, State
from provider.settings import Settings
from provider.smoke import SmokeGates
from tests.api.test_smoke_gates import _run_until, ctr
from tests.api.test_webhook_signing import PLAIN, library_secret

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Approver:
    """Answers ``status`` (with ``text``) after ``hold`` is set; records what it got."""

    status: int
    text: str = ""
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        await self.hold.wait()
        return web.Response(status=self.status, text=self.text)


async def start(aiohttp_server: ServerFactory, approver: Approver) -> Approver:
    app = web.Application()
    app.router.add_post("/gate/s3cret-path", approver.handle)
    server = await aiohttp_server(app)
    approver.url = f"http://127.0.0.1:{server.port}/gate/s3cret-path"
    return approver


async def gated(tmp_path: Path, url: str, **settings: Any) -> tuple[Controller, SmokeGates]:
    """Blue live, a new healthy green generation; the provider's --gate-url is ``url``."""
    options = Settings(
        state_file=tmp_path / "state.json",
        promote_after=0.0,
        gate_url=url,
        webhook_secret=PLAIN,
        **settings,
    )
    controller = Controller(options, State())
    await controller.replace_containers([ctr("b1", "blue", 0.0)])
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    await controller.update_containers([ctr("g1", "green", controller.daemon_now() + 1)])
    return controller, SmokeGates(controller, smoke_settings(controller.settings))


async def run(controller: Controller, gates: SmokeGates, done: Callable[[], bool]) -> None:
    switcher = AutoSwitcher(controller, policy_from(controller.settings), gates=gates)
    try:
        await _run_until(controller, switcher, done)
    finally:
        await gates.close()


def stage_is(controller: Controller, stage: str) -> Callable[[], bool]:
    def check() -> bool:
        pending = controller.status("web")["pending_promotion"]
        return pending is not None and pending["stage"] == stage

    return check


async def test_a_rejecting_gate_blocks_the_promotion_and_says_why(
    tmp_path: Path, aiohttp_server: ServerFactory
) -> None:
    """403 with a reason: gate_failed names the webhook (scheme, host, port only: the path
    may be a secret), the status and the first bytes; blue stays, nothing recorded."""
    approver = await start(aiohttp_server, Approver(403, "frozen until Monday"))
    approver.hold.set()
    controller, gates = await gated(tmp_path, approver.url)
    await run(controller, gates, stage_is(controller, "gate_failed"))

    pending = controller.status("web")["pending_promotion"]
    assert pending is not None
    port = approver.url.split(":")[2].split("/")[0]
    expected = f"gate webhook rejected: http://127.0.0.1:{port}/… answered 403: "
    assert expected + "'frozen until Monday'" == pending["waiting_for"]
    assert "s3cret" not in json.dumps(controller.status("web"))
    assert Color.BLUE is controller.state.services["web"].active
    assert () == tuple(controller.state.history)
    assert 1 == len(approver.requests)


async def test_an_approving_gate_lets_it_through_signed_with_the_candidate(
    tmp_path: Path, aiohttp_server: ServerFactory
) -> None:
    """204: promoted by the watcher. The request verifies with the library (the provider's
    --webhook-secret) and names the candidate: service, color, container ids, images."""
    approver = await start(aiohttp_server, Approver(204))
    approver.hold.set()
    controller, gates = await gated(tmp_path, approver.url)
    await run(controller, gates, lambda: controller.state.services["web"].active is Color.GREEN)

    [record] = controller.state.history
    assert ("auto-promote", "watcher") == (record.reason, record.actor)
    [(headers, body)] = approver.requests
    verified = standardwebhooks.Webhook(library_secret(PLAIN)).verify(body, headers)
    assert "web" == verified["service"]
    assert ("gate", "green", ["g1"]) == (
        verified["kind"],
        verified["color"],
        verified["containers"],
    )
    assert headers["webhook-id"].startswith("gate-web-green-")
    assert {"url": None, "host": "web", "header": {"X-Bluegreen-Color": "green"}} == verified[
        "preview"
    ]


async def test_a_slow_gate_rejects_at_its_timeout(
    tmp_path: Path, aiohttp_server: ServerFactory
) -> None:
    """No answer within --gate-timeout is a rejection, asked once (no retry)."""
    approver = await start(aiohttp_server, Approver(200))
    controller, gates = await gated(tmp_path, approver.url, gate_timeout=0.3)
    try:
        await run(controller, gates, stage_is(controller, "gate_failed"))
    finally:
        approver.hold.set()
    pending = controller.status("web")["pending_promotion"]
    assert pending is not None
    assert pending["waiting_for"].endswith("no answer within 0.3s"), pending
    assert Color.BLUE is controller.state.services["web"].active
    assert 1 == len(approver.requests)
