"""Webhooks against a real local receiver (an aiohttp server on 127.0.0.1).

The provider app runs in-process with its cleanup_ctx (so the delivery tasks
run as in ``bluegreen serve``); switches go through the HTTP API.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
import yarl
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from provider import webhooks
from provider.api import CONTROLLER
from provider.errors import SettingsError
from provider.server import build_app
from provider.settings import Settings, parse_args
from provider.webhook_config import DEFAULT_EVENTS, Webhook
from tests.factories import make_container

TOKEN = "hook-token"
SECRET = "hook-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Receiver:
    """A webhook receiver: records every request; answers ``statuses`` in turn, then 200."""

    statuses: list[int] = field(default_factory=list)
    hang: asyncio.Event | None = None
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        self.arrived.set()
        if self.hang is not None:
            async with asyncio.timeout(30):
                await self.hang.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok")

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
async def receiver(aiohttp_server: ServerFactory) -> Receiver:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook/{token}", hook.handle)
    server = await aiohttp_server(app)
    hook.url = f"http://127.0.0.1:{server.port}/hook/t0ken"
    return hook


async def provider(
    aiohttp_client: ClientFactory, tmp_path: Path, hooks: list[Webhook], **settings: Any
) -> TestClient[Any, Any]:
    values: dict[str, Any] = {
        "state_file": tmp_path / "state.json",
        "token": TOKEN,
        "webhooks": tuple(hooks),
        "webhook_timeout": 0.5,
    }
    values.update(settings)
    app = build_app(Settings(**values), watch_docker=False)
    controller = app[CONTROLLER]
    await controller.replace_containers(
        [
            make_container("web", "blue", port=8081, created=1.0),
            make_container("web", "green", port=8082, created=2.0),
        ]
    )
    await controller.mark_synced()
    return await aiohttp_client(app)


async def switch(client: TestClient[Any, Any], color: str) -> None:
    resp = await client.post("/switch", json={"service": "web", "color": color}, headers=AUTH)
    assert 200 == resp.status, await resp.text()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF_FIRST_S", 0.05)


async def test_payload_and_signature(
    aiohttp_client: ClientFactory, tmp_path: Path, receiver: Receiver
) -> None:
    """A switch POSTs the documented JSON, signed with HMAC-SHA256 of the exact body."""
    client = await provider(
        aiohttp_client, tmp_path, [Webhook(receiver.url)], webhook_secret=SECRET
    )
    await switch(client, "green")
    await receiver.wait_for(1)
    headers, body = receiver.requests[0]
    doc = json.loads(body)
    assert {
        "id", "event", "service", "from", "to", "reason", "actor", "at", "images", "detail"
    } == set(doc)  # fmt: skip
    assert ("switch", "web", "blue", "green", "manual", "api") == (
        doc["event"], doc["service"], doc["from"], doc["to"], doc["reason"], doc["actor"]
    )  # fmt: skip
    assert {"blue", "green"} == set(doc["images"])
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert expected == headers["X-Bluegreen-Signature"]
    assert "switch" == headers["X-Bluegreen-Event"]
    assert doc["id"] == headers["X-Bluegreen-Delivery"]
    assert "application/json" == headers["Content-Type"]


async def test_no_signature_without_a_secret_and_events_filter(
    aiohttp_client: ClientFactory, tmp_path: Path, receiver: Receiver
) -> None:
    """Without a secret no signature is sent; a hook filtered to `rollback` gets only that."""
    client = await provider(
        aiohttp_client, tmp_path, [Webhook(receiver.url, frozenset({"rollback"}))]
    )
    await switch(client, "green")
    resp = await client.post("/rollback", json={"service": "web"}, headers=AUTH)
    assert 200 == resp.status
    await receiver.wait_for(1)
    await asyncio.sleep(0.2)  # would a second (unwanted) event arrive?
    assert ["rollback"] == [b["event"] for b in receiver.bodies()]
    assert "X-Bluegreen-Signature" not in receiver.requests[0][0]


async def test_retries_after_500s_then_delivers(
    aiohttp_client: ClientFactory, tmp_path: Path, receiver: Receiver, fast_backoff: None
) -> None:
    """Two 500s, then 200: three attempts of the same body, counted in /metrics."""
    receiver.statuses = [500, 500]
    client = await provider(aiohttp_client, tmp_path, [Webhook(receiver.url)])
    await switch(client, "green")
    await receiver.wait_for(3)
    assert 1 == len({body for _, body in receiver.requests})
    metrics = client.app[CONTROLLER].metrics  # type: ignore[index]
    async with asyncio.timeout(5):
        while metrics.webhook_deliveries["delivered"] < 1:
            await asyncio.sleep(0.01)
    text = await (await client.get("/metrics")).text()
    assert 'bluegreen_webhook_deliveries_total{result="retried"} 2' in text
    assert 'bluegreen_webhook_deliveries_total{result="delivered"} 1' in text


async def test_gives_up_after_three_retries(
    aiohttp_client: ClientFactory, tmp_path: Path, receiver: Receiver, fast_backoff: None
) -> None:
    """A receiver that always answers 500 gets 1 + 3 attempts; the delivery counts as failed."""
    receiver.statuses = [500] * 10
    client = await provider(aiohttp_client, tmp_path, [Webhook(receiver.url)])
    await switch(client, "green")
    await receiver.wait_for(4)
    metrics = client.app[CONTROLLER].metrics  # type: ignore[index]
    async with asyncio.timeout(5):
        while metrics.webhook_deliveries["failed"] < 1:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    assert 4 == len(receiver.requests)
    assert {"retried": 3, "failed": 1} == dict(metrics.webhook_deliveries)


async def test_a_hung_receiver_does_not_hold_up_switching(
    aiohttp_client: ClientFactory, tmp_path: Path, receiver: Receiver
) -> None:
    """While the receiver holds the first delivery open, every switch still answers 200."""
    receiver.hang = asyncio.Event()
    client = await provider(aiohttp_client, tmp_path, [Webhook(receiver.url)], webhook_timeout=30)
    await switch(client, "green")
    await receiver.wait_for(1)
    for color in ["blue", "green"] * 5:
        await switch(client, color)
    assert 1 == len(receiver.requests)  # still hung on the first delivery
    history = (await (await client.get("/history?service=web")).json())["history"]
    assert 11 == len(history)
    receiver.hang.set()
    await receiver.wait_for(11)
    assert [r["to"] for r in history] == [b["to"] for b in receiver.bodies()]


async def test_the_queue_is_bounded_and_drops_are_counted(
    aiohttp_client: ClientFactory, tmp_path: Path, receiver: Receiver
) -> None:
    """With room for 2 events (one in flight) behind a hung receiver, further events are dropped."""
    receiver.hang = asyncio.Event()
    client = await provider(
        aiohttp_client, tmp_path, [Webhook(receiver.url)], webhook_timeout=30, webhook_queue=2
    )
    await switch(client, "green")
    await receiver.wait_for(1)
    for color in ["blue", "green", "blue", "green"]:
        await switch(client, color)
    metrics = client.app[CONTROLLER].metrics  # type: ignore[index]
    assert 3 == metrics.webhook_deliveries["dropped"]
    receiver.hang.set()
    await receiver.wait_for(2)
    await asyncio.sleep(0.2)
    assert [("blue", "green"), ("green", "blue")] == [
        (b["from"], b["to"]) for b in receiver.bodies()
    ]


def test_webhook_settings_from_flags_yaml_and_secret_file(tmp_path: Path) -> None:
    """--webhook repeats; YAML takes events and a secret; the secret may come from a file."""
    flags = parse_args(["--webhook", "http://127.0.0.1:1/a", "--webhook", "https://h.test/b"])
    assert (
        Webhook("http://127.0.0.1:1/a"), Webhook("https://h.test/b")
    ) == flags.webhooks  # fmt: skip
    config = tmp_path / "bg.yml"
    config.write_text(
        "webhooks:\n"
        "  - url: http://127.0.0.1:2/x\n    events: [switch, rollback]\n    secret: s1\n"
        "  - http://127.0.0.1:3/y\n"
    )
    from_yaml = parse_args(["--config", str(config)])
    assert (
        Webhook("http://127.0.0.1:2/x", frozenset({"switch", "rollback"}), "s1"),
        Webhook("http://127.0.0.1:3/y", DEFAULT_EVENTS),
    ) == from_yaml.webhooks
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    assert "from-a-file" == parse_args(["--webhook-secret-file", str(secret)]).webhook_secret
    env = parse_args([], {"BLUEGREEN_WEBHOOKS": "http://127.0.0.1:4/z http://127.0.0.1:5/w"})
    assert 2 == len(env.webhooks)
    assert "set" == parse_args(["--webhook-secret", "x"]).redacted()["webhook_secret"]
    assert ["http://127.0.0.1:1/…", "https://h.test/…"] == flags.redacted()["webhooks"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--webhook", "ftp://x/y"], "http:// or https://"),
        (["--webhook-secret", "a", "--webhook-secret-file", "/nonexistent"], "not both"),
        (["--webhook-secret-file", "/nonexistent/secret"], "cannot read --webhook-secret-file"),
    ],
)
def test_bad_webhook_settings_stop_the_server(argv: list[str], message: str) -> None:
    """Invalid webhook settings are refused at startup with a message naming the flag."""
    with pytest.raises(SettingsError, match=message):
        parse_args(argv)


# --- Redirects and what is logged of a hook's URL (issue 19) -----------------------------

#: A hook URL whose userinfo, path and query are each a secret of their own.
SECRET_PARTS = ("pa55word", "s3cret-path", "qu3ry-key")


@dataclass
class Redirector:
    """A receiver that answers every request to its hook with ``status`` and a ``Location``
    (``self``: the hook's own URL, a loop whatever the method)."""

    status: int
    location: str = "/landing"
    posts: int = 0
    landed: list[tuple[str, bytes]] = field(default_factory=list)
    url: str = ""

    async def hook(self, request: web.Request) -> web.Response:
        self.posts += request.method == "POST"
        location = str(request.url) if self.location == "self" else self.location
        return web.Response(status=self.status, headers={"Location": location})

    async def landing(self, request: web.Request) -> web.Response:
        self.landed.append((request.method, await request.read()))
        return web.Response(text="ok")


async def redirector(aiohttp_server: ServerFactory, status: int, location: str) -> Redirector:
    hook = Redirector(status, location)
    app = web.Application()
    app.router.add_route("*", "/hook/{token}", hook.hook)
    app.router.add_route("*", "/landing", hook.landing)
    server = await aiohttp_server(app)
    user, path, query = SECRET_PARTS
    hook.url = f"http://bob:{user}@127.0.0.1:{server.port}/hook/{path}?key={query}"
    return hook


async def wait_for_outcome(client: TestClient[Any, Any], result: str) -> dict[str, int]:
    metrics = client.app[CONTROLLER].metrics  # type: ignore[index]
    async with asyncio.timeout(10):
        while metrics.webhook_deliveries[result] < 1:
            await asyncio.sleep(0.01)
    return dict(metrics.webhook_deliveries)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_a_failed_attempt_never_followed(
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    fast_backoff: None,
    status: int,
) -> None:
    """A 3xx is not followed (a 301/302 would turn the POST into a bodiless GET that
    "delivers"): the attempt fails, is retried like a 500, and the landing page sees nothing."""
    hook = await redirector(aiohttp_server, status, "/landing")
    client = await provider(aiohttp_client, tmp_path, [Webhook(hook.url)])
    with structlog.testing.capture_logs() as logged:
        await switch(client, "green")
        outcomes = await wait_for_outcome(client, "failed")

    assert ({"retried": 3, "failed": 1}, 4, []) == (outcomes, hook.posts, hook.landed)
    errors = [e["error"] for e in logged if e["event"].startswith("webhook_")]
    assert [f"answered {status}: redirects are not followed"] * 4 == errors


async def test_a_redirect_loop_logs_no_part_of_the_hook_url(
    aiohttp_client: ClientFactory, aiohttp_server: ServerFactory, tmp_path: Path, fast_backoff: None
) -> None:
    """A hook that redirects to itself fails; no log line names its userinfo, path or query
    (only ``scheme://host:port/…``)."""
    hook = await redirector(aiohttp_server, 302, "self")
    client = await provider(aiohttp_client, tmp_path, [Webhook(hook.url)])
    with structlog.testing.capture_logs() as logged:
        await switch(client, "green")
        await wait_for_outcome(client, "failed")

    text = json.dumps(logged, default=str)
    assert [] == [part for part in SECRET_PARTS if part in text]
    host = hook.url.split("@")[1].split("/")[0]
    urls = {e["url"] for e in logged if e["event"].startswith("webhook_")}
    assert {f"http://***@{host}/…"} == urls


async def test_an_unreachable_hook_logs_no_part_of_its_url(
    aiohttp_client: ClientFactory, tmp_path: Path, fast_backoff: None
) -> None:
    """A connection error's text is scrubbed of the hook's URL too (here: a closed port)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    user, path, query = SECRET_PARTS
    url = f"http://bob:{user}@127.0.0.1:{port}/hook/{path}?key={query}"
    client = await provider(aiohttp_client, tmp_path, [Webhook(url)])
    with structlog.testing.capture_logs() as logged:
        await switch(client, "green")
        await wait_for_outcome(client, "failed")

    text = json.dumps(logged, default=str)
    assert [] == [part for part in SECRET_PARTS if part in text]
    assert SECRET_PARTS[1] not in repr(Webhook(url)) and "…" in repr(Webhook(url))


def test_the_scrubber_removes_each_part_of_a_url() -> None:
    """What an HTTP client puts in an error message (the URL, whole or in parts) is cut."""
    user, path, query = SECRET_PARTS
    url = f"http://bob:{user}@h.test:81/hook/{path}?key={query}"
    text = f"bad {url}; then /hook/{path} and key={query}; also http://bob:{user}@h.test:81/"
    scrubbed = webhooks.scrubbed(text, url)
    assert [] == [part for part in SECRET_PARTS if part in scrubbed], scrubbed
    encoded = "http://h.test/hook/caf%C3%A9-s3cr3t?k=a%20b"
    as_sent = f"error at {yarl.URL('http://h.test/hook/café-s3cr3t?k=a b')}"
    assert "s3cr3t" not in webhooks.scrubbed(as_sent, encoded)
    assert "s3cr3t" not in webhooks.scrubbed(as_sent, "http://h.test/hook/café-s3cr3t?k=a b")
