"""The status page: ``GET /`` rendered on the server, kept live by a small script.

The page is the ``/status`` document as HTML (``aiohttp-jinja2``, autoescaped),
one section per service. ``/ui/app.js`` (served from the package, no CDN, no
build step) follows ``GET /events`` and, on each event, fetches the services
again as an HTML fragment from ``/ui/services``: events are wake-ups, the
server's rendering is the truth. Actions (switch, rollback, canary promote and
abort) send the operator token, entered once and kept in ``sessionStorage``, as a bearer header with
``fetch``; no cookie ever acts, so no cross-site request can. With
``--read-token`` the page and ``/ui/services`` need a read session: ``/``
answers 401 with a sign-in form instead (see :mod:`provider.read_access`).
A strict Content-Security-Policy allows only the provider's own script and
style. ``--ui off`` leaves these routes out.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from provider.controller import Controller
from provider.core import words
from provider.read_access import READ_ACCESS, login, require_read

UI_CONTROLLER = web.AppKey("ui_controller", Controller)
#: Switches shown per service.
RECENT_SWITCHES = 3
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_STATIC = {
    "/ui/app.js": "application/javascript",
    "/ui/login.js": "application/javascript",
    "/ui/style.css": "text/css",
}


def _when(at: float | None) -> str:
    if at is None:
        return "never"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def page_context(controller: Controller) -> dict[str, Any]:
    """What the templates show: ``/status`` plus each service's last switches."""
    status = controller.status_all()
    history = controller.history()
    services = []
    for name, svc in status["services"].items():
        recent = [r for r in history if r["service"] == name][-RECENT_SWITCHES:]
        services.append({**svc, "recent": list(reversed(recent))})
    return {
        "services": services,
        "docker": status["docker"],
        "synced": status["synced"],
        "unassigned_errors": status["unassigned_errors"],
        "can_act": controller.settings.token is not None,
    }


async def page(request: web.Request) -> web.Response:
    access = request.app[READ_ACCESS]
    if not access.allows(request):
        # The sign-in form, as the answer of the page it guards: 401, and no status shown.
        response = aiohttp_jinja2.render_template("login.html", request, {}, status=401)
    else:
        context = page_context(request.app[UI_CONTROLLER])
        response = aiohttp_jinja2.render_template("status.html", request, context)
    response.headers.update(_HEADERS)
    return response


async def services_fragment(request: web.Request) -> web.Response:
    require_read(request)
    context = page_context(request.app[UI_CONTROLLER])
    response = aiohttp_jinja2.render_template("services.html", request, context)
    response.headers.update(_HEADERS)
    return response


def _static(path: str, content_type: str) -> Callable[[web.Request], Any]:
    name = path.rsplit("/", 1)[1]
    body = importlib.resources.files("provider").joinpath("static", name).read_bytes()

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(body=body, content_type=content_type, charset="utf-8")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Cache-Control"] = "no-cache"
        return response

    return handler


def setup(app: web.Application, controller: Controller) -> None:
    """Add ``/``, ``/ui/services`` and the page's script and style to ``app``."""
    app[UI_CONTROLLER] = controller
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("provider", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
    )
    env.filters["when"] = _when
    # The operator's words, the same table as the CLI's (provider/core/words.py).
    env.globals["mark_text"] = words.mark_text
    env.globals["stage_text"] = words.stage_text
    app.router.add_get("/", page)
    app.router.add_get("/ui/services", services_fragment)
    app.router.add_post("/ui/login", login)
    for path, content_type in _STATIC.items():
        app.router.add_get(path, _static(path, content_type))
