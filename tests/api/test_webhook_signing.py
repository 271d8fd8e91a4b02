"""Webhooks signed as Standard Webhooks, checked by that project's own Python library.

Each test runs a real receiver (an aiohttp server on 127.0.0.1) that verifies
what it gets with ``standardwebhooks.Webhook.verify``, the code a user's
receiver would run, and real deliveries by the provider's dispatcher.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
import standardwebhooks.webhooks
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from provider import webhooks
from provider.core.model import Color, SwitchRecord
from provider.errors import SettingsError
from provider.events import EventBus
from provider.metrics import Metrics
from provider.openapi import SPEC
from provider.settings import parse_args
from provider.webhook_config import Webhook
from tests.api.test_webhooks import provider, switch

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
#: A Standard Webhooks secret (32 key bytes) and a plain one, as a user may configure them.
WHSEC = "whsec_" + base64.b64encode(bytes(range(32))).decode()
PLAIN = "hook-secret"
Verification = standardwebhooks.webhooks.WebhookVerificationError


def library_secret(secret: str) -> str:
    """What a receiver gives the library: a ``whsec_`` secret as is, a plain one as
    ``whsec_`` + base64 of its UTF-8 bytes (README, "Webhooks")."""
    if secret.startswith("whsec_"):
        return secret
    return "whsec_" + base64.b64encode(secret.encode()).decode()


@dataclass
class VerifyingReceiver:
    """Verifies each request with the library: 204 if it passes, 400 if not, unless
    ``statuses`` says otherwise (answered in turn, after verifying)."""

    secret: str
    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    verified: list[Any] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        headers, body = dict(request.headers), await request.read()
        self.requests.append((headers, body))
        self.arrived.set()
        try:
            self.verified.append(standardwebhooks.Webhook(self.secret).verify(body, headers))
        except Verification as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 204)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def start_receiver(aiohttp_server: ServerFactory, secret: str) -> VerifyingReceiver:
    receiver = VerifyingReceiver(library_secret(secret))
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    receiver.url = f"http://127.0.0.1:{server.port}/hook"
    return receiver


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF_FIRST_S", 0.05)


@pytest.mark.parametrize("shared", [True, False], ids=["--webhook-secret", "per-hook"])
@pytest.mark.parametrize("secret", [WHSEC, PLAIN], ids=["whsec", "plain"])
async def test_the_library_verifies_every_delivery(
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    secret: str,
    shared: bool,
) -> None:
    """A switch reaches a receiver that checks it with ``standardwebhooks``: it passes, with
    the id derived from the switch record; the deprecated body signature is still sent."""
    receiver = await start_receiver(aiohttp_server, secret)
    hook = Webhook(receiver.url, secret=None if shared else secret)
    client = await provider(
        aiohttp_client, tmp_path, [hook], webhook_secret=secret if shared else None
    )
    await switch(client, "green")
    await receiver.wait_for(1)

    headers, body = receiver.requests[0]
    assert [json.loads(body)] == receiver.verified
    seq = json.loads(body)["detail"]["seq"]
    assert f"switch-{seq}-web" == headers["webhook-id"]
    assert headers["X-Bluegreen-Signature"] == webhooks.signature(secret, body)
    documented = SPEC["x-webhooks"]["event"]["post"]["parameters"]
    assert {p["name"].lower() for p in documented} <= {h.lower() for h in headers}


async def test_a_replayed_delivery_is_refused(
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A captured delivery replayed after the library's tolerance (5 minutes) is refused;
    so is one whose timestamp an attacker freshened (the signature covers it), or whose
    body was changed."""
    receiver = await start_receiver(aiohttp_server, WHSEC)
    client = await provider(aiohttp_client, tmp_path, [Webhook(receiver.url)], webhook_secret=WHSEC)
    await switch(client, "green")
    await receiver.wait_for(1)
    headers, body = receiver.requests[0]
    library = standardwebhooks.Webhook(WHSEC)
    fresh = str(int(headers["webhook-timestamp"]) + 60)

    with pytest.raises(Verification, match="No matching signature found"):
        library.verify(body, {**headers, "webhook-timestamp": fresh})
    with pytest.raises(Verification, match="No matching signature found"):
        library.verify(body.replace(b'"green"', b'"blue"'), headers)

    class SixMinutesLater(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> SixMinutesLater:
            return super().now(tz) + timedelta(minutes=6)  # type: ignore[return-value]

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", SixMinutesLater)
    with pytest.raises(Verification, match="Message timestamp too old"):
        library.verify(body, headers)


async def test_retries_keep_the_id_and_each_attempt_verifies(
    aiohttp_client: ClientFactory, aiohttp_server: ServerFactory, tmp_path: Path, fast_backoff: None
) -> None:
    """Two 500s, then 204: three attempts under one ``webhook-id``, each signed anew (its
    own timestamp) and each verified by the library."""
    receiver = await start_receiver(aiohttp_server, PLAIN)
    receiver.statuses = [500, 500]
    client = await provider(aiohttp_client, tmp_path, [Webhook(receiver.url)], webhook_secret=PLAIN)
    await switch(client, "green")
    await receiver.wait_for(3)

    assert 1 == len({h["webhook-id"] for h, _ in receiver.requests})
    assert 3 == len(receiver.verified)


@pytest.fixture
async def two_replicas(
    aiohttp_server: ServerFactory,
) -> AsyncIterator[tuple[VerifyingReceiver, list[EventBus]]]:
    """Two replicas' event buses (boots differ), each with its own dispatcher to one receiver."""
    receiver = await start_receiver(aiohttp_server, WHSEC)
    buses = [EventBus(), EventBus()]
    buses[0].boot, buses[1].boot = "1000", "2000"
    dispatchers = [
        webhooks.WebhookDispatcher([Webhook(receiver.url)], secret=WHSEC, metrics=Metrics())
        for _ in buses
    ]
    for bus, dispatcher in zip(buses, dispatchers, strict=True):
        bus.add_listener(dispatcher.offer)
    async with dispatchers[0].running(), dispatchers[1].running():
        yield receiver, buses


async def test_replicas_sending_one_switch_send_one_id(
    two_replicas: tuple[VerifyingReceiver, list[EventBus]],
) -> None:
    """When two replicas both send one switch (at-least-once), its ``switch`` and
    ``promotion`` events carry the same ids from both: a receiver deduplicates on
    ``webhook-id``. Another switch has other ids."""
    receiver, buses = two_replicas
    record = SwitchRecord("web", Color.BLUE, Color.GREEN, "auto-promote", "watcher", 10.0, 7)
    later = SwitchRecord("web", Color.GREEN, Color.BLUE, "manual", "api", 20.0, 8)
    for bus in buses:
        bus.publish_switch(record, {}, forced=False)
    buses[0].publish_switch(later, {}, forced=False)
    await receiver.wait_for(5)

    ids = [h["webhook-id"] for h, _ in receiver.requests]
    assert [
        "promotion-7-web",
        "promotion-7-web",
        "switch-7-web",
        "switch-7-web",
        "switch-8-web",
    ] == (sorted(ids))
    assert 5 == len(receiver.verified)


@pytest.mark.parametrize("secret", ["whsec_%%%", "whsec_", "whsec_AAAAA"])
def test_a_malformed_whsec_secret_stops_the_server(tmp_path: Path, secret: str) -> None:
    """A ``whsec_`` secret that is not base64 of a key is refused at startup, shared or per
    hook, without echoing it."""
    with pytest.raises(SettingsError, match="whsec_ \\+ the base64 of the key") as shared:
        parse_args(["--webhook-secret", secret], environ={})
    config = tmp_path / "bg.yml"
    config.write_text(f"webhooks:\n  - url: http://127.0.0.1:9/x\n    secret: '{secret}'\n")
    with pytest.raises(SettingsError, match="whsec_ \\+ the base64 of the key") as per_hook:
        parse_args(["--config", str(config)], environ={})
    if secret != "whsec_":
        assert secret not in str(shared.value) + str(per_hook.value)


def readme_receiver() -> str:
    """The documented Python receiver: the one code block of README.md and docs/*.md (it is in
    docs/operations.md, "Webhooks") that imports ``standardwebhooks``."""
    root = Path(__file__).parents[2]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    (block,) = [b for b in blocks if "from standardwebhooks import" in b]
    return str(block)


async def test_the_readme_receiver_handles_each_switch_once(
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented receiver, run as written behind a real server: it handles a delivery, answers
    a repeat of it without handling it again, and refuses a changed body."""
    monkeypatch.setenv("BLUEGREEN_WEBHOOK_SECRET", WHSEC)
    handled: list[Any] = []
    namespace: dict[str, Any] = {"handle": handled.append}
    exec(compile(readme_receiver(), "docs/operations.md", "exec"), namespace)
    requests: list[tuple[bytes, dict[str, str]]] = []

    async def handle(request: web.Request) -> web.Response:
        body, headers = await request.read(), dict(request.headers)
        requests.append((body, headers))
        return web.Response(status=namespace["receive"](body, headers))

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = await aiohttp_server(app)
    url = f"http://127.0.0.1:{server.port}/hook"
    client = await provider(aiohttp_client, tmp_path, [Webhook(url)], webhook_secret=WHSEC)
    await switch(client, "green")
    async with asyncio.timeout(10):
        while not handled:
            await asyncio.sleep(0.01)
    body, headers = requests[0]

    again = namespace["receive"](body, headers)
    changed = namespace["receive"](body.replace(b'"green"', b'"blue"'), headers)

    assert ([json.loads(body)], 204, 400) == (handled, again, changed)
