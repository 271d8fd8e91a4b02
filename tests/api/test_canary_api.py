"""The canary through the API tier: refusals, weights served, persistence, abort and promote."""

from __future__ import annotations

import json
from pathlib import Path

import structlog

from provider import store
from provider.api import CONTROLLER
from provider.core.model import Color, Health, MarkKind
from tests.api.test_api import (
    AUTH,
    ClientFactory,
    blue_and_green,
    make_settings,
    started,
    without_probe,
)

START = {"service": "web", "steps": [10, 100], "interval": "600s"}


async def weighted(client: object) -> object:
    body = json.loads(await (await client.get("/traefik")).read())  # type: ignore[attr-defined]
    return body["http"]["services"]["web"]["weighted"]


async def test_start_serves_weights_persisted_first(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """POST /canary: the file holds the canary, /traefik serves 90/10 with the cookie."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    resp = await client.post("/canary", json=START, headers=AUTH)
    assert 200 == resp.status, await resp.text()
    started_doc = (await resp.json())["canary"]
    assert ("green", 10, "running") == tuple(started_doc[k] for k in ("color", "weight", "phase"))
    assert 10 == store.load(tmp_path / "state.json").canaries["web"].weight
    assert {
        "services": [{"name": "web-blue", "weight": 90}, {"name": "web-green", "weight": 10}],
        "sticky": {"cookie": {"name": "bluegreen_web", "httpOnly": True, "sameSite": "lax"}},
    } == await weighted(client)
    status = await (await client.get("/status/web")).json()
    assert "health-only" == status["canary"]["analysis"]
    again = await client.post("/canary", json=START, headers=AUTH)
    assert (409, "canary_refused") == (again.status, (await again.json())["error"])
    metrics = await (await client.get("/metrics")).text()
    assert 'bluegreen_canary_weight{color="green",service="web"} 10.0' in metrics


async def test_start_refused_when_color_not_ready(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """409 when the target is not ready; await_ready reserves it at weight 0 instead."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green(Health.STARTING))
    resp = await client.post("/canary", json=START, headers=AUTH)
    assert (409, "canary_refused") == (resp.status, (await resp.json())["error"])
    resp = await client.post("/canary", json={**START, "await_ready": True}, headers=AUTH)
    waiting = (await resp.json())["canary"]
    assert ("waiting", 0) == (waiting["phase"], waiting["weight"])
    assert {"services": [{"name": "web-blue", "weight": 1}]} == await weighted(client)


async def test_abort_marks_rejected_and_restores_all_or_nothing(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Abort: weight 0 at once, history canary-abort, the color rejected; then abort is 409."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    await client.post("/canary", json=START, headers=AUTH)
    resp = await client.post("/canary/abort", json={"service": "web"}, headers=AUTH)
    doc = await resp.json()
    assert ("aborted", "blue") == (doc["canary"]["phase"], doc["active"])
    assert {"services": [{"name": "web-blue", "weight": 1}]} == await weighted(client)
    controller = client.app[CONTROLLER]  # type: ignore[index]
    assert MarkKind.REJECTED == controller.state.services["web"].marks["green"].kind
    reasons = [h["reason"] for h in (await (await client.get("/history")).json())["history"]]
    assert ["canary-step", "canary-abort"] == reasons
    again = await client.post("/canary/abort", json={"service": "web"}, headers=AUTH)
    assert (409, "canary_not_running") == (again.status, (await again.json())["error"])


async def test_promote_switches_with_reason_canary(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """Promote: green active, blue previous, reason canary; no weights any more."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    await client.post("/canary", json=START, headers=AUTH)
    resp = await client.post("/canary/promote", json={"service": "web"}, headers=AUTH)
    doc = await resp.json()
    assert ("green", "promoted") == (doc["active"], doc["canary"]["phase"])
    status = await (await client.get("/status/web")).json()
    assert ("green", "blue", "canary") == (
        status["active"],
        status["previous"],
        status["last_switch"]["reason"],
    )
    assert {"services": [{"name": "web-green", "weight": 1}]} == await weighted(client)


async def test_restart_serves_the_same_weights(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """A restarted provider reads the canary from the file and serves the same body."""
    settings = make_settings(tmp_path)
    client = await started(aiohttp_client, settings, blue_and_green())
    await client.post("/canary", json=START, headers=AUTH)
    body = without_probe(await (await client.get("/traefik")).read())
    await client.close()
    again = await started(aiohttp_client, settings, blue_and_green())
    # The same, but for Traefik's probe: its URL names this test server's port.
    assert body == without_probe(await (await again.get("/traefik")).read())


async def test_operator_switch_ends_the_canary(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """/switch during a canary ends it (no mark) and switches as asked."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    await client.post("/canary", json=START, headers=AUTH)
    resp = await client.post("/switch", json={"service": "web", "color": "green"}, headers=AUTH)
    assert 200 == resp.status
    status = await (await client.get("/status/web")).json()
    assert ("aborted", {}) == (status["canary"]["phase"], status["marks"])


async def test_retiring_the_canary_color_ends_its_canary(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """POST /retire of the canary's color (its containers are about to stop): the canary
    ends in the same write, so no share goes to a retiring color (found by the state
    machine's weight_only_on_ready_unmarked_colors)."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    await client.post("/canary", json=START, headers=AUTH)
    resp = await client.post("/retire", json={"service": "web", "color": "green"}, headers=AUTH)
    assert 200 == resp.status, await resp.text()
    assert {"services": [{"name": "web-blue", "weight": 1}]} == await weighted(client)
    persisted = store.load(tmp_path / "state.json")
    assert ("aborted", 0) == (
        str(persisted.canaries["web"].phase),
        persisted.canaries["web"].weight,
    )
    assert MarkKind.RETIRING == persisted.services["web"].marks[Color.GREEN].kind
    assert "canary-abort" == persisted.history[-1].reason


async def test_canary_transitions_are_events(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """Each persisted canary change is one ``canary`` event (for /events, the page, webhooks):
    the start at weight 10 and the operator's abort, with the base and canary colors."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    await client.post("/canary", json=START, headers=AUTH)
    await client.post("/canary/abort", json={"service": "web"}, headers=AUTH)

    bus = client.app[CONTROLLER].events  # type: ignore[index]
    canary = [e.to_json() for e in bus.recent if str(e.kind) == "canary"]
    assert [("running", 10), ("aborted", 0)] == [
        (e["detail"]["phase"], e["detail"]["weight"]) for e in canary
    ]
    assert {("web", "blue", "green")} == {(e["service"], e["from"], e["to"]) for e in canary}


HUGE = 10**400
#: Numbers no field means, for every numeric field of POST /canary (raw JSON text, so
#: NaN, Infinity and 400-digit integers reach the server exactly as a hostile client sends them).
UNMEANT = {
    "interval": [str(HUGE), "1e400", "NaN", "Infinity", "-Infinity", "true"],
    "max_error_rate": [str(HUGE), "-" + str(HUGE), "NaN", "Infinity", "true", "false"],
    "max_p99_ms": [str(HUGE), "1e400", "NaN", "-Infinity", "true"],
    "min_requests": [str(HUGE), "NaN", "Infinity", "true", "false"],
    "steps": [f"[10, {HUGE}]", "[10, NaN]", "[Infinity]", "[true, 100]", f"[{HUGE}]"],
}


async def test_unmeant_numbers_are_a_400_not_a_traceback(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """10**400, 1e400, NaN, Infinity and true/false in any numeric field of POST /canary:
    400 bad_request naming the field, nothing logged as a failure, no canary started."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    headers = {**AUTH, "Content-Type": "application/json"}
    answers: list[tuple[str, str, int, str]] = []
    with structlog.testing.capture_logs() as logs:
        for field, raws in UNMEANT.items():
            for raw in raws:
                body = f'{{"service": "web", "{field}": {raw}}}'
                resp = await client.post("/canary", data=body, headers=headers)
                doc = await resp.json()
                answers.append((field, raw[:12], resp.status, doc["error"]))
                assert field in doc["detail"], (field, raw[:12], doc)
    assert all(a[2:] == (400, "bad_request") for a in answers), answers
    assert [] == [e for e in logs if e["log_level"] in ("error", "critical")]
    assert None is client.app[CONTROLLER].canary_json("web")  # type: ignore[index]


async def test_booleans_and_huge_numbers_in_every_body_are_refused(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    """The same gate guards every body: a number where a flag goes, a flag where text goes,
    NaN anywhere; each a 400, the active color unchanged."""
    client = await started(aiohttp_client, make_settings(tmp_path), blue_and_green())
    headers = {**AUTH, "Content-Type": "application/json"}
    bodies = {
        "/switch": ['"force": 1', '"force": NaN', f'"color": {HUGE}', '"reason": Infinity'],
        "/rollback": ['"force": 1e400', '"color": true'],
        "/retire": ['"color": NaN'],
        "/canary/abort": ['"service": true'],
        "/canary/promote": [f'"service": {HUGE}'],
    }
    for path, fields in bodies.items():
        for field in fields:
            body = "{" + ('"service": "web", ' if '"service"' not in field else "") + field + "}"
            resp = await client.post(path, data=body, headers=headers)
            assert (400, "bad_request") == (resp.status, (await resp.json())["error"]), body
    assert Color.BLUE is client.app[CONTROLLER].active("web")  # type: ignore[index]
