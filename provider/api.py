"""The provider's HTTP API: Traefik's config endpoint and the operators' controls.

Errors are mapped to JSON ``{"error": code, "detail": message}`` in one
middleware, so no handler can leak a traceback or an HTML page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from provider import bake_api, long_poll, maintenance_api, release_api
from provider.controller import Controller, SwitchResult
from provider.core import canary as canaries
from provider.core import canary_json, state_json
from provider.core.model import Color
from provider.core.wire import CanaryResultDoc, HistoryDoc, RetireResultDoc, SwitchResultDoc
from provider.errors import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PAYLOAD_TOO_LARGE,
    BadRequest,
    BlueGreenError,
    Forbidden,
    NotReady,
    Unauthorized,
    answer_for,
)
from provider.metrics import Exposition
from provider.openapi import BODY as OPENAPI_BODY
from provider.read_access import READ_ACCESS, ReadAccess, bearer_ok, require_read
from provider.request_body import color_field, json_body, service_field
from provider.traefik_pollers import poller_id
from provider.wait_applied import WAIT_FIELDS, switch_answer, wait_request
from provider.window import setup as setup_window

log = structlog.get_logger("bluegreen.api")

CONTROLLER = web.AppKey("controller", Controller)
MAX_BODY = web.AppKey("max_body", int)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error and count every request."""
    controller = request.app[CONTROLLER]
    try:
        response = await handler(request)
    except BlueGreenError as exc:  # a refusal, or StateFileError: 500 state_write_failed
        response = _error(*answer_for(exc), exc.detail)
    except web.HTTPRequestEntityTooLarge:
        detail = f"request body is larger than {request.app[MAX_BODY]} bytes"
        response = _error(413, PAYLOAD_TOO_LARGE, detail)
    except web.HTTPMethodNotAllowed as exc:
        response = _error(405, METHOD_NOT_ALLOWED, f"{request.method} is not allowed here")
        response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
    except web.HTTPNotFound:
        response = _error(404, NOT_FOUND, f"no endpoint at {request.path[:200]}")
    except web.HTTPException as exc:
        response = _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("request_failed", method=request.method, path=request.path[:200])
        response = _error(500, INTERNAL_ERROR, "the provider failed; see its logs")
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    controller.metrics.api_requests[(request.method, name, response.status)] += 1
    return response


def _require_token(request: web.Request) -> None:
    token = request.app[CONTROLLER].settings.token
    if token is None:
        raise Forbidden(
            "switching is disabled because the provider has no token; start it with "
            "--token or BLUEGREEN_TOKEN and send 'Authorization: Bearer <token>'"
        )
    if not bearer_ok(request, token):
        raise Unauthorized("missing or wrong 'Authorization: Bearer <token>' header")


def _switch_json(result: SwitchResult) -> SwitchResultDoc:
    return {
        "service": result.service,
        "active": str(result.active),
        "previous": str(result.previous) if result.previous else None,
        "changed": result.changed,
        "switch": state_json.record_doc(result.record) if result.record else None,
    }


async def traefik_config(request: web.Request) -> web.Response:
    """Traefik's HTTP provider polls this; never a 200 before the first full sync."""
    controller = request.app[CONTROLLER]
    expected = controller.settings.provider_token
    if expected is not None and not bearer_ok(request, expected):
        raise Unauthorized("missing or wrong provider token")
    controller.metrics.traefik_last_poll = controller.clock()
    if not controller.synced:
        raise NotReady("the first Docker sync has not finished; Traefik keeps its last config")
    pollers = controller.pollers
    if pollers.learn_base(request):
        await controller.restamp()
    poller = poller_id(request)
    pollers.arrived(poller, request.remote or "")
    try:
        body = await request.app[long_poll.LONG_POLL].answer(request)  # may hold: see long_poll
    finally:
        pollers.left(poller)
    controller.metrics.traefik_polls += 1
    return web.Response(body=body, content_type="application/json")


async def traefik_applied(request: web.Request) -> web.Response:
    """Traefik's health check of the probe: that Traefik runs this body."""
    probe = request.match_info["probe"]
    if not request.app[CONTROLLER].pollers.probed(request.remote or "", probe):
        raise web.HTTPNotFound()
    return web.json_response({"probe": probe})


async def status_all(request: web.Request) -> web.Response:
    require_read(request)
    return web.json_response(request.app[CONTROLLER].status_all())


async def status_one(request: web.Request) -> web.Response:
    require_read(request)
    return web.json_response(request.app[CONTROLLER].status(request.match_info["service"]))


