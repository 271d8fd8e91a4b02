"""Grouping observed containers into services and colors, and deciding switches.

Pure: no asyncio, aiohttp or aiodocker. Input is the watcher's normalized
containers plus the persisted state; output is one :class:`ServiceView` per
service, which the renderer turns into Traefik's config and the API into
``/status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from provider.errors import SwitchRefused
from provider.labels import LabelDefaults, LabelProblem, Placement, RouteSpec, parse
from provider.model import Color, Container, ServiceState


@dataclass(frozen=True)
class Options:
    """The settings the pure core needs."""

    labels: LabelDefaults = field(default_factory=LabelDefaults)
    host_address: str = "127.0.0.1"
    preview_header: str = "X-Bluegreen-Color"


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
    """Everything observed of one service; ``errors`` non-empty means do not trust it."""

    name: str
    colors: Mapping[Color, ColorView]
    errors: tuple[str, ...] = ()

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
    routes: dict[str, dict[Color, set[RouteSpec]]] = {}
    errors: dict[str, list[str]] = {}
    unassigned: list[str] = []
    for container in sorted(containers, key=lambda c: (c.created, c.id)):
        placed = parse(container, options.labels)
        if isinstance(placed, LabelProblem):
            if placed.service is None:
                unassigned.append(placed.message)
            else:
                errors.setdefault(placed.service, []).append(placed.message)
                members.setdefault(placed.service, {})
            continue
        found = server_url(container, placed, options.host_address)
        member = Member(container, found if isinstance(found, str) else None)
        if isinstance(found, Exception):
            member = Member(container, None, str(found))
            if container.state == "running":
                errors.setdefault(placed.service, []).append(str(found))
        members.setdefault(placed.service, {}).setdefault(placed.color, []).append(member)
        routes.setdefault(placed.service, {}).setdefault(placed.color, set()).add(placed.route)

    views: dict[str, ServiceView] = {}
    for name in sorted(members):
        service_errors = list(errors.get(name, ()))
        colors: dict[Color, ColorView] = {}
        for color, group in members[name].items():
            specs = routes[name][color]
            route: RouteSpec | None = None
            if len(specs) == 1:
                route = next(iter(specs))
            else:
                service_errors.append(
                    f"{color} containers disagree on their labels "
                    "(rule, entrypoints, middlewares, tls, replicas or promote)"
                )
            colors[color] = ColorView(color, tuple(group), route)
        views[name] = ServiceView(name, colors, tuple(service_errors))
    return Observation(views, tuple(unassigned))


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
