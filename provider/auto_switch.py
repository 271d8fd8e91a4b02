"""The task that turns promotion decisions into switches.

It re-evaluates every service after each change of the controller's
observations or state (the controller notifies its ``changed`` condition) and
when a hold (``promote_after``, ``rollback_after``) elapses. Decisions are
computed under the controller's lock, from one consistent snapshot, by the
pure :func:`provider.core.promotion.decide`; the switch itself goes through
``Controller.switch`` like an API call, which re-checks readiness.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from provider.bake_driver import start_labelled_bake
from provider.core import bake as bakes
from provider.core import canary as canaries
from provider.core.model import Color
from provider.core.promotion import Action, Pending, Policy, Stage, Timers, decide
from provider.core.routing import ServiceView
from provider.core.wakes import next_wake
from provider.due_waiting import DueWaiting
from provider.errors import BlueGreenError
from provider.events import EVENT_OF_ACTION, EventBus
from provider.gate_hook import Candidate, GateHookSettings
from provider.observations import PendingSwitches
from provider.settings import Settings
from provider.smoke import SmokeGates, SmokeSettings

log = structlog.get_logger("bluegreen.auto_switch")

#: After a refused or failed switch, wait this long before trying the same again.
RETRY_AFTER_S = 1.0


class Switching(DueWaiting, Protocol):
    """What the switcher needs of the controller: what it reads, what it asks."""

    @property
    def events(self) -> EventBus: ...

    def publish_pending(self, pending: Mapping[str, PendingSwitches]) -> None: ...

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
    ) -> object: ...

    async def bake(self, command: bakes.BakeCommand) -> bakes.Bake: ...


def policy_from(settings: Settings) -> Policy:
    return Policy(
        promote_after=settings.promote_after,
        rollback_after=settings.rollback_after,
        auto_promote=settings.auto_promote,
        auto_rollback=settings.auto_rollback,
    )


def smoke_settings(settings: Settings) -> SmokeSettings:
    hook = GateHookSettings(settings.webhook_secret, settings.gate_timeout)
    return SmokeSettings(
        settings.smoke_url, settings.preview_header, settings.smoke_timeout, hook=hook
    )


@dataclass(frozen=True)
class _Planned:
    service: str
    action: Action
    target: Color


class AutoSwitcher:
    """Owns the per-service timers; switches services whose decision is due."""

    def __init__(
        self,
        controller: Switching,
        policy: Policy,
        *,
        clock: Callable[[], float] = time.time,
        gates: SmokeGates | None = None,
    ) -> None:
        self.controller = controller
        self.policy = policy
        self.clock = clock
        #: Sends the smoke checks a ready generation waits for (``bluegreen.smoke``).
        self.gates = gates
        self.timers: dict[str, Timers] = {}
        self._stages: dict[tuple[str, Action], Stage] = {}
        self._retry_at: dict[tuple[str, Action, Color], float] = {}

    async def run(self) -> None:
        """Evaluate forever; cancelled by the watcher's owner."""
        while True:
            try:
                planned = await self._wait_for_due()
                for item in planned:
                    await self._switch(item)
            except Exception:  # a bug must not stop automatic switching for good
                log.exception("auto_switch_failed_unexpectedly")
                await asyncio.sleep(RETRY_AFTER_S)

    async def _wait_for_due(self) -> list[_Planned]:
        """Block until some switch is due; evaluate on every change and timer."""
        return await self.controller.wait_until_due(self.evaluate, self.clock)

    def evaluate(self) -> tuple[list[_Planned], float | None]:
        """Decide every service from the current snapshot. Caller holds the lock."""
        controller = self.controller
        now = self.clock()
        connected = controller.docker_connected and controller.synced
        planned: list[_Planned] = []
        wakes: list[float] = []
        pending: dict[str, PendingSwitches] = {}
        services = controller.observation.services
        for name in list(self.timers):
            if name not in services:
                del self.timers[name]
        if self.gates is not None:
            self.gates.forget(set(services))
        for name, view in services.items():
            state = controller.state.services.get(name)
            decision = decide(
                view,
                state,
                self.timers.get(name, Timers()),
                self.policy,
                now=now,
                connected=connected,
                gates=self.gates.result(name) if self.gates is not None else None,
            )
            self._ask_gates(name, view, decision.promotion)
            self.timers[name] = decision.timers
            pending[name] = PendingSwitches(decision.promotion, decision.rollback)
            self._log_stage(name, Action.PROMOTE, decision.promotion)
            self._log_stage(name, Action.ROLLBACK, decision.rollback)
            if decision.wake_at is not None:
                wakes.append(decision.wake_at)
            if decision.action is None or decision.target is None:
                continue
            if canaries.running(controller.state, name) is not None:
                continue  # a running canary owns the service's switches (promotion suspended)
            retry_at = self._retry_at.get((name, decision.action, decision.target), 0.0)
            if now < retry_at:
                wakes.append(retry_at)
                continue
            planned.append(_Planned(name, decision.action, decision.target))
        controller.publish_pending(pending)
        # A hold that ended is due now, not later: if it was not planned (a running canary
        # owns the service), only a change of state can make it plannable.
        return planned, next_wake(wakes, now)

    def _ask_gates(self, service: str, view: ServiceView, pending: Pending | None) -> None:
        """A ready generation waits for its smoke checks: have them sent (once per generation)."""
        if self.gates is None or pending is None or pending.stage is not Stage.GATES_PENDING:
            return
        route = view.color(pending.color).route
        if route is not None:
            ids = frozenset(m.container.id for m in pending.containers)
            images = tuple(m.container.image for m in pending.containers)
            self.gates.want(Candidate(service, pending.color, ids, images), route)

    def _log_stage(self, service: str, kind: Action, pending: Pending | None) -> None:
        """Log each change of a pending switch's stage once."""
        key = (service, kind)
        stage = pending.stage if pending is not None else None
        if self._stages.get(key) == stage:
            return
        if stage is None:
            self._stages.pop(key, None)
            return
        assert pending is not None
        self._stages[key] = stage
        log.info(
            "switch_pending",
            service=service,
            kind=str(kind),
            color=str(pending.color),
            stage=str(stage),
            detail=pending.detail,
        )

    async def _switch(self, item: _Planned) -> None:
        try:
            await self.controller.switch(
                item.service,
                item.target,
                reason=str(item.action),
                actor="watcher",
                automatic=True,
                reject=item.action is Action.ROLLBACK,
            )
        except BlueGreenError as exc:  # refused, or the state file (StateFileError)
            self._retry_at[(item.service, item.action, item.target)] = self.clock() + RETRY_AFTER_S
            log.warning(
                "auto_switch_failed",
                service=item.service,
                color=str(item.target),
                reason=str(item.action),
                error=str(exc),
            )
            self.controller.events.publish(
                EVENT_OF_ACTION[item.action],
                item.service,
                to=str(item.target),
                reason=str(item.action),
                actor="watcher",
                stage="refused",
                error=str(exc),
            )
        else:
            self._retry_at.pop((item.service, item.action, item.target), None)
            self.timers.pop(item.service, None)
            if item.action is Action.PROMOTE:  # a bluegreen.bake label: judged after the flip
                await start_labelled_bake(self.controller, item.service, item.target)
