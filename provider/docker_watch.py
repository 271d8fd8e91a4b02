"""The Docker watcher: keeps the controller's view of the containers true.

Level-triggered, as Traefik's Docker provider: events are only wake-ups. On
(re)connect the watcher lists every container carrying ``<prefix>.service``
(running or not), inspects each, and hands the controller the whole set;
after an event burst it re-lists and re-inspects what the burst touched or
what the listing shows has changed; a periodic full resync heals anything a
missed event left wrong. Raw Docker JSON stops here:
:func:`provider.core.docker_normalize.normalize` turns it into
:class:`provider.core.model.Container`.

Losing Docker (socket gone, daemon restarted, event stream ended: in
aiodocker a ``None`` from the subscriber) keeps the last observations, marks
Docker disconnected, and reconnects with capped exponential backoff; the
automatic switcher decides nothing until the full resync after the
reconnect has finished. The watcher and the switcher share nothing but the
controller: ``provider/server.py`` starts and stops them side by side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiodocker
import aiohttp
import structlog
from aiodocker.events import DockerEvents

from provider.controller import Controller
from provider.core.docker_normalize import list_signature, normalize, parse_time
from provider.core.model import Container
from provider.settings import Settings

log = structlog.get_logger("bluegreen.docker")

#: An event burst ends after this much quiet...
DEBOUNCE_QUIET_S = 0.005
#: ...or this long after its first event, whichever comes first.
DEBOUNCE_MAX_S = 0.05
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
INSPECT_CONCURRENCY = 8
#: Plain API calls; the event stream itself has no read timeout.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15, sock_connect=5)
#: Replay this much of the daemon's event log when subscribing, so nothing that
#: happens between subscribing and the first listing is missed.
SINCE_SLACK_S = 1.0
#: Container events that can change what we observe (``health_status`` also
#: matches ``health_status: healthy`` and friends).
EVENT_ACTIONS = (
    "create",
    "start",
    "restart",
    "die",
    "stop",
    "kill",
    "oom",
    "destroy",
    "pause",
    "unpause",
    "rename",
    "update",
    "health_status",
)
#: Network events that change a container's addresses; ``Actor.Attributes.container``
#: names the container (``Actor.ID`` is the network).
NETWORK_ACTIONS = ("connect", "disconnect")
_TIMED_OUT = object()
DockerFailure = (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError)


async def reconnecting(
    session: Callable[[], Awaitable[tuple[str, bool]]], controller: Controller, event: str
) -> None:
    """Run ``session`` again and again, with capped exponential backoff between them.

    A session returns why it ended and whether it had synced (then the backoff
    starts over). Docker is marked disconnected after each one; the first
    failure in a row is logged as news, the retries quietly. Shared by the
    container and the Swarm watchers; runs until cancelled.
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
    controller: Controller,
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
        return _describe(failure)
    return reason


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


# -- watching -------------------------------------------------------------------


