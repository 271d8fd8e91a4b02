"""Has Traefik applied a service's switch? Decided from what Traefik itself reports back.

Pure.  The evidence is Traefik's own health checker: every body the provider
serves carries one extra router (a rule no request matches) whose service
points back at the provider, with a ``healthCheck`` whose path names the body
(:func:`with_probe`).  Traefik 3.7 starts a service's health checks
only from a configuration it *applied* (``pkg/healthcheck``: the checker is
built with the routers, and a reload cancels the previous one), so a check of
version *n* arriving from a Traefik's address proves that Traefik runs
version *n*: its routes are live.  The path names the version by the digest
of the rendered config (:func:`probe_id`), the same in every process, so a
restarted provider serves the same bytes.  Measured here: the next poll after a body
was read, plus Traefik's throttle, is no proof (under load Traefik applied a
body up to 1.6 s later), which is why the proof comes from the health check.

A poller (a Traefik instance) is live while it polls ``/traefik``; one that
stopped is reported, not waited for.  Probes are matched to pollers by source
address: two Traefiks behind one address share their evidence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provider.core.dynamic import HTTP, Config
from provider.core.model import Color
from provider.core.wire import TraefikAppliedDoc, TraefikPollerDoc

#: A poller with no request held whose last request is older than hold + this is not live.
STALE_AFTER_S = 10.0
#: How often Traefik checks the probe (each Traefik sends this many requests per second, 1/x).
PROBE_INTERVAL = "250ms"
#: The probe's router and service (a name no ``bluegreen.service`` label can take: two dashes).
PROBE_NAME = "bluegreen--applied"
#: A rule no request matches: no TCP peer has the broadcast address.
PROBE_RULE = "ClientIP(`255.255.255.255`)"
#: Where the provider answers the probe; the body's :func:`probe_id` follows.
PROBE_PATH = "/traefik/applied/"
#: Hex digits of the probe id (96 bits: not guessed without the body's bytes).
PROBE_ID_CHARS = 24

Routes = Mapping[str, Color | None]


@dataclass(frozen=True)
class Poller:
    """One Traefik instance as the provider sees it."""

    id: str
    address: str
    last_poll: float
    #: Requests of it held right now (a live Traefik waiting for a change).
    held: int = 0


@dataclass(frozen=True)
class Timing:
    """The provider's hold, and how long a silent poller still counts as live."""

    hold: float
    stale_after: float = STALE_AFTER_S


@dataclass(frozen=True)
class Applied:
    """One service's answer: ``applied`` None when no Traefik was ever seen polling."""

    applied: bool | None
    color: Color | None
    since: float | None
    lag_s: float | None


def probe_id(rendered: bytes) -> str:
    """The probe path's name of a rendered config: its digest, the same in every process.

    So the body stays byte-stable across a provider restart (Traefik hashes it), and only
    what read the body (or can rebuild it byte for byte) can confirm it.
    """
    return hashlib.sha256(rendered).hexdigest()[:PROBE_ID_CHARS]


def with_probe(
    config: Config,
    base_url: str,
    probe: str,
    entrypoints: Iterable[str],
) -> Config:
    """``config`` plus the probe router and service named ``probe`` (nothing else changes)."""
    http = config.get("http", HTTP()).copy()
    routers = dict(http.get("routers", {}))
    services = dict(http.get("services", {}))
    routers[PROBE_NAME] = {
        "rule": PROBE_RULE,
        "service": PROBE_NAME,
        "entryPoints": list(entrypoints),
        "priority": 1,
    }
    services[PROBE_NAME] = {
        "loadBalancer": {
            "servers": [{"url": base_url}],
            "healthCheck": {
                "path": f"{PROBE_PATH}{probe}",
                "interval": PROBE_INTERVAL,
                "timeout": "5s",
            },
        }
    }
    http["routers"], http["services"] = routers, services
    return {**config, "http": http}


