"""The provider's single owner of state: observations in, switches, served body out.

Every mutation (new observations from the watcher, a switch from the API or
the watcher) runs under one ``asyncio.Lock``: the new state is computed by
the pure core, persisted atomically, and only then made visible and logged.
The served ``/traefik`` body is cached bytes, rebuilt when the inputs change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import structlog

from provider.core import canary as canaries
from provider.core import commands, transitions
from provider.core.model import Color, Container, ServiceState, State, SwitchRecord
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
from provider.core.status import service_status
from provider.core.wakes import wake_timeout
from provider.errors import (
    BadRequest,
    StateFileError,
    StateStoreUnavailable,
    UnknownService,
)
from provider.events import (
    EventBus,
    EventKind,
    Seen,
    images_of,
    publish_observed,
    publish_pending_stages,
)
from provider.metrics import Metrics
from provider.settings import Settings
from provider.state_store import CommitOutcomeUnknown, FileStateStore, StateConflict, StateStore

log = structlog.get_logger("bluegreen.controller")

T = TypeVar("T")

#: After a failed state write, retry after this many seconds, doubling up to the second.
STATE_RETRY_DELAYS = (0.5, 30.0)
#: A change recomputed on other replicas' newer states this often before it is refused
#: (each conflict means another replica committed, so the system as a whole progressed).
CONFLICT_ATTEMPTS = 20


@dataclass(frozen=True)
class PendingSwitches:
    """What one service's automatic promotion and rollback wait for; typed until ``/status``."""

    promotion: Pending | None = None
    rollback: Pending | None = None


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
        store: StateStore | None = None,
    ) -> None:
        self.settings = settings
        #: Where states are committed: the state file, or Swarm configs shared by replicas.
        self.store: StateStore = store or FileStateStore(settings.state_file)
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
        #: Why the last state-file write failed; ``None`` once a write succeeds again.
        self.state_write_error: str | None = None
        #: Why the shared state store cannot be read (Swarm without quorum); ``None`` if it can.
        self.store_error: str | None = None
        #: Records of commits whose outcome was lost (a 503 answered): if a state followed
        #: later holds one, this replica committed it and announces it as its own.
        self._unsure: list[SwitchRecord] = []
        self.state_retry_delays = STATE_RETRY_DELAYS
        self.retry_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        #: Per service, what the automatic promotion and rollback wait for (``publish_pending``).
        self._pending: dict[str, PendingSwitches] = {}
        self._containers: dict[str, Container] = {}
        self._first_seen: dict[str, float] = {}
        self._last_good: dict[str, ServiceView] = {}
        self.observation = Observation({})
        self.body = serialize({})
        #: Per service, when the running canary's step is judged next (set by its driver).
        self.canary_next: dict[str, float] = {}
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
        if self._with_adoptions(self.state) is not self.state and self.state_write_error is None:
            # While writes fail, only the retry task writes (with backoff).
            await self._on_latest(lambda: self._persist_adoptions(self._with_adoptions(self.state)))
        self._rebuild()
        self._seen = publish_observed(self.events, self.observation, self._seen)
        self.changed.notify_all()

    def _with_adoptions(self, state: State) -> State:
        """``state`` plus the active color of each new service that has a routable one."""
        for name, view in self.observation.services.items():
            if name in state.services:
                continue
            color = initial_color(view)
            if color is not None and not view.errors:
                state = transitions.adopt(state, name, color, self._first_seen[name])
        return state

    async def _persist_adoptions(self, state: State) -> bool:
        """Write adoptions; on failure the services stay unadopted and served as before.

        An unadopted service follows its routable color, as it did before the
        write, so the served body never waits for the disk; the retry task
        (:meth:`keep_state_written`) adopts them once a write succeeds.
        """
        adopted = [name for name in state.services if name not in self.state.services]
        try:
            await self._persist(state)
        except StateFileError:
            return False
        for name in adopted:
            log.info("service_adopted", service=name, active=str(state.services[name].active))
        return True

    def _write_pending(self) -> bool:
        """A write failed, or new services wait to be adopted. Caller holds the lock."""
        return (
            self.state_write_error is not None or self._with_adoptions(self.state) is not self.state
        )

    async def keep_state_written(self) -> None:
        """Retry failed state writes with backoff until one succeeds; runs until cancelled.

        The server's ``cleanup_ctx`` owns the task. A retry writes the current
        state plus any adoption still missing: rewriting the acknowledged state
        is harmless, and its success is what clears ``state_write_error``.
        """
        failures = 0
        while True:
            async with self.changed:
                await self.changed.wait_for(self._write_pending)
            first, cap = self.state_retry_delays
            await self.retry_sleep(min(first * 2 ** min(failures, 32), cap))
            try:
                written = await self.retry_state_write()
            except Exception:  # a bug must not stop the retries for good
                log.exception("state_write_retry_failed_unexpectedly")
                written = False
            failures = 0 if written else failures + 1

    async def retry_state_write(self) -> bool:
        """One retry, if a write is pending; ``False`` when it failed again."""
        async with self.lock:
            if not self._write_pending():
                return True
            written = await self._on_latest(
                lambda: self._persist_adoptions(self._with_adoptions(self.state))
            )
            if not written:
                return False
            self._rebuild()
            self.changed.notify_all()
            return True

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

    def _rebuild(self) -> None:
        views = self.effective_views()
        actives = {name: self.active(name) for name in views}
        weights = canaries.weights(self.state)
        body = serialize(render(views, actives, self.options, weights))
        if body != self.body:
            self.body = body
            self.metrics.renders += 1

    async def _persist(self, state: State) -> None:
        """Commit ``state``, then make it current; record the write's outcome. Holds the lock.

        When another replica committed first (:class:`StateConflict`), its state
        becomes current here before the conflict propagates to :meth:`_on_latest`,
        which computes the change again on top of it.
        """
        try:
            warning = await self.store.commit(state)
        except StateConflict as conflict:
            self._follow(conflict.latest, conflict.version)
            raise
        except StateFileError as exc:
            if isinstance(exc, CommitOutcomeUnknown):
                self._unsure += [r for r in state.history if r.seq > self.state.seq]
            self.metrics.state_write_errors += 1
            self.state_write_error = str(exc)
            log.error("state_write_failed", error=str(exc))
            self.changed.notify_all()
            raise
        self.state = state
        if warning is not None:
            self.metrics.state_dir_fsync_errors += 1
            log.warning("state_dir_fsync_failed", error=warning)
        if self.state_write_error is not None:
            log.info("state_write_recovered", previous_error=self.state_write_error)
            self.state_write_error = None

    async def _on_latest(self, change: Callable[[], Awaitable[T]]) -> T:
        """Run ``change`` (which commits); again on the newer state if another replica won.

        Caller holds the lock. A change is a function of ``self.state``, so
        running it again after a conflict re-validates it on what the other
        replica committed: a switch it already made answers "unchanged", a
        promotion it already did is not done twice.
        """
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                return await change()
            except StateConflict:
                continue
        raise StateStoreUnavailable(
            f"other replicas committed {CONFLICT_ATTEMPTS} states in a row; try again"
        )

    async def set_store_error(self, error: str | None) -> None:
        """The state follower could (not) read the shared store; one log line per change."""
        async with self.lock:
            if error != self.store_error:
                if error is None:
                    log.info("state_store_available")
                else:
                    log.error("state_store_unavailable", error=error)
                self.store_error = error
                self.changed.notify_all()

    async def follow(self, state: State, version: int) -> bool:
        """Another replica committed ``state`` as ``version``: serve it (the state follower).

        Ignored unless newer than what this replica has; ``True`` if it was taken.
        """
        async with self.lock:
            if version <= self.store.version:
                return False
            self._follow(state, version)
            return True

    def _follow(self, state: State, version: int) -> None:
        """Make a state committed elsewhere current, serve it, announce its switches. Locked.

        A switch this replica committed without learning it (its answer was
        lost: :class:`CommitOutcomeUnknown`) is announced as its own, not
        ``followed``: every switch is sent to webhooks by exactly one replica.
        """
        before = self.state
        self.state = state
        self.store.version = version
        self._rebuild()
        for record in state.history:
            if record.seq > before.seq and record.reason not in canaries.RECORD_ONLY:
                view = self.observation.services.get(record.service)
                if record in self._unsure:  # ours, its answer lost: announced as ours, once
                    log.info("switch_commit_landed", service=record.service, seq=record.seq)
                    self._announce_switch(record, view, forced=False)
                    continue
                images = images_of(view) if view is not None else {}
                self.events.publish_switch(record, images, forced=False, followed=True)
        # A seq the history now holds is decided: ours landed there, or another's did.
        self._unsure = [r for r in self._unsure if r.seq > state.seq]
        log.info("state_followed", version=version, seq=state.seq)
        self.changed.notify_all()

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
            return await self._on_latest(lambda: self._commit_switch(command))

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

        async def change() -> SwitchResult:
            nonlocal command
            decision = self._decide(command)
            if command.first is None:  # the first attempt's previous color, kept for retries
                command = replace(command, first=decision.target)
            return await self._commit_switch_decision(service, decision, force, "rollback")

        async with self.lock:
            return await self._on_latest(change)

    async def retire(self, service: str, color: Color, *, actor: str = "api") -> ServiceState:
        """Mark ``color`` RETIRING: an operator is about to stop it (``POST /retire``).

        Refused (409) while ``color`` is active. Persisted before it returns;
        from then on no automatic switch targets ``color`` until a new
        generation of it is deployed or an operator switches to it.
        """

        async def change() -> ServiceState:
            decision = self._decide(commands.Retire(service, color, actor))
            assert decision.state is not None
            await self._persist(decision.state)
            if decision.canary is not None:
                self._canary_served(decision.canary, actor=actor, verdict=None)
            # Retiring a never-adopted service adopts it: the body must follow at once.
            self._rebuild()
            self.changed.notify_all()
            log.info("color_retiring", service=service, color=str(color), actor=actor)
            return self.state.services[service]

        async with self.lock:
            return await self._on_latest(change)

    def _decide(self, command: commands.Command) -> commands.Decision:
        """The pure decision of ``command`` on the current state and observation. Locked."""
        now = commands.Now(self.clock(), self.daemon_now())
        view = self.view(command.service)
        return commands.decide(
            self.state, view, command, now, history_limit=self.settings.history_limit
        )

    async def _commit_switch(self, command: commands.Switch) -> SwitchResult:
        decision = self._decide(command)
        return await self._commit_switch_decision(
            command.service, decision, command.force, command.reason
        )

    async def _commit_switch_decision(
        self, service: str, decision: commands.Decision, forced: bool, reason: str
    ) -> SwitchResult:
        """Commit a switch's decision, serve it, announce it; what it did. Locked."""
        if decision.state is not None:
            try:
                await self._persist(decision.state)
            except StateFileError:
                target = str(decision.target)
                log.error("switch_not_persisted", service=service, to=target, reason=reason)
                raise
            self._pending.pop(service, None)
            self._rebuild()
            self.changed.notify_all()
            if decision.record is not None:
                self._announce_switch(decision.record, self.view(service), forced=forced)
        svc = self.state.services[service]
        record = decision.record if decision.state is not None else None
        return SwitchResult(service, svc.active, svc.previous, record is not None, record)

    def _announce_switch(
        self, record: SwitchRecord, view: ServiceView | None, *, forced: bool
    ) -> None:
        """The one place a change of the active color made here is logged, counted and
        published (``switch`` event), once: a switch, a rollback, an automatic switch, a
        canary's promotion. Caller holds the lock, after the commit and the rebuild."""
        self._pending.pop(record.service, None)
        self.metrics.switches[(record.service, record.reason)] += 1
        log.info(
            "service_switched",
            service=record.service,
            from_color=str(record.from_color) if record.from_color else None,
            to_color=str(record.to_color),
            reason=record.reason,
            actor=record.actor,
            forced=forced,
            seq=record.seq,
        )
        images = images_of(view) if view is not None else {}
        self.events.publish_switch(record, images, forced=forced)

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
            return await self._on_latest(lambda: self._commit_canary(command))

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
            return await self._on_latest(lambda: self._commit_canary(command))

    async def _commit_canary(
        self, command: commands.StartCanary | commands.CanaryEvent
    ) -> canaries.Canary:
        """Commit a canary command's decision, serve it, announce it. Locked."""
        decision = self._decide(command)
        assert decision.state is not None and decision.canary is not None
        await self._persist(decision.state)
        self._canary_served(decision.canary, actor=command.actor, verdict=decision.verdict)
        if decision.record is not None:
            view = self.observation.services.get(command.service)
            self._announce_switch(decision.record, view, forced=False)
        return decision.canary

    def _canary_served(self, canary: canaries.Canary, *, actor: str, verdict: str | None) -> None:
        """Serve and announce a persisted canary change. Caller holds the lock."""
        if not canary.running:
            self.canary_next.pop(canary.service, None)
        self._rebuild()
        self.changed.notify_all()
        self.events.publish(
            EventKind.CANARY,
            canary.service,
            from_=str(canary.base),
            to=str(canary.color),
            reason=canary.reason,
            actor=actor,
            phase=str(canary.phase),
            step=canary.step,
            weight=canary.weight,
            verdict=verdict,
        )
        log.info(
            "canary_transition",
            service=canary.service,
            color=str(canary.color),
            phase=str(canary.phase),
            step=canary.step,
            weight=canary.weight,
            extensions=canary.extensions,
            verdict=verdict,
            reason=canary.reason,
            actor=actor,
        )

    def canary_json(self, service: str) -> dict[str, Any] | None:
        """``/status``'s ``canary`` object: the latest canary, or ``None``."""
        canary = self.state.canaries.get(service)
        if canary is None:
            return None
        out = canaries.to_json(canary, next_decision_at=self.canary_next.get(service))
        out["analysis"] = "traefik-metrics" if self.settings.traefik_metrics_url else "health-only"
        return out

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

    def status(self, service: str) -> dict[str, Any]:
        view = self.view(service)
        pending = self.pending(service)
        out = service_status(
            view,
            self.state.services.get(service),
            self.active(service),
            pending=pending.promotion,
            pending_rollback=pending.rollback,
            docker_connected=self.docker_connected,
            shown_stale=bool(view.errors),
        )
        out["canary"] = self.canary_json(service)
        return out

    def status_all(self) -> dict[str, Any]:
        names = sorted(set(self.observation.services) | set(self.state.services))
        return {
            "services": {name: self.status(name) for name in names},
            "docker": self.docker_summary(),
            "synced": self.synced,
            "unassigned_errors": list(self.observation.unassigned),
            "state_file": self.state_file_summary(),
        }

    def state_file_summary(self) -> dict[str, Any]:
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
