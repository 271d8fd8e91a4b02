"""The task that judges running bakes: the canary's analysis, after the flip.

The I/O edge of :mod:`provider.core.bake`, a sibling of
:class:`provider.canary_driver.CanaryDriver` that shares its scrape (Traefik's
Prometheus text, read by :mod:`provider.core.canary_analysis`). For each
running bake it opens a window (a baseline scrape of the new color's
service), and every analysis interval (or at the bake's end, whichever comes
first) scrapes again and hands :func:`provider.core.bake.judge`'s verdict to
the controller, which re-checks the bake's ownership under its lock before it
reverts anything. A bake an operator superseded is ended at once; a new color
that stops being ready is judged at once (revert). Windows live in memory: a
restarted provider opens a fresh one. The server's ``cleanup_ctx`` owns the task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import structlog

from provider.canary_driver import Fetch
from provider.core import bake as bakes
from provider.core import canary as canaries
from provider.core.canary_analysis import AnalysisError, Snapshot, delta, snapshot
from provider.core.render import color_service_name
from provider.core.routing import Observation
from provider.core.wakes import next_wake
from provider.due_waiting import DueWaiting
from provider.errors import BlueGreenError, StateFileError

log = structlog.get_logger("bluegreen.bake")

#: After an unexpected failure or a failed write, wait this long before evaluating again.
RETRY_AFTER_S = 1.0


class StartsBakes(Protocol):
    """What starting a labelled bake needs of the controller (the auto-switcher has it)."""

    @property
    def observation(self) -> Observation: ...

    async def bake(self, command: bakes.BakeCommand) -> bakes.Bake: ...


class Bakes(DueWaiting, Protocol):
    """What the driver needs of the controller."""

    async def bake(self, command: bakes.BakeCommand) -> bakes.Bake: ...

    def plan_bake_decision(self, service: str, at: float) -> None: ...


@dataclass(frozen=True)
class _Window:
    """One analysis window of a bake (``key``: the bake's ``started``)."""

    key: float
    start: float
    baseline: Snapshot | None


@dataclass(frozen=True)
class _Due:
    service: str
    kind: str  # "open", "judge", "lost", "superseded"
    bake: bakes.Bake


class BakeDriver:
    """Opens windows, judges them, ends superseded bakes; one instance per provider."""

    def __init__(
        self, controller: Bakes, *, fetch: Fetch | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.controller = controller
        self.fetch = fetch
        self.clock = clock
        self.windows: dict[str, _Window] = {}

    async def run(self) -> None:
        """Drive bakes forever; cancelled by the application's cleanup context."""
        while True:
            try:
                for due in await self.controller.wait_until_due(self.evaluate, self.clock):
                    await self._act(due)
            except Exception:  # a bug must not stop the bakes for good
                log.exception("bake_driver_failed_unexpectedly")
                await asyncio.sleep(RETRY_AFTER_S)

    def evaluate(self) -> tuple[list[_Due], float | None]:
        """What is due now, and when to look again. Caller holds the controller's lock."""
        controller = self.controller
        now = self.clock()
        live = controller.docker_connected and controller.synced
        state = controller.state
        running = {n: b for n, b in state.bakes.items() if b.running}
        for name in [n for n in self.windows if n not in running]:
            del self.windows[name]
        due: list[_Due] = []
        wakes: list[float] = []
        for name, bake in sorted(running.items()):
            if bakes.owner(state, bake) is not None:
                due.append(_Due(name, "superseded", bake))
                continue
            view = controller.observation.services.get(name)
            if live and (view is None or not view.color(bake.color).ready):
                due.append(_Due(name, "lost", bake))
                continue
            window = self.windows.get(name)
            if window is None or window.key != bake.started:
                due.append(_Due(name, "open", bake))
                continue
            deadline = min(window.start + bake.interval, bake.ends)
            controller.plan_bake_decision(name, deadline)
            if now >= deadline and live:
                due.append(_Due(name, "judge", bake))
            else:
                wakes.append(deadline)
        return due, next_wake(wakes, now)

    async def _scrape(self, bake: bakes.Bake) -> Snapshot | None:
        if self.fetch is None:
            return None
        service = f"{color_service_name(bake.service, bake.color)}@http"
        try:
            return snapshot(await self.fetch(), service)
        except (aiohttp.ClientError, TimeoutError, AnalysisError, UnicodeDecodeError) as exc:
            log.warning("traefik_metrics_unreadable", service=bake.service, error=str(exc))
            return None

    async def _act(self, due: _Due) -> None:
        bake = due.bake
        if due.kind == "superseded":
            await self._apply(bakes.BakeEvent(due.service, None))
            return
        if due.kind == "open":
            baseline = await self._scrape(bake)
            self.windows[due.service] = _Window(bake.started, self.clock(), baseline)
            return
        window = None
        opened = self.windows.get(due.service)
        current = await self._scrape(bake) if due.kind == "judge" else None
        if opened is not None and opened.baseline is not None and current is not None:
            window = delta(opened.baseline, current)
        judgement = bakes.judge(
            bake,
            window,
            ready=due.kind != "lost",
            metrics=self.fetch is not None,
            now=self.clock(),
        )
        if opened is None or opened.baseline is None or judgement.outcome == bakes.Outcome.NEXT:
            # A clean window, or none measured yet: the next one counts from this scrape.
            self.windows[due.service] = _Window(bake.started, self.clock(), current)
        elif judgement.outcome == bakes.Outcome.EXTEND:
            # Too few requests: the window stays open (same baseline), judged again later.
            self.windows[due.service] = _Window(bake.started, self.clock(), opened.baseline)
        if judgement.outcome != bakes.Outcome.EXTEND:
            await self._apply(bakes.BakeEvent(due.service, judgement))

    async def _apply(self, command: bakes.BakeEvent) -> None:
        try:
            await self.controller.bake(command)
        except (BlueGreenError, StateFileError) as exc:
            # The bake ended or changed meanwhile (an operator), or the write failed: look again.
            log.warning("bake_event_not_applied", service=command.service, error=str(exc))
            await asyncio.sleep(RETRY_AFTER_S if isinstance(exc, StateFileError) else 0)


async def start_labelled_bake(controller: StartsBakes, service: str, color: bakes.Color) -> None:
    """After an automatic promotion to ``color``: its ``bluegreen.bake`` label starts a bake.

    Limits are the canary's defaults. A refusal (the service moved on
    meanwhile) or a failed write is logged; the promotion itself stands.
    """
    view = controller.observation.services.get(service)
    route = view.color(color).route if view is not None else None
    if route is None or route.bake is None:
        return
    duration, interval = route.bake
    limits = canaries.Limits()
    try:
        await controller.bake(
            bakes.StartBake(service, color, duration, interval, limits, actor="watcher")
        )
    except (BlueGreenError, StateFileError) as exc:
        log.warning("bake_not_started", service=service, color=str(color), error=str(exc))
