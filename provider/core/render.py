"""Rendering service views into Traefik's dynamic configuration.

Pure and byte-stable: Traefik's HTTP provider hashes the body it fetches and
skips unchanged ones, so the same views and colors must always produce the
same bytes (sorted keys, sorted servers, names derived from the service).
Typed (Traefik's shapes, :mod:`provider.core.dynamic`) up to :func:`serialize`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from provider.core.dynamic import (
    HTTP,
    Config,
    ForwardingTimeouts,
    LoadBalancer,
    Middleware,
    Router,
    Service,
    Weighted,
)
from provider.core.fallback import render_fallback
from provider.core.labels import RouteSpec
from provider.core.model import Color
from provider.core.routing import Options, ServiceView

#: Preview routers must beat every main router (whose default priority is its
#: rule's length, at most ``rule_syntax.MAX_RULE``) and any ordinary user router,
#: so their priority is this base plus the rule's length: among previews that
#: leaves Traefik's own order (the longer, more specific rule first), so two
#: services on one host split by ``PathPrefix`` keep their split under the
#: preview header. Traefik refuses user priorities above ``MaxInt - 1000`` and
#: keeps ``MaxInt - 2`` .. ``MaxInt`` for its internal routers; this stays far below.
PREVIEW_PRIORITY_BASE = 1_000_000

#: The serversTransport every color's load balancer uses (``bluegreen@http`` in Traefik).
#: Traefik keeps a transport's idle keep-alive connections across reloads: a server
#: removed from the config keeps them until ``idleConnTimeout`` (90 s by default;
#: ``TransportManager.Update`` drops a changed transport without closing its idle
#: connections). Those would hold a drain open, so they close after a short idle.
SERVERS_TRANSPORT = "bluegreen"


def color_service_name(service: str, color: Color) -> str:
    """The load-balancer service holding one color's servers."""
    return f"{service}-{color}"


def preview_router_name(service: str, color: Color) -> str:
    """The router that reaches one color through the preview header."""
    return f"{service}-preview-{color}"


def maintenance_name(service: str) -> str:
    """The service and middleware of a service's maintenance page.

    A leading ``_``: no user service's names (which begin with a letter or digit)
    can be it, so turning maintenance on never clashes with another service.
    """
    return f"_maintenance-{service}"


def maintenance_path(service: str) -> str:
    """The provider's route that answers a service's maintenance page."""
    return f"/maintenance-page/{service}"


def maintenance_parts(
    service: str, retry_after: int, options: Options
) -> tuple[Service, Middleware]:
    """The backend and middleware the public router of a service in maintenance uses.

    With the provider's URL: the provider answers the page (503, ``Retry-After``,
    HTML or JSON), reached at :func:`maintenance_path` through ``replacePath``.
    Without it: a load balancer with no server (Traefik's own 503) and a
    ``Retry-After`` added by a ``headers`` middleware.
    """
    if options.maintenance_url:
        backend: Service = {"loadBalancer": {"servers": [{"url": options.maintenance_url}]}}
        return backend, {"replacePath": {"path": maintenance_path(service)}}
    empty: Service = {"loadBalancer": {"servers": []}}
    return empty, {"headers": {"customResponseHeaders": {"Retry-After": str(retry_after)}}}


def preview_priority(rule: str) -> int:
    """A preview router's priority: the base plus the length of the rule it wraps."""
    return PREVIEW_PRIORITY_BASE + len(rule)


def _router(spec: RouteSpec, rule: str, service: str) -> Router:
    router: Router = {
        "rule": rule,
        "service": service,
        "entryPoints": list(spec.entrypoints),
    }
    if spec.middlewares:
        router["middlewares"] = list(spec.middlewares)
    if spec.tls:
        router["tls"] = {"certResolver": spec.certresolver} if spec.certresolver else {}
    return router


