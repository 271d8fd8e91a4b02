"""The ``/status`` document of one service.

Pure. The key names here are a public contract (the CLI and users' scripts
read them); README.md documents each one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provider.core.model import Color, ColorMark, ServiceState
from provider.core.promotion import Pending
from provider.core.routing import ColorView, Member, ServiceView


def member_json(member: Member) -> dict[str, Any]:
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


def pending_json(pending: Pending | None) -> dict[str, Any] | None:
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


def marks_json(marks: Mapping[Color, ColorMark]) -> dict[str, Any]:
    """A service's color marks as ``/status`` and ``/retire`` show them, sorted."""
    return {
        str(color): {"kind": str(mark.kind), "since": mark.since, "reason": mark.reason}
        for color, mark in sorted(marks.items())
    }


def _color(view: ColorView) -> dict[str, Any]:
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
) -> dict[str, Any]:
    """Everything an operator asks about one service, as JSON-ready values."""
    last = state.last_switch if state else None
    return {
        "service": view.name,
        "active": str(active),
        "previous": str(state.previous) if state and state.previous else None,
        "adopted": state is not None,
        "colors": {str(color): _color(view.color(color)) for color in Color},
        "last_switch": last.to_json() if last else None,
        "marks": marks_json(state.marks) if state else {},
        "pending_promotion": pending_json(pending),
        "pending_rollback": pending_json(pending_rollback),
        "errors": list(view.errors),
        "warnings": list(view.warnings),
        "serving_last_good_config": shown_stale,
        "docker_connected": docker_connected,
    }
