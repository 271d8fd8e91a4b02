"""``GET /events``: the event stream as Server-Sent Events (through ``aiohttp-sse``).

Read-only, like ``/status``. Each client gets its own bounded subscription;
a client that reads too slowly is disconnected (its queue is dropped, so a
switch never waits on it) and resumes with ``Last-Event-ID`` from the ring
buffer. When the events after that id are gone (too old, or the provider
restarted) the stream starts with a ``resync`` event: re-read ``/status``.
A comment line every ``--events-heartbeat`` seconds keeps proxies from
closing an idle stream and finds dead clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from provider.errors import BadRequest, TooManyClients
from provider.events import Event, EventBus, Subscription
from provider.read_access import require_read

BUS = web.AppKey("events_bus", EventBus)
STREAM_OPTIONS = web.AppKey("events_options", dict)
#: A client that has not taken a message within this long is cut off.
SEND_TIMEOUT_S = 10.0
#: Browsers' EventSource reconnects after this many milliseconds.
RETRY_MS = 1000


def _data(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


async def events(request: web.Request) -> web.StreamResponse:
    """Stream events (optionally of one service), replaying after ``Last-Event-ID``.

    The id comes from the ``Last-Event-ID`` header (a browser's own reconnect) or
    the ``last_event_id`` query parameter (the status page's reconnect after a
    refusal: a new ``EventSource`` cannot set headers); the header wins.
    A client that goes away (reset, stalled past the send timeout) ends its stream
    quietly and frees its slot at once: that is a client's right, not a failure.
    """
    require_read(request)
    bus = request.app[BUS]
    options = request.app[STREAM_OPTIONS]
    unknown = set(request.query) - {"service", "last_event_id"}
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(sorted(unknown))[:200]}")
    service = request.query.get("service")
    if service is not None and not service:
        raise BadRequest("service must not be empty")
    if bus.clients >= options["max_clients"]:
        raise TooManyClients(
            f"{bus.clients} event streams are open (--events-max-clients); retry later"
        )
    last_id = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    with bus.subscribe(service, last_id) as sub:
        async with sse_response(
            request, ping_interval=options["heartbeat"], send_timeout=SEND_TIMEOUT_S
        ) as resp:
            try:
                await _stream(resp, sub, last_id)
            except (ConnectionError, TimeoutError):
                # ConnectionError("Connection lost") comes from a write blocked on a
                # client that then closed; TimeoutError from one that stopped reading.
                sub.close("client_gone")
    return resp


async def _stream(resp: EventSourceResponse, sub: Subscription, last_id: str | None) -> None:
    await resp.write(f"retry: {RETRY_MS}\r\n\r\n".encode())
    if last_id and sub.gap:
        gone = {"reason": "events after the given Last-Event-ID are no longer buffered; "
                "re-read /status", "last_event_id": last_id[:100]}  # fmt: skip
        await resp.send(_data(gone), event="resync")
    async with _closed_on_disconnect(resp, sub):
        for event in sub.replay:
            await _send(resp, event)
        while (live := await sub.next()) is not None:
            await _send(resp, live)


async def _send(resp: EventSourceResponse, event: Event) -> None:
    await resp.send(_data(event.to_json()), id=event.id, event=str(event.kind))


@contextlib.asynccontextmanager
async def _closed_on_disconnect(
    resp: EventSourceResponse, sub: Subscription
) -> AsyncIterator[None]:
    """End ``sub`` when the stream's heartbeat finds the client gone; owns that watcher task."""
    watcher = asyncio.create_task(resp.wait(), name="events-client-watch")
    watcher.add_done_callback(lambda _: sub.close("client_gone"))
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


async def _close_streams(app: web.Application) -> None:
    """On shutdown, end every stream at once instead of waiting out the shutdown timeout."""
    app[BUS].close_all()


def setup(app: web.Application, bus: EventBus, *, max_clients: int, heartbeat: float) -> None:
    """Add ``GET /events`` to ``app``."""
    app[BUS] = bus
    app[STREAM_OPTIONS] = {"max_clients": max_clients, "heartbeat": max(heartbeat, 0.01)}
    app.router.add_get("/events", events)
    app.on_shutdown.append(_close_streams)
