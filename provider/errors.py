"""The provider's exception hierarchy.

Each error carries the HTTP status and a stable machine-readable ``code``; the
API maps them to ``{"error": code, "detail": message}`` in one place. Pure: no
aiohttp import, so the core can raise them.
"""

from __future__ import annotations

#: Codes the API answers for failures that are not a :class:`BlueGreenError` raised by
#: the provider (aiohttp's own routing and body limit, an unexpected exception).
#: Every other code is the ``code`` of one class below: each code is declared once.
INTERNAL_ERROR = "internal_error"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
PAYLOAD_TOO_LARGE = "payload_too_large"


class BlueGreenError(Exception):
    """Base of every error the provider raises (and reports to a client, if one asked)."""

    status = 500
    code = INTERNAL_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(BlueGreenError):
    """The request body or query is malformed."""

    status = 400
    code = "bad_request"


class Unauthorized(BlueGreenError):
    """A token is required and the request did not carry the right one."""

    status = 401
    code = "unauthorized"


class Forbidden(BlueGreenError):
    """The server has no token configured, so mutations are disabled."""

    status = 403
    code = "forbidden"


class UnknownService(BlueGreenError):
    """No container carries this service name."""

    status = 404
    code = "unknown_service"


class SwitchRefused(BlueGreenError):
    """The target color cannot take traffic now (not enough routable containers)."""

    status = 409
    code = "switch_refused"


class RetireRefused(BlueGreenError):
    """The color to retire is the active one: stopping it would stop the service."""

    status = 409
    code = "retire_refused"


class CanaryRefused(BlueGreenError):
    """A canary cannot start: the color is not ready or marked, or another one runs."""

    status = 409
    code = "canary_refused"


class CanaryNotRunning(BlueGreenError):
    """An event for a canary that is not running (already promoted or aborted)."""

    status = 409
    code = "canary_not_running"


class UnsupportedMediaType(BlueGreenError):
    """The request body is not JSON."""

    status = 415
    code = "unsupported_media_type"


class NotReady(BlueGreenError):
    """The first full Docker sync has not completed; answering now could wipe routes."""

    status = 503
    code = "not_synced"


class TooManyClients(BlueGreenError):
    """``GET /events`` already has ``--events-max-clients`` streams open."""

    status = 503
    code = "too_many_clients"


class StateFileError(BlueGreenError):
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


class SettingsError(BlueGreenError):
    """A setting is invalid; the message says which and how to fix it (never answered by
    the API: ``bluegreen serve`` exits 2 with it before serving)."""

    status = 500
    code = "invalid_settings"
