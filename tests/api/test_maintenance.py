"""``POST /maintenance``, the page, ``/status``, ``/events``, ``/history`` and a restart,
against the provider in-process; and ``bluegreen maintenance`` / ``status`` against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient

from provider.api import CONTROLLER
from provider.core.render import maintenance_name
from provider.server import build_app
from provider.settings import Settings
from tests.api.test_cli import Provider, ServerFactory, start_provider, web_blue_green
from tests.api.test_events import AUTH, TOKEN, ClientFactory, started
from tests.factories import make_container
from tests.sse_client import next_event

URL = "http://127.0.0.1:9999"
ON = {"service": "web", "on": True, "message": "Migrating <b>now</b>", "retry_after": 12}


async def post(client: TestClient[Any, Any], body: dict[str, Any]) -> Any:
    resp = await client.post("/maintenance", json=body, headers=AUTH)
    assert 200 == resp.status, await resp.text()
    return await resp.json()


async def traefik(client: TestClient[Any, Any]) -> Any:
    return json.loads(client.app[CONTROLLER].body)


async def test_on_is_served_shown_announced_and_recorded(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """On: the public router targets the page, previews the colors; /status shows it; one
    ``maintenance`` event; one history record that is not a switch."""
    client = await started(aiohttp_client, tmp_path, maintenance_url=URL)
    async with client.get("/events?service=web", headers=AUTH) as stream:
        answer = await post(client, {**ON, "reason": "schema v2"})
        event = (await next_event(stream)).json
    assert (True, 12, "Migrating <b>now</b>") == (
        answer["changed"],
        answer["maintenance"]["retry_after"],
        answer["maintenance"]["message"],
    )
    assert ("maintenance", "off", "on", "schema v2", "api") == (
        event["event"],
        event["from"],
        event["to"],
        event["reason"],
        event["actor"],
    )
    assert {"message": "Migrating <b>now</b>", "retry_after": 12} == {
        k: event["detail"][k] for k in ("message", "retry_after")
    }
    routers = (await traefik(client))["http"]["routers"]
    assert maintenance_name("web") == routers["web"]["service"]
    assert ("web-blue", "web-green") == (
        routers["web-preview-blue"]["service"],
        routers["web-preview-green"]["service"],
    )
    assert "api" == routers["api"]["service"]  # the other service is untouched
    status = await (await client.get("/status/web")).json()
    assert answer["maintenance"] == status["maintenance"]
    metrics = await (await client.get("/metrics")).text()
    assert 'bluegreen_maintenance{service="web"} 1' in metrics
    history = (await (await client.get("/history?service=web")).json())["history"]
    assert ["maintenance-on"] == [r["reason"] for r in history]
    assert ("blue", "blue") == (history[0]["from"], history[0]["to"])


async def test_off_restores_the_exact_body_and_repeats_change_nothing(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Off serves the bytes served before on; on twice and off twice answer unchanged."""
    client = await started(aiohttp_client, tmp_path, maintenance_url=URL)
    before = client.app[CONTROLLER].body
    await post(client, ON)
    assert False is (await post(client, ON))["changed"]
    off = await post(client, {"service": "web", "on": False})
    assert (True, None) == (off["changed"], off["maintenance"])
    assert False is (await post(client, {"service": "web", "on": False}))["changed"]
    assert before == client.app[CONTROLLER].body


