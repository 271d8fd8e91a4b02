"""The controller's commits: one state at a time through the store, and the states of others.

A command's decision (:mod:`provider.core.commands`) or an adoption is
committed here: on a conflict the state another replica committed becomes
current and the change is decided again on top of it (:meth:`execute`); a
failed write is retried with backoff until one succeeds; a state another
replica committed is followed and its switches announced once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

from provider.core import bake as bakes
from provider.core import bake_json, commands, maintenance
from provider.core import canary as canaries
from provider.core.model import State, SwitchRecord
from provider.core.routing import ServiceView
from provider.errors import StateFileError, StateStoreUnavailable
from provider.events import EventBus, EventKind, images_of
from provider.metrics import Metrics
from provider.observations import ObservedServices
from provider.settings import Settings
from provider.state_store import CommitOutcomeUnknown, FileStateStore, StateConflict, StateStore

log = structlog.get_logger("bluegreen.controller")

#: After a failed state write, retry after this many seconds, doubling up to the second.
STATE_RETRY_DELAYS = (0.5, 30.0)
#: A change recomputed on other replicas' newer states this often before it is refused
#: (each conflict means another replica committed, so the system as a whole progressed).
CONFLICT_ATTEMPTS = 20


class StateCommits(ObservedServices):
    """Commits states through the store, retries failed writes, follows other replicas."""

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
        super().__init__(settings, state, metrics=metrics, clock=clock, events=events)
        #: Where states are committed: the state file, or Swarm configs shared by replicas.
        self.store: StateStore = store or FileStateStore(settings.state_file)
        #: Why the last state-file write failed; ``None`` once a write succeeds again.
        self.state_write_error: str | None = None
        #: Why the shared state store cannot be read (Swarm without quorum); ``None`` if it can.
        self.store_error: str | None = None
        #: Records of commits whose outcome was lost (a 503 answered): if a state followed
        #: later holds one, this replica committed it and announces it as its own.
        self._unsure: list[SwitchRecord] = []
        self.state_retry_delays = STATE_RETRY_DELAYS
        self.retry_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def _adopt_new_services(self) -> None:
        if self.state_write_error is None:  # while writes fail, only the retry task writes
            await self._write_adoptions(rewrite=False)

    async def _write_adoptions(self, *, rewrite: bool) -> bool:
        """Commit the adoption of new services (``rewrite``: even if there is none). Locked.

        On a failed write the services stay unadopted and served as before: an
        unadopted service follows its routable color, so the served body never
        waits for the disk; the retry task (:meth:`keep_state_written`) adopts
        them once a write succeeds. On a conflict the adoptions are computed
        again on the state another replica committed. ``False``: the write failed.
        """
        for _ in range(CONFLICT_ATTEMPTS):
            state = self._with_adoptions(self.state)
            if state is self.state and not rewrite:
                return True
            known = set(self.state.services)
            try:
                await self._persist(state)
            except StateConflict:
                continue
            except StateFileError:
                return False
            for name in [name for name in state.services if name not in known]:
                log.info("service_adopted", service=name, active=str(state.services[name].active))
            return True
        raise _too_many_conflicts()

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
            if not await self._write_adoptions(rewrite=True):
                return False
            self._rebuild()
            self.changed.notify_all()
            return True

    async def _persist(self, state: State) -> None:
        """Commit ``state``, then make it current; record the write's outcome. Holds the lock.

        When another replica committed first (:class:`StateConflict`), its state
        becomes current here before the conflict propagates to :meth:`execute`,
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

    async def execute(self, command: commands.Command | bakes.BakeCommand) -> commands.Decision:
        """Decide ``command`` on the current state, commit it, serve and announce it. Locked.

        The one path of every operator and automatic command. The decision is
        pure (:func:`provider.core.commands.decide`); when another replica
        committed first, its state became current (:meth:`_persist`) and the
        command is decided again on top of it, so a switch it already made
        answers "unchanged" and a promotion is never done twice.
        """
        for _ in range(CONFLICT_ATTEMPTS):
            now = commands.Now(self.clock(), self.daemon_now())
            view = self.view(command.service)
            limit = self.settings.history_limit
            if isinstance(command, bakes.StartBake | bakes.BakeEvent):
                decision = bakes.decide(self.state, view, command, now, history_limit=limit)
            else:
                decision = commands.decide(self.state, view, command, now, history_limit=limit)
            if decision.state is None:
                return decision
            try:
                await self._persist(decision.state)
            except StateConflict:
                if not isinstance(command, bakes.StartBake | bakes.BakeEvent):
                    command = commands.retried(command, decision)
                continue
            except StateFileError:
                if isinstance(command, commands.Switch | commands.Rollback):
                    reason = command.reason if isinstance(command, commands.Switch) else "rollback"
                    target = str(decision.target)
                    log.error(
                        "switch_not_persisted", service=command.service, to=target, reason=reason
                    )
                raise
            self._serve(command, decision)
            return decision
        raise _too_many_conflicts()

    def _serve(
        self, command: commands.Command | bakes.BakeCommand, decision: commands.Decision
    ) -> None:
        """Serve a committed decision, then announce it: body, wake-ups, events, log lines."""
        if isinstance(command, commands.Switch | commands.Rollback):
            self._pending.pop(command.service, None)
        if decision.canary is not None and not decision.canary.running:
            self._canary_next.pop(command.service, None)
        self._rebuild()
        self.changed.notify_all()
        if decision.canary is not None:
            _publish_canary(self.events, decision.canary, command.actor, decision.verdict)
        if decision.record is not None:
            forced = isinstance(command, commands.Switch | commands.Rollback) and command.force
            view = self.observation.services.get(command.service)
            self._announce_switch(decision.record, view, forced=forced)
        if decision.maintenance is not None:
            _publish_maintenance(self.events, decision.maintenance)
        if isinstance(command, bakes.StartBake | bakes.BakeEvent):
            _publish_bake(self.events, self.state.bakes[command.service], command.actor)
        if isinstance(command, commands.Retire):
            color = str(command.color)
            log.info("color_retiring", service=command.service, color=color, actor=command.actor)

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


