"""The only places the persisted state changes: adopting, switching, marking a color.

Pure functions from one :class:`State` to the next. The controller calls them
under its lock, persists the result, and only then makes it visible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from provider.core.model import Color, ColorMark, MarkKind, ServiceState, State, SwitchRecord

#: How many switch records the audit trail keeps (oldest dropped first).
DEFAULT_HISTORY_LIMIT = 1000


def adopt(state: State, service: str, color: Color, first_seen: float) -> State:
    """Record the active color of a service seen for the first time (no switch)."""
    if service in state.services:
        return state
    services = dict(state.services)
    services[service] = ServiceState(active=color, first_seen=first_seen)
    return replace(state, services=services)


def _moved(
    images: Mapping[str, str] | None, source: Color | None, target: Color
) -> dict[str, str] | None:
    """``{"from": image, "to": image}`` of the two colors a switch moves between, as known."""
    moved = {
        key: images[str(color)]
        for key, color in (("from", source), ("to", target))
        if color is not None and images and images.get(str(color))
    }
    return moved or None


def switch(
    state: State,
    service: str,
    target: Color,
    *,
    reason: str,
    actor: str,
    now: float,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
    anchor: float | None = None,
    reject_left: bool = False,
    images: Mapping[str, str] | None = None,
) -> tuple[State, SwitchRecord | None]:
    """Make ``target`` the active color; ``None`` record when it already was.

    ``anchor`` (default ``now``) is the switch's instant in the Docker daemon's
    clock, where the generation rule compares it with ``Container.created``.
    A switch to a color clears its mark (it is an explicit choice, or a new
    generation); ``reject_left`` (a rollback) marks the color it leaves
    REJECTED, so no automatic switch goes back to it until a new generation.
    """
    current = state.services.get(service)
    if current is not None and current.active is target:
        return state, None
    seq = state.seq + 1
    record = SwitchRecord(
        service=service,
        from_color=current.active if current else None,
        to_color=target,
        reason=reason,
        actor=actor,
        at=now,
        seq=seq,
        images=_moved(images, current.active if current else None, target),
    )
    at = now if anchor is None else anchor
    marks = {c: m for c, m in (current.marks if current else {}).items() if c is not target}
    if reject_left and current is not None:
        marks[current.active] = ColorMark(MarkKind.REJECTED, at, reason)
    services = dict(state.services)
    services[service] = ServiceState(
        active=target,
        previous=current.active if current else None,
        last_switch=record,
        first_seen=current.first_seen if current else at,
        anchor=at,
        marks=marks,
    )
    history = (*state.history, record)[-history_limit:]
    return replace(state, services=services, history=history, seq=seq), record


def retire(state: State, service: str, color: Color, *, since: float, reason: str) -> State:
    """Mark ``color`` RETIRING: an operator is stopping it, never switch to it automatically.

    The caller refuses an active color. A service never adopted (nothing was
    ever routable) is adopted with the other color active, so the mark has a
    place in the state file and adoption cannot pick the retiring color.
    """
    current = state.services.get(service) or ServiceState(active=color.other, first_seen=since)
    marks = dict(current.marks)
    marks[color] = ColorMark(MarkKind.RETIRING, since, reason)
    services = dict(state.services)
    services[service] = replace(current, marks=marks)
    return replace(state, services=services)