async def test_the_page_answers_503_with_retry_after_as_html_or_json(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Any method, no token: 503, ``Retry-After``, the message (escaped in HTML)."""
    client = await started(aiohttp_client, tmp_path, maintenance_url=URL, read_token="r")
    await post(client, ON)
    page = await client.get("/maintenance-page/web", headers={"Accept": "text/html,*/*"})
    assert (503, "12", "no-store") == (
        page.status,
        page.headers["Retry-After"],
        page.headers["Cache-Control"],
    )
    assert "Migrating &lt;b&gt;now&lt;/b&gt;" in await page.text()
    answer = await client.post("/maintenance-page/web", headers={"Accept": "application/json"})
    assert 503 == answer.status
    doc = {"error": "maintenance", "detail": ON["message"], "service": "web", "retry_after": 12}
    assert doc == await answer.json()


async def test_maintenance_survives_a_restart(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Persisted before it answers: a provider started on the same state file serves it."""
    client = await started(aiohttp_client, tmp_path, maintenance_url=URL)
    await post(client, ON)
    served = client.app[CONTROLLER].body
    settings = Settings(state_file=tmp_path / "state.json", token=TOKEN, maintenance_url=URL)
    again = build_app(settings, watch_docker=False)[CONTROLLER]
    await again.replace_containers(list(client.app[CONTROLLER].containers.values()))
    await again.mark_synced()
    assert 12 == again.state.maintenance["web"].retry_after
    assert served == again.body


async def test_bad_bodies_are_refused_and_change_nothing(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """No ``on``, Retry-After out of range, no token, unknown service: refused, no state."""
    client = await started(aiohttp_client, tmp_path, maintenance_url=URL)
    cases = [
        ({"service": "web"}, AUTH, 400),
        ({**ON, "retry_after": 0}, AUTH, 400),
        ({**ON, "message": "x" * 501}, AUTH, 400),
        (ON, {}, 401),
        ({**ON, "service": "nope"}, AUTH, 404),
    ]
    for body, headers, code in cases:
        resp = await client.post("/maintenance", json=body, headers=headers)
        assert code == resp.status, (body, await resp.text())
    assert {} == client.app[CONTROLLER].state.maintenance


@pytest.fixture
def quiet_logs() -> Iterator[None]:
    """Keep the in-process provider's log lines out of the CLI's captured stdout."""
    with structlog.testing.capture_logs():
        yield


@pytest.fixture
async def provider(
    quiet_logs: None,
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Provider:
    return await start_provider(
        aiohttp_server, tmp_path, capsys, web_blue_green(), maintenance_url=URL
    )


async def test_cli_turns_it_on_shows_it_and_turns_it_off(provider: Provider) -> None:
    """``bluegreen maintenance web on`` says what the public gets; ``status`` shows it;
    ``off`` ends it; ``--json`` prints the API's answer."""
    on = await provider.run(
        "maintenance", "web", "on", "--message", "Back at 3", "--retry-after", "45"
    )
    assert 0 == on.code, on.err
    assert 'maintenance of web is on: the public gets 503, Retry-After 45s, "Back at 3"' in on.out
    status = await provider.run("status")
    assert "maintenance of web is on" in status.out
    off = await provider.run("maintenance", "web", "off", "--json")
    assert (0, None, True) == (
        off.code,
        json.loads(off.out)["maintenance"],
        json.loads(off.out)["changed"],
    )
    assert "maintenance" not in (await provider.run("status", "web")).out


async def test_cli_refuses_a_bad_retry_after_and_needs_the_token(provider: Provider) -> None:
    """A usage error (exit 2) before any call; without the token, exit 4."""
    with pytest.raises(SystemExit) as bad:
        await provider.run("maintenance", "web", "on", "--retry-after", "0")
    assert 2 == bad.value.code
    no_token = await provider.run("maintenance", "web", "on", token=None)
    assert 4 == no_token.code, no_token.err
    assert {} == provider.app[CONTROLLER].state.maintenance


async def test_the_status_page_shows_maintenance_while_on(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """The page's service card says maintenance is on, with its escaped message and
    Retry-After; once off, nothing of it is left."""
    client = await started(aiohttp_client, tmp_path, maintenance_url=URL)
    await post(client, ON)
    page = await (await client.get("/ui/services", headers=AUTH)).text()
    assert 'data-role="maintenance-badge"' in page
    assert "Retry-After 12 s) with “Migrating &lt;b&gt;now&lt;/b&gt;”" in page
    await post(client, {"service": "web", "on": False})
    page = await (await client.get("/ui/services", headers=AUTH)).text()
    assert 'data-role="maintenance' not in page


async def test_a_service_whose_containers_are_gone_can_still_be_taken_out_of_it(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Maintenance of a service that was never adopted outlives its containers: /status
    still lists it, and off still works (no 404 that would leave it on for good)."""
    client = await started(aiohttp_client, tmp_path, maintenance_url=URL)
    controller = client.app[CONTROLLER]
    bad = {"bluegreen.replicas": "many"}  # a label error holds its adoption
    await controller.replace_containers([make_container("solo", "blue", port=8090, extra=bad)])
    assert "solo" not in controller.state.services
    await post(client, {"service": "solo", "on": True})
    await controller.replace_containers([])
    status = await (await client.get("/status")).json()
    assert status["services"]["solo"]["maintenance"] is not None
    off = await post(client, {"service": "solo", "on": False})
    assert (True, None) == (off["changed"], off["maintenance"])


async def test_head_gets_the_pages_head(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """A public HEAD is answered like GET (503, Retry-After), never 405."""
    client = await started(aiohttp_client, tmp_path, maintenance_url=URL)
    await post(client, ON)
    head = await client.head("/maintenance-page/web")
    assert (503, "12") == (head.status, head.headers["Retry-After"])
