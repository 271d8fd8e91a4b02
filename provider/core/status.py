"""The ``/status`` document of one service.

Pure. The key names here are a public contract (the CLI and users' scripts
read them): the documents are :mod:`provider.core.wire`'s types, which
docs/http-api.md and provider/openapi.yaml document.
"""

from __future__ import annotations

from provider.core.model import Color, ServiceState
from provider.core.promotion import Pending
from provider.core.routing import ColorView, Member, ServiceView
from provider.core.state_json import marks_doc, record_doc
from provider.core.wire import (
    UNKNOWN_APPLIED,
    BakeDoc,
    CanaryDoc,
    ColorStatusDoc,
    ContainerDoc,
    MaintenanceDoc,
    PendingDoc,
    ServiceStatusDoc,
    TraefikAppliedDoc,
)


def member_json(member: Member) -> ContainerDoc:
    """One container as ``/status`` shows it (also inside pending promotions)."""
    c = member.container
    return {
        "id": c.id[:12],
        "name": c.name,
        "state": c.state,
        "health": str(c.health),
        "health_output": c.health_output,
        "address": member.url,
        "created": c.created,
        "routable": member.routable,
        "problem": member.problem,
        "image": c.image,
        "image_id": short_image_id(c.image_id),
    }


def short_image_id(image_id: str) -> str:
    """``sha256:0123456789ab...`` as ``docker images`` shows it: 12 hex digits."""
    return image_id.partition(":")[2][:12] if ":" in image_id else image_id[:12]


def view_images(view: ServiceView) -> dict[str, str]:
    """Each color's image (:func:`color_image`), for the switch records."""
    found = {str(color): color_image(view.color(color)) for color in Color}
    return {color: image for color, image in found.items() if image}


def color_image(view: ColorView) -> str | None:
    """The image a color runs: its newest container's (the one a deploy created last)."""
    newest = max(view.members, key=lambda m: m.container.created, default=None)
    if newest is None or not newest.container.image:
        return None
    return newest.container.image


def pending_json(pending: Pending | None) -> PendingDoc | None:
    """A pending promotion or rollback as ``/status`` shows it (``None``: nothing pending)."""
    if pending is None:
        return None
    return {
        "kind": str(pending.kind),
        "color": str(pending.color),
        "stage": str(pending.stage),
        "waiting_for": pending.detail,
        "since": pending.since,
        "due_at": pending.due_at,
        "generation_after": pending.generation_after,
        "routable": pending.routable,
        "replicas": pending.replicas,
        "containers": [member_json(m) for m in pending.containers],
    }


def _color(view: ColorView) -> ColorStatusDoc:
    return {
        "containers": [member_json(m) for m in view.members],
        "routable": view.routable,
        "replicas": view.replicas,
        "ready": view.ready,
        "rule": view.route.rule if view.route else None,
        "promote": str(view.route.promote) if view.route else None,
        "image": color_image(view),
    }


def service_status(
    view: ServiceView,
    state: ServiceState | None,
    active: Color,
    *,
    pending: Pending | None,
    pending_rollback: Pending | None = None,
    docker_connected: bool,
    shown_stale: bool,
    canary: CanaryDoc | None = None,
    traefik: TraefikAppliedDoc = UNKNOWN_APPLIED,
    maintenance: MaintenanceDoc | None = None,
    bake: BakeDoc | None = None,
) -> ServiceStatusDoc:
    """Everything an operator asks about one service, as JSON-ready values."""
    last = state.last_switch if state else None
    return {
        "service": view.name,
        "active": str(active),
        "previous": str(state.previous) if state and state.previous else None,
        "adopted": state is not None,
        "colors": {str(color): _color(view.color(color)) for color in Color},
        "last_switch": record_doc(last) if last else None,
        "marks": marks_doc(state.marks) if state else {},
        "pending_promotion": pending_json(pending),
        "pending_rollback": pending_json(pending_rollback),
        "errors": list(view.errors),
        "warnings": list(view.warnings),
        "serving_last_good_config": shown_stale,
        "docker_connected": docker_connected,
        "canary": canary,
        "traefik": traefik,
        "maintenance": maintenance,
        "bake": bake,
    }
