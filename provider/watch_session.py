"""The session and reconnect scaffold both watchers share, and what they need of the controller.

The container watcher (:mod:`provider.docker_watch`) and the Swarm watcher
(:mod:`provider.swarm_watch`) differ in what they read (one engine's
containers, or a manager's services and tasks), how they normalize it and
which events wake them. How a session runs does not differ, so it is written
once here, in :class:`DaemonWatcher`:

1. connect, and read the daemon's clock from ``GET /info``;
2. start the event stream from just before that clock (``SINCE_SLACK_S``), so
   nothing that happens before the first listing is missed;
3. a full sync, then ``mark_synced`` and ``set_docker_connected(True)``;
4. the level-triggered loop, as Traefik's Docker provider: an event burst only
   wakes the watcher, which re-reads the truth; a periodic full resync heals
   whatever a missed event left wrong;
5. when the session ends (daemon gone, stream ended: in aiodocker a ``None``
   from the subscriber), Docker is marked disconnected and the next session
   starts after capped exponential backoff (:func:`reconnecting`).

The watchers see the controller only through :class:`Observations`: what
they read of it and what they ask of it, nothing of switching, state or the
API.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import aiodocker
import aiohttp
import structlog
from aiodocker.events import DockerEvents

from provider.core.docker_normalize import parse_time
from provider.core.model import Container
from provider.settings import Settings

log = structlog.get_logger("bluegreen.watch")

#: An event burst ends after this much quiet...
DEBOUNCE_QUIET_S = 0.005
#: ...or this long after its first event, whichever comes first.
DEBOUNCE_MAX_S = 0.05
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
#: Plain API calls; the event stream itself has no read timeout.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=5)
#: Replay this much of the daemon's event log when subscribing, so nothing that
#: happens between subscribing and the first listing is missed.
SINCE_SLACK_S = 1.0
_TIMED_OUT = object()
DockerFailure = (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError)


class Observations(Protocol):
    """What a watcher reads from the controller and asks of it; :class:`Controller` is one.

    Small on purpose: a watcher only feeds observations and the connection
    state, so it can be reasoned about (and faked) without the controller's
    switching, state store or events.
    """

    @property
    def containers(self) -> Mapping[str, Container]:
        """The observations the watcher handed over last, by container id."""

    @property
    def synced(self) -> bool:
        """Whether a first full sync has been handed over."""

    @property
    def clock(self) -> Callable[[], float]:
        """Our clock, to measure the daemon's offset from."""

    async def replace_containers(self, containers: Iterable[Container]) -> None:
        """A full sync: these are everything that exists."""

    async def update_containers(
        self, changed: Iterable[Container], removed: Iterable[str] = ()
    ) -> None:
        """An incremental update after a re-inspect."""

    async def mark_synced(self) -> None:
        """The first full sync of a session has been handed over."""

    async def set_docker_connected(self, connected: bool, error: str | None = None) -> None:
        """The daemon answers again, or not (and why)."""

    def set_daemon_offset(self, seconds: float) -> None:
        """The daemon's clock minus ours."""


class DaemonUnfit(Exception):
    """The daemon answers but cannot serve this watcher; the session ends as on a failure."""


@dataclass(frozen=True)
class Burst:
    """One debounced run of events that woke a watcher."""

    #: The first relevant event, as the daemon sent it.
    first: Mapping[str, Any]
    #: The keys :meth:`DaemonWatcher._relevant` gave the burst's relevant events.
    touched: frozenset[str]
    #: Our ``time.time()`` when the first relevant event arrived.
    first_at: float


async def reconnecting(
    session: Callable[[], Awaitable[tuple[str, bool]]], controller: Observations, event: str
) -> None:
    """Run ``session`` again and again, with capped exponential backoff between them.

    A session returns why it ended and whether it had synced (then the backoff
    starts over). Docker is marked disconnected after each one; the first
    failure in a row is logged as news, the retries quietly. Runs until
    cancelled.
    """
    delay = BACKOFF_FIRST_S
    failures = 0
    while True:
        reason, synced = await session()
        await controller.set_docker_connected(False, reason)
        if synced:
            delay, failures = BACKOFF_FIRST_S, 0
        failures += 1
        emit = log.warning if failures == 1 else log.debug
        emit(event, error=reason, retry_in=round(delay, 2))
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_S)


def start_stream(
    events: DockerEvents,
    controller: Observations,
    info: Mapping[str, Any],
    filters: Mapping[str, list[str]],
    name: str,
) -> asyncio.Task[None]:
    """Take the daemon's clock from ``GET /info`` and start its event stream from just before.

    The daemon's clock, not ours: a remote daemon's may be skewed, and the
    replay (``SINCE_SLACK_S``) keeps what happens before the first listing.
    """
    daemon_now = parse_time(info.get("SystemTime"))
    if daemon_now is not None:
        controller.set_daemon_offset(daemon_now - controller.clock())
    now = daemon_now or time.time()
    return asyncio.create_task(
        events.run(filters=dict(filters), since=f"{now - SINCE_SLACK_S:.6f}"), name=name
    )


async def stop_stream(stream: asyncio.Task[None] | None, reason: str) -> str:
    """Stop a session's event stream; its own failure, if it had one, is the better reason."""
    if stream is None:
        return reason
    stream.cancel()
    await asyncio.wait([stream])
    if not stream.cancelled() and (failure := stream.exception()) is not None:
        return describe(failure)
    return reason


