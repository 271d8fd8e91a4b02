"""The provider's ``/status`` documents, normalized into frozen dataclasses.

Pure. The rollout logic and the text renderer read these, never the raw JSON,
so a renamed key in the provider fails here, at the edge, with a clear
message. Colors and pending stages are the provider's own enums.

Every key read here is a key of the provider's own document types
(:mod:`provider.core.wire`, which the provider builds its answers as): the
answer is viewed through them (:func:`_view`), so ``mypy --strict`` refuses a
key the provider does not write. The values are still checked at runtime: the
answer is a remote program's, perhaps an older or newer provider's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from deploy.errors import ProviderProtocolError
from provider.core.model import Color
from provider.core.promotion import Stage
from provider.core.wire import (
    ColorStatusDoc,
    ContainerDoc,
    DockerDoc,
    PendingDoc,
    ServiceStatusDoc,
    StatusAllDoc,
    SwitchRecordDoc,
)

Doc = TypeVar("Doc")


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
    image: str = ""
    image_id: str = ""

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
    #: The image of the color's newest container (``None``: no containers, older provider).
    image: str | None = None


@dataclass(frozen=True)
class PendingSnapshot:
    """A promotion or rollback the provider has not made yet, and why.

    ``stage`` is a :class:`Stage`, or the raw text of a stage this CLI does not know.
    """

    color: Color
    stage: Stage | str
    waiting_for: str = ""
    containers: tuple[ContainerSnapshot, ...] = ()

    @property
    def why(self) -> str:
        """What the provider waits for, in words."""
        return self.waiting_for or str(self.stage)


@dataclass(frozen=True)
class SwitchSnapshot:
    """The last switch of a service (``last_switch``), as the provider recorded it."""

    to_color: Color | None
    from_color: Color | None = None
    reason: str = "?"
    actor: str = "?"
    at: float | None = None
    seq: int | None = None


@dataclass(frozen=True)
class ServiceSnapshot:
    """One service: active color, both colors, last switch, pending switches, errors."""

    service: str
    active: Color
    previous: Color | None
    adopted: bool
    colors: Mapping[Color, ColorSnapshot] = field(default_factory=dict)
    last_switch: SwitchSnapshot | None = None
    #: The provider's ``pending_promotion``.
    pending: PendingSnapshot | None = None
    pending_rollback: PendingSnapshot | None = None
    errors: tuple[str, ...] = ()
    serving_last_good_config: bool = False
    docker_connected: bool = True
    #: Each marked color's mark kind (``rejected``, ``retiring``): no automatic switch to it.
    marks: Mapping[str, str] = field(default_factory=dict)

    def color(self, color: Color) -> ColorSnapshot:
        return self.colors.get(color) or ColorSnapshot()


@dataclass(frozen=True)
class StatusSnapshot:
    """``GET /status``: every service, and the provider's view of Docker."""

    services: Mapping[str, ServiceSnapshot]
    docker_status: str = "unknown"
    docker_error: str | None = None
    synced: bool = True
    unassigned_errors: tuple[str, ...] = ()


def _view(raw: Mapping[str, Any], _as: type[Doc]) -> Doc:
    """``raw`` read as the provider's document type ``_as``: a key it lacks reads as ``None``.

    So every read below is a key the type checker knows, and a key an older
    provider does not send takes its default instead of raising.
    """
    return cast(Doc, defaultdict(lambda: None, raw))


def _need(value: Any, key: str, types: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, types):
        raise ProviderProtocolError(
            f"the provider's {where} lacks {key!r} (is the provider older than this CLI?)"
        )
    return value


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _container(raw: Any) -> ContainerSnapshot:
    if not isinstance(raw, dict):
        raise ProviderProtocolError("the provider's /status lists a container that is no object")
    doc = _view(raw, ContainerDoc)
    where = "container status"
    return ContainerSnapshot(
        id=str(_need(doc["id"], "id", str, where)),
        name=str(doc["name"] or ""),
        state=str(_need(doc["state"], "state", str, where)),
        health=str(doc["health"] or "none"),
        health_output=str(doc["health_output"] or ""),
        routable=bool(doc["routable"]),
        address=_text_or_none(doc["address"]),
        created=float(doc["created"] or 0.0),
        problem=_text_or_none(doc["problem"]),
        image=str(doc["image"] or ""),
        image_id=str(doc["image_id"] or ""),
    )


