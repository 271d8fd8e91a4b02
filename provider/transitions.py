"""The only places the persisted state changes: adopting a service and switching it.

Pure functions from one :class:`State` to the next. The controller calls them
under its lock, persists the result, and only then makes it visible.
"""

from __future__ import annotations

from dataclasses import replace

from provider.model import Color, ServiceState, State, SwitchRecord

#: How many switch records the audit trail keeps (oldest dropped first).
DEFAULT_HISTORY_LIMIT = 1000


def adopt(state: State, service: str, color: Color, first_seen: float) -> State:
    """Record the active color of a service seen for the first time (no switch)."""
    if service in state.services:
        return state
    services = dict(state.services)
    services[service] = ServiceState(active=color, first_seen=first_seen)
    return replace(state, services=services)


def switch(
    state: State,
    service: str,
    target: Color,
    *,
    reason: str,
    actor: str,
    now: float,
    history_limit: int = DEFAULT_HISTORY_LIMIT,
) -> tuple[State, SwitchRecord | None]:
    """Make ``target`` the active color; ``None`` record when it already was."""
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
    )
    services = dict(state.services)
    services[service] = ServiceState(
        active=target,
        previous=current.active if current else None,
        last_switch=record,
        first_seen=current.first_seen if current else now,
    )
    history = (*state.history, record)[-history_limit:]
    return State(services=services, history=history, seq=seq), record
