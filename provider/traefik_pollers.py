"""Which Traefik instances poll ``/traefik``, and which body version each one applied.

Why: a switch is only safe to drain behind once Traefik *applied* it, and a
Traefik that stopped polling must be seen, not waited for.  This module
records (requests of each poller, the probes Traefik's health checker sends
back, the routes of each body version) and stamps each body with its probe;
``provider/core/applied.py`` decides from the records.

A poller is named by the query parameter ``traefik`` of its endpoint URL
(``--providers.http.endpoint=http://provider:8080/traefik?traefik=edge-a``),
else by its source IP.  Not the source port (Go opens a new connection after
any error) nor the User-Agent (every Traefik sends ``Go-http-client/1.1``).
Probes carry no name, only Traefik's source address: pollers are matched to
them by address.

The probe's URL is where Traefik reached the provider (the first poll's
scheme and ``Host``); its path is the digest of the rendered config, so only
what read a body can confirm it, and a restarted provider serves the same
bytes.  In Swarm mode (several replicas behind one address, each with its own
versions) nothing is stamped and ``applied`` stays null.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from aiohttp import web

from provider.core import applied as core
from provider.core.dynamic import Config
from provider.core.model import Color
from provider.core.render import serialize
from provider.core.wire import TraefikAppliedDoc, TraefikPollerDoc
from provider.metrics import Exposition

#: Pollers (and probing addresses) remembered at most; the oldest silent one goes.
MAX_POLLERS = 64
#: Body versions whose routes are remembered (enough for any lagging Traefik).
KEEP_VERSIONS = 64
#: Longest ``"wait": "applied"`` a request may ask for, in seconds.
MAX_WAIT_S = 120.0


def poller_id(request: web.Request) -> str:
    """``?traefik=<id>`` (up to 64 characters), else the source address."""
    named = request.query.get("traefik", "")[:64]
    return named or request.remote or "unknown"


@dataclass
class _Record:
    address: str
    last_poll: float
    held: int = 0


class TraefikPollers:
    """The records of every poller, probe and body version, with a wake-up for waiters."""

    def __init__(
        self,
        timing: core.Timing,
        entrypoints: Iterable[str],
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timing = timing
        self.entrypoints = tuple(entrypoints)
        self.enabled = enabled
        self.clock = clock
        #: Where Traefik reaches the provider (learned from the first poll).
        self.base_url: str | None = None
        self.version = 0
        #: The probe id of the body served now, and each recent id's version.
        self.current_probe = ""
        self._ids: dict[str, int] = {}
        self._records: dict[str, _Record] = {}
        self._probes: dict[str, dict[int, float]] = {}
        self._routes: dict[int, dict[str, Color | None]] = {}
        #: Per service, when the served body started routing it as it does now.
        self._route_since: dict[str, float] = {}
        self._wake = asyncio.Event()

    # -- the body -------------------------------------------------------------------

    def stamp(self, config: Config) -> bytes:
        """A changed config: number it, date each service's route, add the probe."""
        now = self.clock()
        self.version += 1
        routes = core.routes_of(config)
        previous = self._routes.get(self.version - 1, {})
        for service, color in routes.items():
            if service not in previous or previous[service] != color:
                self._route_since[service] = now
        self._routes[self.version] = routes
        for old in [v for v in self._routes if v <= self.version - KEEP_VERSIONS]:
            del self._routes[old]
        rendered = serialize(config)
        self.current_probe = core.probe_id(rendered)
        self._ids.pop(self.current_probe, None)  # re-inserted last: the newest stay
        self._ids[self.current_probe] = self.version
        while len(self._ids) > KEEP_VERSIONS:
            del self._ids[next(iter(self._ids))]
        if not self.enabled or self.base_url is None:
            return rendered
        probed = core.with_probe(config, self.base_url, self.current_probe, self.entrypoints)
        return serialize(probed)

    def learn_base(self, request: web.Request) -> bool:
        """The first poll says where Traefik reaches us; True when the body must be restamped."""
        if not self.enabled or self.base_url is not None or not request.host:
            return False
        self.base_url = f"{request.scheme}://{request.host}"
        return True

    # -- recording ----------------------------------------------------------------

    def arrived(self, poller: str, address: str) -> None:
        """A request of ``poller`` came (from ``address``)."""
        now = self.clock()
        record = self._records.get(poller)
        if record is None:
            if len(self._records) >= MAX_POLLERS:
                oldest = min(self._records, key=lambda k: self._records[k].last_poll)
                del self._records[oldest]
            record = self._records[poller] = _Record(address, now)
        record.address = address
        record.last_poll = now
        record.held += 1

    def left(self, poller: str) -> None:
        """The request was answered (or dropped)."""
        record = self._records.get(poller)
        if record is not None:
            record.held = max(0, record.held - 1)
            record.last_poll = self.clock()

    def probed(self, address: str, probe: str) -> bool:
        """Traefik's health check of ``probe`` came from ``address``: it runs that body."""
        version = self._ids.get(probe)
        if version is None:
            return False
        seen = self._probes.setdefault(address, {})
        if version not in seen:
            seen[version] = self.clock()
            for old in sorted(seen)[:-KEEP_VERSIONS]:
                del seen[old]
            if len(self._probes) > MAX_POLLERS:
                del self._probes[next(iter(self._probes))]
            self._notify()
        return True

    # -- reading --------------------------------------------------------------------

    def pollers(self) -> list[core.Poller]:
        return [
            core.Poller(name, r.address, r.last_poll, r.held) for name, r in self._records.items()
        ]

    def service(self, service: str, active: Color) -> core.Applied:
        if not self.enabled:
            return core.Applied(None, None, None, None)
        current = self._routes.get(self.version, {})
        since = self._route_since.get(service) if current.get(service) is active else None
        return core.service_applied(
            self.pollers(),
            self._probes,
            self._routes,
            service,
            active,
            self.timing,
            self.clock(),
            since,
        )

    def service_json(self, service: str, active: Color) -> TraefikAppliedDoc:
        return core.applied_json(self.service(service, active))

    def pollers_json(self) -> list[TraefikPollerDoc]:
        return core.pollers_json(self.pollers(), self._probes, self.timing, self.clock())

    async def wait_applied(
        self, service: str, active: Callable[[], Color], timeout: float
    ) -> core.Applied:
        """Until every live poller applied ``active()`` for ``service``, or ``timeout``."""
        deadline = self.clock() + min(max(timeout, 0.0), MAX_WAIT_S)
        while True:
            wake = self._wake
            answer = self.service(service, active())
            now = self.clock()
            if answer.applied or answer.applied is None or now >= deadline:
                return answer
            recheck = core.recheck_at(self.pollers(), self.timing, now)
            until = deadline if recheck is None else min(recheck, deadline)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), max(until - now, 0.001))

    def applied_version(self) -> int | None:
        """The oldest body version every live poller applied (0: some applied none yet).

        ``None`` when nothing can be known: stamping is off (Swarm) or no Traefik
        polls now. The smoke gates wait for it to reach the body that routes a
        candidate, so a preview request cannot fall through to the live color.
        """
        now = self.clock()
        live = [p for p in self.pollers() if core.live(p, self.timing, now)]
        if not self.enabled or not live:
            return None
        return min(max(self._probes.get(p.address, {0: 0.0})) for p in live)

    async def wait_version(self, version: int, timeout: float) -> bool:
        """Until every live poller applied ``version`` (or a newer body); False on timeout."""
        deadline = self.clock() + max(timeout, 0.0)
        while True:
            wake = self._wake
            applied = self.applied_version()
            now = self.clock()
            if applied is None or applied >= version:
                return True
            if now >= deadline:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(deadline - now, 0.5))

    def _notify(self) -> None:
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    def expose(self, out: Exposition, actives: Mapping[str, Color]) -> None:
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
