"""The provider's single owner of state: observations in, switches, served body out.

Every mutation (new observations from the watcher, a switch from the API or
the watcher) runs under one ``asyncio.Lock``: the new state is computed by
the pure core, persisted atomically, and only then made visible and logged.
The served ``/traefik`` body is cached bytes, rebuilt when the inputs change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog

from provider.core import bake as bakes
from provider.core import bake_json, commands, maintenance, state_json
from provider.core import canary as canaries
from provider.core.model import Color, Maintenance, ServiceState, SwitchRecord
from provider.core.status import service_status
from provider.core.wakes import wake_timeout
from provider.core.wire import (
    BakeDoc,
    CanaryDoc,
    DockerDoc,
    MaintenanceDoc,
    ServiceStatusDoc,
    StateFileDoc,
    StatusAllDoc,
    SwitchRecordDoc,
    TraefikPollsDoc,
)
from provider.errors import BadRequest
from provider.observations import PendingSwitches
from provider.state_commits import StateCommits

log = structlog.get_logger("bluegreen.controller")

T = TypeVar("T")

__all__ = ["Controller", "PendingSwitches", "SwitchResult"]


@dataclass(frozen=True)
class SwitchResult:
    """What a switch request did."""

    service: str
    active: Color
    previous: Color | None
    changed: bool
    record: SwitchRecord | None


class Controller(StateCommits):
    """Holds observations and state; the API and the watcher both go through it.

    Observations and the served body: :class:`provider.observations.ObservedServices`;
    commits, retries and following other replicas:
    :class:`provider.state_commits.StateCommits`. Here: the commands (decided by
    :mod:`provider.core.commands`), waiting for what is due, and the reads.
    """

    # -- switching ------------------------------------------------------------
    async def switch(
        self,
        service: str,
        color: Color | None = None,
        *,
        force: bool = False,
        reason: str = "manual",
        actor: str = "api",
        automatic: bool = False,
        reject: bool = False,
    ) -> SwitchResult:
        """Switch ``service`` to ``color`` (default: the other one).

        ``automatic`` (the watcher): refused when ``color`` is marked, re-checked
        here under the lock because a ``/retire`` or ``/rollback`` may have
        landed since the decision. ``reject``: mark the color left REJECTED.
        """
        async with self.lock:
            # "The other color" is resolved once: run again after a conflict, the
            # change must not toggle back what another replica just switched.
            self.view(service)
            target = color or self.active(service).other
            first_seen = self._first_seen.get(service, 0.0)
            command = commands.Switch(
                service,
                target,
                force=force,
                reason=reason,
                actor=actor,
                automatic=automatic,
                reject=reject,
                first_seen=first_seen,
            )
            return self._switch_result(service, await self.execute(command))

    async def rollback(
        self,
        service: str,
        *,
        force: bool = False,
        actor: str = "api",
        expect: Color | None = None,
    ) -> SwitchResult:
        """Switch back to the previous color and mark the one left REJECTED.

        ``expect``: the color the caller means to go back to; refused if the
        previous color is another (the state changed since the caller looked).
        """
        command = commands.Rollback(service, force=force, actor=actor, expect=expect)
        async with self.lock:
            return self._switch_result(service, await self.execute(command))

    async def retire(self, service: str, color: Color, *, actor: str = "api") -> ServiceState:
        """Mark ``color`` RETIRING: an operator is about to stop it (``POST /retire``).

        Refused (409) while ``color`` is active. Persisted before it returns;
        from then on no automatic switch targets ``color`` until a new
        generation of it is deployed or an operator switches to it.
        """

        async with self.lock:
            await self.execute(commands.Retire(service, color, actor))
            return self.state.services[service]

    async def set_maintenance(
        self, command: maintenance.SetMaintenance
    ) -> tuple[Maintenance | None, SwitchRecord | None]:
        """Turn maintenance of a service on or off (``POST /maintenance``).

        Persisted before it returns; the record is ``None`` when it already was so.
        """
        async with self.lock:
            decision = await self.execute(command)
            return self.state.maintenance.get(command.service), decision.maintenance

    def maintenance_json(self, service: str) -> MaintenanceDoc | None:
        window = self.state.maintenance.get(service)
        return state_json.maintenance_doc(window) if window is not None else None

    def _switch_result(self, service: str, decision: commands.Decision) -> SwitchResult:
        """What a switch or rollback did, from its (committed) decision. Locked."""
        svc = self.state.services[service]
        record = decision.record if decision.state is not None else None
        return SwitchResult(service, svc.active, svc.previous, record is not None, record)

    # -- canary ---------------------------------------------------------------

    def canary(self, service: str) -> canaries.Canary | None:
        """The service's latest canary (running or finished), or ``None``."""
        return self.state.canaries.get(service)

    async def start_canary(
        self,
        service: str,
        color: Color | None,
        *,
        steps: tuple[int, ...],
        interval: float,
        limits: canaries.Limits,
        actor: str = "api",
        await_ready: bool = False,
    ) -> canaries.Canary:
        """Start a canary of ``color`` (default: idle): persisted, then its first weight served.

        Refused (409) while another canary of the service runs, when the color
        is not ready, or when its containers predate a mark (a rejected deploy).
        ``await_ready`` (the CLI, before its deploy): reserve it WAITING instead;
        the first step starts once containers created from now on are ready.
        """
        command = commands.StartCanary(
            service, color, steps, interval, limits, actor=actor, await_ready=await_ready
        )
        async with self.lock:
            return self._canary_of(await self.execute(command))

    async def canary_event(
        self, service: str, event: canaries.Event, *, actor: str = "api"
    ) -> canaries.Canary:
        """Apply one event to the running canary of ``service``; persist it, then serve it.

        A passed last step or an operator's promote switches (reason
        ``canary``); an abort records ``canary-abort`` with the figures and marks
        the color REJECTED. An extension changes only the canary. A step's pass
        judged on a color that stopped being ready meanwhile is refused.
        """
        command = commands.CanaryEvent(service, event, actor)
        async with self.lock:
            return self._canary_of(await self.execute(command))

    @staticmethod
    def _canary_of(decision: commands.Decision) -> canaries.Canary:
        assert decision.canary is not None  # canary commands always decide one
        return decision.canary

    def plan_canary_decision(self, service: str, at: float) -> None:
        """The canary driver judges ``service``'s running step at ``at`` (``/status``). Locked."""
        self._canary_next[service] = at

    def canary_json(self, service: str) -> CanaryDoc | None:
        """``/status``'s ``canary`` object: the latest canary, or ``None``."""
        canary = self.state.canaries.get(service)
        if canary is None:
            return None
        stored = state_json.canary_doc(canary, next_decision_at=self._canary_next.get(service))
        analysis = "traefik-metrics" if self.settings.traefik_metrics_url else "health-only"
        return {**stored, "analysis": analysis}

    # -- bake after the flip ----------------------------------------------------

    async def bake(self, command: bakes.BakeCommand) -> bakes.Bake:
        """Start a bake, or apply the driver's judgement to it; persisted before it returns.

        A judgement to revert switches back (reason ``bake-revert``) and marks the
        baked color REJECTED in the same write; a bake an operator superseded ends
        with nothing reverted (:func:`provider.core.bake.decide`).
        """
        async with self.lock:
            await self.execute(command)
            return self.state.bakes[command.service]

    def plan_bake_decision(self, service: str, at: float) -> None:
        """The bake driver judges ``service``'s bake at ``at`` (``/status``). Locked."""
        self._bake_next[service] = at

    def bake_json(self, service: str) -> BakeDoc | None:
        """``/status``'s ``bake``: the latest bake, or ``None``."""
        bake = self.state.bakes.get(service)
        if bake is None:
            return None
        return bake_json.bake_doc(bake, next_decision_at=self._bake_next.get(service))

    # -- waiting ----------------------------------------------------------------

    async def wait_until_due(
        self,
        evaluate: Callable[[], tuple[list[T], float | None]],
        clock: Callable[[], float],
    ) -> list[T]:
        """Block until ``evaluate`` finds something due; what it returns then.

        ``evaluate`` runs under the lock, on every change the controller
        announces and at the wake time it asked for: the automatic switcher
        and the canary driver both wait this way (level-triggered, no polling).
        A wake time already past when ``evaluate`` began is never re-armed
        (:func:`wake_timeout`): such a loop waits for the next change instead
        of evaluating again at once, forever.
        """
        async with self.changed:
            while True:
                now = clock()
                due, wake_at = evaluate()
                if due:
                    return due
                timeout = wake_timeout(wake_at, now, clock())
                try:
                    async with asyncio.timeout(timeout):
                        await self.changed.wait()
                except TimeoutError:
                    pass

    # -- reading --------------------------------------------------------------

    def status(self, service: str) -> ServiceStatusDoc:
        view = self.view(service)
        pending = self.pending(service)
        return service_status(
            view,
            self.state.services.get(service),
            self.active(service),
            pending=pending.promotion,
            pending_rollback=pending.rollback,
            docker_connected=self.docker_connected,
            shown_stale=bool(view.errors),
            canary=self.canary_json(service),
            traefik=self.pollers.service_json(service, self.active(service)),
            maintenance=self.maintenance_json(service),
            bake=self.bake_json(service),
        )

    def status_all(self) -> StatusAllDoc:
        known = set(self.state.services) | set(self.state.maintenance)
        names = sorted(set(self.observation.services) | known)
        return {
            "services": {name: self.status(name) for name in names},
            "docker": self.docker_summary(),
            "synced": self.synced,
            "unassigned_errors": list(self.observation.unassigned),
            "state_file": self.state_file_summary(),
            "traefik": self.traefik_summary(),
            "traefik_pollers": self.pollers.pollers_json(),
        }

    def traefik_summary(self) -> TraefikPollsDoc:
        """How often and how long ago Traefik polled ``/traefik`` (with the provider token)."""
        last = self.metrics.traefik_last_poll
        return {
            "polls": self.metrics.traefik_polls,
            "last_poll_at": last,
            "seconds_since_last_poll": None if last is None else round(self.clock() - last, 3),
        }

    def state_file_summary(self) -> StateFileDoc:
        """Whether the last state write (and the last read of a shared store) succeeded.

        ``store``: ``file`` or ``swarm``; ``version``: the state version served.
        """
        error = self.state_write_error or self.store_error
        summary = self.store.summary()
        return {
            "ok": error is None,
            "error": error,
            "store": summary["kind"],
            "version": summary["version"],
            "location": summary["location"],
        }

    def docker_summary(self) -> DockerDoc:
        return {
            "connected": self.docker_connected,
            "status": "connected" if self.docker_connected else "disconnected",
            "error": self.docker_error,
            "containers": len(self._containers),
        }

    def history(self, service: str | None = None) -> list[SwitchRecordDoc]:
        if service is not None and not service:
            raise BadRequest("service must not be empty")
        return [
            state_json.record_doc(r) for r in self.state.history if service in (None, r.service)
        ]
