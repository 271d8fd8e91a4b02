"""Holding ``GET /traefik`` until the config changes, through real HTTP connections.

Each :class:`Poller` is one aiohttp session limited to one keep-alive
connection, as Traefik's HTTP provider polls.  "Held" is observed through
the provider's own gauge, never by timing; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from provider.api import CONTROLLER
from provider.core.model import Color
from provider.long_poll import LONG_POLL, LongPoll
from provider.server import build_app
from provider.settings import Settings, parse_args
from tests.factories import make_container
from tests.testbed.ports import free_port
from tests.waiting import eventually

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
#: Far longer than any test: a request still held at the end would hang the test.
FOREVER = 3600.0
WAIT_S = 10.0


def synced_app(tmp_path: Path, *, sync: bool = True, **overrides: Any) -> web.Application:
    """A provider over blue and green ``web`` (blue active), without Docker; synced
    at startup unless ``sync`` is false."""
    values: dict[str, Any] = {"state_file": tmp_path / "state.json", "token": "t", "hold": FOREVER}
    values.update(overrides)
    app = build_app(Settings(**values), watch_docker=False)

    async def observe(app: web.Application) -> None:
        controller = app[CONTROLLER]
        await controller.replace_containers(
            [
                make_container("web", "blue", port=8081, created=1.0),
                make_container("web", "green", port=8082, created=2.0),
            ]
        )
        if sync:
            await controller.mark_synced()

    app.on_startup.append(observe)
    return app


class Poller:
    """One keep-alive connection to the provider, like one Traefik instance."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.session = aiohttp.ClientSession(
            base_url=base,
            connector=aiohttp.TCPConnector(limit=1, force_close=False),
            headers=headers,
        )

    async def poll(self, timeout: float = WAIT_S) -> tuple[int, bytes]:
        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with self.session.get("/traefik", timeout=client_timeout) as response:
            return response.status, await response.read()

    async def close(self) -> None:
        await self.session.close()


@pytest.fixture
async def pollers() -> AsyncIterator[Callable[..., Poller]]:
    """Makes pollers for a base URL; closes them all at teardown."""
    made: list[Poller] = []

    def make(base: str, headers: dict[str, str] | None = None) -> Poller:
        made.append(Poller(base, headers))
        return made[-1]

    yield make
    for poller in made:
        await poller.close()


def long_poll_of(client: TestClient[Any, Any]) -> LongPoll:
    return client.app[LONG_POLL]


def base_of(client: TestClient[Any, Any]) -> str:
    return str(client.make_url(""))


async def switch(client: TestClient[Any, Any], color: str) -> None:
    await client.app[CONTROLLER].switch("web", Color(color), reason="test")


def active_in(body: bytes) -> str:
    name: str = json.loads(body)["http"]["services"]["web"]["weighted"]["services"][0]["name"]
    return name


