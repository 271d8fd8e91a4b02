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


class LoadBalancer(TypedDict):
    """A color's servers."""

    servers: list[Server]


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


class ReplacePath(TypedDict):
    """Traefik's ``replacePath``: the backend sees ``path`` (the original in a header)."""

    path: str


class Headers(TypedDict):
    """Traefik's ``headers``, the one field used: headers added to every response."""

    customResponseHeaders: dict[str, str]


class Middleware(TypedDict, total=False):
    """One middleware this provider defines (a service's maintenance page), one kind each."""

    replacePath: ReplacePath
    headers: Headers


class HTTP(TypedDict, total=False):
    """The ``http`` section; an empty one is left out."""

    routers: dict[str, Router]
    services: dict[str, Service]
    middlewares: dict[str, Middleware]


class Config(TypedDict, total=False):
    """The whole body of ``GET /traefik``; ``{}`` when nothing is routed."""

    http: HTTP
