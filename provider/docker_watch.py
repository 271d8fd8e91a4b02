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
controller: ``provider/server.py`` starts and stops them side by side. The
session, the event loop and the reconnecting are
:class:`provider.watch_session.DaemonWatcher`'s, shared with the Swarm
watcher; this module says what one engine's watcher lists, inspects and wakes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import aiodocker
import structlog

from provider.core.docker_normalize import list_signature, normalize, one_off
from provider.core.model import Container
from provider.settings import Settings
from provider.watch_session import Burst, DaemonWatcher, Observations

log = structlog.get_logger("bluegreen.docker")

INSPECT_CONCURRENCY = 8
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


class DockerWatcher(DaemonWatcher):
    """Feeds the controller from one Docker Engine's labelled containers."""

    kind: ClassVar[str] = "docker"

    def __init__(self, controller: Observations, settings: Settings) -> None:
        super().__init__(controller, settings)
        #: Per container, what its last listing said: a change there means re-inspect.
        self._signatures: dict[str, tuple[str, str]] = {}

    def _event_filters(self) -> dict[str, list[str]]:
        return event_filters()

    def _resync_interval(self) -> float | None:
        interval = self.settings.resync_interval
        return interval if interval > 0 else None

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
            str(c["Id"]): {"State": c["State"], "Status": c["Status"]}
            for c in listed
            if "Id" in c and not ("Labels" in c and one_off(c["Labels"]))
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

    async def _reconcile(self, docker: aiodocker.Docker, burst: Burst) -> bool:
        """Re-inspect what the burst touched and what the listing shows changed; not a full sync."""
        await self._reinspect(docker, burst.touched)
        lag = burst.first_at - float(burst.first.get("timeNano") or burst.first_at * 1e9) / 1e9
        log.debug(
            "docker_events_reconciled",
            containers=len(burst.touched),
            event_lag_ms=round(lag * 1000, 1),
            took_ms=round((time.time() - burst.first_at) * 1000, 1),
        )
        return False

    async def _reinspect(self, docker: aiodocker.Docker, touched: frozenset[str]) -> None:
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
