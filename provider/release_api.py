"""``POST /releases``: a deploy's release step reports how it ended.

The CLI runs the release step (``deploy --release``); the provider is where
operators look (``/events``, the status page's feed, webhooks), so the CLI
reports each step here, and the provider publishes it as one ``release`` event
and one log line. No state changes: a release step moves no traffic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from provider.controller import Controller
from provider.errors import BadRequest
from provider.events import EventKind
from provider.request_body import color_field, json_body, service_field

log = structlog.get_logger("bluegreen.api")

#: At most this many output lines are kept, each cut to ``MAX_LINE`` characters.
MAX_LINES = 20
MAX_LINE = 500
FIELDS: dict[str, type | tuple[type, ...]] = {
    "service": str,
    "color": str,
    "image": str,
    "command": str,
    "exit_code": int,
    "duration_s": (int, float),
    "timed_out": bool,
    "output_tail": list,
}


def _tail(doc: dict[str, Any]) -> list[str]:
    raw = doc.get("output_tail") or []
    if not all(isinstance(line, str) for line in raw):
        raise BadRequest("field 'output_tail' must be a list of strings")
    return [line[:MAX_LINE] for line in raw[-MAX_LINES:]]


def install(
    app: web.Application, controller: Controller, authorize: Callable[[web.Request], None]
) -> None:
    """Add ``POST /releases`` to ``app``; ``authorize`` checks the operator token."""

    async def record_release(request: web.Request) -> web.Response:
        """Publish one release step's outcome (token required: it is an operator's act)."""
        authorize(request)
        doc = await json_body(request, FIELDS)
        service = service_field(doc)
        color = color_field(doc)
        command = doc.get("command")
        if color is None or not isinstance(command, str) or not command:
            raise BadRequest("fields 'color' and 'command' are required")
        exit_code, timed_out = doc.get("exit_code"), bool(doc.get("timed_out", False))
        ok = exit_code == 0 and not timed_out
        detail: dict[str, Any] = {
            "command": command,
            "image": doc.get("image"),
            "exit_code": exit_code,
            "timed_out": timed_out,
            "duration_s": float(doc.get("duration_s") or 0.0),
            "output_tail": _tail(doc),
        }
        reason = "release_ok" if ok else "release_failed"
        event = controller.events.publish(
            EventKind.RELEASE, service, to=str(color), reason=reason, actor="cli", **detail
        )
        log.info(
            "release_step_reported",
            service=service,
            color=str(color),
            outcome=reason,
            exit_code=exit_code,
            duration_s=detail["duration_s"],
        )
        return web.json_response({"event": event.to_json()})

    app.router.add_post("/releases", record_release)
