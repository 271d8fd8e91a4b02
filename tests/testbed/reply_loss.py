"""A unix-socket proxy in front of the Docker API that loses the answers to config creates.

The request reaches the real daemon whole, the daemon commits the config and
answers; the proxy reads that answer, drops it and closes the client's
connection, as a connection cut between the manager's commit and its reply
does. The client sees the connection end (aiohttp's
``ServerDisconnectedError``) and cannot tell whether the create landed. The
loss is made on the wire, not simulated in the client: the code under test
runs its real Docker client against it.

It runs in the test's own event loop (``async with ReplyLosingProxy(...)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Self

CHUNK = 65536


class ReplyLosingProxy:
    """Forward ``unix://<path>`` to the daemon socket ``target``; lose ``lose`` create answers."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._dir = Path(tempfile.mkdtemp(prefix="bgl-", dir="/tmp"))
        self.path = str(self._dir / "sock")
        self.host = f"unix://{self.path}"
        #: How many of the next ``POST /configs/create`` answers to lose.
        self.lose = 0
        #: Answers lost so far (each one's create reached the daemon, which answered).
        self.lost = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_unix_server(self._accept, path=self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        losing = asyncio.Event()
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.target)
            upstream = asyncio.create_task(self._answers(up_reader, writer, losing))
            try:
                await self._requests(reader, up_writer, losing)
                up_writer.close()  # the client is gone: so is this connection
                await upstream
            finally:
                upstream.cancel()
                up_writer.close()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, losing: asyncio.Event
    ) -> None:
        """Client to daemon; a create request arms the loss of its answer (no pipelining)."""
        while data := await reader.read(CHUNK):
            if self.lose > 0 and data.startswith(b"POST ") and b"/configs/create" in data:
                self.lose -= 1
                losing.set()
            writer.write(data)
            await writer.drain()

    async def _answers(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, losing: asyncio.Event
    ) -> None:
        """Daemon to client; once armed, read the daemon's answer, drop it, cut the client."""
        while data := await reader.read(CHUNK):
            if losing.is_set():
                self.lost += 1
                writer.transport.abort()
                return
            writer.write(data)
            await writer.drain()
