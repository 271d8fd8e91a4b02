"""Sending a generation's smoke checks through Traefik's preview route (the gates' I/O edge).

Why through Traefik: a check straight to the container proves the container;
one sent to Traefik's entrypoint (``--smoke-url``) with the rule's Host and the
preview header (``X-Bluegreen-Color: green``) proves that Traefik routes the
candidate, which is what the flip relies on. The checks start once Traefik
applied a body that routes the candidate (its probe says so,
:meth:`provider.traefik_pollers.TraefikPollers.wait_version`): before, the
header-less public router could answer for the live color and pass a check
the candidate would fail. Where that cannot be known (Swarm), a failing
answer is retried until ``--smoke-timeout``.

Once the checks passed, a service with a gate webhook (``bluegreen.gate.url``,
``--gate-url``) has it asked (:mod:`provider.gate_hook`); one result covers both,
``by`` saying which gate failed. The auto-switcher asks (:meth:`SmokeGates.want`)
from its level-triggered evaluation; each generation (its container ids) is gated
once per provider run. Results live in memory only: a failed gate blocks that generation's
automatic promotion and marks nothing; a restart checks again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import structlog

from provider import gate_hook
from provider.core.gates import GateResult, SmokeCheck, judge
from provider.core.labels import RouteSpec
from provider.core.model import Color
from provider.gate_hook import Candidate, GateHookSettings
from provider.logs import redact_url
from provider.traefik_pollers import TraefikPollers

log = structlog.get_logger("bluegreen.smoke")

#: Bytes of an answer read for the body check (the report quotes fewer).
MAX_BODY = 65536
#: Seconds between rounds while a check cannot pass yet (Traefik unreachable, or Swarm).
RETRY_S = 0.5


class Gated(Protocol):
    """What the gates need of the controller: its lock's condition and Traefik's pollers."""

    @property
    def changed(self) -> asyncio.Condition: ...
    @property
    def pollers(self) -> TraefikPollers: ...


@dataclass(frozen=True)
class SmokeSettings:
    """Where Traefik's entrypoint is, the preview header, and how long a gate may take."""

    url: str | None
    preview_header: str = "X-Bluegreen-Color"
    timeout: float = 30.0
    request_timeout: float = 5.0
    #: The gate webhook's signing secret and timeout (``provider/gate_hook.py``).
    hook: GateHookSettings = field(default_factory=GateHookSettings)


