"""The Docker watcher: keeps the controller's view of the containers true.

Level-triggered, as Traefik's Docker provider: events are only wake-ups. On
(re)connect the watcher lists every container carrying ``<prefix>.service``
(running or not), inspects each, and hands the controller the whole set;
after an event burst it re-lists and re-inspects what the burst touched or
what the listing shows has changed; a periodic full resync heals anything a
missed event left wrong. Raw Docker JSON stops here: :func:`normalize` turns
it into :class:`provider.model.Container`.

Losing Docker (socket gone, daemon restarted, event stream ended: in
aiodocker a ``None`` from the subscriber) keeps the last observations, marks
Docker disconnected, and reconnects with capped exponential backoff; the
automatic switcher decides nothing until the full resync after the
reconnect has finished.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import aiodocker
import aiohttp
import structlog
from aiodocker.events import DockerEvents

from provider.auto_switch import AutoSwitcher, policy_from
from provider.controller import Controller
from provider.model import Container, Health
from provider.settings import Settings

log = structlog.get_logger("bluegreen.docker")

#: An event burst ends after this much quiet...
DEBOUNCE_QUIET_S = 0.005
#: ...or this long after its first event, whichever comes first.
DEBOUNCE_MAX_S = 0.05
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
INSPECT_CONCURRENCY = 8
MAX_HEALTH_OUTPUT = 500
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
_HEALTH = {h.value: h for h in Health}
_UNSET_TIME = "0001-01-01T00:00:00Z"
_TIMED_OUT = object()
DockerFailure = (aiodocker.DockerError, aiohttp.ClientError, OSError, TimeoutError)


# -- normalizing ----------------------------------------------------------------


def parse_time(raw: object) -> float | None:
    """Docker's RFC 3339 timestamps (nanoseconds, ``Z``) as POSIX seconds; unset is ``None``."""
    if not isinstance(raw, str) or not raw or raw.startswith("0001-01-01"):
        return None
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{main}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _healthy_since(state: Mapping[str, Any], health: Health) -> float | None:
    """When the container last became routable, from Docker's own records.

    For a healthcheck: the end of the first check of the current run of
    passing checks (Docker keeps the last five), never before the start.
    Without a healthcheck: when it started.
    """
    if state.get("Status") != "running":
        return None
    started = parse_time(state.get("StartedAt"))
    if health is Health.NONE:
        return started
    if health is not Health.HEALTHY:
        return None
    streak: float | None = None
    for entry in reversed((state.get("Health") or {}).get("Log") or []):
        if not isinstance(entry, Mapping) or entry.get("ExitCode") != 0:
            break
        streak = parse_time(entry.get("End")) or streak
    if streak is None:
        return None
    return max(streak, started) if started is not None else streak


def normalize(doc: Mapping[str, Any], prefix: str) -> Container:
    """One ``GET /containers/{id}/json`` answer as a :class:`Container`."""
    state: Mapping[str, Any] = doc.get("State") or {}
    config: Mapping[str, Any] = doc.get("Config") or {}
    health_doc: Mapping[str, Any] = state.get("Health") or {}
    health = _HEALTH.get(str(health_doc.get("Status") or "none"), Health.STARTING)
    output = ""
    health_log = health_doc.get("Log") or []
    if health_log and isinstance(health_log[-1], Mapping):
        output = str(health_log[-1].get("Output") or "").strip()[-MAX_HEALTH_OUTPUT:]
    labels = {
        str(k): str(v)
        for k, v in (config.get("Labels") or {}).items()
        if str(k).startswith(f"{prefix}.")
    }
    networks: dict[str, str] = {}
    for name, net in ((doc.get("NetworkSettings") or {}).get("Networks") or {}).items():
        net = net or {}
        networks[str(name)] = str(net.get("IPAddress") or net.get("GlobalIPv6Address") or "")
    ports: set[int] = set()
    for spec in config.get("ExposedPorts") or {}:
        number, _, proto = str(spec).partition("/")
        if number.isdigit() and proto in ("", "tcp"):
            ports.add(int(number))
    return Container(
        id=str(doc["Id"]),
        name=str(doc.get("Name") or "").lstrip("/"),
        state=str(state.get("Status") or "unknown"),
        health=health,
        labels=labels,
        created=parse_time(doc.get("Created")) or 0.0,
        networks=networks,
        network_mode=str((doc.get("HostConfig") or {}).get("NetworkMode") or "default"),
        exposed_ports=tuple(sorted(ports)),
        health_output=output,
        healthy_since=_healthy_since(state, health),
    )


