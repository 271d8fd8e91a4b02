"""The provider's exception hierarchy.

Each error carries the HTTP status and a stable machine-readable ``code``; the
API maps them to ``{"error": code, "detail": message}`` in one place. Pure: no
aiohttp import, so the core can raise them.
"""

from __future__ import annotations


class BlueGreenError(Exception):
    """Base of every error the provider reports to a client."""

    status = 500
    code = "internal_error"

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


class NotFound(BlueGreenError):
    """No such endpoint."""

    status = 404
    code = "not_found"


class MethodNotAllowed(BlueGreenError):
    """The endpoint exists but not with this method."""

    status = 405
    code = "method_not_allowed"


class SwitchRefused(BlueGreenError):
    """The target color cannot take traffic now (not enough routable containers)."""

    status = 409
    code = "switch_refused"


class PayloadTooLarge(BlueGreenError):
    """The request body exceeds the server's cap."""

    status = 413
    code = "payload_too_large"


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


class StateFileError(Exception):
    """The state file cannot be read or written; the server must not guess."""


class SettingsError(Exception):
    """A setting is invalid; the message says which and how to fix it."""