async def switch(request: web.Request) -> web.Response:
    _require_token(request)
    doc = await json_body(
        request,
        {"service": str, "color": str, "force": bool, "reason": str, **WAIT_FIELDS},
    )
    service = service_field(doc)
    color = color_field(doc)
    reason = doc.get("reason") or "manual"
    if len(reason) > 200:
        raise BadRequest("field 'reason' is longer than 200 characters")
    wait = wait_request(doc)
    result = await request.app[CONTROLLER].switch(
        service, color, force=bool(doc.get("force")), reason=reason, actor="api"
    )
    return await switch_answer(request.app[CONTROLLER], _switch_json(result), wait)


async def rollback(request: web.Request) -> web.Response:
    _require_token(request)
    doc = await json_body(request, {"service": str, "color": str, "force": bool, **WAIT_FIELDS})
    wait = wait_request(doc)
    result = await request.app[CONTROLLER].rollback(
        service_field(doc), force=bool(doc.get("force")), actor="api", expect=color_field(doc)
    )
    return await switch_answer(request.app[CONTROLLER], _switch_json(result), wait)


async def retire(request: web.Request) -> web.Response:
    """An operator is about to stop ``color``: no automatic switch may go there."""
    _require_token(request)
    doc = await json_body(request, {"service": str, "color": str})
    service = service_field(doc)
    color = color_field(doc)
    if color is None:
        raise BadRequest("field 'color' ('blue' or 'green') is required")
    svc = await request.app[CONTROLLER].retire(service, color, actor="api")
    body: RetireResultDoc = {
        "service": service,
        "color": str(color),
        "active": str(svc.active),
        "marks": state_json.marks_doc(svc.marks),
    }
    return web.json_response(body)


async def canary_start(request: web.Request) -> web.Response:
    """Start a canary: the color takes a growing share, judged step by step."""
    _require_token(request)
    doc = await json_body(
        request,
        {
            "service": str,
            "color": str,
            "steps": list,
            "interval": (str, int, float),
            "max_error_rate": (int, float),
            "max_p99_ms": (int, float),
            "min_requests": int,
            "await_ready": bool,
        },
    )
    service = service_field(doc)
    controller = request.app[CONTROLLER]
    await controller.start_canary(
        service,
        color_field(doc),
        steps=canary_json.parse_steps(doc.get("steps")),
        interval=canary_json.parse_interval(doc.get("interval", canaries.DEFAULT_INTERVAL)),
        limits=canary_json.parse_limits(
            doc.get("max_error_rate"), doc.get("max_p99_ms"), doc.get("min_requests")
        ),
        actor="api",
        await_ready=bool(doc.get("await_ready")),
    )
    answer: CanaryResultDoc = {"service": service, "canary": controller.canary_json(service)}
    return web.json_response(answer)


async def _canary_operator(request: web.Request, event: canaries.Event) -> web.Response:
    _require_token(request)
    doc = await json_body(request, {"service": str})
    service = service_field(doc)
    controller = request.app[CONTROLLER]
    await controller.canary_event(service, event, actor="api")
    body: CanaryResultDoc = {
        "service": service,
        "active": str(controller.active(service)),
        "canary": controller.canary_json(service),
    }
    return web.json_response(body)


async def canary_abort(request: web.Request) -> web.Response:
    """Stop the running canary: weight 0 at once, the color marked rejected."""
    return await _canary_operator(request, canaries.OperatorAbort("aborted by api"))


async def canary_promote(request: web.Request) -> web.Response:
    """Skip the remaining steps: switch to the canary color now (reason ``canary``)."""
    return await _canary_operator(request, canaries.OperatorPromote("api"))


async def history(request: web.Request) -> web.Response:
    require_read(request)
    unknown = set(request.query) - {"service"}
    if unknown:
        raise BadRequest(f"unknown query parameter(s): {', '.join(sorted(unknown))[:200]}")
    service = request.query.get("service")
    answer: HistoryDoc = {"history": request.app[CONTROLLER].history(service)}
    return web.json_response(answer)


