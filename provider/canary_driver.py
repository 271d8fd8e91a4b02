"""The task that drives running canaries: it measures each step and reports verdicts.

The I/O edge of :mod:`provider.core.canary`. For each running canary it opens
an analysis window when a step starts (or when the provider starts again:
a restart resumes the same step with a fresh window), scrapes Traefik's
Prometheus endpoint at the window's start and end, and hands the pure
:func:`provider.core.canary.judge` verdict to ``Controller.canary_event``,
which persists it before it is served. It re-evaluates on every change of the
controller (a color that stops being ready aborts the canary at once) and
when a step's interval elapses. The server's ``cleanup_ctx`` owns the task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import structlog

from provider.core import canary as canaries
from provider.core.canary_analysis import AnalysisError, Snapshot, delta, snapshot
from provider.core.render import color_service_name
from provider.core.routing import ColorView
from provider.core.wakes import next_wake
from provider.due_waiting import DueWaiting
from provider.errors import BlueGreenError, StateFileError
from provider.settings import Settings

log = structlog.get_logger("bluegreen.canary")

#: How long one scrape of Traefik's metrics may take.
SCRAPE_TIMEOUT_S = 5.0
#: After an unexpected failure, wait this long before evaluating again.
RETRY_AFTER_S = 1.0

Fetch = Callable[[], Awaitable[str]]


class Canaries(DueWaiting, Protocol):
    """What the driver needs of the controller: what it reads, what it asks."""

    @property
    def settings(self) -> Settings: ...

    async def canary_event(
        self, service: str, event: canaries.Event, *, actor: str = "api"
    ) -> canaries.Canary: ...

    def plan_canary_decision(self, service: str, at: float) -> None: ...


@dataclass(frozen=True)
class _Window:
    """One step's analysis window (in memory only: a restart opens a fresh one)."""

    key: tuple[float, int]
    start: float
    extensions_at_start: int
    baseline: Snapshot | None


@dataclass(frozen=True)
class _Due:
    service: str
    kind: str  # "open", "judge", "lost"
    canary: canaries.Canary


def fresh_ready(view: ColorView, canary: canaries.Canary) -> bool:
    """A waiting canary's color has ``replicas`` routable containers created after it, all ready."""
    after = canary.created_after if canary.created_after is not None else canary.started
    fresh = [m for m in view.members if m.container.created > after]
    routable = sum(1 for m in fresh if m.routable)
    return bool(fresh) and routable == len(fresh) and routable >= max(view.replicas, 1)


def traefik_service(service: str, canary: canaries.Canary) -> str:
    """The name Traefik's metrics give the canary color's service (HTTP provider)."""
    return f"{color_service_name(service, canary.color)}@http"


class CanaryDriver:
    """Opens windows, judges steps, aborts lost colors; one instance per provider."""

    def __init__(
        self,
        controller: Canaries,
        *,
        fetch: Fetch | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.controller = controller
        self.fetch = fetch
        self.clock = clock
        self.max_extensions = controller.settings.canary_max_extensions
        self.windows: dict[str, _Window] = {}

    async def run(self) -> None:
        """Drive canaries forever; cancelled by the application's cleanup context."""
        while True:
            try:
                for due in await self._wait_for_due():
                    await self._act(due)
            except Exception:  # a bug must not stop the canaries for good
                log.exception("canary_driver_failed_unexpectedly")
                await asyncio.sleep(RETRY_AFTER_S)

    async def _wait_for_due(self) -> list[_Due]:
        """Block until some canary decision is due (a step's end, a change of state)."""
        return await self.controller.wait_until_due(self.evaluate, self.clock)

    def evaluate(self) -> tuple[list[_Due], float | None]:
        """What is due now, and when to look again. Caller holds the controller's lock."""
        controller = self.controller
        now = self.clock()
        live = controller.docker_connected and controller.synced
        due: list[_Due] = []
        wakes: list[float] = []
        running = {n: c for n, c in controller.state.canaries.items() if c.running}
        for name in [n for n in self.windows if n not in running]:
            del self.windows[name]
        for name, canary in sorted(running.items()):
            view = controller.observation.services.get(name)
            if canary.phase is canaries.Phase.WAITING:
                if live and view is not None and fresh_ready(view.color(canary.color), canary):
                    due.append(_Due(name, "ready", canary))
                continue
            if live and (view is None or not view.color(canary.color).ready):
                due.append(_Due(name, "lost", canary))
                continue
            window = self.windows.get(name)
            if window is None or window.key != (canary.started, canary.step):
                due.append(_Due(name, "open", canary))
                continue
            extra = canary.extensions - window.extensions_at_start
            deadline = window.start + canary.interval * (1 + extra)
            controller.plan_canary_decision(name, deadline)
            if now >= deadline and live:
                due.append(_Due(name, "judge", canary))
            else:
                # Past and Docker disconnected: the reconnection (a change) wakes us, not time.
                wakes.append(deadline)
        return due, next_wake(wakes, now)

    async def _scrape(self, canary: canaries.Canary) -> Snapshot | None:
        if self.fetch is None:
            return None
        try:
            text = await self.fetch()
            return snapshot(text, traefik_service(canary.service, canary))
        except (aiohttp.ClientError, TimeoutError, AnalysisError, UnicodeDecodeError) as exc:
            log.warning("traefik_metrics_unreadable", service=canary.service, error=str(exc))
            return None

    async def _act(self, due: _Due) -> None:
        canary = due.canary
        if due.kind == "ready":
            await self._apply(due.service, canaries.ColorReady())
            return
        if due.kind == "open":
            baseline = await self._scrape(canary)
            self.windows[due.service] = _Window(
                (canary.started, canary.step), self.clock(), canary.extensions, baseline
            )
            log.info(
                "canary_window_opened",
                service=due.service,
                color=str(canary.color),
                step=canary.step,
                weight=canary.weight,
                requests_before=None if baseline is None else baseline.requests,
            )
            return
        ready = due.kind != "lost"
        window = None
        if ready and self.fetch is not None:
            opened = self.windows[due.service]
            current = await self._scrape(canary)
            if opened.baseline is not None and current is not None:
                window = delta(opened.baseline, current)
            elif current is not None:  # no baseline yet: measure from now on
                self.windows[due.service] = _Window(
                    opened.key, opened.start, opened.extensions_at_start, current
                )
        result = canaries.judge(
            canary,
            window,
            ready=ready,
            metrics=self.fetch is not None,
            max_extensions=self.max_extensions,
            now=self.clock(),
        )
        await self._apply(due.service, result)

    async def _apply(self, service: str, event: canaries.Event) -> None:
        try:
            await self.controller.canary_event(service, event, actor="watcher")
        except (BlueGreenError, StateFileError) as exc:
            # The canary changed meanwhile (an operator), or the write failed: look again.
            log.warning("canary_event_not_applied", service=service, error=str(exc))
            await asyncio.sleep(RETRY_AFTER_S if isinstance(exc, StateFileError) else 0)


def http_fetch(session: aiohttp.ClientSession, url: str) -> Fetch:
    """A scrape of ``url`` (Traefik's ``/metrics``) through ``session``."""

    async def fetch() -> str:
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)
        async with session.get(url, timeout=timeout) as response:
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message="not 200"
                )
            return await response.text()

    return fetch
