"""The controller's observations: containers in, effective views and the served body out.

The base of :class:`provider.controller.Controller`: it holds what Docker
shows (containers, the daemon's clock, the connection), groups it into views,
keeps a service with label errors in its last good shape, and rebuilds the
cached ``/traefik`` body from the views, the state's active colors and the
canary weights. Committing states is :mod:`provider.state_commits`' concern.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog

from provider.core import canary as canaries
from provider.core import maintenance, transitions
from provider.core.applied import Timing
from provider.core.model import Color, Container, State
from provider.core.promotion import Pending
from provider.core.render import render, serialize
from provider.core.routing import (
    Observation,
    ServiceView,
    active_color,
    initial_color,
    keep_shape,
)
from provider.core.routing import observe as group
from provider.errors import UnknownService
from provider.events import EventBus, EventKind, Seen, publish_observed, publish_pending_stages
from provider.metrics import Metrics
from provider.settings import Settings
from provider.traefik_pollers import TraefikPollers

log = structlog.get_logger("bluegreen.controller")


@dataclass(frozen=True)
class PendingSwitches:
    """What one service's automatic promotion and rollback wait for; typed until ``/status``."""

    promotion: Pending | None = None
    rollback: Pending | None = None


class ObservedServices:
    """What Docker shows and what is served from it: containers, views, the body."""

    def __init__(
        self,
        settings: Settings,
        state: State,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        events: EventBus | None = None,
    ) -> None:
        self.settings = settings
        self.options = settings.options
        self.metrics = metrics or Metrics()
        self.clock = clock
        #: Docker daemon's clock minus ours (seconds); generation anchors use the daemon's.
        self.daemon_offset = 0.0
        self.state = state
        self.lock = asyncio.Lock()
        self.synced = False
        self.docker_connected = False
        self.docker_error: str | None = None
        #: Per service, what the automatic promotion and rollback wait for (``publish_pending``).
        self._pending: dict[str, PendingSwitches] = {}
        #: Per service, when the running canary's step is judged next (told by its driver).
        self._canary_next: dict[str, float] = {}
        self._bake_next: dict[str, float] = {}  #: when the bake driver judges each bake next
        self._containers: dict[str, Container] = {}
        self._first_seen: dict[str, float] = {}
        self._last_good: dict[str, ServiceView] = {}
        self.observation = Observation({})
        self.body = serialize({})
        #: Who polls /traefik and what each applied (``/status``'s ``traefik``); stamps the body.
        self.pollers = TraefikPollers(
            Timing(settings.hold),
            self.options.labels.entrypoints,
            enabled=not settings.swarm,
            clock=clock,
        )
        #: The rendered config's bytes before the probe was added (what decides a rebuild).
        self._rendered = self.body
        #: Bumped whenever observations or state change, so watchers can wait on it.
        self.changed = asyncio.Condition(self.lock)
        #: Typed events of every state change (``GET /events``, the status page, webhooks).
        self.events = events or EventBus(buffer=settings.events_buffer, clock=clock)
        self._seen: Seen = ({}, {})

    # -- observations ---------------------------------------------------------

    @property
    def containers(self) -> Mapping[str, Container]:
        return self._containers

    async def replace_containers(self, containers: Iterable[Container]) -> None:
        """A full resync: the given containers are everything that exists."""
        async with self.lock:
            self._containers = {c.id: c for c in containers}
            await self._refresh()

    async def update_containers(
        self, changed: Iterable[Container], removed: Iterable[str] = ()
    ) -> None:
        """An incremental update after a re-inspect."""
        async with self.lock:
            for c in changed:
                self._containers[c.id] = c
            for cid in removed:
                self._containers.pop(cid, None)
            await self._refresh()

    def daemon_now(self) -> float:
        """Now in the Docker daemon's clock, which stamps ``Container.created``."""
        return self.clock() + self.daemon_offset

    def set_daemon_offset(self, seconds: float) -> None:
        """The watcher measured the daemon's clock (``GET /info``'s ``SystemTime``)."""
        if abs(seconds - self.daemon_offset) >= 1.0:
            log.info("docker_clock_offset", offset_s=round(seconds, 3))
        self.daemon_offset = seconds

    async def mark_synced(self) -> None:
        """The first full sync finished: ``/traefik`` may answer 200 from now on."""
        async with self.lock:
            if not self.synced:
                self.synced = True
                log.info("first_sync_done", services=len(self.observation.services))
            self.changed.notify_all()

    async def set_docker_connected(self, connected: bool, error: str | None = None) -> None:
        """Docker answers again, or not; the automatic switcher must notice at once."""
        async with self.lock:
            if connected != self.docker_connected:
                log.info("docker_connection", connected=connected, error=error)
                change = (
                    ("disconnected", "connected") if connected else ("connected", "disconnected")
                )
                self.events.publish(
                    EventKind.DOCKER, None, from_=change[0], to=change[1], error=error
                )
            self.docker_connected = connected
            self.docker_error = None if connected else error
            self.changed.notify_all()

    def publish_pending(self, pending: Mapping[str, PendingSwitches]) -> None:
        """What every service's automatic switch waits for now. Caller holds the lock.

        Replaces the whole table: a service left out has nothing pending. Each
        pending promotion or rollback that reached a new stage is published as a
        ``promotion``/``rollback`` event, from the typed values.
        """
        before = self._pending
        self._pending = {
            name: item
            for name, item in pending.items()
            if item.promotion is not None or item.rollback is not None
        }
        for name, item in sorted(self._pending.items()):
            old = before.get(name) or PendingSwitches()
            publish_pending_stages(self.events, name, old.promotion, item.promotion)
            publish_pending_stages(self.events, name, old.rollback, item.rollback)

    def pending(self, service: str) -> PendingSwitches:
        """What ``service``'s automatic promotion and rollback wait for."""
        return self._pending.get(service) or PendingSwitches()

    async def _refresh(self) -> None:
        """Recompute views, adopt new services, rebuild the body. Caller holds the lock."""
        now = self.daemon_now()
        self.observation = group(self._containers.values(), self.options)
        for name in self.observation.services:
            self._first_seen.setdefault(name, now)
        await self._adopt_new_services()
        self._rebuild()
        self._seen = publish_observed(self.events, self.observation, self._seen)
        self.changed.notify_all()

    async def _adopt_new_services(self) -> None:
        """Commit the adoption of services seen for the first time (in ``StateCommits``)."""
        raise NotImplementedError

    def _with_adoptions(self, state: State) -> State:
        """``state`` plus the active color of each new service that has a routable one."""
        for name, view in self.observation.services.items():
            if name in state.services:
                continue
            color = initial_color(view)
            if color is not None and not view.errors:
                state = transitions.adopt(state, name, color, self._first_seen[name])
        return state

    def effective_views(self) -> dict[str, ServiceView]:
        """The views to render: a service with label errors keeps its last good shape.

        Its servers still follow the observation (``routing.keep_shape``).
        """
        views: dict[str, ServiceView] = {}
        for name, view in self.observation.services.items():
            if not view.errors:
                self._last_good[name] = view
                views[name] = view
            elif name in self._last_good:
                views[name] = keep_shape(self._last_good[name], view)
        for name in list(self._last_good):
            if name not in self.observation.services:
                del self._last_good[name]
        return views

    def active(self, name: str) -> Color:
        view = self.observation.services.get(name)
        state = self.state.services.get(name)
        if view is None:
            return state.active if state else Color.BLUE
        return active_color(view, state)

    async def restamp(self) -> None:
        """The probe's URL became known: serve the body with it (and wake held polls)."""
        async with self.lock:
            self._rebuild(restamp=True)
            self.changed.notify_all()

    def _rebuild(self, *, restamp: bool = False) -> None:
        views = self.effective_views()
        actives = {name: self.active(name) for name in views}
        weights = canaries.weights(self.state)
        windows = maintenance.retry_after_of(self.state)
        config = render(views, actives, self.options, weights, windows)
        rendered = serialize(config)
        if rendered != self._rendered or restamp:
            self._rendered = rendered
            self.body = self.pollers.stamp(config)
            self.metrics.renders += 1

    def view(self, service: str) -> ServiceView:
        view = self.observation.services.get(service)
        if view is None:
            # Known without containers: it can still be switched, or taken out of maintenance.
            if service in self.state.services or service in self.state.maintenance:
                return ServiceView(service, {})
            raise UnknownService(f"no container carries service {service!r}")
        return view
