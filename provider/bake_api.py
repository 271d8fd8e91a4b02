"""``POST /bake``: start a bake after a switch (the CLI's ``deploy --bake``).

The bake itself is the provider's (:mod:`provider.core.bake`, judged by
:mod:`provider.bake_driver`): it survives the CLI, and ``/status``'s ``bake``
and the ``bake`` events say how it goes and how it ended.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from provider.controller import Controller
from provider.core import bake as bakes
from provider.core import canary as canaries
from provider.core import canary_json
from provider.core.model import Color
from provider.core.refusals import BadCommand
from provider.core.wire import BakeResultDoc
from provider.request_body import color_field, json_body, service_field

FIELDS: dict[str, type | tuple[type, ...]] = {
    "service": str,
    "color": str,
    "duration": (str, int, float),
    "interval": (str, int, float),
    "max_error_rate": (int, float),
    "max_p99_ms": (int, float),
    "min_requests": int,
}


def command_of(doc: dict[str, object], active: Callable[[str], Color]) -> bakes.StartBake:
    """The bake a body asks for: ``duration`` is required, the rest take the canary's defaults."""
    service = service_field(doc)
    if doc.get("duration") is None:
        raise BadCommand("field 'duration' (e.g. '60s') is required")
    try:
        duration = canary_json.parse_interval(doc["duration"])
    except BadCommand as exc:
        raise BadCommand(exc.detail.replace("'interval'", "'duration'")) from None
    interval = canary_json.parse_interval(doc.get("interval", canaries.DEFAULT_INTERVAL))
    limits = canary_json.parse_limits(
        doc.get("max_error_rate"), doc.get("max_p99_ms"), doc.get("min_requests")
    )
    color = color_field(doc) or active(service)
    return bakes.StartBake(service, color, duration, min(interval, duration), limits, "api")


def install(
    app: web.Application, controller: Controller, authorize: Callable[[web.Request], None]
) -> None:
    """Add ``POST /bake``; ``authorize`` checks the operator token."""

    async def start_bake(request: web.Request) -> web.Response:
        """Start baking the active color; persisted before it answers."""
        authorize(request)
        doc = await json_body(request, FIELDS)
        command = command_of(doc, controller.active)
        await controller.bake(command)
        bake = controller.bake_json(command.service)
        assert bake is not None  # just started
        body: BakeResultDoc = {"service": command.service, "bake": bake}
        return web.json_response(body)

    app.router.add_post("/bake", start_bake)
