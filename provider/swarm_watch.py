"""The Swarm watcher: keeps the controller's view of a Swarm's tasks true (``--swarm``).

The same outward behaviour as :class:`provider.docker_watch.DockerWatcher`
(first full sync, then ``mark_synced``; ``set_docker_connected``; reconnect
with capped exponential backoff; the daemon's clock offset), over Swarm's
objects instead of one engine's containers: services carrying
``<prefix>.service`` and their tasks, normalized by
:func:`provider.core.swarm_normalize.normalize_tasks` into the same
:class:`provider.core.model.Container` observations.

Level-triggered, and more so than on one host: a manager emits ``service``,
``node`` and ``network`` events for the whole swarm but no task events at all,
and ``container`` events only for the tasks on its own node. So every read is
a full one (services, then their tasks), made after any event burst that
concerns our services, and at the latest every ``--swarm-poll`` seconds.

The daemon must be a Swarm manager (only managers answer ``GET /tasks``):
:func:`check_manager` makes a reachable non-manager a startup
error; a daemon not reachable yet is retried like on one host.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import aiodocker
import structlog
from aiodocker.events import DockerEvents

from provider.controller import Controller
from provider.core.model import Container
from provider.core.swarm_normalize import normalize_tasks
from provider.docker_watch import (
    _TIMED_OUT,
    DEBOUNCE_MAX_S,
    DEBOUNCE_QUIET_S,
    EVENT_ACTIONS,
    REQUEST_TIMEOUT,
    DockerFailure,
    _describe,
    _next_event,
    reconnecting,
    start_stream,
    stop_stream,
)
from provider.errors import SettingsError
from provider.settings import Settings

log = structlog.get_logger("bluegreen.swarm")

#: Swarm-scoped object events that can change the services or where tasks run.
SWARM_TYPES = ("service", "node")
SWARM_ACTIONS = ("create", "update", "remove")
#: The label Docker puts on a task's container: names the service it belongs to.
TASK_SERVICE_LABEL = "com.docker.swarm.service.id"


class NotAManager(Exception):
    """The daemon answers but is not a Swarm manager; the message says what it is."""


def manager_problem(info: Mapping[str, Any], docker_host: str) -> str | None:
    """Why the daemon behind ``docker_host`` cannot serve ``--swarm``, or ``None``."""
    swarm: Mapping[str, Any] = info.get("Swarm") or {}
    node_state = str(swarm.get("LocalNodeState") or "inactive")
    if node_state == "active" and swarm.get("ControlAvailable"):
        return None
    what = "a Swarm worker" if node_state == "active" else f"not in a Swarm ({node_state})"
    return (
        f"--swarm (BLUEGREEN_SWARM): the Docker daemon at {docker_host} is {what}, and only "
        "a Swarm manager lists services and tasks; run the provider on a manager node (a "
        "global service constrained to node.role == manager), or drop --swarm"
    )


def event_filters() -> dict[str, list[str]]:
    """Service and node changes, and the local task containers' lifecycle and health."""
    return {
        "type": [*SWARM_TYPES, "container"],
        "event": sorted({*SWARM_ACTIONS, *EVENT_ACTIONS}),
    }


async def check_manager(docker_host: str) -> None:
    """Refuse to start against a reachable daemon that is not a manager (exit 2).

    A daemon that does not answer yet is the watcher's to retry, as on one host.
    """
    docker = aiodocker.Docker(url=docker_host, timeout=REQUEST_TIMEOUT)
    try:
        info = await docker.system.info()
    except DockerFailure:
        return
    finally:
        await docker.close()
    problem = manager_problem(info, docker_host)
    if problem is not None:
        raise SettingsError(problem)


