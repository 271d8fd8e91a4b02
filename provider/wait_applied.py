"""``POST /switch`` and ``/rollback`` with ``"wait": "applied"``: answer once Traefik applied.

Why: a caller that stops the old color, or tells a user "done", needs to know
Traefik routes to the new one, not only that the provider serves it.  The
switch is committed first, as without the wait; the answer then waits for
every live poller to apply it (``provider/core/applied.py``), at most
``timeout`` seconds (default 30, at most 120), and says which it was: 200
with ``traefik.applied`` true, or 504 ``traefik_not_applied`` with the switch
and the pollers seen, so the caller knows the switch happened but is not live.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from provider.controller import Controller
from provider.core.applied import applied_json
from provider.core.model import Color
from provider.core.wire import NotAppliedDoc, SwitchResultDoc, TraefikPollerDoc
from provider.errors import NOT_APPLIED, BadRequest
from provider.traefik_pollers import MAX_WAIT_S

#: The fields ``/switch`` and ``/rollback`` accept for the wait.
WAIT_FIELDS: dict[str, type | tuple[type, ...]] = {"wait": str, "timeout": (int, float)}
DEFAULT_WAIT_S = 30.0


def wait_request(doc: dict[str, Any]) -> float | None:
    """The seconds to wait for Traefik (None: answer at once, as before)."""
    wait = doc.get("wait")
    timeout = doc.get("timeout")
    if wait is None:
        if timeout is not None:
            raise BadRequest('field \'timeout\' needs "wait": "applied"')
        return None
    if wait != "applied":
        raise BadRequest("field 'wait' takes only \"applied\"")
    if timeout is None:
        return DEFAULT_WAIT_S
    if isinstance(timeout, bool) or not math.isfinite(timeout) or not 0 <= timeout <= MAX_WAIT_S:
        raise BadRequest(f"field 'timeout' must be a number of seconds from 0 to {MAX_WAIT_S:g}")
    return float(timeout)


def _why_not(doc: SwitchResultDoc, pollers: list[TraefikPollerDoc], timeout: float) -> str:
    if not pollers:
        return "no Traefik has polled /traefik since the provider started"
    live = [p["id"] for p in pollers if p["live"]]
    stale = [p["id"] for p in pollers if not p["live"]]
    if not live:
        return (
            f"no Traefik polls /traefik any more (last seen: {', '.join(stale)}); "
            "it cannot reach the provider, or it is stuck"
        )
    return (
        f"Traefik ({', '.join(live)}) did not apply the switch to {doc['active']} within "
        f"{timeout:g}s: it polls, but its health check of the provider's probe did not "
        "report the new version (a providersThrottleDuration that long, a config it "
        "rejected, or no route back to the provider's URL: see Traefik's log)"
    )


async def switch_answer(
    controller: Controller, doc: SwitchResultDoc, timeout: float | None
) -> web.Response:
    """The switch's answer, after waiting for Traefik when asked to."""
    if timeout is None:
        return web.json_response(doc)
    service = doc["service"]
    applied = await controller.pollers.wait_applied(
        service, lambda: controller.active(service), timeout
    )
    doc["traefik"] = applied_json(applied)
    if applied.applied and applied.color is Color(doc["active"]):
        return web.json_response(doc)
    pollers = controller.pollers.pollers_json()
    body: NotAppliedDoc = {
        "error": NOT_APPLIED,
        "detail": _why_not(doc, pollers, timeout),
        **doc,
        "traefik": doc["traefik"],
        "traefik_pollers": pollers,
    }
    return web.json_response(body, status=504)
