"""The watchers' shared session loop and reconnect backoff, without Docker.

:class:`provider.watch_session.DaemonWatcher` is driven here by a queue that
stands in for aiodocker's subscriber (``None`` ends the stream) and a fake
of the :class:`provider.watch_session.Observations` protocol, so the
level-triggered loop's promises are pinned without a daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import aiodocker
import pytest

from provider import watch_session
from provider.core.model import Container
from provider.settings import Settings
from provider.watch_session import Burst, DaemonWatcher, Observations


class FakeController:
    """Records what a watcher asks; holds no containers."""

    def __init__(self) -> None:
        self.containers: Mapping[str, Container] = {}
        self.synced = False
        self.clock: Callable[[], float] = lambda: 0.0
        self.connected: list[tuple[bool, str | None]] = []

    async def replace_containers(self, containers: Iterable[Container]) -> None:
        self.containers = {c.id: c for c in containers}

    async def update_containers(
        self, changed: Iterable[Container], removed: Iterable[str] = ()
    ) -> None:
        """Nothing to record: the fake watcher never calls it."""

    async def mark_synced(self) -> None:
        self.synced = True

    async def set_docker_connected(self, connected: bool, error: str | None = None) -> None:
        self.connected.append((connected, error))

    def set_daemon_offset(self, seconds: float) -> None:
        """Nothing to record."""


class RecordingWatcher(DaemonWatcher):
    """Wakes on events whose ``Type`` is ``ours``; records each read."""

    kind: ClassVar[str] = "test"

    def __init__(self, controller: Observations, *, interval: float | None, full: bool) -> None:
        super().__init__(controller, Settings())
        self.interval = interval
        self.full = full
        self.reads: list[str | frozenset[str]] = []

    def _event_filters(self) -> dict[str, list[str]]:
        return {}

    def _relevant(self, event: Mapping[str, Any]) -> str | None:
        return str(event["id"]) if event.get("Type") == "ours" else None

    def _resync_interval(self) -> float | None:
        return self.interval

    async def _full_sync(self, docker: aiodocker.Docker) -> None:
        self.reads.append("full")

    async def _reconcile(self, docker: aiodocker.Docker, burst: Burst) -> bool:
        self.reads.append(burst.touched)
        return self.full


def ours(cid: str) -> dict[str, Any]:
    return {"Type": "ours", "id": cid}


async def follow(watcher: RecordingWatcher, events: list[dict[str, Any] | None]) -> None:
    """Run the loop over ``events`` (queued at once) until the stream ends."""
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    for event in events:
        queue.put_nowait(event)
    docker: Any = None
    await asyncio.wait_for(watcher._follow(docker, queue), timeout=10)


async def test_a_burst_is_one_read_of_what_its_relevant_events_touched() -> None:
    """Events arriving together wake the watcher once; events of others never wake it."""
    watcher = RecordingWatcher(FakeController(), interval=None, full=False)
    await follow(watcher, [{"Type": "other", "id": "x"}, ours("a"), ours("b"), ours("a"), None])
    assert [frozenset({"a", "b"})] == watcher.reads


async def test_irrelevant_events_alone_read_nothing() -> None:
    """A stream of events the watcher does not care about ends without a read."""
    watcher = RecordingWatcher(FakeController(), interval=None, full=False)
    await follow(watcher, [{"Type": "other", "id": "x"}, None])
    assert [] == watcher.reads


async def test_a_quiet_stream_resyncs_every_interval() -> None:
    """With no events, the loop does a full read each interval, then ends with the stream."""
    watcher = RecordingWatcher(FakeController(), interval=0.01, full=False)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    docker: Any = None
    task = asyncio.create_task(watcher._follow(docker, queue))
    while watcher.reads.count("full") < 2:
        await asyncio.sleep(0.005)
    queue.put_nowait(None)
    await asyncio.wait_for(task, timeout=10)
    assert {"full"} == set(watcher.reads)


async def test_reconnecting_backs_off_doubling_to_the_cap_and_restarts_after_a_sync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each ended session marks Docker disconnected; a synced one restarts the backoff."""
    controller = FakeController()
    outcomes = iter([False, False, True, False] + [False] * 8)
    delays: list[float] = []

    async def session() -> tuple[str, bool]:
        return "gone", next(outcomes)

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 10:
            raise asyncio.CancelledError

    monkeypatch.setattr("provider.watch_session.asyncio.sleep", sleep)
    with pytest.raises(asyncio.CancelledError):
        await watch_session.reconnecting(session, controller, "test_unavailable")
    assert [0.1, 0.2, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0] == [round(d, 2) for d in delays]
    assert [(False, "gone")] * 10 == controller.connected