def weighted(
    view: ServiceView, active: Color, options: Options, weights: Mapping[Color, int] | None
) -> Weighted:
    """The service's ``weighted`` parent: ``active`` alone, or both colors while a canary runs.

    A color with no routable container is dropped at once (a weighted child
    without servers answers 503 for its share), unless no color has one. The
    sticky cookie keeps a client on the color it first got.
    """
    name = view.name
    shares = [(c, w) for c, w in sorted((weights or {}).items()) if w > 0]
    if len(shares) < 2:
        return {"services": [{"name": color_service_name(name, active), "weight": 1}]}
    live = [(c, w) for c, w in shares if view.color(c).urls]
    if len(live) == 1:
        return {"services": [{"name": color_service_name(name, live[0][0]), "weight": 1}]}
    if not live:
        return {"services": [{"name": color_service_name(name, active), "weight": 1}]}
    out: Weighted = {
        "services": [{"name": color_service_name(name, c), "weight": w} for c, w in live]
    }
    if options.canary_cookie:
        cookie = options.canary_cookie.replace("{service}", name)
        out["sticky"] = {"cookie": {"name": cookie, "httpOnly": True, "sameSite": "lax"}}
    return out


def render_service(
    view: ServiceView,
    active: Color,
    options: Options,
    weights: Mapping[Color, int] | None = None,
) -> tuple[dict[str, Router], dict[str, Service]]:
    """The routers and services of one service, with ``active`` taking its traffic.

    ``weights``: a running canary's share per color (see :func:`weighted`).
    Maintenance is laid over this by :func:`render`.
    """
    routers: dict[str, Router] = {}
    services: dict[str, Service] = {}
    main_spec = view.color(active).route or view.route
    if main_spec is None:
        return routers, services
    name = view.name
    routers[name] = _router(main_spec, main_spec.rule, name)
    services[name] = {"weighted": weighted(view, active, options, weights)}
    for color in Color:
        color_view = view.color(color)
        if color is not active and not color_view.members:
            continue
        balancer: LoadBalancer = {"servers": [{"url": url} for url in color_view.urls]}
        if options.idle_conn_timeout:
            balancer["serversTransport"] = SERVERS_TRANSPORT
        services[color_service_name(name, color)] = {"loadBalancer": balancer}
        spec = color_view.route
        if spec is None:
            continue
        rule = f"({spec.rule}) && Header(`{options.preview_header}`, `{color}`)"
        preview = _router(spec, rule, color_service_name(name, color))
        preview["priority"] = preview_priority(spec.rule)
        routers[preview_router_name(name, color)] = preview
    return routers, services


def render(
    views: Mapping[str, ServiceView],
    actives: Mapping[str, Color],
    options: Options,
    weights: Mapping[str, Mapping[Color, int]] | None = None,
    maintenance: Mapping[str, int] | None = None,
) -> Config:
    """The whole dynamic configuration for the services given.

    ``weights``: running canaries. ``maintenance``: each service in maintenance
    and its ``Retry-After``: its public router goes to the maintenance page
    (:func:`maintenance_parts`); its preview routers still reach the colors.
    """
    routers: dict[str, Router] = {}
    services: dict[str, Service] = {}
    middlewares: dict[str, Middleware] = {}
    for name in sorted(views):
        view, active, shares = views[name], actives[name], (weights or {}).get(name)
        svc_routers, svc_services = render_service(view, active, options, shares)
        retry_after = (maintenance or {}).get(name)
        if retry_after is not None and name in svc_routers:
            page = maintenance_name(name)
            services[page], middlewares[page] = maintenance_parts(name, retry_after, options)
            public = svc_routers[name]
            public["service"] = page
            public["middlewares"] = [*public.get("middlewares", []), page]
        routers.update(svc_routers)
        services.update(svc_services)
        spec = view.color(active).route or view.route
        # No asset fallback in maintenance: its longer rule would let assets past the page.
        if spec is not None and svc_routers and retry_after is None:
            previous = view.color(active.other).urls
            more_routers, more_middlewares = render_fallback(name, spec, active, previous, shares)
            routers.update(more_routers)
            middlewares.update(more_middlewares)
    http: HTTP = {}
    if middlewares:
        http["middlewares"] = middlewares
    if routers:
        http["routers"] = routers
    if services:
        http["services"] = services
        if options.idle_conn_timeout:
            timeouts: ForwardingTimeouts = {"idleConnTimeout": options.idle_conn_timeout}
            http["serversTransports"] = {SERVERS_TRANSPORT: {"forwardingTimeouts": timeouts}}
    return {"http": http} if http else {}


def serialize(config: Config) -> bytes:
    """Byte-stable JSON: sorted keys, no incidental whitespace, ASCII only.

    Traefik's HTTP provider decodes the body as YAML, which rejects a whole
    document over some raw characters (C1 controls, BOM); ``\\uXXXX`` escapes
    mean the same text and are always accepted.
    """
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