async def test_first_poll_on_each_connection_is_answered_at_once(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """A fresh connection gets the current body at once, even with an hour-long hold."""
    client = await aiohttp_client(synced_app(tmp_path))
    first, second = pollers(base_of(client)), pollers(base_of(client))
    # The very first poll tells the provider its URL: the body gains Traefik's probe.
    status, body = await first.poll()
    assert (200, body) == (status, client.app[CONTROLLER].body)
    assert (200, body) == await second.poll()
    assert 0 == long_poll_of(client).held
    assert 2 == long_poll_of(client).tracked


async def test_second_poll_is_held_until_the_body_changes(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """The next poll on a connection that has the current body waits for the switch,
    then gets 200 with the full new body (never a 304)."""
    client = await aiohttp_client(synced_app(tmp_path))
    long_poll = long_poll_of(client)
    traefik = pollers(base_of(client))
    status, before = await traefik.poll()
    held = asyncio.create_task(traefik.poll())
    await eventually("one held poll", lambda: long_poll.held == 1, WAIT_S)
    assert not held.done()

    await switch(client, "green")
    status, after = await held

    assert (200, "web-blue", "web-green") == (status, active_in(before), active_in(after))
    assert client.app[CONTROLLER].body == after
    assert (1, 0) == (long_poll.releases["change"], long_poll.held)
    assert 2 == client.app[CONTROLLER].metrics.traefik_polls


async def test_unchanged_poll_is_answered_after_the_hold_with_the_same_bytes(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """With nothing to push, the held poll ends after --hold with byte-identical content."""
    client = await aiohttp_client(synced_app(tmp_path, hold=0.2))
    traefik = pollers(base_of(client))
    answers = [await traefik.poll() for _ in range(3)]
    assert [(200, client.app[CONTROLLER].body)] * 3 == answers
    assert 2 == long_poll_of(client).releases["timeout"]


async def test_connections_are_tracked_separately(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """Two Traefiks: each one's first poll is immediate while the other is held; one
    switch releases both with the same body; closed connections are forgotten."""
    client = await aiohttp_client(synced_app(tmp_path))
    long_poll = long_poll_of(client)
    one, two = pollers(base_of(client)), pollers(base_of(client))
    await one.poll()
    held_one = asyncio.create_task(one.poll())
    await eventually("one held", lambda: long_poll.held == 1, WAIT_S)
    assert 200 == (await two.poll())[0]  # two's first poll: not held behind one's
    held_two = asyncio.create_task(two.poll())
    await eventually("two held", lambda: long_poll.held == 2, WAIT_S)

    await switch(client, "green")
    answers = {await held_one, await held_two}

    assert {(200, client.app[CONTROLLER].body)} == answers
    assert 2 == long_poll.releases["change"]
    assert 2 == long_poll.tracked
    await one.close()
    await eventually("closed connection forgotten", lambda: long_poll.tracked == 1, WAIT_S)


async def test_held_polls_are_bounded(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """Past the bound, an unchanged poll is answered at once instead of held."""
    client = await aiohttp_client(synced_app(tmp_path))
    long_poll = long_poll_of(client)
    long_poll.max_held = 2
    traefiks = [pollers(base_of(client)) for _ in range(3)]
    for traefik in traefiks:
        await traefik.poll()
    held = [asyncio.create_task(t.poll()) for t in traefiks[:2]]
    await eventually("two held", lambda: long_poll.held == 2, WAIT_S)

    assert (200, client.app[CONTROLLER].body) == await traefiks[2].poll()
    assert (1, 2) == (long_poll.releases["bound"], long_poll.held)

    await switch(client, "green")
    assert [200, 200] == [(await task)[0] for task in held]


async def test_hold_zero_never_holds(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """``--hold 0`` is plain polling: every poll is answered at once."""
    client = await aiohttp_client(synced_app(tmp_path, hold=0))
    traefik = pollers(base_of(client))
    answers = [await traefik.poll(timeout=FOREVER) for _ in range(3)]
    assert [(200, client.app[CONTROLLER].body)] * 3 == answers
    assert 0 == sum(long_poll_of(client).releases.values())


async def test_not_synced_and_unauthorized_polls_are_never_held(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """503 before the first sync and 401 without the provider token come at once, and
    do not count as the body sent: the first 200 on that connection is immediate too."""
    client = await aiohttp_client(synced_app(tmp_path, sync=False, provider_token="ptok"))
    good = pollers(base_of(client), {"Authorization": "Bearer ptok"})
    bad = pollers(base_of(client))
    assert [503, 503] == [(await good.poll())[0] for _ in range(2)]
    await client.app[CONTROLLER].mark_synced()
    assert 200 == (await good.poll())[0]
    assert [401, 401] == [(await bad.poll())[0] for _ in range(2)]
    assert 0 == long_poll_of(client).held


async def test_shutdown_answers_held_polls_with_the_current_body(
    tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """Stopping the server releases every held poll with a 200 and the current body."""
    server = TestServer(synced_app(tmp_path))
    await server.start_server()
    try:
        traefik = pollers(str(server.make_url("")))
        await traefik.poll()
        held = asyncio.create_task(traefik.poll())
        await eventually("one held", lambda: server.app[LONG_POLL].held == 1, WAIT_S)
        body = server.app[CONTROLLER].body
    finally:
        await server.close()
    assert (200, body) == await held
    assert 1 == server.app[LONG_POLL].releases["shutdown"]


async def test_dropped_held_poll_is_logged_once_and_its_address_is_not_held(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """A client whose timeout is shorter than the hold gets one log line with the fix,
    then plain polling (answered at once) instead of more timeouts."""
    client = await aiohttp_client(synced_app(tmp_path))
    long_poll = long_poll_of(client)
    with structlog.testing.capture_logs() as logs:
        short = pollers(base_of(client))
        await short.poll()
        with pytest.raises(TimeoutError):
            await short.poll(timeout=0.3)
        await eventually("drop noticed", lambda: long_poll.releases["disconnect"] == 1, WAIT_S)
        fresh = pollers(base_of(client))
        answers = [await fresh.poll() for _ in range(3)]

    assert [(200, client.app[CONTROLLER].body)] * 3 == answers
    assert (1, 0) == (long_poll.releases["disconnect"], long_poll.held)
    assert 2 == long_poll.releases["degraded"]  # the fresh connection's 2nd and 3rd polls
    dropped = [e for e in logs if e["event"] == "traefik_poll_dropped_while_held"]
    assert 1 == len(dropped)
    assert "--providers.http.pollTimeout" in dropped[0]["fix"]


async def test_drop_is_noticed_without_handler_cancellation(
    tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """As ``bluegreen serve`` runs aiohttp (handlers are not cancelled on disconnect),
    a dropped held poll is still noticed and its address answered at once."""
    app = synced_app(tmp_path)
    runner = web.AppRunner(app, handler_cancellation=False)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        long_poll = app[LONG_POLL]
        short = pollers(f"http://127.0.0.1:{port}")
        await short.poll()
        with pytest.raises(TimeoutError):
            await short.poll(timeout=0.3)
        await eventually("drop noticed", lambda: long_poll.releases["disconnect"] == 1, WAIT_S)
        fresh = pollers(f"http://127.0.0.1:{port}")
        answers = [(await fresh.poll())[0] for _ in range(2)]
    finally:
        await runner.cleanup()
    assert [200, 200] == answers
    assert (0, 1) == (long_poll.held, long_poll.releases["degraded"])


async def test_poll_gap_longer_than_the_hold_is_warned_once(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """A poll that comes well after a full hold ended means pollInterval > hold: warned once."""
    client = await aiohttp_client(synced_app(tmp_path, hold=0.1))
    traefik = pollers(base_of(client))
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            await traefik.poll()
            await asyncio.sleep(0.7)
    warned = [e for e in logs if e["event"] == "traefik_poll_interval_above_hold"]
    assert 1 == len(warned)


async def test_metrics_show_held_polls_and_releases(
    aiohttp_client: ClientFactory, tmp_path: Path, pollers: Callable[..., Poller]
) -> None:
    """``/metrics`` has the held gauge and the releases counter by cause."""
    client = await aiohttp_client(synced_app(tmp_path))
    traefik = pollers(base_of(client))
    await traefik.poll()
    held = asyncio.create_task(traefik.poll())
    await eventually("one held", lambda: long_poll_of(client).held == 1, WAIT_S)
    during = (await (await client.get("/metrics")).text()).splitlines()
    await switch(client, "green")
    await held
    after = (await (await client.get("/metrics")).text()).splitlines()
    assert "bluegreen_traefik_held_requests 1.0" in during
    assert "bluegreen_traefik_held_requests 0.0" in after
    assert 'bluegreen_traefik_releases_total{cause="change"} 1.0' in after
    assert "bluegreen_traefik_polls_total 2.0" in after


def test_hold_setting_from_flag_env_and_yaml(tmp_path: Path) -> None:
    """``--hold`` / ``BLUEGREEN_HOLD`` / YAML ``hold``: default 2.5 s, 0 turns it off."""
    config = tmp_path / "settings.yml"
    config.write_text("hold: 10\n")
    assert 2.5 == parse_args([], {}).hold
    assert 0.0 == parse_args(["--hold", "0"], {}).hold
    assert 4.0 == parse_args([], {"BLUEGREEN_HOLD": "4s"}).hold
    assert 10.0 == parse_args(["--config", str(config)], {}).hold
    assert 1.5 == parse_args(["--config", str(config), "--hold", "1.5"], {}).hold
    with pytest.raises(Exception, match="--hold"):
        parse_args(["--hold", "-1"], {})
