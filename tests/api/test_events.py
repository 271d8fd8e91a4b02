"""``GET /events`` through a real aiohttp server on 127.0.0.1, and the typed events themselves.

Containers are fed in as normalized observations (no Docker here); every
event is produced by the controller's real code paths (switch, rollback,
observations, Docker connectivity).
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient

from provider import sse
from provider.api import CONTROLLER
from provider.auto_switch import AutoSwitcher, policy_from
from provider.controller import Controller
from provider.core.model import Health, State
from provider.core.promotion import Stage
from provider.events import EventBus, EventKind
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container
from tests.hostile_http import ThreadedApp, hostile_settings
from tests.sse_client import events_of, next_event, next_message

TOKEN = "events-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def started(
    aiohttp_client: ClientFactory, tmp_path: Path, **settings: Any
) -> TestClient[Any, Any]:
    values: dict[str, Any] = {"state_file": tmp_path / "state.json", "token": TOKEN}
    values.update(settings)
    app = build_app(Settings(**values), watch_docker=False)
    controller = app[CONTROLLER]
    await controller.replace_containers(
        [
            make_container("web", "blue", port=8081, created=1.0),
            make_container("web", "green", port=8082, created=2.0),
            make_container("api", "blue", port=9001, created=1.0),
            make_container("api", "green", port=9002, created=2.0),
        ]
    )
    await controller.mark_synced()
    return await aiohttp_client(app)


async def switch(client: TestClient[Any, Any], service: str, color: str) -> None:
    resp = await client.post("/switch", json={"service": service, "color": color}, headers=AUTH)
    assert 200 == resp.status, await resp.text()


async def test_events_arrive_in_order_with_the_switch_fields(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Switches stream as `switch` events, in order, ids increasing, with from/to/reason/actor."""
    client = await started(aiohttp_client, tmp_path)
    async with client.get("/events") as stream:
        assert 200 == stream.status
        assert "text/event-stream" == stream.headers["Content-Type"]
        for color in ("green", "blue", "green"):
            await switch(client, "web", color)
        got = await events_of(stream, 3)
    assert ["switch"] * 3 == [m.event for m in got]
    docs = [m.json for m in got]
    assert [("blue", "green"), ("green", "blue"), ("blue", "green")] == [
        (d["from"], d["to"]) for d in docs
    ]
    assert {("manual", "api", "web")} == {(d["reason"], d["actor"], d["service"]) for d in docs}
    assert [m.id for m in got] == [d["id"] for d in docs]
    seqs = [int(str(m.id).rpartition("-")[2]) for m in got]
    assert sorted(seqs) == seqs and len(set(seqs)) == 3
    assert {
        "id",
        "event",
        "service",
        "from",
        "to",
        "reason",
        "actor",
        "at",
        "images",
        "detail",
    } == set(docs[0])


