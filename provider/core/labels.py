"""Reading a container's ``bluegreen.*`` labels into a placement.

Pure: strings in, a :class:`Placement` or a :class:`LabelProblem` out. A bad
label never raises; the caller attaches the problem to the container's
service so one typo cannot break another service.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from provider.core.canary import DEFAULT_INTERVAL
from provider.core.canary_json import parse_interval
from provider.core.gates import SmokeCheck, host_problem, parse_smoke, rule_host, webhook_problem
from provider.core.model import SWARM_TASK, Color, Container, PromoteMode
from provider.core.refusals import BadCommand
from provider.core.rule_syntax import rule_problem

#: Service names become Traefik object names (``web``, ``web-blue``,
#: ``web-preview-green``): keep them to characters every provider accepts, and
#: refuse names that would collide with another service's derived names.
_SERVICE_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$")
_LIST_ITEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_MAX_REPLICAS = 1000
#: A fallback prefix goes into a Traefik rule between backticks: a path, nothing else.
_PATH_PREFIX = re.compile(r"^/[A-Za-z0-9._~/-]{0,199}$")
_MAX_FALLBACKS = 10


@dataclass(frozen=True)
class LabelDefaults:
    """Settings the labels fall back to."""

    prefix: str = "bluegreen"
    entrypoints: tuple[str, ...] = ("web",)
    #: ``--gate-url``: the gate webhook of every service without ``bluegreen.gate.url``.
    gate_url: str | None = None


@dataclass(frozen=True)
class RouteSpec:
    """The router settings one color asks for; all its containers must agree."""

    rule: str
    entrypoints: tuple[str, ...]
    middlewares: tuple[str, ...]
    tls: bool
    certresolver: str | None
    replicas: int
    promote: PromoteMode
    #: Path prefixes whose 404s the previous color answers while it runs (``bluegreen.fallback``).
    fallback: tuple[str, ...] = ()
    #: Checks sent through Traefik's preview route before a promotion (``bluegreen.smoke``).
    smoke: tuple[SmokeCheck, ...] = ()
    #: The Host header of those checks: the rule's ``Host(`x`)`` or ``bluegreen.smoke-host``.
    smoke_host: str | None = None
    #: The gate webhook that must approve a promotion (``bluegreen.gate.url``, ``--gate-url``).
    gate_url: str | None = field(default=None, repr=False)
    #: ``bluegreen.bake`` (and ``bake-interval``): seconds judged after an automatic promotion.
    bake: tuple[float, float] | None = None


@dataclass(frozen=True)
class Placement:
    """Where a container belongs and how to reach it."""

    service: str
    color: Color
    port: int
    network: str | None
    route: RouteSpec


@dataclass(frozen=True)
class LabelProblem:
    """Why a container's labels cannot be used; ``service`` is ``None`` if unknown."""

    service: str | None
    message: str


def service_name_problem(name: str) -> str | None:
    """Explain why ``name`` cannot be a service name, or return ``None``."""
    if not _SERVICE_NAME.match(name):
        return (
            f"service name {name[:80]!r} must be 1-63 letters, digits, '-' or '_', "
            "starting and ending with a letter or digit"
        )
    if name.endswith(("-blue", "-green")):
        return f"service name {name!r} must not end in -blue or -green (reserved for colors)"
    return None


def _split_list(raw: str, what: str) -> tuple[str, ...] | str:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if not _LIST_ITEM.match(item):
            return f"{what} item {item[:80]!r} is not a valid name"
    return items


_BOOLS = {"true": True, "1": True, "yes": True, "on": True}
_BOOLS |= {"false": False, "0": False, "no": False, "off": False}


def parse_bool(raw: str) -> bool | None:
    """A yes/no word of a label or a setting (true/false, 1/0, yes/no, on/off); else ``None``."""
    return _BOOLS.get(raw.strip().lower())


def parse(container: Container, defaults: LabelDefaults) -> Placement | LabelProblem:
    """Turn one container's labels into its placement, or say what is wrong.

    Memoized on the inputs that matter: a resync re-reads every container, but
    labels never change for the life of a container, so parsing is done once.
    """
    return _parse(
        container.name,
        tuple(sorted(container.labels.items())),
        container.exposed_ports,
        container.network_mode == SWARM_TASK,
        defaults,
    )


