"""The provider's single owner of state: observations in, switches, served body out.

Every mutation (new observations from the watcher, a switch from the API or
the watcher) runs under one ``asyncio.Lock``: the new state is computed by
the pure core, persisted atomically, and only then made visible and logged.
The served ``/traefik`` body is cached bytes, rebuilt when the inputs change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from provider import store, transitions
from provider.errors import BadRequest, StateFileError, SwitchRefused, UnknownService
from provider.events import EventBus, EventKind, Seen, images_of, publish_observed
from provider.metrics import Metrics
from provider.model import Color, Container, State, SwitchRecord
from provider.render import render, serialize
from provider.routing import Observation, ServiceView, active_color, check_switch, initial_color
from provider.routing import observe as group
from provider.settings import Settings
from provider.status import service_status

log = structlog.get_logger("bluegreen.controller")


@dataclass(frozen=True)
class SwitchResult:
    """What a switch request did."""

    service: str
    active: Color
    previous: Color | None
    changed: bool
    record: SwitchRecord | None


class Controller:
    """Holds observations and state; the API and the watcher both go through it."""

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
        self.state = state
        self.lock = asyncio.Lock()
        self.synced = False
        self.docker_connected = False
        self.docker_error: str | None = None
        #: Per service, what the watcher's automatic promotion waits for.
        self.pending: dict[str, dict[str, Any]] = {}
        #: Per service, what the watcher's automatic rollback waits for.
        self.pending_rollback: dict[str, dict[str, Any]] = {}
        self._containers: dict[str, Container] = {}
        self._first_seen: dict[str, float] = {}
        self._last_good: dict[str, ServiceView] = {}
        self.observation = Observation({})
        self.body = serialize({})
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

    def mark_synced(self) -> None:
        """The first full sync finished: ``/traefik`` may answer 200 from now on."""
        if not self.synced:
            self.synced = True
            log.info("first_sync_done", services=len(self.observation.services))

    def set_docker_connected(self, connected: bool, error: str | None = None) -> None:
        if connected != self.docker_connected:
            log.info("docker_connection", connected=connected, error=error)
            change = ("disconnected", "connected") if connected else ("connected", "disconnected")
            self.events.publish(EventKind.DOCKER, None, from_=change[0], to=change[1], error=error)
        self.docker_connected = connected
        self.docker_error = None if connected else error

    async def _refresh(self) -> None:
        """Recompute views, adopt new services, rebuild the body. Caller holds the lock."""
        now = self.clock()
        self.observation = group(self._containers.values(), self.options)
        state = self.state
        for name, view in self.observation.services.items():
            self._first_seen.setdefault(name, now)
            if name in state.services:
                continue
            color = initial_color(view)
            if color is not None and not view.errors:
                state = transitions.adopt(state, name, color, self._first_seen[name])
                log.info("service_adopted", service=name, active=str(color))
        if state is not self.state:
            await self._persist(state)
        self._rebuild()
        self._seen = publish_observed(self.events, self.observation, self._seen)
        self.changed.notify_all()

    def effective_views(self) -> dict[str, ServiceView]:
        """The views to render: a service with label errors keeps its last good view."""
        views: dict[str, ServiceView] = {}
        for name, view in self.observation.services.items():
            if not view.errors:
                self._last_good[name] = view
                views[name] = view
            elif name in self._last_good:
                views[name] = self._last_good[name]
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

    def _rebuild(self) -> None:
        views = self.effective_views()
        actives = {name: self.active(name) for name in views}
        body = serialize(render(views, actives, self.options))
        if body != self.body:
            self.body = body
            self.metrics.renders += 1

    async def _persist(self, state: State) -> None:
        await asyncio.to_thread(store.save, self.settings.state_file, state)
        self.state = state

    # -- switching ------------------------------------------------------------

    def view(self, service: str) -> ServiceView:
        view = self.observation.services.get(service)
        if view is None:
            if service in self.state.services:
                return ServiceView(service, {})
            raise UnknownService(f"no container carries service {service!r}")
        return view

    async def switch(
        self,
        service: str,
        color: Color | None = None,
        *,
        force: bool = False,
        reason: str = "manual",
        actor: str = "api",
    ) -> SwitchResult:
        """Switch ``service`` to ``color`` (default: the other one)."""
        async with self.lock:
            return await self._switch(service, color, force=force, reason=reason, actor=actor)

    async def rollback(
        self, service: str, *, force: bool = False, actor: str = "api"
    ) -> SwitchResult:
        """Switch back to the previous color."""
        async with self.lock:
            self.view(service)
            state = self.state.services.get(service)
            if state is None or state.previous is None:
                raise SwitchRefused(f"service {service} has no previous color to roll back to")
            return await self._switch(
                service, state.previous, force=force, reason="rollback", actor=actor
            )

    async def _switch(
        self, service: str, color: Color | None, *, force: bool, reason: str, actor: str
    ) -> SwitchResult:
        view = self.view(service)
        current = self.active(service)
        target = color or current.other
        if target is current and service in self.state.services:
            svc = self.state.services[service]
            return SwitchResult(service, current, svc.previous, False, None)
        check_switch(view, target, force=force)
        state = self.state
        if service not in state.services:
            state = transitions.adopt(state, service, current, self._first_seen.get(service, 0.0))
        new_state, record = transitions.switch(
            state,
            service,
            target,
            reason=reason,
            actor=actor,
            now=self.clock(),
            history_limit=self.settings.history_limit,
        )
        try:
            await self._persist(new_state)
        except StateFileError:
            log.error("switch_not_persisted", service=service, to=str(target), reason=reason)
            raise
        self.pending.pop(service, None)
        self.pending_rollback.pop(service, None)
        self._rebuild()
        self.changed.notify_all()
        if record is not None:
            self.metrics.switches[(service, reason)] += 1
            log.info(
                "service_switched",
                service=service,
                from_color=str(record.from_color) if record.from_color else None,
                to_color=str(target),
                reason=reason,
                actor=actor,
                forced=force,
                seq=record.seq,
            )
            self.events.publish_switch(record, images_of(view), forced=force)
        svc = self.state.services[service]
        return SwitchResult(service, svc.active, svc.previous, record is not None, record)

    # -- reading --------------------------------------------------------------

    def status(self, service: str) -> dict[str, Any]:
        view = self.view(service)
        return service_status(
            view,
            self.state.services.get(service),
            self.active(service),
            pending=self.pending.get(service),
            pending_rollback=self.pending_rollback.get(service),
            docker_connected=self.docker_connected,
            shown_stale=bool(view.errors),
        )

    def status_all(self) -> dict[str, Any]:
        names = sorted(set(self.observation.services) | set(self.state.services))
        return {
            "services": {name: self.status(name) for name in names},
            "docker": self.docker_summary(),
            "synced": self.synced,
            "unassigned_errors": list(self.observation.unassigned),
        }

    def docker_summary(self) -> dict[str, Any]:
        return {
            "connected": self.docker_connected,
            "status": "connected" if self.docker_connected else "disconnected",
            "error": self.docker_error,
            "containers": len(self._containers),
        }

    def history(self, service: str | None = None) -> list[dict[str, object]]:
        if service is not None and not service:
            raise BadRequest("service must not be empty")
        return [r.to_json() for r in self.state.history if service in (None, r.service)]
