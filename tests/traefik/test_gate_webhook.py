"""The gate webhook for real: a ``bluegreen serve`` subprocess with ``--gate-url`` asks a small
aiohttp approver (on 127.0.0.1, in a thread of the test) after green's smoke checks passed
through the real Traefik. A rejection blocks the promotion (no public request reaches green,
the deploy exits 1 naming the gate); an approval lets it through. Every request the approver
gets is verified with the ``standardwebhooks`` library and names the candidate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import standardwebhooks
from aiohttp import web

from tests.testbed.compose import ComposeFactory
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.stack import StackFactory, body_of
from tests.traefik.test_deploy import V2_IMAGE, app_images, compose_factory, explain
from tests.traefik.test_gates import gated_app, smoke_gate_lines

__all__ = ["app_images", "compose_factory"]  # fixtures shared with test_deploy.py

SECRET = "whsec_" + "Z2F0ZS1zZWNyZXQtZm9yLXRoZS10ZXN0cw=="


@dataclass
class Approver:
    """An aiohttp server answering every POST with ``status``; keeps what it got and
    whether the library verified it."""

    status: int
    text: str = ""
    got: list[tuple[dict[str, Any] | None, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        headers, body = dict(request.headers), await request.read()
        try:
            verified = standardwebhooks.Webhook(SECRET).verify(body, headers)
        except standardwebhooks.webhooks.WebhookVerificationError:
            verified = None
        self.got.append((verified, headers))
        return web.Response(status=self.status, text=self.text)


@contextlib.contextmanager
def approver_running(approver: Approver) -> Iterator[Approver]:
    """Serve ``approver`` on 127.0.0.1 (a port the server binds itself) in a thread."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    app = web.Application()
    app.router.add_post("/gate", approver.handle)
    runner = web.AppRunner(app)

    async def begin() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        approver.url = f"http://127.0.0.1:{port}/gate"
        ready.set()

    thread = threading.Thread(target=loop.run_forever, name="approver", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(begin(), loop).result(timeout=10)
    assert ready.is_set()
    try:
        yield approver
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


def _app(
    approver: Approver,
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    image: str,
) -> Any:
    args = ("--gate-url", approver.url, "--gate-timeout", "10", "--webhook-secret", SECRET)
    return gated_app(
        stack_factory, compose_factory, containers, docker_daemon, image, provider_args=args
    )


def test_a_rejecting_gate_webhook_blocks_the_promotion(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """Green's smoke checks pass; the approver answers 409: the deploy exits 1 naming the
    gate and its answer, green is stopped, and under load every request is blue's."""
    with approver_running(Approver(409, "release freeze")) as approver:
        app = _app(approver, stack_factory, compose_factory, containers, docker_daemon,
                   app_images["v1"])  # fmt: skip
        with app.stack.load(concurrency=4, max_duration=120.0) as load:
            load.wait_requests(50, timeout=10)
            result = app.deploy("--image", V2_IMAGE, "--drain", "0.5")
            done = time.monotonic()
            load.wait_for(
                "1 s of traffic after the deploy",
                lambda samples: bool(samples) and samples[-1].start > done + 1.0,
                timeout=15,
            )
    summary = load.result.summary()
    assert 1 == result.returncode, explain(result)
    port = approver.url.split(":")[2].split("/")[0]
    named = "the gate before the flip failed: gate webhook rejected: "
    assert f"{named}http://127.0.0.1:{port}/… answered 409: 'release freeze'" in result.stderr, (
        explain(result)
    )
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    assert {body_of("blue")} == set(load.result.bodies()), summary.format()
    assert "blue" == app.stack.provider.active("web")
    assert ["exited"] == app.states("green")
    [(verified, headers)] = approver.got
    assert verified is not None, headers
    assert ("web", "green", [V2_IMAGE]) == (
        verified["service"],
        verified["color"],
        verified["images"],
    )
    assert app.stack.traefik.web_url == verified["preview"]["url"]
    gates = smoke_gate_lines(app)
    assert [(False, "webhook")] == [(g["passed"], g["by"]) for g in gates], gates


def test_an_approving_gate_webhook_lets_the_promotion_through(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """The approver answers 204 to a verified request: promoted, the deploy exits 0."""
    with approver_running(Approver(204)) as approver:
        app = _app(approver, stack_factory, compose_factory, containers, docker_daemon,
                   app_images["v1"])  # fmt: skip
        result = app.deploy("--image", V2_IMAGE, "--drain", "0.5")
    assert 0 == result.returncode, explain(result)
    assert "switched web: blue → green (auto-promote by watcher)" in result.stdout, explain(result)
    app.stack.wait_serving("green")
    [(verified, headers)] = approver.got
    assert verified is not None, headers
    assert headers["webhook-id"].startswith("gate-web-green-"), headers
    assert json.dumps(verified)  # the candidate as JSON
    gates = smoke_gate_lines(app)
    assert [True] == [g["passed"] for g in gates], gates
