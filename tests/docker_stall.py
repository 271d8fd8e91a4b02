"""A unix-socket proxy in front of the Docker API that can stall every byte on demand.

Tests point the provider's ``--docker-host`` at :attr:`StallingDockerProxy.host`.
While flowing it forwards both ways; :meth:`stall` freezes every connection,
old and new, mid-stream (nothing is dropped, nothing answers), as a wedged
daemon would; :meth:`resume` lets the held bytes through. The same stall freezes
a provider's view of Docker at a chosen moment: a provider started while the
proxy is stalled cannot finish its first sync (``/traefik`` answers 503) until
:meth:`resume`. It runs its own asyncio loop in a thread, so synchronous tests
can drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Self

CHUNK = 65536


class StallingDockerProxy:
    """Forward ``unix://<path>`` to ``target`` (a socket path); stall and resume at will."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._dir = Path(tempfile.mkdtemp(prefix="bgs-", dir="/tmp"))
        self.path = str(self._dir / "sock")
        self.host = f"unix://{self.path}"
        #: Chunks a connection read and had to hold because the proxy was stalled.
        self.held = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="docker-stall")

    def __enter__(self) -> Self:
        self._flowing.set()
        self._server = self._loop.run_until_complete(
            asyncio.start_unix_server(self._accept, path=self.path)
        )
        self._thread.start()
        return self

    def stall(self) -> None:
        """Hold every byte in both directions from now on (in effect when this returns)."""
        self._in_loop(self._flowing.clear)

    def resume(self) -> None:
        """Forward again, held bytes first."""
        self._in_loop(self._flowing.set)

    def _in_loop(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the proxy's loop and wait for it, so the caller can rely on it."""

        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.connections += 1
        try:
            await self._flowing.wait()
            up_reader, up_writer = await asyncio.open_unix_connection(self.target)
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
                if not self._flowing.is_set():
                    self.held += 1
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
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)
