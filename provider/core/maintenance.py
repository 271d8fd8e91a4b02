"""Maintenance mode as a pure decision: turn a service's public traffic into a 503 page.

A change that old and new code cannot share (a migration that needs downtime)
wants the public kept out while the operator still reaches the colors through
the preview header. :func:`decide` turns ``SetMaintenance`` into the state to
commit and the history record to keep (reason ``maintenance-on`` or
``maintenance-off``, from and to the active color: the record of an event that
moved no traffic, like a canary's step). Turning it on twice with the same
message changes nothing; turning it off when it is off changes nothing, so a
retried command is harmless. What the public gets is rendered by
:mod:`provider.core.render` and served by the provider (``/maintenance-page``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from provider.core.model import Color, Maintenance, State, SwitchRecord
from provider.core.refusals import BadCommand

#: History reasons of the records maintenance writes (not switches: no traffic moved).
REASON_ON = "maintenance-on"
REASON_OFF = "maintenance-off"
REASONS = frozenset({REASON_ON, REASON_OFF})

DEFAULT_RETRY_AFTER = 30
MAX_RETRY_AFTER = 86400
DEFAULT_MESSAGE = "This service is down for maintenance. Please try again shortly."
MAX_MESSAGE = 500
MAX_REASON = 200


@dataclass(frozen=True)
class SetMaintenance:
    """Turn maintenance of ``service`` on (with its page's message and ``Retry-After``) or off."""

    service: str
    on: bool
    message: str = DEFAULT_MESSAGE
    retry_after: int = DEFAULT_RETRY_AFTER
    reason: str = ""
    actor: str = "api"


def check(command: SetMaintenance) -> None:
    """Refuse arguments out of range (a 400, before any state is read)."""
    if not 1 <= command.retry_after <= MAX_RETRY_AFTER:
        raise BadCommand(f"retry_after must be 1..{MAX_RETRY_AFTER} seconds")
    if len(command.message) > MAX_MESSAGE:
        raise BadCommand(f"message is longer than {MAX_MESSAGE} characters")
    if len(command.reason) > MAX_REASON:
        raise BadCommand(f"reason is longer than {MAX_REASON} characters")


def decide(
    state: State, command: SetMaintenance, active: Color, now: float, *, history_limit: int
) -> tuple[State | None, SwitchRecord | None]:
    """The state with maintenance of the service on or off, and its history record.

    ``(None, None)``: already so, nothing to commit. Turning it on again with
    another message or ``Retry-After`` updates the page and keeps ``since``.
    """
    check(command)
    service = command.service
    current = state.maintenance.get(service)
    windows = dict(state.maintenance)
    if command.on:
        same = current is not None and (current.message, current.retry_after) == (
            command.message,
            command.retry_after,
        )
        if same:
            return None, None
        since = current.since if current is not None else now
        windows[service] = Maintenance(
            command.message, command.retry_after, since, command.actor, command.reason
        )
        detail = {
            "message": command.message,
            "retry_after": command.retry_after,
            "reason": command.reason,
        }
    else:
        if current is None:
            return None, None
        del windows[service]
        detail = {"reason": command.reason, "seconds": round(max(0.0, now - current.since), 3)}
    seq = state.seq + 1
    why = REASON_ON if command.on else REASON_OFF
    record = SwitchRecord(service, active, active, why, command.actor, now, seq, detail=detail)
    history = (*state.history, record)[-history_limit:]
    return replace(state, maintenance=windows, history=history, seq=seq), record


def retry_after_of(state: State) -> dict[str, int]:
    """Each service in maintenance and its ``Retry-After``, for the renderer."""
    return {name: m.retry_after for name, m in sorted(state.maintenance.items())}
