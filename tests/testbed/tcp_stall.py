"""A loopback TCP proxy that can stall every byte on demand: Traefik cut off from the provider.

Traefik's ``--providers.http.endpoint`` points at :attr:`StallingTcpProxy.url`;
while flowing, the proxy forwards both ways.  :meth:`stall` freezes every
connection, old and new, mid-stream (nothing is dropped, nothing answers), as
a provider behind a broken network path looks to Traefik: its held poll gets
no answer, the next ones time out.  Traefik keeps serving traffic from the
config it has.  :meth:`resume` lets the held bytes through.  It runs its own
asyncio loop in a thread, so synchronous tests can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Self

from tests.testbed.ports import free_port

CHUNK = 65536
LOOPBACK = "127.0.0.1"


class StallingTcpProxy:
    """Forward ``127.0.0.1:<port>`` to ``127.0.0.1:<target>``; stall and resume at will."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-stall")

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> Self:
        self._flowing.set()
        for _ in range(20):  # a port another process took meanwhile: pick again
            self.port = free_port()
            with contextlib.suppress(OSError):
                self._server = self._loop.run_until_complete(
                    asyncio.start_server(self._accept, LOOPBACK, self.port)
                )
                break
        if self._server is None:
            raise RuntimeError("no free port for the stalling proxy")
        self._thread.start()
        return self

    def stall(self) -> None:
        """Hold every byte in both directions from now on (in effect when this returns)."""
        self._in_loop(self._flowing.clear)

    def resume(self) -> None:
        """Forward again, held bytes first."""
        self._in_loop(self._flowing.set)

    def _in_loop(self, action: Callable[[], None]) -> None:
        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await self._flowing.wait()
            up_reader, up_writer = await asyncio.open_connection(LOOPBACK, self.target_port)
            await asyncio.gather(
                self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
            )
        except OSError:
            pass
        finally:
            writer.close()
            self._tasks.discard(task)  # type: ignore[arg-type]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def __exit__(self, *exc: object) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        else:
            self._loop.run_until_complete(self._shutdown())
        self._loop.close()
