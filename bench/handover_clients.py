"""The handover bench's clients: browser-like sessions, WebSocket and SSE streams.

Every count is of a request or a stream, never of a reconnect attempt: a stream
counts once, when it ends, as completed (its own end), closed by the server (a
close frame or the SSE's last event: the app's SIGTERM handler), or cut (it
ended without either before its own end). A request that fails through Traefik
(an HTTP status other than 200, a broken connection) is a failure; this
client's own timeout (generous) is counted apart, since under load the client
itself can be the slow part. Used by ``bench/handover.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections import Counter

import aiohttp

HOST = "web.test"
#: A stream read waits this long for its next message (events come every 200 ms).
STREAM_READ_S = 30.0


class Tally:
    """Counts of what the clients saw."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, what: str) -> None:
        self.counts[what] += 1


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[str, bytes]:
    """One GET through Traefik: ``ok``, an HTTP status, ``broken`` or ``client timeout``.

    A status other than 200 or a broken connection is a failure seen through
    Traefik; a timeout is this client's own (generous, and counted apart, since
    under load the client itself can be the slow part).
    """
    try:
        async with session.get(url, headers={"Host": HOST}) as answer:
            body = await answer.read()
            return ("ok" if answer.status == 200 else str(answer.status)), body
    except TimeoutError:
        return "client timeout", b""
    except (aiohttp.ClientError, ConnectionError):
        return "broken", b""


async def browser(
    session: aiohttp.ClientSession, base: str, tally: Tally, stop: asyncio.Event
) -> None:
    """Page, think, asset: a user whose page was loaded from one version."""
    while not stop.is_set():
        outcome, page = await _get(session, base + "/")
        tally.add(f"page {outcome}")
        found = re.findall(r"/assets/app\.[0-9a-f]+\.js", page.decode(errors="replace"))
        await asyncio.sleep(random.uniform(0.2, 3.0))
        if not found:
            continue
        outcome, _ = await _get(session, base + found[0])
        tally.add(f"asset {outcome}")


async def websocket(
    session: aiohttp.ClientSession, base: str, tally: Tally, stop: asyncio.Event
) -> None:
    """Sessions of 3-15 s; how each ended."""
    while not stop.is_set():
        until = time.monotonic() + random.uniform(3.0, 15.0)
        try:
            ws = await session.ws_connect(base + "/ws", headers={"Host": HOST}, autoping=False)
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            tally.add("ws connect failed")
            await asyncio.sleep(0.5)
            continue
        outcome = "ws completed"
        while time.monotonic() < until:
            try:
                await ws.send_str("ping")
                message = await ws.receive(timeout=STREAM_READ_S)
            except TimeoutError:
                outcome = "ws client timeout"
                break
            except (aiohttp.ClientError, ConnectionError):
                outcome = "ws cut"
                break
            if message.type is aiohttp.WSMsgType.CLOSE:
                outcome = f"ws closed by server ({message.data})"
                break
            if message.type is not aiohttp.WSMsgType.TEXT:
                outcome = "ws cut"  # CLOSED/ERROR: the connection ended without a close frame
                break
            await asyncio.sleep(0.5)
        tally.add(outcome)
        with contextlib.suppress(Exception):
            await ws.close()


async def _read_sse(session: aiohttp.ClientSession, url: str) -> tuple[str, bytes]:
    """``connect failed`` (no stream began: not a stream), else how the stream's read ended."""
    try:
        async with session.get(url, headers={"Host": HOST}) as answer:
            if answer.status != 200:
                return "connect failed", b""
            body = b""
            try:
                async for chunk in answer.content.iter_any():
                    body += chunk
            except TimeoutError:
                return "client timeout", body
            except (aiohttp.ClientError, ConnectionError):
                return "broken", body
            return "ended", body
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        return "connect failed", b""


async def sse(session: aiohttp.ClientSession, base: str, tally: Tally, stop: asyncio.Event) -> None:
    """Streams of 15-60 events; complete, ended by the server's last event, or cut.

    A stream counts once. A stream is cut when it ended (broken, or a clean end
    of the body) before its last event and without the server's ``event: bye``.
    A request that never began a stream is a failed connect, not a stream, and
    is followed by a pause, as a browser's EventSource retries.
    """
    while not stop.is_set():
        wanted = random.randint(15, 60)
        how, body = await _read_sse(session, f"{base}/sse?n={wanted}")
        if how == "connect failed":
            tally.add("sse connect failed")
            await asyncio.sleep(0.5)
        elif b"event: bye" in body:
            tally.add("sse ended by server (last event)")
        elif body.count(b"data: ") >= wanted:
            tally.add("sse completed")
        elif how == "client timeout":
            tally.add("sse client timeout")
        else:
            tally.add(f"sse cut ({'broken read' if how == 'broken' else 'short clean end'})")
