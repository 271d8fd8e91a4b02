"""The reference app: what a real web app asks of a blue/green handover.

- ``GET /``: a page that references a content-hashed asset of this version;
- ``GET /assets/app.<hash>.js``: that asset (404 for any other name);
- ``GET /_bluegreen/fallback?url=<original URL>``: the asset fallback's request
  (Traefik's ``errors`` middleware cannot pass the original path, only ``{url}``):
  the asset at that URL's path, so a page of this version still loads its assets
  after the switch (docs/draining.md, the app-side recipe);
- ``GET /ws``: a WebSocket echo; ``GET /sse``: a Server-Sent Events stream, one
  event every 200 ms (``?n=`` events, then it ends by itself);
- SIGTERM: aiohttp stops accepting, runs ``on_shutdown``, where every open
  WebSocket gets a close frame (1001, going away) and every SSE stream a last
  ``event: bye`` and a clean end; then it exits 0.

Run by the tests in an image on the debootstrap Python base (tests/testbed/refapp_image.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import urllib.parse
import weakref

from aiohttp import WSCloseCode, web

VERSION = os.environ.get("APP_VERSION", "v1")
PORT = int(os.environ.get("APP_PORT", "8080"))
ASSET = f"/* {VERSION} */ window.appVersion = {VERSION!r};\n".encode()
ASSET_NAME = f"app.{hashlib.sha256(ASSET).hexdigest()[:12]}.js"
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")
STOPPING: web.AppKey[asyncio.Event] = web.AppKey("stopping")


async def page(request: web.Request) -> web.Response:
    html = f'<html><body>{VERSION}<script src="/assets/{ASSET_NAME}"></script></body></html>'
    return web.Response(text=html, content_type="text/html")


def _asset(path: str) -> web.Response:
    if path != f"/assets/{ASSET_NAME}":
        raise web.HTTPNotFound(text=f"{VERSION}: no {path}\n")
    return web.Response(body=ASSET, content_type="application/javascript")


async def asset(request: web.Request) -> web.Response:
    return _asset(request.path)


async def fallback(request: web.Request) -> web.Response:
    """The errors middleware's request: serve the asset at the original URL's path."""
    original = urllib.parse.urlsplit(request.query.get("url", ""))
    return _asset(original.path)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def version(request: web.Request) -> web.Response:
    return web.Response(text=f"{VERSION}\n")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=None)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    async for message in ws:
        if message.type == 1:  # TEXT
            await ws.send_str(f"{VERSION}:{message.data}")
    return ws


async def events(request: web.Request) -> web.StreamResponse:
    """One ``data: <version> <i>`` every 200 ms; ``event: bye`` at shutdown, then the end."""
    count = int(request.query.get("n", "100000"))
    stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await stream.prepare(request)
    stopping = request.app[STOPPING]
    for i in range(count):
        await stream.write(f"data: {VERSION} {i}\n\n".encode())
        try:
            await asyncio.wait_for(stopping.wait(), 0.2)
        except TimeoutError:
            continue
        await stream.write(b"event: bye\ndata: shutting down\n\n")
        break
    await stream.write_eof()
    return stream


async def close_streams(app: web.Application) -> None:
    """SIGTERM: a close frame to every WebSocket, the last event to every SSE stream."""
    app[STOPPING].set()
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def make_app() -> web.Application:
    app = web.Application()
    app[SOCKETS] = weakref.WeakSet()
    app[STOPPING] = asyncio.Event()
    app.router.add_get("/", page)
    app.router.add_get("/assets/{name}", asset)
    app.router.add_get("/_bluegreen/fallback", fallback)
    app.router.add_get("/health", health)
    app.router.add_get("/version", version)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/sse", events)
    app.on_shutdown.append(close_streams)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="0.0.0.0", port=PORT, shutdown_timeout=5, print=None)