async def auth(request: web.Request) -> web.Response:
    """An authenticated no-op: the CLI checks its token before it changes anything."""
    _require_token(request)
    return web.json_response({"authorized": True})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    state_file = controller.state_file_summary()
    body = {
        "synced": controller.synced,
        "docker": controller.docker_summary(),
        "state_file": state_file,
    }
    ready = controller.synced and state_file["ok"]
    return web.json_response(body, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    m = controller.metrics
    out = Exposition()
    out.family("bluegreen_switches_total", "counter", "Switches by service and reason.")
    for (service, reason), count in sorted(m.switches.items()):
        out.sample("bluegreen_switches_total", count, service=service, reason=reason)
    out.family("bluegreen_active_color", "gauge", "1 for each service's active color.")
    routable: list[tuple[str, str, int]] = []
    for name, view in sorted(controller.observation.services.items()):
        active = controller.active(name)
        for color in Color:
            out.sample(
                "bluegreen_active_color", int(color is active), service=name, color=str(color)
            )
            routable.append((name, str(color), view.color(color).routable))
    out.family("bluegreen_routable_containers", "gauge", "Routable containers per color.")
    for name, color_name, count in routable:
        out.sample("bluegreen_routable_containers", count, service=name, color=color_name)
    out.family("bluegreen_canary_weight", "gauge", "A canary's share per color, in percent.")
    for name, canary in sorted(controller.state.canaries.items()):
        weights = canary.weights() if canary.running else {}
        for color in Color:
            share = weights.get(color, 100 if controller.active(name) is color else 0)
            out.sample("bluegreen_canary_weight", share, service=name, color=str(color))
    out.family("bluegreen_maintenance", "gauge", "1 while a service's public gets the page.")
    for name in sorted(controller.state.maintenance):
        out.sample("bluegreen_maintenance", 1, service=name)
    out.family("bluegreen_renders_total", "counter", "Times the served config changed.")
    out.sample("bluegreen_renders_total", m.renders)
    out.family("bluegreen_traefik_polls_total", "counter", "Config bodies served to Traefik.")
    out.sample("bluegreen_traefik_polls_total", m.traefik_polls)
    request.app[long_poll.LONG_POLL].expose(out)
    actives = {name: controller.active(name) for name in controller.state.services}
    controller.pollers.expose(out, actives)
    out.family("bluegreen_docker_connected", "gauge", "1 while the Docker API answers.")
    out.sample("bluegreen_docker_connected", int(controller.docker_connected))
    out.family("bluegreen_synced", "gauge", "1 once the first full Docker sync finished.")
    out.sample("bluegreen_synced", int(controller.synced))
    out.family("bluegreen_state_write_errors_total", "counter", "Failed state-file writes.")
    out.sample("bluegreen_state_write_errors_total", m.state_write_errors)
    out.family(
        "bluegreen_state_dir_fsync_errors_total",
        "counter",
        "State-file writes committed whose directory fsync failed.",
    )
    out.sample("bluegreen_state_dir_fsync_errors_total", m.state_dir_fsync_errors)
    out.family("bluegreen_api_requests_total", "counter", "API requests by route and status.")
    for (method, route, status), count in sorted(m.api_requests.items()):
        out.sample(
            "bluegreen_api_requests_total", count, method=method, route=route, status=str(status)
        )
    out.family("bluegreen_webhook_deliveries_total", "counter", "Webhook outcomes by result.")
    for result, count in sorted(m.webhook_deliveries.items()):
        out.sample("bluegreen_webhook_deliveries_total", count, result=result)
    return web.Response(text=out.text(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI_BODY, content_type="application/json", charset="utf-8")


def create_app(controller: Controller) -> web.Application:
    """The aiohttp application around ``controller`` (background tasks added by the caller)."""
    max_body = controller.settings.max_body
    app = web.Application(middlewares=[errors_middleware], client_max_size=max_body)
    app[CONTROLLER] = controller
    app[MAX_BODY] = max_body
    settings = controller.settings
    app[READ_ACCESS] = ReadAccess(settings.read_token, settings.token)
    long_poll.install(app, controller)
    app.router.add_get("/traefik", traefik_config)
    app.router.add_get("/traefik/applied/{probe}", traefik_applied)
    app.router.add_get("/status", status_all)
    app.router.add_get("/status/{service}", status_one)
    app.router.add_post("/switch", switch)
    app.router.add_post("/rollback", rollback)
    app.router.add_post("/retire", retire)
    app.router.add_post("/canary", canary_start)
    app.router.add_post("/canary/abort", canary_abort)
    app.router.add_post("/canary/promote", canary_promote)
    app.router.add_get("/history", history)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/auth", auth)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    release_api.install(app, controller, _require_token)
    maintenance_api.install(app, controller, _require_token)
    bake_api.install(app, controller, _require_token)
    setup_window(app, controller)
    return app