def describe(exc: BaseException) -> str:
    """An exception as the short reason a session ended (the status shows it)."""
    text = str(exc) or type(exc).__name__
    return text[:300]


async def next_event(subscriber: Any, timeout: float | None) -> Any:
    """The next event, ``None`` at stream end, or ``_TIMED_OUT``."""
    try:
        async with asyncio.timeout(timeout):
            return await subscriber.get()
    except TimeoutError:
        return _TIMED_OUT


class DaemonWatcher(abc.ABC):
    """Feeds the controller from one Docker daemon; the server's ``cleanup_ctx`` owns its task.

    A subclass says what differs: what a full sync reads (:meth:`_full_sync`),
    which events wake it (:meth:`_event_filters`, :meth:`_relevant`), what it
    re-reads after a burst (:meth:`_reconcile`) and how often it resyncs
    (:meth:`_resync_interval`).
    """

    #: Names the log events (``<kind>_unavailable``, ``<kind>_watch_failed``) and
    #: the event-stream task (``<kind>-events``).
    kind: ClassVar[str]

    def __init__(self, controller: Observations, settings: Settings) -> None:
        self.controller = controller
        self.settings = settings
        self.prefix = settings.label_prefix
        self._docker: aiodocker.Docker | None = None

    async def close(self) -> None:
        """Release the Docker client if a cancelled session left it open."""
        docker, self._docker = self._docker, None
        if docker is not None:
            await docker.close()

    async def run(self) -> None:
        """Watch until cancelled, reconnecting with capped exponential backoff."""
        await reconnecting(self._session, self.controller, f"{self.kind}_unavailable")

    # -- what differs ---------------------------------------------------------

    def _check(self, info: Mapping[str, Any]) -> None:
        """Raise :class:`DaemonUnfit` if the daemon behind ``info`` cannot serve this watcher.

        Any daemon serves one engine's watcher; the Swarm watcher needs a manager.
        """
        return None

    @abc.abstractmethod
    def _event_filters(self) -> dict[str, list[str]]:
        """The daemon-side filters of the event subscription."""

    @abc.abstractmethod
    def _relevant(self, event: Mapping[str, Any]) -> str | None:
        """A key for what ``event`` touched, or ``None`` if it should not wake the watcher."""

    @abc.abstractmethod
    def _resync_interval(self) -> float | None:
        """Seconds between full resyncs, or ``None`` for none."""

    @abc.abstractmethod
    async def _full_sync(self, docker: aiodocker.Docker) -> None:
        """Read everything; the result replaces what the controller knows."""

    @abc.abstractmethod
    async def _reconcile(self, docker: aiodocker.Docker, burst: Burst) -> bool:
        """Re-read after ``burst``; ``True`` if that was a full sync (the resync clock restarts)."""

    # -- the session ----------------------------------------------------------

    async def _session(self) -> tuple[str, bool]:
        """Connect, sync, follow events until the daemon goes away; say why it ended."""
        docker = aiodocker.Docker(url=self.settings.docker_host, timeout=REQUEST_TIMEOUT)
        self._docker = docker
        events: DockerEvents = docker.events
        subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        stream: asyncio.Task[None] | None = None
        synced = False
        reason = "the session was cancelled"  # replaced below unless it is
        try:
            info = await docker.system.info()
            self._check(info)
            filters = self._event_filters()
            stream = start_stream(events, self.controller, info, filters, f"{self.kind}-events")
            await self._full_sync(docker)
            synced = True
            await self.controller.mark_synced()
            await self.controller.set_docker_connected(True)
            await self._follow(docker, subscriber)
            reason = "the Docker event stream ended"
        except (*DockerFailure, DaemonUnfit) as exc:
            reason = describe(exc)
        except Exception as exc:  # a bug must not stop the watching for good
            log.exception(f"{self.kind}_watch_failed")
            reason = f"watcher error: {describe(exc)}"
        finally:
            reason = await stop_stream(stream, reason)
            self._docker = None
            await docker.close()
        return reason, synced

    async def _follow(self, docker: aiodocker.Docker, subscriber: Any) -> None:
        """Reconcile after every event burst, resync every interval; return at stream end."""
        loop = asyncio.get_running_loop()
        interval = self._resync_interval()

        def deadline() -> float | None:
            return None if interval is None else loop.time() + interval

        next_resync = deadline()
        while True:
            timeout = None if next_resync is None else max(0.0, next_resync - loop.time())
            event = await next_event(subscriber, timeout)
            if event is _TIMED_OUT:
                await self._full_sync(docker)
                next_resync = deadline()
                continue
            if event is None:
                return
            if (first := self._relevant(event)) is None:
                continue
            burst, ended = await self._burst(subscriber, event, first)
            if await self._reconcile(docker, burst):
                next_resync = deadline()
            if ended:
                return

    async def _burst(
        self, subscriber: Any, event: Mapping[str, Any], first: str
    ) -> tuple[Burst, bool]:
        """Gather the events that follow ``event`` closely; ``True`` if the stream ended."""
        loop = asyncio.get_running_loop()
        touched = {first}
        first_at = time.time()
        ended = False
        burst_end = loop.time() + DEBOUNCE_MAX_S
        while (wait := min(DEBOUNCE_QUIET_S, burst_end - loop.time())) > 0:
            more = await next_event(subscriber, wait)
            if more is _TIMED_OUT:
                break
            if more is None:
                ended = True
                break
            if (key := self._relevant(more)) is not None:
                touched.add(key)
        return Burst(event, frozenset(touched), first_at), ended
