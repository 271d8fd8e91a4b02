"""The status page's HTTP side, without a browser: headers, escaping, ``--ui off``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from provider.api import CONTROLLER
from provider.server import build_app
from provider.settings import Settings, parse_args
from tests.factories import make_container

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def client_for(
    aiohttp_client: ClientFactory, tmp_path: Path, **settings: Any
) -> TestClient[Any, Any]:
    app = build_app(Settings(state_file=tmp_path / "state.json", **settings), watch_docker=False)
    await app[CONTROLLER].replace_containers(
        [make_container("web", "blue", port=8081, name="web-<b>blue</b>")]
    )
    await app[CONTROLLER].mark_synced()
    return await aiohttp_client(app)


async def test_page_is_served_with_a_strict_policy_and_escaped(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """GET / is HTML with a CSP allowing only the provider's own script; names are escaped."""
    client = await client_for(aiohttp_client, tmp_path, token="t")
    resp = await client.get("/")
    assert 200 == resp.status
    assert "text/html" == resp.content_type
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    html = await resp.text()
    assert "web-&lt;b&gt;blue&lt;/b&gt;" in html and "<b>blue</b>" not in html
    assert 'data-role="active">active: blue<' in html
    assert "Set-Cookie" not in resp.headers
    script = await client.get("/ui/app.js")
    assert ("application/javascript", 200) == (script.content_type, script.status)
    assert "sessionStorage" in await script.text()


async def test_no_token_on_the_provider_means_no_actions(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A provider without --token renders no token form and no action buttons."""
    client = await client_for(aiohttp_client, tmp_path)
    html = await (await client.get("/")).text()
    assert "switching is disabled" in html
    assert "data-action" not in html and "token-form" not in html


async def test_ui_off_removes_the_page(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """--ui off: /, /ui/services and the script answer 404; /events and the API stay."""
    assert parse_args(["--ui", "off"]).ui is False
    client = await client_for(aiohttp_client, tmp_path, ui=False)
    for path in ("/", "/ui/services", "/ui/app.js", "/ui/style.css"):
        resp = await client.get(path)
        assert (404, "not_found") == (resp.status, (await resp.json())["error"])
    assert 200 == (await client.get("/status")).status


async def test_a_running_canary_shows_its_weights_and_actions(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """During a canary the page shows the served weights (90/10), the step and the canary's
    promote/abort buttons; after the abort, the rejected mark and all-or-nothing weights."""
    app = build_app(Settings(state_file=tmp_path / "state.json", token="t"), watch_docker=False)
    await app[CONTROLLER].replace_containers(
        [
            make_container("web", "blue", port=8081, created=1.0),
            make_container("web", "green", port=8082, created=2.0),
        ]
    )
    await app[CONTROLLER].mark_synced()
    client = await aiohttp_client(app)
    auth = {"Authorization": "Bearer t"}
    body = {"service": "web", "steps": [10, 100], "interval": "600s"}
    assert 200 == (await client.post("/canary", json=body, headers=auth)).status

    during = await (await client.get("/ui/services")).text()
    await client.post("/canary/abort", json={"service": "web"}, headers=auth)
    after = await (await client.get("/ui/services")).text()

    assert "Weights: blue 90% · green 10%" in during
    assert "Canary of green (running): step 1 of 2 (10%, 100%), weight 10%" in during
    assert 'data-action="canary/abort"' in during and 'data-action="canary/promote"' in during
    assert "Weights: blue 100% · green 0%" in after
    assert (
        "green: rolled back (no automatic switch to it until a new deploy)" in after
        and 'data-action="canary/abort"' not in after
    )


async def test_the_roll_back_button_carries_the_color_it_names(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """The button says "Roll back web to blue" and holds blue, which the page's script sends
    as /rollback's expected color."""
    app = build_app(Settings(state_file=tmp_path / "state.json", token="t"), watch_docker=False)
    await app[CONTROLLER].replace_containers(
        [
            make_container("web", "blue", port=8081, created=1.0),
            make_container("web", "green", port=8082, created=2.0),
        ]
    )
    await app[CONTROLLER].mark_synced()
    client = await aiohttp_client(app)
    switched = await client.post(
        "/switch", json={"service": "web", "color": "green"}, headers={"Authorization": "Bearer t"}
    )
    assert 200 == switched.status
    html = await (await client.get("/ui/services")).text()
    assert (
        'data-action="rollback" data-service="web" data-color="blue" id="rollback-web">'
        "Roll back web to blue<"
    ) in html