class SmokeGates:
    """Per service: the last gate result and the task checking the current generation."""

    def __init__(
        self, controller: Gated, settings: SmokeSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.controller = controller
        self.settings = settings
        self.clock = clock
        self._results: dict[str, GateResult] = {}
        self._tasks: dict[str, tuple[frozenset[str], asyncio.Task[None]]] = {}
        self._session: aiohttp.ClientSession | None = None

    def result(self, service: str) -> GateResult | None:
        return self._results.get(service)

    def want(self, candidate: Candidate, route: RouteSpec) -> None:
        """Gate ``candidate`` (one generation) unless done or under way (lock held)."""
        service, ids = candidate.service, candidate.ids
        running = self._tasks.get(service)
        done = self._results.get(service)
        if (running and running[0] == ids) or (done and done.generation == ids and done.finished):
            return
        if running:
            running[1].cancel()
        version = self.controller.pollers.version
        self._results[service] = GateResult(ids, finished=False, passed=False)
        task = asyncio.create_task(self._run(candidate, route, version), name="smoke")
        self._tasks[service] = (ids, task)

    def forget(self, keep: set[str]) -> None:
        """Services gone: drop their results and stop their checks."""
        for name in [n for n in self._tasks if n not in keep]:
            self._tasks.pop(name)[1].cancel()
        for name in [n for n in self._results if n not in keep]:
            del self._results[name]

    async def close(self) -> None:
        for _, task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()

    async def _run(self, candidate: Candidate, route: RouteSpec, version: int) -> None:
        service, ids, color = candidate.service, candidate.ids, candidate.color
        started = self.clock()
        try:
            result = await self._gate(service, ids, color, route, version)
            if result.passed and route.gate_url:
                result = await self._ask(candidate, route, route.gate_url)
        except Exception as exc:  # a bug must fail the gate, never pass it or hang it
            log.exception("smoke_checks_crashed", service=service)
            result = GateResult(ids, True, False, f"the gates could not run: {exc}")
        log.info(
            "smoke_gate",
            service=service,
            color=str(color),
            passed=result.passed,
            failure=result.failure,
            by=result.by if not result.passed else None,
            webhook=redact_url(route.gate_url) if route.gate_url else None,
            duration_s=round(self.clock() - started, 3),
        )
        await self._publish(service, ids, result)

    async def _ask(self, candidate: Candidate, route: RouteSpec, url: str) -> GateResult:
        """The gate webhook's verdict on ``candidate`` (its smoke checks passed)."""
        await self._publish(
            candidate.service, candidate.ids, GateResult(candidate.ids, False, False)
        )
        body = gate_hook.body_of(candidate, route, self.settings.url, self.settings.preview_header)
        reason = await gate_hook.ask(
            self._client(), url, body, gate_hook.gate_id(candidate), self.settings.hook,
            clock=self.clock,
        )  # fmt: skip
        if reason is None:
            return GateResult(candidate.ids, True, True)
        return GateResult(candidate.ids, True, False, reason, by="webhook")

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _publish(self, service: str, ids: frozenset[str], result: GateResult) -> None:
        """Store ``result`` and wake the switcher (it re-evaluates under the lock)."""
        async with self.controller.changed:
            mine = self._tasks.get(service)
            if mine is None or mine[0] != ids:
                return  # a newer generation's checks own the service now
            if result.finished:
                del self._tasks[service]
            self._results[service] = result
            self.controller.changed.notify_all()

    async def _gate(
        self, service: str, ids: frozenset[str], color: Color, route: RouteSpec, version: int
    ) -> GateResult:
        """Wait for Traefik to route the candidate, then run every check; the first failure.

        Without checks (only a gate webhook) the wait still comes first: the approver may
        test the candidate through Traefik's preview route."""
        base = self.settings.url
        if route.smoke and base is None:
            return GateResult(
                ids, True, False, "bluegreen.smoke is set but the provider has no --smoke-url"
            )
        deadline = self.clock() + self.settings.timeout
        pollers = self.controller.pollers
        if not await pollers.wait_version(version, self.settings.timeout):
            return GateResult(
                ids, True, False, "Traefik did not apply the candidate's preview route in time"
            )
        if not route.smoke or base is None:
            return GateResult(ids, True, True)  # only the gate webhook gates this service
        proven = pollers.applied_version() is not None
        while True:
            failure, answered = await self._round(base.rstrip("/"), color, route)
            if failure is None:
                return GateResult(ids, True, True)
            if (answered and proven) or self.clock() + RETRY_S >= deadline:
                return GateResult(ids, True, False, failure)
            await self._publish(service, ids, GateResult(ids, False, False, failure))
            await asyncio.sleep(RETRY_S)

    async def _round(self, base: str, color: Color, route: RouteSpec) -> tuple[str | None, bool]:
        """Every check once: the first failure (None: all passed), and whether Traefik answered."""
        for check in route.smoke:
            try:
                status, body = await self._get(base, color, route, check)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return f"{check.describe()}: Traefik at {base} did not answer ({exc!r})", False
            failure = judge(check, status, body)
            if failure is not None:
                return failure, True
        return None, True

    async def _get(
        self, base: str, color: Color, route: RouteSpec, check: SmokeCheck
    ) -> tuple[int, bytes]:
        headers = {self.settings.preview_header: str(color)}
        if route.smoke_host:
            headers["Host"] = route.smoke_host
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout)
        async with self._client().get(
            base + check.path, headers=headers, allow_redirects=False, timeout=timeout
        ) as response:
            return response.status, await response.content.read(MAX_BODY)