def _color(raw: Any) -> ColorSnapshot:
    if not isinstance(raw, dict):
        return ColorSnapshot()
    doc = _view(raw, ColorStatusDoc)
    containers = tuple(_container(c) for c in doc["containers"] or ())
    return ColorSnapshot(
        containers=containers,
        routable=int(doc["routable"] or 0),
        replicas=int(doc["replicas"] or 1),
        ready=bool(doc["ready"]),
        promote=_text_or_none(doc["promote"]),
        image=_text_or_none(doc["image"]),
    )


def _color_value(raw: Any, where: str) -> Color:
    try:
        return Color(raw)
    except ValueError:
        raise ProviderProtocolError(
            f"the provider's {where} names color {str(raw)[:20]!r}, not blue or green"
        ) from None


def _optional_color(raw: Any, where: str) -> Color | None:
    return _color_value(raw, where) if isinstance(raw, str) else None


def _stage(raw: str) -> Stage | str:
    try:
        return Stage(raw)
    except ValueError:
        return raw  # a newer provider's stage: shown as it is


def _pending(raw: Any) -> PendingSnapshot | None:
    if not isinstance(raw, dict):
        return None
    doc = _view(raw, PendingDoc)
    where = "pending switch"
    containers = doc["containers"]
    return PendingSnapshot(
        color=_color_value(_need(doc["color"], "color", str, where), where),
        stage=_stage(str(_need(doc["stage"], "stage", str, where))),
        waiting_for=str(doc["waiting_for"] or ""),
        containers=tuple(_container(c) for c in containers or ())
        if isinstance(containers, list)
        else (),
    )


def _switch(raw: Any) -> SwitchSnapshot | None:
    if not isinstance(raw, dict):
        return None
    doc = _view(raw, SwitchRecordDoc)
    where = "last_switch"
    at, seq = doc["at"], doc["seq"]
    return SwitchSnapshot(
        to_color=_optional_color(doc["to"], where),
        from_color=_optional_color(doc["from"], where),
        reason=str(doc["reason"] or "?"),
        actor=str(doc["actor"] or "?"),
        at=float(at) if isinstance(at, int | float) else None,
        seq=seq if isinstance(seq, int) else None,
    )


def parse_service(raw: Mapping[str, Any]) -> ServiceSnapshot:
    """``/status/{service}`` JSON to a :class:`ServiceSnapshot`; missing keys raise."""
    doc = _view(raw, ServiceStatusDoc)
    where = "/status answer"
    active = _color_value(_need(doc["active"], "active", str, where), where)
    colors = _need(doc["colors"], "colors", dict, where)
    errors = doc["errors"] or []
    return ServiceSnapshot(
        service=str(_need(doc["service"], "service", str, where)),
        active=active,
        previous=_optional_color(doc["previous"], where),
        adopted=bool(doc["adopted"]) if "adopted" in raw else True,
        colors={c: _color(colors.get(str(c))) for c in Color},
        last_switch=_switch(doc["last_switch"]),
        pending=_pending(doc["pending_promotion"]),
        pending_rollback=_pending(doc["pending_rollback"]),
        errors=tuple(str(e) for e in errors) if isinstance(errors, list) else (),
        serving_last_good_config=bool(doc["serving_last_good_config"]),
        docker_connected=bool(doc["docker_connected"]) if "docker_connected" in raw else True,
        marks=_marks(doc["marks"]),
    )


def _marks(raw: Any) -> dict[str, str]:
    """Each marked color's kind (``rejected``, ``retiring``); none from an older provider."""
    if not isinstance(raw, dict):
        return {}
    return {str(c): str(m.get("kind")) for c, m in raw.items() if isinstance(m, dict)}


def parse_status(raw: Mapping[str, Any]) -> StatusSnapshot:
    """``/status`` JSON (every service) to a :class:`StatusSnapshot`."""
    doc = _view(raw, StatusAllDoc)
    services = doc["services"] or {}
    if not isinstance(services, dict):
        raise ProviderProtocolError("the provider's /status answer lacks 'services'")
    docker = _view(doc["docker"] or {}, DockerDoc)
    unassigned = doc["unassigned_errors"] or []
    return StatusSnapshot(
        services={str(name): parse_service(svc) for name, svc in services.items()},
        docker_status=str(docker["status"] or "unknown"),
        docker_error=str(docker["error"]) if docker["error"] else None,
        synced=bool(doc["synced"]) if "synced" in raw else True,
        unassigned_errors=tuple(str(e) for e in unassigned),
    )