class SwarmWatcher:
    """Feeds the controller from a Swarm manager; the server's ``cleanup_ctx`` owns its task."""

    def __init__(self, controller: Controller, settings: Settings) -> None:
        self.controller = controller
        self.settings = settings
        self.prefix = settings.label_prefix
        self._docker: aiodocker.Docker | None = None
        #: IDs of the labelled services at the last read: their containers' events wake us.
        self._services: set[str] = set()
        self._network_names: dict[str, str] = {}

    async def close(self) -> None:
        """Release the Docker client if a cancelled session left it open."""
        docker, self._docker = self._docker, None
        if docker is not None:
            await docker.close()

    async def run(self) -> None:
        """Watch until cancelled, reconnecting with capped exponential backoff."""
        await reconnecting(self._session, self.controller, "swarm_unavailable")

    async def _session(self) -> tuple[str, bool]:
        """Connect, sync, follow events and polls until the manager goes; say why it ended."""
        docker = aiodocker.Docker(url=self.settings.docker_host, timeout=REQUEST_TIMEOUT)
        self._docker = docker
        events: DockerEvents = docker.events
        subscriber = events.subscribe(create_task=False)  # type: ignore[no-untyped-call]
        stream: asyncio.Task[None] | None = None
        synced = False
        reason = "the session was cancelled"  # replaced below unless it is
        try:
            info = await docker.system.info()
            problem = manager_problem(info, self.settings.docker_host)
            if problem is not None:
                raise NotAManager(problem)
            stream = start_stream(events, self.controller, info, event_filters(), "swarm-events")
            await self._sync(docker)
            synced = True
            await self.controller.mark_synced()
            await self.controller.set_docker_connected(True)
            await self._follow(docker, subscriber)
            reason = "the Docker event stream ended"
        except (*DockerFailure, NotAManager) as exc:
            reason = _describe(exc)
        except Exception as exc:  # a bug must not stop the watching for good
            log.exception("swarm_watch_failed")
            reason = f"watcher error: {_describe(exc)}"
        finally:
            reason = await stop_stream(stream, reason)
            self._docker = None
            await docker.close()
        return reason, synced

    async def _follow(self, docker: aiodocker.Docker, subscriber: Any) -> None:
        """Re-read after each relevant event burst and each poll interval; return at stream end."""
        loop = asyncio.get_running_loop()
        poll = self.settings.swarm_poll
        next_poll = loop.time() + poll
        while True:
            event = await _next_event(subscriber, max(0.0, next_poll - loop.time()))
            if event is None:
                return
            ended = False
            if event is not _TIMED_OUT:
                if not self._relevant(event):
                    continue
                burst_end = loop.time() + DEBOUNCE_MAX_S
                while (wait := min(DEBOUNCE_QUIET_S, burst_end - loop.time())) > 0:
                    more = await _next_event(subscriber, wait)
                    if more is _TIMED_OUT:
                        break
                    if more is None:
                        ended = True
                        break
            started = time.time()
            await self._sync(docker)
            next_poll = loop.time() + poll
            if event is not _TIMED_OUT:
                log.debug(
                    "swarm_events_reconciled", took_ms=round((time.time() - started) * 1000, 1)
                )
            if ended:
                return

    def _relevant(self, event: Mapping[str, Any]) -> bool:
        """Service and node events always; container events of our services' tasks."""
        if event.get("Type") in SWARM_TYPES:
            return True
        attributes: Mapping[str, Any] = (event.get("Actor") or {}).get("Attributes") or {}
        return str(attributes.get(TASK_SERVICE_LABEL) or "") in self._services

    async def _read(self, docker: aiodocker.Docker) -> dict[str, Container]:
        """Services carrying the label, their tasks, normalized."""
        label = f"{self.prefix}.service"
        services = await docker.services.list(filters={"label": [label]})
        self._services = {str(s["ID"]) for s in services if "ID" in s}
        if not self._services:
            return {}
        tasks = await docker.tasks.list(filters={"service": sorted(self._services)})
        if any(_unnamed(task, self._network_names) for task in tasks):
            listed = await docker._query_json("networks", method="GET")
            self._network_names = {str(n.get("Id")): str(n.get("Name")) for n in listed}
        return normalize_tasks(services, tasks, self.prefix, self._network_names)

    async def _sync(self, docker: aiodocker.Docker) -> None:
        """One full read; the controller hears of it only when something changed."""
        found = await self._read(docker)
        if dict(self.controller.containers) != found or not self.controller.synced:
            await self.controller.replace_containers(found.values())
            log.debug("swarm_synced", tasks=len(found), services=len(self._services))


def _unnamed(task: Mapping[str, Any], names: Mapping[str, str]) -> bool:
    """True if an attachment carries no network name we could name it by."""
    for attachment in task.get("NetworksAttachments") or []:
        network: Mapping[str, Any] = attachment.get("Network") or {}
        if not (network.get("Spec") or {}).get("Name") and str(network.get("ID")) not in names:
            return True
    return False
