"""A small Server-Sent Events reader for tests: blocks of ``field: value`` lines."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientResponse


@dataclass
class Message:
    """One SSE block: an event (``event``, ``id``, ``data``) or comment lines only."""

    event: str | None = None
    id: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    @property
    def json(self) -> Any:
        return json.loads("\n".join(self.data))


async def next_message(resp: ClientResponse, timeout: float = 5.0) -> Message:
    """Read up to the next blank line (the end of one block)."""
    message = Message()
    async with asyncio.timeout(timeout):
        while True:
            raw = await resp.content.readline()
            if not raw:
                raise EOFError("the event stream ended")
            line = raw.decode().rstrip("\r\n")
            if not line:
                if message.event or message.data or message.comments or message.retry:
                    return message
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                message.comments.append(value)
            elif name == "event":
                message.event = value
            elif name == "id":
                message.id = value
            elif name == "data":
                message.data.append(value)
            elif name == "retry":
                message.retry = int(value)


async def next_event(resp: ClientResponse, timeout: float = 5.0) -> Message:
    """The next block that is an event (skips heartbeats and ``retry:`` blocks)."""
    async with asyncio.timeout(timeout):
        while True:
            message = await next_message(resp, timeout)
            if message.event is not None:
                return message


async def events_of(resp: ClientResponse, count: int, timeout: float = 5.0) -> list[Message]:
    return [await next_event(resp, timeout) for _ in range(count)]
