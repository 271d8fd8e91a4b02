"""Which Traefik instances poll ``/traefik``, what each was sent, and when it came back.

Why: a switch is only safe to drain behind once Traefik *applied* it, and a
Traefik that stopped polling must be seen, not waited for.  This module only
records (request arrived, body sent, request left); ``provider/core/applied.py``
decides from the records.

A poller is named by the query parameter ``traefik`` of its endpoint URL
(``--providers.http.endpoint=http://provider:8080/traefik?traefik=edge-a``),
else by its source IP.  Not the source port (Go opens a new connection after
any error) nor the User-Agent (every Traefik sends ``Go-http-client/1.1``):
two Traefiks behind one IP need the parameter to count separately.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from provider.core import applied as core
from provider.core.model import Color
from provider.metrics import Exposition

#: Pollers remembered at most (one per Traefik instance; the oldest silent one goes).
MAX_POLLERS = 64
#: Longest ``"wait": "applied"`` a request may ask for, in seconds.
MAX_WAIT_S = 120.0


def poller_id(request: web.Request) -> str:
    """``?traefik=<id>`` (up to 64 characters), else the source address."""
    named = request.query.get("traefik", "")[:64]
    return named or request.remote or "unknown"


@dataclass
class _Record:
    last_poll: float
    held: int = 0
    sent: bytes | None = None
    fetches: list[core.Fetch] = field(default_factory=list)


class TraefikPollers:
    """The records of every poller and of every body served, with a wake-up for waiters."""

    def __init__(self, timing: core.Timing, *, clock: Callable[[], float] = time.time) -> None:
        self.timing = timing
        self.clock = clock
        self._records: dict[str, _Record] = {}
        self._version = 0
        self._body: bytes | None = None
        self._routes: dict[str, Color | None] = {}
        #: Per service, when the served body started routing it as it does now.
        self._route_since: dict[str, float] = {}
        self._wake = asyncio.Event()

    # -- recording (called by /traefik) ----------------------------------------

    def body_changed(self, body: bytes) -> None:
        """The controller serves a new body: number it and date each service's route."""
        if body == self._body:
            return
        now = self.clock()
        self._body = body
        self._version += 1
        try:
            routes = core.routes_of(json.loads(body))
        except (ValueError, AttributeError):
            routes = {}
        for service, color in routes.items():
            if service not in self._routes or self._routes[service] != color:
                self._route_since[service] = now
        self._routes = routes

    def arrived(self, poller: str) -> None:
        """A request came: it proves the poller read what it was sent last."""
        now = self.clock()
        record = self._records.get(poller)
        if record is None:
            if len(self._records) >= MAX_POLLERS:
                oldest = min(self._records, key=lambda k: self._records[k].last_poll)
                del self._records[oldest]
            record = self._records[poller] = _Record(now)
        record.last_poll = now
        record.held += 1
        if record.fetches and record.fetches[-1].acked_at is None:
            record.fetches[-1] = replace(record.fetches[-1], acked_at=now)
            self._notify()

    def left(self, poller: str, body: bytes | None) -> None:
        """The request was answered with ``body`` (None: dropped before an answer)."""
        record = self._records.get(poller)
        if record is None:
            return
        record.held = max(0, record.held - 1)
        if body is not None and body != record.sent:
            self.body_changed(body)  # a body served before the watch saw it
            record.sent = body
            fetch = core.Fetch(self._version, dict(self._routes), self.clock())
            record.fetches = [*record.fetches, fetch][-core.KEEP_FETCHES :]
        self._notify()

    # -- reading ----------------------------------------------------------------

    def pollers(self) -> list[core.Poller]:
        return [
            core.Poller(name, r.last_poll, r.held, tuple(r.fetches))
            for name, r in self._records.items()
        ]

    def service(self, service: str, active: Color) -> core.Applied:
        since = self._route_since.get(service) if self._routes.get(service) is active else None
        return core.service_applied(
            self.pollers(), service, active, self.timing, self.clock(), since
        )

    def service_json(self, service: str, active: Color) -> dict[str, Any]:
        return core.applied_json(self.service(service, active))

    def pollers_json(self) -> list[dict[str, Any]]:
        return core.pollers_json(self.pollers(), self.timing, self.clock())

    async def wait_applied(
        self, service: str, active: Callable[[], Color], timeout: float
    ) -> core.Applied:
        """Until every live poller applied ``active()`` for ``service``, or ``timeout``."""
        deadline = self.clock() + min(max(timeout, 0.0), MAX_WAIT_S)
        while True:
            wake = self._wake
            answer = self.service(service, active())
            now = self.clock()
            if answer.applied or now >= deadline:
                return answer
            recheck = core.recheck_at(self.pollers(), self.timing, now)
            until = deadline if recheck is None else min(recheck, deadline)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), max(until - now, 0.001))

    def _notify(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def expose(self, out: Exposition, actives: dict[str, Color]) -> None:
        """The apply lag and the pollers, for ``/metrics``."""
        answers = {name: self.service(name, color) for name, color in sorted(actives.items())}
        out.family(
            "bluegreen_traefik_applied",
            "gauge",
            "1 when every live Traefik poller applied the service's active color.",
        )
        for name, answer in answers.items():
            if answer.applied is not None:
                out.sample("bluegreen_traefik_applied", int(answer.applied), service=name)
        out.family(
            "bluegreen_traefik_apply_lag_seconds",
            "gauge",
            "From the route's change in the served body to Traefik applying it (or to now).",
        )
        for name, answer in answers.items():
            if answer.lag_s is not None:
                out.sample("bluegreen_traefik_apply_lag_seconds", answer.lag_s, service=name)
        pollers = self.pollers_json()
        out.family("bluegreen_traefik_pollers", "gauge", "Traefik instances seen polling.")
        for state in (True, False):
            count = sum(1 for p in pollers if p["live"] is state)
            out.sample("bluegreen_traefik_pollers", count, live=str(state).lower())


POLLERS = web.AppKey("traefik_pollers", TraefikPollers)