def list_signature(summary: Mapping[str, Any]) -> tuple[str, str]:
    """What ``GET /containers/json`` says of a container that inspect would refine.

    ``Status`` reads like ``Up 3 seconds (healthy)``: only the state and the
    parenthesised health are kept, so the signature changes exactly when a
    re-inspect is worth it.
    """
    status = str(summary.get("Status") or "")
    health = status[status.rfind("(") :] if status.endswith(")") else ""
    return str(summary.get("State") or ""), health


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:300]


# -- watching -------------------------------------------------------------------


class DockerWatcher:
    """Feeds the controller from one Docker Engine and runs the automatic switcher."""

    def __init__(self, controller: Controller, settings: Settings) -> None:
        self.controller = controller
        self.settings = settings
        self.prefix = settings.label_prefix
        self.switcher = AutoSwitcher(controller, policy_from(settings), clock=controller.clock)
        self._docker: aiodocker.Docker | None = None
        self._signatures: dict[str, tuple[str, str]] = {}

    async def run(self) -> None:
        """Watch until cancelled; the switcher runs alongside and stops with it."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch(), name="docker-watch")
            group.create_task(self.switcher.run(), name="auto-switch")

    async def close(self) -> None:
        """Release the Docker client if a cancelled session left it open."""
        docker, self._docker = self._docker, None
        if docker is not None:
            await docker.close()

    async def _watch(self) -> None:
        delay = BACKOFF_FIRST_S
        failures = 0
        while True:
            reason, synced = await self._session()
            await self._set_connected(False, reason)
            if synced:
                delay, failures = BACKOFF_FIRST_S, 0
            failures += 1
            # The first failure in a row is news; the retries are not.
            emit = log.warning if failures == 1 else log.debug
            emit("docker_unavailable", error=reason, retry_in=round(delay, 2))
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _session(self) -> tuple[str, bool]:
        """Connect, sync, follow events until Docker goes away; say why it ended."""
        docker = aiodocker.Docker(url=self.settings.docker_host, timeout=REQUEST_TIMEOUT)
        self._docker = docker
        events: DockerEvents = docker.events
        subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        stream: asyncio.Task[None] | None = None
        synced = False
        try:
            # The daemon's clock, not ours: a remote daemon's may be skewed.
            info = await docker.system.info()
            now = parse_time(info.get("SystemTime")) or time.time()
            stream = asyncio.create_task(
                events.run(
                    filters=event_filters(),
                    since=f"{now - SINCE_SLACK_S:.6f}",
                ),
                name="docker-events",
            )
            await self._full_sync(docker)
            synced = True
            self.controller.mark_synced()
            await self._set_connected(True)
            await self._follow(docker, subscriber)
            reason = "the Docker event stream ended"
        except DockerFailure as exc:
            reason = _describe(exc)
        except Exception as exc:  # a bug must not stop the watching for good
            log.exception("docker_watch_failed")
            reason = f"watcher error: {_describe(exc)}"
        finally:
            if stream is not None:
                stream.cancel()
                await asyncio.wait([stream])
                if not stream.cancelled() and (failure := stream.exception()) is not None:
                    reason = _describe(failure)
            self._docker = None
            await docker.close()
        return reason, synced

    async def _set_connected(self, connected: bool, error: str | None = None) -> None:
        """Flip the flag and wake the switcher, which must notice at once."""
        async with self.controller.changed:
            self.controller.set_docker_connected(connected, error)
            self.controller.changed.notify_all()

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
        """
        actor: Mapping[str, Any] = event.get("Actor") or {}
        attributes: Mapping[str, Any] = actor.get("Attributes") or {}
        if event.get("Type") == "network":
            cid = str(attributes.get("container") or "")
            return cid if cid in self.controller.containers else None
        if f"{self.prefix}.service" not in attributes:
            return None
        return str(actor.get("ID") or event.get("id") or "") or None

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
            return cid, normalize(doc, self.prefix)

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