def _too_many_conflicts() -> StateStoreUnavailable:
    return StateStoreUnavailable(
        f"other replicas committed {CONFLICT_ATTEMPTS} states in a row; try again"
    )


def _publish_maintenance(bus: EventBus, record: SwitchRecord) -> None:
    """Announce maintenance turned on or off: one ``maintenance`` event, one log line."""
    on = record.reason == maintenance.REASON_ON
    detail = dict(record.detail or {})
    why = detail.pop("reason", None) or None  # the operator's words, as a switch's reason
    bus.publish(
        EventKind.MAINTENANCE,
        record.service,
        from_="off" if on else "on",
        to="on" if on else "off",
        reason=why,
        actor=record.actor,
        **detail,
    )
    log.info(
        "maintenance_changed",
        service=record.service,
        on=on,
        actor=record.actor,
        reason=why,
        **detail,
    )


def _publish_bake(bus: EventBus, bake: bakes.Bake, actor: str) -> None:
    """Announce a committed bake change: one ``bake`` event, one log line."""
    figures = bake_json.bake_doc(bake)["figures"]
    bus.publish(
        EventKind.BAKE,
        bake.service,
        from_=str(bake.old),
        to=str(bake.color),
        reason=bake.reason,
        actor=actor,
        phase=str(bake.phase),
        figures=figures,
    )
    log.info(
        "bake_transition",
        service=bake.service,
        color=str(bake.color),
        old=str(bake.old),
        phase=str(bake.phase),
        reason=bake.reason,
        figures=figures,
        actor=actor,
    )


def _publish_canary(
    bus: EventBus, canary: canaries.Canary, actor: str, verdict: str | None
) -> None:
    """Announce a committed canary change: one ``canary`` event, one log line."""
    bus.publish(
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
