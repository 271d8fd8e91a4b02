"""Grouping observed containers into services and colors, and deciding switches.

Pure: no asyncio, aiohttp or aiodocker. Input is the watcher's normalized
containers plus the persisted state; output is one :class:`ServiceView` per
service, which the renderer turns into Traefik's config and the API into
``/status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from provider.core.labels import LabelDefaults, LabelProblem, Placement, RouteSpec, parse
from provider.core.model import Color, Container, ServiceState
from provider.core.refusals import SwitchRefused


@dataclass(frozen=True)
class Options:
    """The settings the pure core needs."""

    labels: LabelDefaults = field(default_factory=LabelDefaults)
    host_address: str = "127.0.0.1"
    preview_header: str = "X-Bluegreen-Color"
    #: Sticky cookie of a canary's weighted service (``{service}`` filled in); "" turns it off.
    canary_cookie: str = "bluegreen_{service}"
    #: Traefik's keep-alive connections to a color close after this long idle (the
    #: rendered serversTransport, see render.py); "" leaves Traefik's default (90s).
    idle_conn_timeout: str = "1s"
    #: The provider's base URL as Traefik reaches it: the maintenance page's backend
    #: (``None``: maintenance answers Traefik's own 503 with ``Retry-After``, no page).
    maintenance_url: str | None = None


@dataclass(frozen=True)
class Member:
    """A container of one color with the URL Traefik should use for it."""

    container: Container
    url: str | None
    problem: str | None = None

    @property
    def routable(self) -> bool:
        return self.container.routable and self.url is not None


@dataclass(frozen=True)
class ColorView:
    """One color of a service: its containers and the route they ask for."""

    color: Color
    members: tuple[Member, ...] = ()
    route: RouteSpec | None = None

    @property
    def routable(self) -> int:
        return sum(1 for m in self.members if m.routable)

    @property
    def replicas(self) -> int:
        return self.route.replicas if self.route else 1

    @property
    def ready(self) -> bool:
        """Enough routable containers to take traffic."""
        return self.routable >= max(self.replicas, 1)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(sorted({m.url for m in self.members if m.routable and m.url}))


@dataclass(frozen=True)
class ServiceView:
    """Everything observed of one service; ``errors`` non-empty means do not trust it.

    ``warnings`` are problems of containers that are not running (say, the
    leftover of a failed deploy): reported, but they freeze nothing.
    """

    name: str
    colors: Mapping[Color, ColorView]
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def color(self, color: Color) -> ColorView:
        return self.colors.get(color) or ColorView(color)

    @property
    def route(self) -> RouteSpec | None:
        """Any color's route, blue first: used when the active color has no containers."""
        for color in Color:
            spec = self.color(color).route
            if spec is not None:
                return spec
        return None


@dataclass(frozen=True)
class Observation:
    """The result of grouping: services, plus problems no service could own."""

    services: Mapping[str, ServiceView]
    unassigned: tuple[str, ...] = ()


