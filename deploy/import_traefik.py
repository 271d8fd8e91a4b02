"""Reading a Traefik file-provider config that a bash script switches between blue and green.

``bluegreen import traefik-file`` starts here: :func:`read_config` turns the parsed
YAML/TOML document into an :class:`Import` (the services it can reproduce with
``bluegreen.*`` labels, what it leaves to the file provider, and the problems). Pure:
no files, no printing (``deploy/import_output.py`` renders, ``deploy/import_cli.py``
reads the file). Three shapes are recognised, each as the blog-style scripts write it:

- **the router switches**: router ``web`` has ``service: web-blue``; services
  ``web-blue`` and ``web-green`` are load balancers (the script rewrites the router);
- **weighted**: router ``web`` → a ``weighted`` service over ``web-blue``/``web-green``
  (the script rewrites the weights);
- **the URL switches**: router ``web`` → one load balancer whose server URLs name a
  color (``http://web-blue:8080``; the script rewrites them with ``sed``); the other
  color's servers are the same URLs with the color swapped, and the import says so.

Anything else that looks blue/green is a :class:`Problem` (what, and where); a router
naming no color is left to the file provider. Nothing is guessed.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from provider.core.labels import service_name_problem
from provider.core.model import Color
from provider.core.rule_syntax import rule_problem

#: ``web-blue``, ``web_green``, ``blue``: a name whose last token is a color.
_COLOR_SUFFIX = re.compile(r"^(?:(?P<stem>.*?)(?P<sep>[-_.]))?(?P<color>blue|green)$")
#: A color as a whole token of a host name: ``web-blue``, ``blue.internal``, ``app_green_1``.
_COLOR_TOKEN = re.compile(r"(?<![A-Za-z0-9])(blue|green)(?![A-Za-z0-9])")
_ROUTER_KEYS = {"rule", "service", "entryPoints", "middlewares", "tls"}
_TLS_KEYS = {"certResolver"}


@dataclass(frozen=True)
class Problem:
    """Something blue/green-looking that cannot be imported as it stands."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class Server:
    """One server URL of a color: the container's host name (or address) and port."""

    url: str
    host: str
    port: int

    @property
    def is_address(self) -> bool:
        """An IP or ``localhost``: it names no container, so no compose service either."""
        if self.host == "localhost":
            return True
        try:
            ipaddress.ip_address(self.host.strip("[]"))
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class Backend:
    """One color's servers and where they came from (``derived``: swapped from the other)."""

    color: Color
    where: str
    servers: tuple[Server, ...]
    derived: bool = False


