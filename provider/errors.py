"""The provider's errors and the one table of the HTTP answers they become.

The core refuses commands with domain values (``provider/core/refusals.py``,
no HTTP status); :data:`REFUSALS` maps each to its status and stable
machine-readable ``code``. The edge's own errors (:class:`EdgeError`: a bad
token, a body that is not JSON, the state file) carry theirs. The API answers
``{"error": code, "detail": message}`` for both through :func:`answer_for`.
Pure: no aiohttp import. The refusals are re-exported here, so
``from provider.errors import SwitchRefused`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping

from provider.core.refusals import (
    BadCommand,
    BakeNotRunning,
    BakeRefused,
    BlueGreenError,
    CanaryNotRunning,
    CanaryRefused,
    Refused,
    RetireRefused,
    SwitchRefused,
    UnknownService,
)

__all__ = [
    "INTERNAL_ERROR",
    "METHOD_NOT_ALLOWED",
    "NOT_APPLIED",
    "NOT_FOUND",
    "PAYLOAD_TOO_LARGE",
    "REFUSALS",
    "BadCommand",
    "BadRequest",
    "BakeNotRunning",
    "BakeRefused",
    "BlueGreenError",
    "CanaryNotRunning",
    "CanaryRefused",
    "EdgeError",
    "Forbidden",
    "NotReady",
    "Refused",
    "RetireRefused",
    "SettingsError",
    "StateFileError",
    "StateStoreUnavailable",
    "SwitchRefused",
    "TooManyClients",
    "Unauthorized",
    "UnknownService",
    "UnsupportedMediaType",
    "answer_for",
]

#: Codes the API answers for failures that are not a :class:`BlueGreenError` raised by
#: the provider (aiohttp's own routing and body limit, an unexpected exception).
#: Every other code is in :data:`REFUSALS` or the ``code`` of one :class:`EdgeError`
#: class below: each code is declared once.
INTERNAL_ERROR = "internal_error"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"
#: ``"wait": "applied"``: the switch is made, but Traefik did not apply it in time (504).
NOT_APPLIED = "traefik_not_applied"

#: The request body or query is malformed: the edge raises the core's own refusal.
BadRequest = BadCommand

#: The one mapping from the core's refusals to the API's (status, code).
REFUSALS: Mapping[type[Refused], tuple[int, str]] = {
    BadCommand: (400, "bad_request"),
    UnknownService: (404, "unknown_service"),
    SwitchRefused: (409, "switch_refused"),
    RetireRefused: (409, "retire_refused"),
    CanaryRefused: (409, "canary_refused"),
    CanaryNotRunning: (409, "canary_not_running"),
    BakeRefused: (409, "bake_refused"),
    BakeNotRunning: (409, "bake_not_running"),
}


class EdgeError(BlueGreenError):
    """An error of the provider's edges (HTTP, state file, settings): its status and code."""

    status = 500
    code = INTERNAL_ERROR


def answer_for(exc: BlueGreenError) -> tuple[int, str]:
    """The HTTP status and error code the API answers for ``exc``."""
    if isinstance(exc, EdgeError):
        return exc.status, exc.code
    for cls in type(exc).__mro__:
        if cls in REFUSALS:
            return REFUSALS[cls]
    return 500, INTERNAL_ERROR


class Unauthorized(EdgeError):
    """A token is required and the request did not carry the right one."""

    status = 401
    code = "unauthorized"


class Forbidden(EdgeError):
    """The server has no token configured, so mutations are disabled."""

    status = 403
    code = "forbidden"


class UnsupportedMediaType(EdgeError):
    """The request body is not JSON."""

    status = 415
    code = "unsupported_media_type"


class NotReady(EdgeError):
    """The first full Docker sync has not completed; answering now could wipe routes."""

    status = 503
    code = "not_synced"


class TooManyClients(EdgeError):
    """``GET /events`` already has ``--events-max-clients`` streams open."""

    status = 503
    code = "too_many_clients"


class StateFileError(EdgeError):
    """The state file cannot be read or written; the server must not guess."""

    status = 500
    code = "state_write_failed"


class StateStoreUnavailable(StateFileError):
    """The shared state store (Swarm's Raft store) cannot commit now, e.g. without a quorum.

    Nothing was committed; the replica keeps serving its last state. A
    ``StateFileError`` so every path that handles a failed write handles it.
    """

    status = 503
    code = "state_store_unavailable"


class SettingsError(EdgeError):
    """A setting is invalid; the message says which and how to fix it (never answered by
    the API: ``bluegreen serve`` exits 2 with it before serving)."""

    status = 500
    code = "invalid_settings"