class _Refused(Exception):
    """One label's problem: raised by a step of :func:`_parse_uncached`, returned by it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _parse_uncached(
    name: str,
    label_items: tuple[tuple[str, str], ...],
    exposed_ports: tuple[int, ...],
    swarm_task: bool,
    defaults: LabelDefaults,
) -> Placement | LabelProblem:
    p = defaults.prefix
    labels: Mapping[str, str] = dict(label_items)
    service = labels.get(f"{p}.service")
    if service is None:
        return LabelProblem(None, f"label {p}.service is missing")
    problem = service_name_problem(service)
    if problem:
        return LabelProblem(None, f"container {name}: {problem}")
    try:
        color = _color(labels, p)
        port = _port(labels, p, exposed_ports, swarm_task)
        route = _route(labels, p, service, defaults)
    except _Refused as refused:
        return LabelProblem(service, f"container {name}: {refused.message}")
    network = labels.get(f"{p}.network")
    return Placement(service=service, color=color, port=port, network=network, route=route)


def _color(labels: Mapping[str, str], p: str) -> Color:
    raw_color = labels.get(f"{p}.color")
    if raw_color is None:
        raise _Refused(f"label {p}.color is missing (blue or green)")
    try:
        return Color(raw_color.strip().lower())
    except ValueError:
        raise _Refused(f"label {p}.color is {raw_color[:40]!r}; expected blue or green") from None


def _port(
    labels: Mapping[str, str], p: str, exposed_ports: tuple[int, ...], swarm_task: bool
) -> int:
    raw_port = labels.get(f"{p}.port")
    if raw_port is None:
        if swarm_task:
            # A task's image (and its EXPOSE) may not even exist on the manager.
            raise _Refused(
                f"label {p}.port is missing; Swarm services must set it (the manager "
                "cannot see which ports a task's image exposes)"
            )
        if len(exposed_ports) != 1:
            raise _Refused(
                f"label {p}.port is missing and the container exposes "
                f"{len(exposed_ports)} ports; set {p}.port"
            )
        return exposed_ports[0]
    if not raw_port.strip().isascii() or not raw_port.strip().isdigit():
        raise _Refused(f"label {p}.port is {raw_port[:40]!r}; expected a number 1-65535")
    # Strip leading zeros before int(): past 4300 digits int() raises ValueError.
    port = int(raw_port.strip().lstrip("0")[:6] or "0")
    if not 1 <= port <= 65535:
        raise _Refused(f"label {p}.port is {port}; expected 1-65535")
    return port


def _route(labels: Mapping[str, str], p: str, service: str, defaults: LabelDefaults) -> RouteSpec:
    rule = labels.get(f"{p}.rule", f"Host(`{service}`)")
    problem = rule_problem(rule)
    if problem:
        raise _Refused(f"label {p}.rule: {problem}")
    entrypoints, middlewares = _lists(labels, p, defaults)
    tls, certresolver = _tls(labels, p)
    smoke, smoke_host = _smoke(labels, p, rule)
    return RouteSpec(
        rule=rule,
        entrypoints=entrypoints,
        middlewares=middlewares,
        tls=tls,
        certresolver=certresolver,
        replicas=_replicas(labels, p),
        promote=_promote(labels, p),
        fallback=_fallback(labels, p),
        smoke=smoke,
        smoke_host=smoke_host,
        gate_url=_gate_url(labels, p, defaults),
        bake=_bake(labels, p),
    )


def _gate_url(labels: Mapping[str, str], p: str, defaults: LabelDefaults) -> str | None:
    """``bluegreen.gate.url`` (``off``: none), else the provider's ``--gate-url``."""
    raw = labels.get(f"{p}.gate.url")
    if raw is None:
        return defaults.gate_url
    url = raw.strip()
    if url.lower() in ("", "off", "none"):
        return None
    problem = webhook_problem(url)
    if problem:
        raise _Refused(f"label {p}.gate.url {problem}")
    return url


def _bake(labels: Mapping[str, str], p: str) -> tuple[float, float] | None:
    """``bluegreen.bake=60s`` (``bluegreen.bake-interval``, default 60s, at most the bake)."""
    raw = labels.get(f"{p}.bake")
    if raw is None:
        return None
    try:
        duration = parse_interval(raw)
        interval = parse_interval(labels.get(f"{p}.bake-interval", DEFAULT_INTERVAL))
    except BadCommand:
        raise _Refused(
            f"label {p}.bake (or {p}.bake-interval) is not a duration like '60s', '2m' or 90 "
            "(0.1 s to 24 h)"
        ) from None
    return duration, min(interval, duration)


