"""Load from several processes, because one Python client may not saturate Traefik.

One :class:`~tests.testbed.load.BackgroundLoad` runs in this process, so the
bench can watch responses live (``wait_body``); the other processes run the
same generator and hand their samples back when stopped.  The monotonic clock
is system-wide on Linux, so all samples share one timeline.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any, Self

from tests.testbed.load import BackgroundLoad, LoadGenerator, LoadResult, Sample

JOIN_TIMEOUT_S = 60.0


def _child(url: str, options: dict[str, Any], stop: Event, out: Queue[Any]) -> None:
    generator = LoadGenerator(url, **options)

    def relay() -> None:
        stop.wait()
        generator.stop()

    threading.Thread(target=relay, daemon=True).start()
    result = asyncio.run(generator.run())
    out.put((result.started, result.stopped, result.samples))


class LoadPool:
    """``processes`` load generators with ``concurrency`` split between them."""

    def __init__(self, url: str, *, processes: int, concurrency: int, **options: Any) -> None:
        share = max(1, -(-concurrency // processes))
        self.concurrency = share * processes
        self.local = BackgroundLoad(url, concurrency=share, **options)
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._out: Queue[Any] = context.Queue()
        child_options = {**options, "concurrency": share}
        self._children: list[SpawnProcess] = [
            context.Process(target=_child, args=(url, child_options, self._stop, self._out))
            for _ in range(processes - 1)
        ]
        self.result = LoadResult()

    def start(self) -> Self:
        for child in self._children:
            child.start()
        self.local.start()
        return self

    def stop(self) -> LoadResult:
        """Stop everyone and merge the samples into :attr:`result`."""
        self._stop.set()
        local = self.local.stop()
        samples: list[Sample] = list(local.samples)
        started, stopped = [local.started], [local.stopped]
        for _ in self._children:
            child_started, child_stopped, child_samples = self._out.get(timeout=JOIN_TIMEOUT_S)
            started.append(child_started)
            stopped.append(child_stopped)
            samples.extend(child_samples)
        for child in self._children:
            child.join(JOIN_TIMEOUT_S)
        self.result = LoadResult(samples, min(started), max(stopped))
        return self.result

    def wait_body(self, body: str, timeout: float = 15.0, *, after: float = 0.0) -> Sample:
        return self.local.wait_body(body, timeout, after=after)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
