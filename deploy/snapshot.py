"""The provider's ``/status/{service}`` document, normalized into frozen dataclasses.

Pure. The rollout logic reads these, never the raw JSON, so a renamed key in
the provider fails here, at the edge, with a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deploy.errors import ProviderProtocolError

COLORS = ("blue", "green")


def other_color(color: str) -> str:
    """The idle counterpart of ``color``."""
    return "green" if color == "blue" else "blue"


@dataclass(frozen=True)
class ContainerSnapshot:
    """One container of one color as the provider sees it."""

    id: str
    name: str
    state: str
    health: str
    health_output: str = ""
    routable: bool = False
    address: str | None = None
    created: float = 0.0
    problem: str | None = None

    def matches(self, container_id: str) -> bool:
        """True when ``container_id`` (full or short) names this container."""
        short = min(len(self.id), len(container_id))
        return short >= 12 and self.id[:short] == container_id[:short]

    @property
    def phase(self) -> str:
        """One word for progress lines: created, starting, healthy, running, unhealthy, exited."""
        if self.state != "running":
            return self.state
        if self.health in ("starting", "healthy", "unhealthy"):
            return self.health
        return "running"

    @property
    def failed(self) -> bool:
        """Dead for this rollout: unhealthy, exited or dead (not merely starting)."""
        return self.state in ("exited", "dead") or (
            self.state == "running" and self.health == "unhealthy"
        )


@dataclass(frozen=True)
class ColorSnapshot:
    """The containers of one color and whether it could take traffic."""

    containers: tuple[ContainerSnapshot, ...] = ()
    routable: int = 0
    replicas: int = 1
    ready: bool = False
    promote: str | None = None

    @property
    def running(self) -> tuple[ContainerSnapshot, ...]:
        return tuple(c for c in self.containers if c.state == "running")


@dataclass(frozen=True)
class ServiceSnapshot:
    """One service: active color, both colors, last switch, pending promotion, errors.

    ``pending`` is the provider's ``pending_promotion`` object (``kind``, ``color``,
    ``stage``, ``waiting_for``...), or ``None``.
    """

    service: str
    active: str
    previous: str | None
    adopted: bool
    colors: Mapping[str, ColorSnapshot] = field(default_factory=dict)
    last_switch: Mapping[str, Any] | None = None
    pending: Mapping[str, Any] | None = None
    errors: tuple[str, ...] = ()
    docker_connected: bool = True

    def color(self, color: str) -> ColorSnapshot:
        return self.colors.get(color) or ColorSnapshot()


def _need(doc: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in doc or not isinstance(doc[key], types):
        raise ProviderProtocolError(
            f"the provider's {where} lacks {key!r} (is the provider older than this CLI?)"
        )
    return doc[key]


def _container(raw: Any) -> ContainerSnapshot:
    if not isinstance(raw, dict):
        raise ProviderProtocolError("the provider's /status lists a container that is no object")
    where = "container status"
    return ContainerSnapshot(
        id=str(_need(raw, "id", str, where)),
        name=str(raw.get("name") or ""),
        state=str(_need(raw, "state", str, where)),
        health=str(raw.get("health") or "none"),
        health_output=str(raw.get("health_output") or ""),
        routable=bool(raw.get("routable")),
        address=raw.get("address") if isinstance(raw.get("address"), str) else None,
        created=float(raw.get("created") or 0.0),
        problem=raw.get("problem") if isinstance(raw.get("problem"), str) else None,
    )


def _color(raw: Any) -> ColorSnapshot:
    if not isinstance(raw, dict):
        return ColorSnapshot()
    containers = tuple(_container(c) for c in raw.get("containers") or ())
    return ColorSnapshot(
        containers=containers,
        routable=int(raw.get("routable") or 0),
        replicas=int(raw.get("replicas") or 1),
        ready=bool(raw.get("ready")),
        promote=raw.get("promote") if isinstance(raw.get("promote"), str) else None,
    )


def parse_service(doc: Mapping[str, Any]) -> ServiceSnapshot:
    """``/status/{service}`` JSON to a :class:`ServiceSnapshot`; missing keys raise."""
    where = "/status answer"
    active = _need(doc, "active", str, where)
    colors = _need(doc, "colors", dict, where)
    previous = doc.get("previous")
    errors = doc.get("errors") or []
    last = doc.get("last_switch")
    pending = doc.get("pending_promotion")
    if isinstance(pending, dict) and "stage" not in pending:  # older shape: {"promotion": {...}}
        pending = pending.get("promotion")
    return ServiceSnapshot(
        service=str(_need(doc, "service", str, where)),
        active=active,
        previous=previous if isinstance(previous, str) else None,
        adopted=bool(doc.get("adopted", True)),
        colors={c: _color(colors.get(c)) for c in COLORS},
        last_switch=last if isinstance(last, dict) else None,
        pending=pending if isinstance(pending, dict) else None,
        errors=tuple(str(e) for e in errors) if isinstance(errors, list) else (),
        docker_connected=bool(doc.get("docker_connected", True)),
    )