class DockerWatcher:
    """Feeds the controller from one Docker Engine; the server's ``cleanup_ctx`` owns its task."""

    def __init__(self, controller: Controller, settings: Settings) -> None:
        self.controller = controller
        self.settings = settings
        self.prefix = settings.label_prefix
        self._docker: aiodocker.Docker | None = None
        self._signatures: dict[str, tuple[str, str]] = {}

    async def close(self) -> None:
        """Release the Docker client if a cancelled session left it open."""
        docker, self._docker = self._docker, None
        if docker is not None:
            await docker.close()

    async def run(self) -> None:
        """Watch until cancelled, reconnecting with capped exponential backoff."""
        await reconnecting(self._session, self.controller, "docker_unavailable")

    async def _session(self) -> tuple[str, bool]:
        """Connect, sync, follow events until Docker goes away; say why it ended."""
        docker = aiodocker.Docker(url=self.settings.docker_host, timeout=REQUEST_TIMEOUT)
        self._docker = docker
        events: DockerEvents = docker.events
        subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        stream: asyncio.Task[None] | None = None
        synced = False
        reason = "the session was cancelled"  # replaced below unless it is
        try:
            info = await docker.system.info()
            stream = start_stream(events, self.controller, info, event_filters(), "docker-events")
            await self._full_sync(docker)
            synced = True
            await self.controller.mark_synced()
            await self.controller.set_docker_connected(True)
            await self._follow(docker, subscriber)
            reason = "the Docker event stream ended"
        except DockerFailure as exc:
            reason = _describe(exc)
        except Exception as exc:  # a bug must not stop the watching for good
            log.exception("docker_watch_failed")
            reason = f"watcher error: {_describe(exc)}"
        finally:
            reason = await stop_stream(stream, reason)
            self._docker = None
            await docker.close()
        return reason, synced

    async def _follow(self, docker: aiodocker.Docker, subscriber: Any) -> None:
        """Reconcile after every event burst and every resync interval; return at stream end."""
        loop = asyncio.get_running_loop()
        interval = self.settings.resync_interval
        next_resync = loop.time() + interval if interval > 0 else None
        while True:
            timeout = None if next_resync is None else max(0.0, next_resync - loop.time())
            event = await _next_event(subscriber, timeout)
            if event is _TIMED_OUT:
                await self._full_sync(docker)
                next_resync = loop.time() + interval
                continue
            if event is None:
                return
            if (first := self._relevant(event)) is None:
                continue
            touched = {first}
            first_at = time.time()
            lag = first_at - float(event.get("timeNano") or first_at * 1e9) / 1e9
            ended = False
            burst_end = loop.time() + DEBOUNCE_MAX_S
            while (wait := min(DEBOUNCE_QUIET_S, burst_end - loop.time())) > 0:
                more = await _next_event(subscriber, wait)
                if more is _TIMED_OUT:
                    break
                if more is None:
                    ended = True
                    break
                if (cid := self._relevant(more)) is not None:
                    touched.add(cid)
            await self._reconcile(docker, touched)
            log.debug(
                "docker_events_reconciled",
                containers=len(touched),
                event_lag_ms=round(lag * 1000, 1),
                took_ms=round((time.time() - first_at) * 1000, 1),
            )
            if ended:
                return

    def _relevant(self, event: Mapping[str, Any]) -> str | None:
        """The id of the container an event concerns, or ``None`` if it concerns none of ours.

        The daemon cannot filter by label across event types (a network event
        carries the network's attributes, not the container's labels), so the
        subscription takes every container and network event of the wanted
        actions and this keeps those of labelled containers, and the network
        changes of containers we know (a new container's own events cover it).
        A container we know counts without its labels: some engines leave them
        out of a ``die`` or ``destroy`` event, and dropping that would keep a dead
        container served until the next resync.
        """
        actor: Mapping[str, Any] = event.get("Actor") or {}
        attributes: Mapping[str, Any] = actor.get("Attributes") or {}
        known = self.controller.containers
        if event.get("Type") == "network":
            cid = str(attributes.get("container") or "")
            return cid if cid in known else None
        cid = str(actor.get("ID") or event.get("id") or "")
        if not cid or (cid not in known and f"{self.prefix}.service" not in attributes):
            return None
        return cid

    async def _list(self, docker: aiodocker.Docker) -> dict[str, Mapping[str, Any]]:
        listed = await docker.containers.list(
            all=True, filters={"label": [f"{self.prefix}.service"]}
        )
        return {
            str(c["Id"]): {"State": c["State"], "Status": c["Status"]} for c in listed if "Id" in c
        }

    async def _inspect(
        self, docker: aiodocker.Docker, ids: Iterable[str]
    ) -> dict[str, Container | None]:
        """Inspect concurrently (bounded); ``None`` for a container gone meanwhile."""
        limit = asyncio.Semaphore(INSPECT_CONCURRENCY)

        async def one(cid: str) -> tuple[str, Container | None]:
            async with limit:
                try:
                    doc = await docker.containers.container(cid).show()
                except aiodocker.DockerError as exc:
                    if exc.status == 404:
                        return cid, None
                    raise
            return cid, normalize(doc, self.prefix, self.controller.containers.get(cid))

        return dict(await asyncio.gather(*(one(cid) for cid in ids)))

    async def _full_sync(self, docker: aiodocker.Docker) -> None:
        """List and inspect everything; the result replaces what the controller knows."""
        summaries = await self._list(docker)
        inspected = await self._inspect(docker, summaries)
        found = {cid: c for cid, c in inspected.items() if c is not None}
        self._signatures = {cid: list_signature(summaries[cid]) for cid in found}
        if dict(self.controller.containers) != found or not self.controller.synced:
            await self.controller.replace_containers(found.values())
        log.debug("docker_synced", containers=len(found))

    async def _reconcile(self, docker: aiodocker.Docker, touched: set[str]) -> None:
        """Re-list; re-inspect what events touched, what is new, what the listing shows changed."""
        summaries = await self._list(docker)
        known = self.controller.containers
        stale = [
            cid
            for cid, summary in summaries.items()
            if cid in touched
            or cid not in known
            or self._signatures.get(cid) != list_signature(summary)
        ]
        inspected = await self._inspect(docker, stale)
        changed: list[Container] = []
        removed = [cid for cid in known if cid not in summaries]
        for cid, container in inspected.items():
            if container is None:
                removed.append(cid)
                continue
            self._signatures[cid] = list_signature(summaries[cid])
            if known.get(cid) != container:
                changed.append(container)
        for cid in removed:
            self._signatures.pop(cid, None)
        removed = [cid for cid in removed if cid in known]
        if changed or removed:
            await self.controller.update_containers(changed, removed)


async def _next_event(subscriber: Any, timeout: float | None) -> Any:
    """The next event, ``None`` at stream end, or ``_TIMED_OUT``."""
    try:
        async with asyncio.timeout(timeout):
            return await subscriber.get()
    except TimeoutError:
        return _TIMED_OUT


def event_filters() -> dict[str, list[str]]:
    """The event subscription: container changes and network (dis)connects.

    No label filter: the daemon ANDs it with the type, and network events do
    not carry the container's labels, so :meth:`DockerWatcher._relevant` does
    the label check on our side.
    """
    return {
        "type": ["container", "network"],
        "event": sorted({*EVENT_ACTIONS, *NETWORK_ACTIONS}),
    }
