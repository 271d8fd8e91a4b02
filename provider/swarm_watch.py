"""The Swarm watcher: keeps the controller's view of a Swarm's tasks true (``--swarm``).

The same outward behaviour as :class:`provider.docker_watch.DockerWatcher`,
as both run :class:`provider.watch_session.DaemonWatcher`'s session
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

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import aiodocker
import structlog

from provider.core.model import Container
from provider.core.swarm_normalize import normalize_tasks
from provider.docker_watch import EVENT_ACTIONS
from provider.errors import SettingsError
from provider.settings import Settings
from provider.watch_session import (
    REQUEST_TIMEOUT,
    Burst,
    DaemonUnfit,
    DaemonWatcher,
    DockerFailure,
    Observations,
)

log = structlog.get_logger("bluegreen.swarm")

#: Swarm-scoped object events that can change the services or where tasks run.
SWARM_TYPES = ("service", "node")
SWARM_ACTIONS = ("create", "update", "remove")
#: The label Docker puts on a task's container: names the service it belongs to.
TASK_SERVICE_LABEL = "com.docker.swarm.service.id"


class NotAManager(DaemonUnfit):
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


class SwarmWatcher(DaemonWatcher):
    """Feeds the controller from a Swarm manager's labelled services and their tasks."""

    kind: ClassVar[str] = "swarm"

    def __init__(self, controller: Observations, settings: Settings) -> None:
        super().__init__(controller, settings)
        #: IDs of the labelled services at the last read: their containers' events wake us.
        self._services: set[str] = set()
        self._network_names: dict[str, str] = {}

    def _check(self, info: Mapping[str, Any]) -> None:
        problem = manager_problem(info, self.settings.docker_host)
        if problem is not None:
            raise NotAManager(problem)

    def _event_filters(self) -> dict[str, list[str]]:
        return event_filters()

    def _resync_interval(self) -> float | None:
        return self.settings.swarm_poll

    async def _full_sync(self, docker: aiodocker.Docker) -> None:
        await self._sync(docker)

    async def _reconcile(self, docker: aiodocker.Docker, burst: Burst) -> bool:
        """Every wake is a full read: a manager emits no task events to narrow it down."""
        started = time.time()
        await self._sync(docker)
        log.debug("swarm_events_reconciled", took_ms=round((time.time() - started) * 1000, 1))
        return True

    def _relevant(self, event: Mapping[str, Any]) -> str | None:
        """Service and node events always; container events of our services' tasks.

        The key (the event's type, or the task's service) is only for the
        burst: every wake is a full read.
        """
        if (kind := event.get("Type")) in SWARM_TYPES:
            return str(kind)
        attributes: Mapping[str, Any] = (event.get("Actor") or {}).get("Attributes") or {}
        service = str(attributes.get(TASK_SERVICE_LABEL) or "")
        return service if service in self._services else None

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
