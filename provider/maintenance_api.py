"""``POST /maintenance`` (an operator turns it on or off) and the page the public gets.

While a service is in maintenance, :mod:`provider.core.render` points its
public router at this provider (``--maintenance-url``) through a
``replacePath`` to ``/maintenance-page/<service>``: every public request,
whatever its method, gets a 503 with ``Retry-After`` and a small page, HTML or
JSON by ``Accept``. The page is open (the public reads it) and says only what
the operator wrote. A request that still lands here after maintenance ended
(Traefik applies the next config a moment later) gets the same 503: there is
no other answer this route can give.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import structlog
from aiohttp import web

from provider.controller import Controller
from provider.core import maintenance, state_json
from provider.core.wire import MaintenanceResultDoc
from provider.errors import BadRequest
from provider.request_body import json_body, service_field

log = structlog.get_logger("bluegreen.api")

FIELDS: dict[str, type | tuple[type, ...]] = {
    "service": str,
    "on": bool,
    "message": str,
    "retry_after": int,
    "reason": str,
}
#: Every method the public may send: each gets the page, never a 405 (HEAD: its head).
PAGE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Down for maintenance</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
color:#222}}h1{{font-size:1.4rem}}</style></head>
<body><h1>Down for maintenance</h1><p>{message}</p>
<p>Please try again in {retry_after} seconds.</p></body></html>
"""


def wants_json(accept: str) -> bool:
    """JSON when the client names it before (or without) HTML; a browser gets HTML."""
    accept = accept.lower()
    json_at, html_at = accept.find("json"), accept.find("text/html")
    return json_at >= 0 and (html_at < 0 or json_at < html_at)


def page(service: str, message: str, retry_after: int, accept: str) -> web.Response:
    """The 503 the public gets: ``Retry-After``, never cached, HTML or JSON."""
    headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}
    if wants_json(accept):
        doc = {"error": "maintenance", "detail": message, "service": service}
        return web.json_response(doc | {"retry_after": retry_after}, status=503, headers=headers)
    text = _PAGE.format(message=html.escape(message), retry_after=retry_after)
    return web.Response(text=text, status=503, content_type="text/html", headers=headers)


def command_of(doc: dict[str, object]) -> maintenance.SetMaintenance:
    """The command a body asks for (defaults for what it leaves out)."""
    on = doc.get("on")
    if not isinstance(on, bool):
        raise BadRequest("field 'on' (true or false) is required")
    message = doc.get("message") or maintenance.DEFAULT_MESSAGE
    retry_after = doc.get("retry_after")
    return maintenance.SetMaintenance(
        service_field(doc),
        on,
        message=str(message),
        retry_after=maintenance.DEFAULT_RETRY_AFTER
        if retry_after is None
        else int(str(retry_after)),
        reason=str(doc.get("reason") or ""),
        actor="api",
    )


def install(
    app: web.Application, controller: Controller, authorize: Callable[[web.Request], None]
) -> None:
    """Add ``POST /maintenance`` and the page's routes; ``authorize`` checks the operator token."""

    async def set_maintenance(request: web.Request) -> web.Response:
        """Turn maintenance on or off; persisted before it answers."""
        authorize(request)
        command = command_of(await json_body(request, FIELDS))
        window, record = await controller.set_maintenance(command)
        body: MaintenanceResultDoc = {
            "service": command.service,
            "changed": record is not None,
            "maintenance": state_json.maintenance_doc(window) if window else None,
            "record": state_json.record_doc(record) if record else None,
        }
        return web.json_response(body)

    async def maintenance_page(request: web.Request) -> web.Response:
        """What Traefik forwards a public request of a service in maintenance to."""
        service = request.match_info["service"]
        window = controller.state.maintenance.get(service)
        message = window.message if window else maintenance.DEFAULT_MESSAGE
        retry_after = window.retry_after if window else maintenance.DEFAULT_RETRY_AFTER
        return page(service, message, retry_after, request.headers.get("Accept", ""))

    app.router.add_post("/maintenance", set_maintenance)
    for method in PAGE_METHODS:
        app.router.add_route(method, "/maintenance-page/{service}", maintenance_page)