def _smoke(
    labels: Mapping[str, str], p: str, rule: str
) -> tuple[tuple[SmokeCheck, ...], str | None]:
    """``bluegreen.smoke`` and the Host its checks send (needed to match the preview router)."""
    raw = labels.get(f"{p}.smoke")
    if raw is None:
        return (), None
    checks = parse_smoke(raw)
    if isinstance(checks, str):
        raise _Refused(f"label {p}.smoke {checks}")
    host = labels.get(f"{p}.smoke-host", "").strip() or rule_host(rule)
    if host is None:
        raise _Refused(
            f"label {p}.smoke needs {p}.smoke-host: the rule has no single Host(`name`) "
            "that the checks could send"
        )
    problem = host_problem(host)
    if problem:
        raise _Refused(f"label {p}.smoke-host: {problem}")
    return checks, host


def _lists(
    labels: Mapping[str, str], p: str, defaults: LabelDefaults
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    entrypoints: tuple[str, ...] | str = defaults.entrypoints
    if f"{p}.entrypoints" in labels:
        entrypoints = _split_list(labels[f"{p}.entrypoints"], "entrypoints")
    if isinstance(entrypoints, str):
        raise _Refused(f"label {p}.entrypoints: {entrypoints}")
    if not entrypoints:
        raise _Refused(f"label {p}.entrypoints is empty")
    middlewares = _split_list(labels.get(f"{p}.middlewares", ""), "middlewares")
    if isinstance(middlewares, str):
        raise _Refused(f"label {p}.middlewares: {middlewares}")
    return entrypoints, middlewares


def _tls(labels: Mapping[str, str], p: str) -> tuple[bool, str | None]:
    tls = parse_bool(labels.get(f"{p}.tls", "").strip() or "false")
    if tls is None:
        raise _Refused(f"label {p}.tls is {labels[f'{p}.tls'][:40]!r}; expected true or false")
    certresolver = labels.get(f"{p}.tls.certresolver")
    if certresolver is not None:
        if not _LIST_ITEM.match(certresolver):
            raise _Refused(f"label {p}.tls.certresolver {certresolver[:80]!r} is not a valid name")
        tls = True
    return tls, certresolver


def _replicas(labels: Mapping[str, str], p: str) -> int:
    raw_replicas = labels.get(f"{p}.replicas", "1").strip()
    if not raw_replicas.isascii() or not raw_replicas.isdigit():
        raise _Refused(f"label {p}.replicas is {raw_replicas[:40]!r}; expected a whole number")
    replicas = int(raw_replicas.lstrip("0")[:6] or "0")  # bounded: see _port
    if not 1 <= replicas <= _MAX_REPLICAS:
        raise _Refused(f"label {p}.replicas is {replicas}; expected 1-{_MAX_REPLICAS}")
    return replicas


def _promote(labels: Mapping[str, str], p: str) -> PromoteMode:
    raw_promote = labels.get(f"{p}.promote", "auto").strip().lower()
    try:
        return PromoteMode(raw_promote)
    except ValueError:
        raise _Refused(
            f"label {p}.promote is {raw_promote[:40]!r}; expected auto or manual"
        ) from None


def _fallback(labels: Mapping[str, str], p: str) -> tuple[str, ...]:
    """``/assets/,/packs/`` -> ("/assets/", "/packs/"): sorted, deduplicated, each a path."""
    raw = labels.get(f"{p}.fallback", "")
    prefixes = sorted({item.strip() for item in raw.split(",") if item.strip()})
    for prefix in prefixes:
        if not _PATH_PREFIX.match(prefix):
            raise _Refused(
                f"label {p}.fallback item {prefix[:80]!r} is not a path prefix (it must start "
                "with / and hold only letters, digits and . _ ~ / -)"
            )
    if len(prefixes) > _MAX_FALLBACKS:
        raise _Refused(f"label {p}.fallback has {len(prefixes)} prefixes; at most {_MAX_FALLBACKS}")
    return tuple(prefixes)


# Memoized by assignment, not decoration: mutmut leaves decorated functions unmutated.
_parse = functools.lru_cache(maxsize=8192)(_parse_uncached)