@dataclass(frozen=True)
class Imported:
    """One router with its two colors: what the ``bluegreen.*`` labels will say."""

    name: str
    router: str
    rule: str
    entrypoints: tuple[str, ...]
    middlewares: tuple[str, ...]
    tls: bool
    certresolver: str | None
    live: Color
    backends: tuple[Backend, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Import:
    """The whole file: imported services, what stays with the file provider, problems."""

    services: tuple[Imported, ...] = ()
    kept: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()


class _Skip(Exception):
    """A router that cannot be imported; becomes a :class:`Problem`."""

    def __init__(self, where: str, what: str) -> None:
        super().__init__(what)
        self.problem = Problem(where, what)


@dataclass
class _Reading:
    """The file's http section as it is read: what was used, what remains."""

    services: Mapping[str, Any]
    used: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def color_of_name(name: str) -> tuple[str, Color] | None:
    """``web-blue`` → (``web``, blue); ``None`` when the last token is not a color."""
    match = _COLOR_SUFFIX.match(name)
    if match is None:
        return None
    return match.group("stem") or "", Color(match.group("color"))


def _server(where: str, raw: Any) -> Server:
    url = raw.get("url") if isinstance(raw, Mapping) else None
    if not isinstance(url, str) or not url:
        raise _Skip(where, f"a server without a url ({raw!r})")
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise _Skip(where, f"server {url}: the provider reaches containers over http only")
    if not parts.hostname:
        raise _Skip(where, f"server {url} names no host")
    if parts.path not in ("", "/") or parts.query:
        raise _Skip(where, f"server {url} has a path; the provider routes to host:port only")
    try:
        port = parts.port or 80
    except ValueError:
        raise _Skip(where, f"server {url} has no valid port") from None
    return Server(url, parts.hostname, port)


def _load_balancer(reading: _Reading, name: str) -> tuple[Server, ...]:
    where = f"http.services.{name}"
    definition = reading.services.get(name)
    if not isinstance(definition, Mapping):
        raise _Skip(where, "is referenced but not defined in this file")
    balancer = definition.get("loadBalancer")
    if set(definition) != {"loadBalancer"} or not isinstance(balancer, Mapping):
        kinds = ", ".join(sorted(str(k) for k in definition)) or "nothing"
        raise _Skip(where, f"is a {kinds} service; only loadBalancer and weighted are imported")
    servers = balancer.get("servers")
    if not isinstance(servers, list) or not servers:
        raise _Skip(where, "has no servers")
    for key in sorted(set(balancer) - {"servers"}):
        reading.notes.append(f"{where}.loadBalancer.{key} is not carried over ({_why(key)})")
    reading.used.add(name)
    return tuple(_server(f"{where}.loadBalancer.servers[{i}]", s) for i, s in enumerate(servers))


def _why(key: str) -> str:
    if key == "healthCheck":
        return "the provider follows the container's Docker HEALTHCHECK: give the service one"
    return "the provider's load balancers take no options"


def _hosts_color(servers: tuple[Server, ...], where: str) -> Color | None:
    colors = {m for s in servers for m in _COLOR_TOKEN.findall(s.host)}
    if len(colors) > 1:
        raise _Skip(where, "its servers name both blue and green")
    if colors and any(not _COLOR_TOKEN.search(s.host) for s in servers):
        raise _Skip(where, "only some of its servers name a color")
    return Color(colors.pop()) if colors else None


def _swapped(servers: tuple[Server, ...], color: Color) -> tuple[Server, ...]:
    def swap(text: str) -> str:
        return _COLOR_TOKEN.sub(color.value, text)

    return tuple(Server(swap(s.url), swap(s.host), s.port) for s in servers)


def _pair_by_name(reading: _Reading, name: str, stem: str, live: Color) -> tuple[Backend, ...]:
    """Shape 1: the router names ``<stem>-<color>``; its twin is ``<stem>-<other>``."""
    sep = name[len(stem) : len(name) - len(live.value)]
    backends = [Backend(live, f"http.services.{name}", _load_balancer(reading, name))]
    twin = f"{stem}{sep}{live.other.value}"
    if twin in reading.services:
        backends.append(Backend(live.other, f"http.services.{twin}", _load_balancer(reading, twin)))
    else:
        servers = _swapped(backends[0].servers, live.other)
        backends.append(Backend(live.other, f"http.services.{name}", servers, derived=True))
    return tuple(sorted(backends, key=lambda b: b.color.value))


def _weighted(reading: _Reading, name: str, where: str) -> tuple[tuple[Backend, ...], Color]:
    """Shape 2: a weighted service over the two colors; the heavier one is live."""
    children = reading.services[name]["weighted"].get("services")
    if not isinstance(children, list) or not children:
        raise _Skip(where, "a weighted service without services")
    weights: dict[Color, int] = {}
    backends: list[Backend] = []
    for child in children:
        child_name = str(child.get("name", "")) if isinstance(child, Mapping) else ""
        named = color_of_name(child_name.removesuffix("@file"))
        if named is None:
            raise _Skip(where, f"weighted child {child_name!r} names no color")
        color = named[1]
        weight = child.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise _Skip(where, f"weighted child {child_name!r} has weight {weight!r}")
        weights[color] = weight
        servers = _load_balancer(reading, child_name.removesuffix("@file"))
        backends.append(Backend(color, f"http.services.{child_name}", servers))
    if sorted(weights) != sorted(Color):
        raise _Skip(where, "its weighted service needs one blue and one green child")
    if weights[Color.BLUE] == weights[Color.GREEN]:
        raise _Skip(where, f"blue and green weigh the same ({weights[Color.BLUE]}): which is live?")
    live = max(weights, key=lambda c: weights[c])
    if min(weights.values()) > 0:
        reading.notes.append(
            f"{where}: both colors had weight ({weights[Color.BLUE]}/{weights[Color.GREEN]}), "
            f"a canary half-way; imported with {live} live (`bluegreen canary` runs canaries)"
        )
    extra = sorted(set(reading.services[name]["weighted"]) - {"services"})
    reading.notes += [f"{where}.weighted.{k} is not carried over" for k in extra]
    reading.used.add(name)
    return tuple(sorted(backends, key=lambda b: b.color.value)), live


def _backends(reading: _Reading, name: str) -> tuple[tuple[Backend, ...], Color, str] | None:
    """The two colors behind service ``name``, the live one and the bluegreen name.

    ``None``: nothing of it names a color, so it is not a blue/green pair.
    """
    where = f"http.services.{name}"
    definition = reading.services.get(name)
    named = color_of_name(name)
    if named is not None:
        stem, live = named
        return _pair_by_name(reading, name, stem, live), live, stem
    if isinstance(definition, Mapping) and isinstance(definition.get("weighted"), Mapping):
        backends, live = _weighted(reading, name, where)
        return backends, live, name
    servers = _load_balancer(reading, name)
    live_color = _hosts_color(servers, where)
    if live_color is None:
        reading.used.discard(name)
        return None
    reading.notes.append(
        f"{where}: the file names only {live_color}'s servers ({servers[0].url}); "
        f"{live_color.other}'s are the same URLs with the color swapped, as a sed would"
    )
    pair = [
        Backend(live_color, where, servers),
        Backend(live_color.other, where, _swapped(servers, live_color.other), derived=True),
    ]
    return tuple(sorted(pair, key=lambda b: b.color.value)), live_color, name


def _list(router: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    raw = router.get(key) or []
    if isinstance(raw, str):
        raw = [item for item in raw.split(",") if item.strip()]
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _Skip(where, f"{key} must be a list of names")
    return tuple(x.strip() for x in raw)


def _middlewares(router: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """Names as the http provider's router must spell them: this file's are ``@file``."""
    return tuple(m if "@" in m else f"{m}@file" for m in _list(router, "middlewares", where))


def _tls(router: Mapping[str, Any], where: str, notes: list[str]) -> tuple[bool, str | None]:
    tls = router.get("tls")
    if tls is None or tls is False:
        return False, None
    if not isinstance(tls, Mapping):
        return True, None
    for key in sorted(set(tls) - _TLS_KEYS):
        notes.append(f"{where}.tls.{key} is not carried over (the labels set TLS and a resolver)")
    resolver = tls.get("certResolver")
    return True, str(resolver) if resolver else None


def _router(reading: _Reading, name: str, router: Any) -> Imported | None:
    where = f"http.routers.{name}"
    if not isinstance(router, Mapping) or not isinstance(router.get("service"), str):
        raise _Skip(where, "has no service")
    target = str(router["service"])
    if "@" in target and not target.endswith("@file"):
        if color_of_name(target.split("@")[0]) is None:
            return None  # another provider's, no color: not a blue/green pair
        raise _Skip(where, f"points at {target}, a service of another provider")
    found = _backends(reading, target.removesuffix("@file"))
    if found is None:
        return None
    backends, live, stem = found
    problem = service_name_problem(stem or name)
    if problem:
        raise _Skip(where, f"cannot be a bluegreen service: {problem}")
    rule = router.get("rule")
    if not isinstance(rule, str):
        raise _Skip(where, "has no rule")
    if problem := rule_problem(rule):
        raise _Skip(where, f"rule {rule!r} is not a Traefik v3 rule: {problem}")
    notes = list(reading.notes)
    entrypoints = _list(router, "entryPoints", where)
    if not entrypoints:
        notes.append(f"{where} names no entryPoints, so Traefik served it on all of them; "
                     "the provider serves it on its --entrypoints (default web)")  # fmt: skip
    for key in sorted(set(router) - _ROUTER_KEYS):
        notes.append(f"{where}.{key} is not carried over (the provider sets it itself)")
    tls, resolver = _tls(router, where, notes)
    return Imported(
        stem or name, name, rule, entrypoints, _middlewares(router, where),
        tls, resolver, live, backends, tuple(notes),
    )  # fmt: skip


def read_config(doc: Any) -> Import:
    """Every router of ``doc`` (the parsed file) that switches between blue and green."""
    if not isinstance(doc, Mapping):
        return Import(problems=(Problem("the file", "is not a mapping of sections"),))
    kept = [f"{k}: not HTTP routing" for k in sorted(doc) if k != "http"]
    http = doc.get("http") or {}
    routers = http.get("routers") if isinstance(http, Mapping) else None
    services = http.get("services") if isinstance(http, Mapping) else None
    if not isinstance(routers, Mapping) or not isinstance(services, Mapping):
        problem = Problem("http", "no routers and services to import")
        return Import(kept=tuple(kept), problems=(problem,))
    imported: list[Imported] = []
    problems: list[Problem] = []
    used: set[str] = set()
    names: dict[str, str] = {}
    for name in sorted(routers):
        reading = _Reading(services)
        try:
            found = _router(reading, str(name), routers[name])
        except _Skip as skip:
            where = f"http.routers.{name}"
            if skip.problem.where != where:
                where = f"{where} → {skip.problem.where}"
            problems.append(Problem(where, skip.problem.what))
            continue
        if found is None:
            kept.append(f"http.routers.{name}: names no color")
            continue
        if found.name in names:
            problems.append(Problem(f"http.routers.{name}", f"routes {found.name} as router "
                f"{names[found.name]} does: join their rules with || into one"))  # fmt: skip
            continue
        names[found.name] = str(name)
        used |= reading.used
        imported.append(found)
    kept += [f"http.services.{s}: used by no imported router" for s in sorted(set(services) - used)]
    kept += [f"http.{k}: referenced as name@file" for k in sorted(http) if k == "middlewares"]
    kept += [f"http.{k}" for k in sorted(http) if k not in ("routers", "services", "middlewares")]
    return Import(tuple(imported), tuple(kept), tuple(problems))