async def test_service_filter_and_rollback_events(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """`?service=api` sees only api's events; a rollback is a `switch` then a `rollback` done."""
    client = await started(aiohttp_client, tmp_path)
    async with client.get("/events?service=api") as stream:
        await switch(client, "web", "green")
        await switch(client, "api", "green")
        resp = await client.post("/rollback", json={"service": "api"}, headers=AUTH)
        assert 200 == resp.status
        got = await events_of(stream, 3)
    assert [("switch", "api"), ("switch", "api"), ("rollback", "api")] == [
        (m.event, m.json["service"]) for m in got
    ]
    assert ("green", "blue", "rollback", "done") == (
        got[2].json["from"],
        got[2].json["to"],
        got[2].json["reason"],
        got[2].json["detail"]["stage"],
    )


async def test_last_event_id_resumes_from_the_ring_buffer(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Reconnecting with Last-Event-ID replays exactly the events after it, then goes live."""
    client = await started(aiohttp_client, tmp_path)
    async with client.get("/events") as stream:
        for color in ("green", "blue", "green", "blue"):
            await switch(client, "web", color)
        first = await events_of(stream, 4)
    async with client.get("/events", headers={"Last-Event-ID": str(first[1].id)}) as resumed:
        replayed = await events_of(resumed, 2)
        await switch(client, "web", "green")
        live = await next_event(resumed)
    assert [first[2].id, first[3].id] == [m.id for m in replayed]
    assert ("blue", "green") == (live.json["from"], live.json["to"])


async def test_unknown_or_expired_last_event_id_asks_for_a_resync(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """An id from another boot, or older than the buffer, starts with a `resync` event."""
    client = await started(aiohttp_client, tmp_path, events_buffer=1)
    async with client.get("/events") as stream:
        for color in ("green", "blue", "green"):
            await switch(client, "web", color)
        first = await events_of(stream, 3)
    async with client.get("/events", headers={"Last-Event-ID": "1-5"}) as other_boot:
        assert "resync" == (await next_event(other_boot)).event
    async with client.get("/events", headers={"Last-Event-ID": str(first[0].id)}) as too_old:
        # The buffer holds 1 event; the one right after first[0] is gone.
        assert "resync" == (await next_event(too_old)).event
    async with client.get("/events", headers={"Last-Event-ID": str(first[1].id)}) as fine:
        assert first[2].id == (await next_event(fine)).id


async def test_heartbeat_comment_on_an_idle_stream(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """With nothing happening, the stream still carries a comment line every heartbeat."""
    client = await started(aiohttp_client, tmp_path, events_heartbeat=0.1)
    async with client.get("/events") as stream:
        first = await next_message(stream)
        assert 1000 == first.retry
        beats = [await next_message(stream, timeout=5) for _ in range(2)]
    assert [["ping"], ["ping"]] == [b.comments for b in beats]


async def test_client_bound_answers_503_and_frees_slots(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Past --events-max-clients a stream gets 503 too_many_clients; a closed one frees its slot."""
    client = await started(aiohttp_client, tmp_path, events_max_clients=2, events_heartbeat=0.05)
    bus: EventBus = client.app[CONTROLLER].events  # type: ignore[index]
    one = await client.get("/events")
    two = await client.get("/events")
    third = await client.get("/events")
    assert 503 == third.status
    assert "too_many_clients" == (await third.json())["error"]
    one.close()
    async with asyncio.timeout(5):
        while bus.clients >= 2:  # the heartbeat finds the closed client
            await asyncio.sleep(0.02)
    async with client.get("/events") as again:
        assert 200 == again.status
    two.close()


async def test_bad_queries_are_refused(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Unknown query parameters and an empty service are a 400 JSON error, not a stream."""
    client = await started(aiohttp_client, tmp_path)
    for query in ("?colour=blue", "?service="):
        resp = await client.get(f"/events{query}")
        assert 400 == resp.status
        assert "bad_request" == (await resp.json())["error"]


async def test_a_client_that_never_reads_does_not_hold_up_switches(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A stalled reader is cut off once its queue is full; every switch answers and a reading
    client still sees every switch in order."""
    client = await started(aiohttp_client, tmp_path)
    bus: EventBus = client.app[CONTROLLER].events  # type: ignore[index]
    bus.subscriber_queue = 50
    stalled = socket.create_connection(("127.0.0.1", client.server.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        async with asyncio.timeout(5):
            while bus.clients < 1:
                await asyncio.sleep(0.01)
        async with client.get("/events?service=web") as reader:
            colors = ["green", "blue"] * 60
            received: list[tuple[str, str]] = []

            async def read_all() -> None:
                while len(received) < len(colors):
                    m = await next_event(reader, timeout=10)
                    received.append((m.json["from"], m.json["to"]))

            task = asyncio.create_task(read_all())
            for color in colors:
                await switch(client, "web", color)
            await asyncio.wait_for(task, 20)
        expected = list(zip(["blue", *colors[:-1]], colors, strict=True))
        assert expected == received
    finally:
        stalled.close()


async def test_container_docker_and_label_error_events(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Observations produce `container` (phase changes), `label_error` and `docker` events."""
    client = await started(aiohttp_client, tmp_path)
    controller = client.app[CONTROLLER]  # type: ignore[index]
    async with client.get("/events") as stream:
        green = make_container("web", "green", port=8083, created=5.0, health=Health.STARTING)
        await controller.update_containers([green])
        await controller.update_containers([dataclasses.replace(green, health=Health.HEALTHY)])
        bad = make_container("web", "purple", port=8084, created=6.0)
        await controller.update_containers([bad])
        await controller.set_docker_connected(True)
        await controller.set_docker_connected(False, "socket gone")
        got = await events_of(stream, 5)
    assert [
        ("container", None, "starting"),
        ("container", "starting", "healthy"),
    ] == [(m.event, m.json["from"], m.json["to"]) for m in got[:2]]
    assert green.name == got[0].json["detail"]["container"]["name"]
    assert "label_error" == got[2].event and got[2].json["detail"]["errors"]
    docker = [(m.event, m.json["service"], m.json["to"]) for m in got[3:]]
    assert [("docker", None, "connected"), ("docker", None, "disconnected")] == docker
    assert "socket gone" == got[4].json["detail"]["error"]


async def test_a_full_subscriber_queue_ends_that_subscription_only() -> None:
    """Publishing never waits: a subscriber whose queue is full is closed as too slow, the
    others keep every event, and the ring buffer keeps them for its resume."""
    bus = EventBus(buffer=100, subscriber_queue=3)
    slow = bus.subscribe()
    fast = bus.subscribe()
    got: list[str] = []
    for n in range(5):
        bus.publish(EventKind.SWITCH, "web", to="green", reason=str(n))
        event = await fast.next()
        assert event is not None
        got.append(str(event.reason))
    assert ["0", "1", "2", "3", "4"] == got
    assert "too_slow" == slow.closed_reason
    assert await slow.next() is None
    assert 1 == bus.clients
    replay, gap = bus.since(bus.recent[1].id)
    assert (["2", "3", "4"], False) == ([str(e.reason) for e in replay], gap)


async def test_pending_promotion_stages_come_from_the_typed_pending_values(
    tmp_path: Path,
) -> None:
    """Each new stage of a pending promotion is one `promotion` event, then `done` with it.

    The real switcher hands its typed `Pending` values to `Controller.publish_pending`;
    an evaluation that changes nothing publishes nothing.
    """
    now = [1000.0]
    settings = Settings(state_file=tmp_path / "state.json", promote_after=2.0)
    controller = Controller(settings, State(), clock=lambda: now[0])
    await controller.replace_containers([make_container("web", "blue", port=8081, created=1.0)])
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    switcher = AutoSwitcher(controller, policy_from(settings), clock=lambda: now[0])
    green = make_container("web", "green", port=8082, created=now[0] + 1, health=Health.STARTING)
    seen = len(controller.events.recent)

    await controller.update_containers([green])
    async with controller.lock:
        switcher.evaluate()
        switcher.evaluate()
    await controller.update_containers([dataclasses.replace(green, health=Health.HEALTHY)])
    async with controller.lock:
        switcher.evaluate()
    now[0] += 3
    async with controller.lock:
        [due], _ = switcher.evaluate()
    await switcher._switch(due)

    stages = [
        (str(e.kind), e.to, e.detail.get("stage"))
        for e in list(controller.events.recent)[seen:]
        if e.kind in (EventKind.PROMOTION, EventKind.SWITCH)
    ]
    assert [
        ("promotion", "green", str(Stage.NOT_ROUTABLE)),
        ("promotion", "green", str(Stage.HOLDING)),
        ("switch", "green", None),
        ("promotion", "green", "done"),
    ] == stages


# -- hostile clients over raw sockets (a thread serves the app) -----------------


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` (a bounded wait on a signal, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def stream_head(port: int, last_event_id: bytes) -> bytes:
    """Open /events with raw ``Last-Event-ID`` bytes; what arrives up to the first event."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: " + last_event_id + b"\r\n\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data or (
            data.startswith(b"HTTP/1.1 200") and b"event:" not in data
        ):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def test_a_hostile_last_event_id_is_a_resync_not_a_500(tmp_path: Path) -> None:
    """ "²" (a digit to str.isdigit, not to int), 5,000 digits, junk: each id is unknown, so
    the stream opens (200) and starts with `resync`. Not a 400: a browser's EventSource
    would give up for good on it, and the client's right move is the same: re-read /status."""
    app = build_app(hostile_settings(tmp_path), watch_docker=False)
    with ThreadedApp(app) as server:
        server.call(app[CONTROLLER].mark_synced())
        boot = app[CONTROLLER].events.boot.encode()
        hostile = [boot + "-²".encode(), boot + b"-" + b"1" * 5000, b"1" * 5000, "²".encode()]
        hostile += [boot + b"-1-2", b"-", boot + b"-" + "１".encode(), b"\xff\xfe"]
        for raw in hostile:
            head = stream_head(server.port, raw)
            assert head.startswith(b"HTTP/1.1 200"), (raw[:20], head[:300])
            assert b"event: resync" in head, (raw[:20], head[:300])
        assert 0 == app[CONTROLLER].metrics.api_requests[("GET", "/events", 500)]


def test_a_client_that_stops_reading_and_leaves_ends_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client stops reading while big events queue up (the server's write blocks), then
    closes: the stream ends without a 500 or a logged traceback, and its slot is free at
    once (the send timeout is an hour here, so only the lost connection can free it)."""
    monkeypatch.setattr(sse, "SEND_TIMEOUT_S", 3600.0)
    app = build_app(hostile_settings(tmp_path, events_heartbeat=3600.0), watch_docker=False)
    bus: EventBus = app[CONTROLLER].events
    with ThreadedApp(app) as server, structlog.testing.capture_logs() as logs:
        server.call(app[CONTROLLER].mark_synced())
        stalled = socket.create_connection(("127.0.0.1", server.port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: bus.clients == 1, "the stream to open")
        (sub,) = bus._subscribers
        count = 300  # 300 x 50 KB: far more than the socket buffers hold

        async def flood() -> None:
            for _ in range(count):
                bus.publish(EventKind.CONTAINER, "web", blob="x" * 50_000)

        server.call(flood())
        wait_for(lambda: 0 < len(sub._queue) < count, "the writer to block")
        stalled.close()
        wait_for(lambda: bus.clients == 0, "the slot to be freed")
        assert 0 == app[CONTROLLER].metrics.api_requests[("GET", "/events", 500)]
    assert [] == [e for e in logs if e["log_level"] in ("error", "critical")]
