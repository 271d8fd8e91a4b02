"""Why the core (and the controller) refuse a command: domain values, no HTTP.

A refusal carries only its ``detail``, the message a person reads. Which HTTP
status and error code each one becomes is decided in one place, the table
``REFUSALS`` in ``provider/errors.py``, which the API's error middleware reads.

:class:`BlueGreenError` is the root of every error the provider raises: the
refusals here and the edge's own errors (``provider/errors.py``), so one
``except BlueGreenError`` catches both.
"""

from __future__ import annotations


class BlueGreenError(Exception):
    """Base of every error the provider raises (and reports to a client, if one asked)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Refused(BlueGreenError):
    """A command the provider will not carry out in the current state; nothing changed."""


class BadCommand(Refused):
    """A command's arguments are malformed or out of range (re-exported as ``BadRequest``)."""


class UnknownService(Refused):
    """No container carries this service name."""


class SwitchRefused(Refused):
    """The target color cannot take traffic now (not enough routable containers)."""


class RetireRefused(Refused):
    """The color to retire is the active one: stopping it would stop the service."""


class CanaryRefused(Refused):
    """A canary cannot start: the color is not ready or marked, or another one runs."""


class CanaryNotRunning(Refused):
    """An event for a canary that is not running (already promoted or aborted)."""


class BakeRefused(Refused):
    """A bake cannot start: the service did not just switch to that color, or a canary runs."""


class BakeNotRunning(Refused):
    """An event for a bake that ended (passed, reverted, superseded) or was replaced."""
