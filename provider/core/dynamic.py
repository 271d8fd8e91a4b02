"""Traefik's dynamic configuration, the part this provider writes, as types.

The shapes of Traefik's ``dynamic.Configuration`` (``pkg/config/dynamic``:
``Router``, ``Service``, ``WeightedRoundRobin``, ``ServersLoadBalancer``,
``Server``, ``Sticky``, ``Cookie``, ``RouterTLSConfig``) with Traefik's own JSON
key names, so :mod:`provider.core.render` is type-checked up to the final
serialize. Middlewares are Traefik's or other providers': a router names them; the
only ones defined here (``replacePath``, ``headers``) serve a maintenance page.
Types only, plain dicts at runtime (the render costs nothing more). No
``from __future__ import annotations``: ``NotRequired`` stays readable at runtime.
"""

from typing import NotRequired, TypedDict


class RouterTLS(TypedDict, total=False):
    """A router's ``tls``: empty (Traefik's default certificate) or a resolver."""

    certResolver: str


class Router(TypedDict):
    """One HTTP router: a rule, the service it sends to, where it listens."""

    rule: str
    service: str
    entryPoints: list[str]
    #: Names of middlewares (``auth@file``...), in order.
    middlewares: NotRequired[list[str]]
    tls: NotRequired[RouterTLS]
    #: Preview routers only (``render.preview_priority``).
    priority: NotRequired[int]


class Server(TypedDict):
    """One backend of a load balancer."""

    url: str


class HealthCheck(TypedDict):
    """Traefik's active health check of a load balancer (the applied probe's)."""

    path: str
    interval: str
    timeout: str


class LoadBalancer(TypedDict):
    """A color's servers."""

    servers: list[Server]
    healthCheck: NotRequired[HealthCheck]
    #: ``bluegreen``: short idle keep-alive connections, so a drain can end (render.py).
    serversTransport: NotRequired[str]


class WeightedChild(TypedDict):
    """One child service of a weighted parent, and its share."""

    name: str
    weight: int


class Cookie(TypedDict):
    """The sticky cookie that keeps a client on the color it first got."""

    name: str
    httpOnly: bool
    sameSite: str


class Sticky(TypedDict):
    cookie: Cookie


class Weighted(TypedDict):
    """A service's parent: the active color alone, or both while a canary runs."""

    services: list[WeightedChild]
    sticky: NotRequired[Sticky]


class Service(TypedDict, total=False):
    """One service: exactly one of ``weighted`` (the parent) or ``loadBalancer`` (a color)."""

    weighted: Weighted
    loadBalancer: LoadBalancer


class Errors(TypedDict):
    """Traefik's ``errors`` middleware: the asset fallback's (``provider/core/fallback.py``)."""

    status: list[str]
    statusRewrites: dict[str, int]
    service: str
    query: str


class ReplacePath(TypedDict):
    """Traefik's ``replacePath``: the backend sees ``path`` (the original in a header)."""

    path: str


class Headers(TypedDict):
    """Traefik's ``headers``, the one field used: headers added to every response."""

    customResponseHeaders: dict[str, str]


class Middleware(TypedDict, total=False):
    """One middleware this provider defines, one kind each: the asset fallback's
    ``errors``, a maintenance page's ``replacePath`` or ``headers``."""

    errors: Errors
    replacePath: ReplacePath
    headers: Headers


class ForwardingTimeouts(TypedDict):
    idleConnTimeout: str


class ServersTransport(TypedDict):
    """How Traefik talks to the colors' servers (``serversTransports``)."""

    forwardingTimeouts: ForwardingTimeouts


class HTTP(TypedDict, total=False):
    """The ``http`` section; an empty one is left out."""

    middlewares: dict[str, Middleware]
    routers: dict[str, Router]
    services: dict[str, Service]
    serversTransports: dict[str, ServersTransport]


class Config(TypedDict, total=False):
    """The whole body of ``GET /traefik``; ``{}`` when nothing is routed."""

    http: HTTP