def routes_of(config: Mapping[str, Any]) -> dict[str, Color | None]:
    """Per service, the color a rendered config routes it to (None: more than one)."""
    out: dict[str, Color | None] = {}
    for name, service in config.get("http", {}).get("services", {}).items():
        weighted = service.get("weighted") if isinstance(service, dict) else None
        if not isinstance(weighted, dict):
            continue
        children = [c for c in weighted.get("services", []) if c.get("weight", 1) > 0]
        colors = {str(c.get("name", "")).removeprefix(f"{name}-") for c in children}
        only = colors.pop() if len(colors) == 1 else None
        out[name] = Color(only) if only in {c.value for c in Color} else None
    return out


def live(poller: Poller, timing: Timing, now: float) -> bool:
    """Polling now (a request held) or recently enough to poll again."""
    return poller.held > 0 or now - poller.last_poll <= timing.hold + timing.stale_after


def route_applied(
    probed: Mapping[int, float], routes: Mapping[int, Routes], service: str
) -> tuple[Color | None, float | None]:
    """The color a Traefik whose probes showed ``probed`` (version: first seen) routes
    ``service`` to, and since when (the first probe of the oldest version in that run)."""
    if not probed:
        return None, None
    versions = sorted(probed, reverse=True)
    newest = versions[0]
    color = routes.get(newest, {}).get(service)
    since = probed[newest]
    for version in versions[1:]:
        if version not in routes or routes[version].get(service) != color:
            break
        since = min(since, probed[version])
    return color, since


def service_applied(
    pollers: Iterable[Poller],
    probes: Mapping[str, Mapping[int, float]],
    routes: Mapping[int, Routes],
    service: str,
    active: Color,
    timing: Timing,
    now: float,
    changed_at: float | None,
) -> Applied:
    """Applied when at least one poller is live and every live one routes to ``active``.

    ``probes``: per source address, each version probed and when first.
    ``changed_at``: when the served body first routed ``service`` to ``active``;
    ``lag_s`` is from it to ``since`` (applied), or to now (not yet).
    """
    seen = list(pollers)
    if not seen:
        return Applied(None, None, None, None)
    answers = [
        route_applied(probes.get(p.address, {}), routes, service)
        for p in seen
        if live(p, timing, now)
    ]
    colors = {color for color, _ in answers}
    color = colors.pop() if len(colors) == 1 else None
    applied = bool(answers) and color is active
    since = max((s for _, s in answers if s is not None), default=None) if applied else None
    if changed_at is None:
        lag = None
    elif since is not None:
        lag = max(0.0, since - changed_at)
    else:
        lag = max(0.0, now - changed_at)
    return Applied(applied, color, since, lag)


def recheck_at(pollers: Iterable[Poller], timing: Timing, now: float) -> float | None:
    """The next time an answer can change with no new request: a poller going stale."""
    times = [
        p.last_poll + timing.hold + timing.stale_after
        for p in pollers
        if p.held == 0 and live(p, timing, now)
    ]
    return min(times, default=None)


def pollers_json(
    pollers: Iterable[Poller],
    probes: Mapping[str, Mapping[int, float]],
    timing: Timing,
    now: float,
) -> list[TraefikPollerDoc]:
    """``/status``'s ``traefik_pollers``: one entry per Traefik seen, by id."""
    out: list[TraefikPollerDoc] = []
    for poller in sorted(pollers, key=lambda p: p.id):
        probed = probes.get(poller.address, {})
        out.append(
            {
                "id": poller.id,
                # A request held now is polling now.
                "last_poll": now if poller.held else poller.last_poll,
                "applied_version": max(probed, default=None),
                "live": live(poller, timing, now),
            }
        )
    return out


def applied_json(applied: Applied) -> TraefikAppliedDoc:
    """A service's ``traefik`` object in ``/status``."""
    return {
        "applied": applied.applied,
        "color": str(applied.color) if applied.color is not None else None,
        "since": applied.since,
        "lag_s": None if applied.lag_s is None else round(applied.lag_s, 3),
    }
