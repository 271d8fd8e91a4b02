"""Maintenance mode for real: the provider process, the real Traefik, busybox colors.

On: once Traefik applied it, every public request gets the provider's 503 page with
``Retry-After``, while the preview header still reaches each color. Off: every request
after the first 200 is a 200 again. It survives a provider killed and restarted. Load
only to 127.0.0.1, bounded in count and time; every wait polls a signal, bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from provider.api import CONTROLLER
from provider.core.maintenance import SetMaintenance
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container
from tests.testbed.load import BackgroundLoad, Sample
from tests.testbed.ports import free_port
from tests.testbed.stack import Stack, StackFactory, body_of
from tests.testbed.traefik import TraefikFactory
from tests.traefik.test_traefik_accepts import ServerFactory, backends
from tests.waiting import wait_until

__all__ = ["backends"]  # a fixture shared with test_traefik_accepts.py

ON = {"service": "web", "on": True, "message": "Upgrading the database", "retry_after": 7}
OFF = {"service": "web", "on": False}
APPLY_S = 20.0  # bound on Traefik applying a change (poll 200 ms): a bound, not a measure


def started(stack_factory: StackFactory) -> Stack:
    """Blue serving, green running idle (no automatic promotion: the operator decides)."""
    stack = stack_factory.start(service="web", extra_args=("--no-auto-promote",))
    stack.provider.wait_ready()
    stack.backend("blue")
    stack.provider.wait_active("web", "blue")
    stack.backend("green")
    stack.provider.wait_routable("web", "green")
    stack.wait_serving("blue")
    return stack


def after_first(samples: Sequence[Sample], status: int, since: float) -> list[Sample]:
    """The samples that started after the first answer ``status`` (started at or after
    ``since``) ended: Traefik had applied the change before each of them started."""
    first = min(
        (s for s in samples if s.start >= since and s.status == status), key=lambda s: s.end
    )
    return [s for s in samples if s.start > first.end]


def test_on_turns_every_public_request_into_the_page_and_off_restores_it(
    stack_factory: StackFactory,
) -> None:
    """Under load: after the first 503, only 503s with Retry-After (the preview header
    reaches blue and green meanwhile); after off's first 200, only 200s from blue."""
    stack = started(stack_factory)
    with stack.load(concurrency=4, max_duration=120.0, max_requests=40_000) as load:
        load.wait_requests(20, timeout=10)
        on_at = time.monotonic()
        assert 200 == stack.provider.post("/maintenance", ON).status
        _wait_status_for(load, 503, on_at, hold=1.0)
        page = stack.traefik.request(host=stack.host, headers={"Accept": "application/json"})
        html = stack.traefik.request(host=stack.host, headers={"Accept": "text/html"})
        previews = (stack.preview("blue"), stack.preview("green"))
        off_at = time.monotonic()
        assert 200 == stack.provider.post("/maintenance", OFF).status
        _wait_status_for(load, 200, off_at, hold=1.0)
    samples = load.result.samples
    during = [s for s in after_first(samples, 503, on_at) if s.start < off_at]
    after = after_first(samples, 200, off_at)
    assert during and {503} == {s.status for s in during}, [s.describe() for s in during[:5]]
    assert [] == [s.describe() for s in after if not s.ok][:20]
    assert {body_of("blue")} == {s.body for s in after}
    assert (503, "7") == (page.status, page.headers.get("retry-after"))
    doc = {"error": "maintenance", "detail": ON["message"], "service": "web", "retry_after": 7}
    assert doc == json.loads(page.body)
    assert (503, "7") == (html.status, html.headers.get("retry-after"))
    assert "Upgrading the database" in html.body
    assert (body_of("blue"), body_of("green")) == previews


def _wait_status_for(load: BackgroundLoad, status: int, since: float, *, hold: float) -> None:
    """Until answers ``status`` have come for ``hold`` seconds after the first one that
    started at or after ``since`` (bounded by :data:`APPLY_S` plus ``hold``)."""

    def held(samples: Sequence[Sample]) -> bool:
        firsts = [s.end for s in samples if s.start >= since and s.status == status]
        return bool(firsts) and samples[-1].start > min(firsts) + hold

    load.wait_for(f"{status} for {hold}s", held, timeout=APPLY_S + hold)


def test_maintenance_survives_a_killed_provider(stack_factory: StackFactory) -> None:
    """Persisted before answered: a provider killed and started again still serves the
    page (and /status shows it); off then restores blue."""
    stack = started(stack_factory)
    assert 200 == stack.provider.post("/maintenance", ON).status
    stack.traefik.wait_response(status=503, host=stack.host, timeout=APPLY_S)
    stack.provider.restart(kill=True)
    stack.provider.wait_ready()
    assert ON["message"] == stack.provider.status("web")["maintenance"]["message"]
    answer = stack.traefik.request(host=stack.host)
    assert (503, "7") == (answer.status, answer.headers.get("retry-after"))
    assert 200 == stack.provider.post("/maintenance", OFF).status
    stack.wait_serving("blue", timeout=APPLY_S)
    reasons = [r["reason"] for r in stack.provider.history("web")]
    assert ["maintenance-on", "maintenance-off"] == [r for r in reasons if "maintenance" in r]
    wait_until(
        "no maintenance in /status", lambda: stack.provider.status("web")["maintenance"] is None, 5
    )


async def test_without_the_providers_url_traefik_answers_503_with_retry_after(
    aiohttp_server: ServerFactory,
    traefik_factory: TraefikFactory,
    backends: Callable[[str], int],
    tmp_path: Path,
) -> None:
    """Listening on every address and no ``--maintenance-url``: Traefik's own 503 (a load
    balancer without servers) carries the ``Retry-After`` of the ``headers`` middleware;
    the preview header still reaches green; off serves blue again."""
    blue, green = backends("blue"), backends("green")
    settings = Settings(state_file=tmp_path / "state.json", token="t")
    assert settings.options.maintenance_url is None
    app = build_app(settings, watch_docker=False)
    controller = app[CONTROLLER]
    await controller.replace_containers(
        [make_container("web", c, port=p, created=n) for n, (c, p) in enumerate(
            [("blue", blue), ("green", green)]
        )]
    )  # fmt: skip
    await controller.mark_synced()
    server = await aiohttp_server(app, host="127.0.0.1", port=free_port())
    endpoint = f"http://127.0.0.1:{server.port}/traefik"
    traefik = await asyncio.to_thread(traefik_factory.start, http_endpoint=endpoint)
    await asyncio.to_thread(traefik.wait_response, host="web", body="blue\n")
    await controller.set_maintenance(SetMaintenance("web", True, retry_after=9))
    answer = await asyncio.to_thread(traefik.wait_response, host="web", status=503, timeout=20)
    assert "9" == answer.headers.get("retry-after"), answer
    preview = await asyncio.to_thread(
        traefik.request, "/", host="web", headers={"X-Bluegreen-Color": "green"}
    )
    assert (200, "green\n") == (preview.status, preview.body)
    await controller.set_maintenance(SetMaintenance("web", False))
    back = await asyncio.to_thread(traefik.wait_response, host="web", body="blue\n", timeout=20)
    assert "retry-after" not in back.headers