def server_url(container: Container, placement: Placement, host_address: str) -> str | Exception:
    """Where Traefik reaches the container, or why it cannot."""
    if container.network_mode == "host":
        return f"http://{_host(host_address)}:{placement.port}"
    if placement.network is not None:
        ip = container.networks.get(placement.network)
        if ip is None:
            return ValueError(f"container {container.name} is not on network {placement.network}")
    elif len(container.networks) == 1:
        ip = next(iter(container.networks.values()))
    elif not container.networks:
        return ValueError(f"container {container.name} has no network")
    else:
        names = ", ".join(sorted(container.networks))
        return ValueError(
            f"container {container.name} is on several networks ({names}); set the network label"
        )
    if not ip:
        return ValueError(f"container {container.name} has no IP address yet")
    return f"http://{_host(ip)}:{placement.port}"


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def observe(containers: Iterable[Container], options: Options) -> Observation:
    """Group containers by service and color; isolate every label problem."""
    members: dict[str, dict[Color, list[Member]]] = {}
    # Per color, each container's route and whether it runs, oldest container first.
    routes: dict[str, dict[Color, list[tuple[RouteSpec, bool]]]] = {}
    errors: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    unassigned: list[str] = []
    for container in sorted(containers, key=lambda c: (c.created, c.id)):
        running = container.state == "running"
        placed = parse(container, options.labels)
        if isinstance(placed, LabelProblem):
            if placed.service is None:
                unassigned.append(placed.message)
            elif running:
                errors.setdefault(placed.service, []).append(placed.message)
                members.setdefault(placed.service, {})
            else:
                warnings.setdefault(placed.service, []).append(
                    f"{placed.message} (container is {container.state}: reported only)"
                )
                members.setdefault(placed.service, {})
            continue
        found = server_url(container, placed, options.host_address)
        member = Member(container, found if isinstance(found, str) else None)
        if isinstance(found, Exception):
            member = Member(container, None, str(found))
            if running:
                errors.setdefault(placed.service, []).append(str(found))
        members.setdefault(placed.service, {}).setdefault(placed.color, []).append(member)
        routes.setdefault(placed.service, {}).setdefault(placed.color, []).append(
            (placed.route, running)
        )

    views: dict[str, ServiceView] = {}
    for name in sorted(members):
        service_errors = list(errors.get(name, ()))
        service_warnings = list(warnings.get(name, ()))
        colors: dict[Color, ColorView] = {}
        for color, group in members[name].items():
            route, problem = _color_route(color, routes[name][color])
            if problem is not None and route is None:
                service_errors.append(problem)
            elif problem is not None:
                service_warnings.append(problem)
            colors[color] = ColorView(color, tuple(group), route)
        views[name] = ServiceView(name, colors, tuple(service_errors), tuple(service_warnings))
    return Observation(views, tuple(unassigned))


def _color_route(
    color: Color, specs: list[tuple[RouteSpec, bool]]
) -> tuple[RouteSpec | None, str | None]:
    """One color's route: what its running containers agree on.

    Running containers that disagree are an error (no route). Stopped ones do
    not vote while any container runs; with none running, the newest one's
    route stands (it only shapes a router without servers). Their
    disagreement is a warning.
    """
    running = {spec for spec, up in specs if up}
    if len(running) > 1:
        return None, (
            f"{color} containers disagree on their labels "
            "(rule, entrypoints, middlewares, tls, replicas or promote)"
        )
    if running:
        route = next(iter(running))
        if any(spec != route for spec, _ in specs):
            return route, (
                f"stopped {color} containers have other labels than the running ones; ignored"
            )
        return route, None
    newest = specs[-1][0]
    if any(spec != newest for spec, _ in specs):
        return newest, (
            f"stopped {color} containers disagree on their labels; the newest one's are shown"
        )
    return newest, None


def keep_shape(last_good: ServiceView, now: ServiceView) -> ServiceView:
    """What a service in error serves: its last good shape, today's containers.

    Label errors mean the labels cannot be trusted, so each color keeps the
    route (rule, entrypoints, middlewares, TLS) of the last good view. Which
    containers are alive is a fact of Docker, not of labels: each color's
    members are those observed now, so the dead and unhealthy drop out and
    healthy replacements with good labels join (never a dead URL).
    """
    colors: dict[Color, ColorView] = {}
    for color in Color:
        members = now.color(color).members
        if color in last_good.colors or members:
            colors[color] = ColorView(color, members, last_good.color(color).route)
    return ServiceView(now.name, colors, now.errors, now.warnings)


def initial_color(view: ServiceView) -> Color | None:
    """With no state yet: the color that has routable containers, blue if both do."""
    for color in Color:
        if view.color(color).routable > 0:
            return color
    return None


def active_color(view: ServiceView, state: ServiceState | None) -> Color:
    """The persisted color wins; with no state, the routable one, else blue."""
    if state is not None:
        return state.active
    return initial_color(view) or Color.BLUE


def check_switch(view: ServiceView, target: Color, *, force: bool) -> None:
    """Refuse a switch to a color that cannot take the service's traffic."""
    if force:
        return
    if view.errors:
        raise SwitchRefused(
            f"service {view.name} has label errors ({view.errors[0]}); fix the labels or pass force"
        )
    target_view = view.color(target)
    if not target_view.ready:
        raise SwitchRefused(
            f"{target} has {target_view.routable} routable container(s) for service "
            f"{view.name}; {target_view.replicas} needed (pass force to switch anyway)"
        )
