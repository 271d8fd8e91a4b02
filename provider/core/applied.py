"""Has Traefik applied a service's switch? Decided from what each poller was sent.

Pure. How Traefik 3.7's HTTP provider treats a body (``pkg/provider/http``,
``pkg/provider/aggregator``, ``pkg/server/configurationwatcher.go``) is the
model here:

1. Each ``pollInterval`` tick it GETs the body, skips it if its hash equals the
   last one's, decodes it and hands it to the throttle's ring channel (which
   never blocks), then waits for the next tick.  So **the poller's next
   request proves it read and handed over the body before** (a body written
   to a stopped or stuck Traefik's socket is not proof of anything).
2. The throttle goroutine forwards one message, then sleeps
   ``providersThrottleDuration``; a message that arrives meanwhile waits for
   the sleep to end, and only the newest waiting one is forwarded (a ring of
   one).  :func:`forwards` replays that from the hand-over times.
3. The configuration watcher merges and applies it (routers rebuilt) within
   a few ms: :data:`APPLY_MARGIN_S` covers it.

A poller that stopped polling is not live: it is reported, not waited for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provider.core.model import Color

#: Traefik's router rebuild after the watcher takes a config (measured: a few ms).
APPLY_MARGIN_S = 0.05
#: A poller with no request held whose last request is older than hold + this is not live.
STALE_AFTER_S = 10.0
#: Changed bodies remembered per poller (enough to replay the throttle and date a route).
KEEP_FETCHES = 16


@dataclass(frozen=True)
class Fetch:
    """A body a poller was sent that differs from the one it was sent before."""

    version: int
    #: Per service, the color the body routes it to (None: split, as during a canary).
    routes: Mapping[str, Color | None]
    sent_at: float
    #: When the poller's next request came (proof Traefik read it); None: not yet.
    acked_at: float | None = None


@dataclass(frozen=True)
class Poller:
    """One Traefik instance as the provider sees it."""

    id: str
    last_poll: float
    #: Requests of it held right now (a live Traefik waiting for a change).
    held: int
    fetches: tuple[Fetch, ...] = ()


@dataclass(frozen=True)
class Timing:
    """What the decision needs to know of Traefik's and the provider's settings."""

    throttle: float
    hold: float
    stale_after: float = STALE_AFTER_S
    apply_margin: float = APPLY_MARGIN_S


@dataclass(frozen=True)
class Applied:
    """One service's answer: ``applied`` None when no Traefik was ever seen polling."""

    applied: bool | None
    color: Color | None
    since: float | None
    lag_s: float | None


def routes_of(config: Mapping[str, Any]) -> dict[str, Color | None]:
    """Per service, the color a rendered config routes it to (None: more than one)."""
    out: dict[str, Color | None] = {}
    services = config.get("http", {}).get("services", {})
    for name, service in services.items():
        weighted = service.get("weighted") if isinstance(service, dict) else None
        if not isinstance(weighted, dict):
            continue
        children = [c for c in weighted.get("services", []) if c.get("weight", 1) > 0]
        colors = {str(c.get("name", "")).removeprefix(f"{name}-") for c in children}
        only = colors.pop() if len(colors) == 1 else None
        out[name] = Color(only) if only in {c.value for c in Color} else None
    return out


def forwards(acks: Sequence[float], throttle: float) -> list[tuple[int, float]]:
    """Traefik's throttle replayed: (index of the fetch forwarded, when), in order.

    ``acks``: hand-over times, ascending.  After a forward at ``t`` the next one
    is at ``max(next hand-over, t + throttle)`` and takes the newest fetch
    handed over by then; the ones it replaced are never applied on their own.
    """
    out: list[tuple[int, float]] = []
    free = float("-inf")
    index = 0
    while index < len(acks):
        at = max(acks[index], free)
        last = index
        while last + 1 < len(acks) and acks[last + 1] <= at:
            last += 1
        out.append((last, at))
        free = at + throttle
        index = last + 1
    return out


def live(poller: Poller, timing: Timing, now: float) -> bool:
    """Polling now (a request held) or recently enough to poll again."""
    return poller.held > 0 or now - poller.last_poll <= timing.hold + timing.stale_after


def applied_fetches(poller: Poller, timing: Timing, now: float) -> list[tuple[Fetch, float]]:
    """The fetches Traefik applied by ``now``, with when each took effect, oldest first."""
    acked = [f for f in poller.fetches if f.acked_at is not None]
    acks = [f.acked_at for f in acked if f.acked_at is not None]
    done = []
    for index, at in forwards(acks, timing.throttle):
        effective = at + timing.apply_margin
        if effective <= now:
            done.append((acked[index], effective))
    return done


def route_applied(
    poller: Poller, service: str, timing: Timing, now: float
) -> tuple[Color | None, float | None]:
    """The color this poller's Traefik routes ``service`` to now, and since when."""
    done = applied_fetches(poller, timing, now)
    if not done:
        return None, None
    color = done[-1][0].routes.get(service)
    since = done[-1][1]
    for fetch, effective in reversed(done):
        if fetch.routes.get(service) != color:
            break
        since = effective
    return color, since


def service_applied(
    pollers: Iterable[Poller],
    service: str,
    active: Color,
    timing: Timing,
    now: float,
    changed_at: float | None,
) -> Applied:
    """Applied when at least one poller is live and every live one routes to ``active``.

    ``changed_at``: when the served body first routed ``service`` to ``active``;
    ``lag_s`` is from it to ``since`` (applied), or to now (not yet).
    """
    seen = list(pollers)
    if not seen:
        return Applied(None, None, None, None)
    routes = [route_applied(p, service, timing, now) for p in seen if live(p, timing, now)]
    colors = {color for color, _ in routes}
    color = colors.pop() if len(colors) == 1 else None
    applied = bool(routes) and color is active
    since = max((s for _, s in routes if s is not None), default=None) if applied else None
    if changed_at is None:
        lag = None
    elif since is not None:
        lag = max(0.0, since - changed_at)
    else:
        lag = max(0.0, now - changed_at)
    return Applied(applied, color, since, lag)


def recheck_at(pollers: Iterable[Poller], timing: Timing, now: float) -> float | None:
    """The next time an answer can change with no new request: a forward or a staleness."""
    times: list[float] = []
    for poller in pollers:
        if poller.held == 0 and live(poller, timing, now):
            times.append(poller.last_poll + timing.hold + timing.stale_after)
        acks = [f.acked_at for f in poller.fetches if f.acked_at is not None]
        times += [t + timing.apply_margin for _, t in forwards(acks, timing.throttle)]
    future = [t for t in times if t > now]
    return min(future, default=None)


def pollers_json(pollers: Iterable[Poller], timing: Timing, now: float) -> list[dict[str, Any]]:
    """``/status``'s ``traefik_pollers``: one entry per Traefik seen, by id."""
    out = []
    for poller in sorted(pollers, key=lambda p: p.id):
        done = applied_fetches(poller, timing, now)
        out.append(
            {
                "id": poller.id,
                "last_poll": poller.last_poll,
                "applied_version": done[-1][0].version if done else None,
                "live": live(poller, timing, now),
            }
        )
    return out


def applied_json(applied: Applied) -> dict[str, Any]:
    """A service's ``traefik`` object in ``/status``."""
    return {
        "applied": applied.applied,
        "color": str(applied.color) if applied.color is not None else None,
        "since": applied.since,
        "lag_s": None if applied.lag_s is None else round(applied.lag_s, 3),
    }
