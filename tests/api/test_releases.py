"""``POST /releases``: a deploy's release step becomes one ``release`` event on ``/events``."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from provider.api import CONTROLLER
from tests.api.test_events import AUTH, ClientFactory, started
from tests.sse_client import next_event

FAILED = {
    "service": "web",
    "color": "green",
    "image": "app:2",
    "command": "python manage.py migrate",
    "exit_code": 3,
    "duration_s": 4.25,
    "timed_out": False,
    "output_tail": [f"line {n}" for n in range(30)],
}


async def post(client: TestClient[Any, Any], body: dict[str, Any]) -> Any:
    resp = await client.post("/releases", json=body, headers=AUTH)
    assert 200 == resp.status, await resp.text()
    return await resp.json()


async def test_a_failed_release_step_is_published_with_its_last_lines(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    """The event carries the command, exit, duration and the last 20 output lines; a
    subscriber of the service's stream receives it; the state is not touched."""
    client = await started(aiohttp_client, tmp_path)
    state_before = client.app[CONTROLLER].state
    async with client.get("/events?service=web", headers=AUTH) as stream:
        answer = await post(client, FAILED)
        event = (await next_event(stream)).json
    expected_detail = {
        "command": "python manage.py migrate",
        "image": "app:2",
        "exit_code": 3,
        "timed_out": False,
        "duration_s": 4.25,
        "output_tail": [f"line {n}" for n in range(10, 30)],
    }
    assert ("release", "web", "green", "release_failed", "cli") == (
        event["event"],
        event["service"],
        event["to"],
        event["reason"],
        event["actor"],
    )
    assert expected_detail == event["detail"]
    assert answer["event"] == event
    assert state_before is client.app[CONTROLLER].state


async def test_a_passed_or_timed_out_step_says_so(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    """Exit 0 is ``release_ok``; a timeout (no exit code) is ``release_failed``."""
    client = await started(aiohttp_client, tmp_path)
    ok = await post(client, {**FAILED, "exit_code": 0, "output_tail": []})
    late = await post(client, {**FAILED, "exit_code": None, "timed_out": True})
    assert ("release_ok", "release_failed") == (ok["event"]["reason"], late["event"]["reason"])


async def test_a_release_without_the_token_is_refused(
    aiohttp_client: ClientFactory, tmp_path: Any
) -> None:
    """Only an operator may publish: 401 without the bearer token, and nothing published."""
    client = await started(aiohttp_client, tmp_path)
    before = len(client.app[CONTROLLER].events.recent)
    resp = await client.post("/releases", json=FAILED)
    assert 401 == resp.status
    assert before == len(client.app[CONTROLLER].events.recent)
