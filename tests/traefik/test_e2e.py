"""End to end through real Traefik: load runs the whole time, not one request fails.

Each test starts its own provider (``bluegreen serve`` as a subprocess) and a
real Traefik whose HTTP provider polls it every 200 ms, on the session's
private Docker daemon.  Backends are busybox httpd containers on the host
network answering their color on 127.0.0.1 ports, with real HEALTHCHECKs.
Traffic goes only to 127.0.0.1.  Every wait is bounded in time and count.
"""

from __future__ import annotations

import time

import pytest

from tests.docker_stall import StallingDockerProxy
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.load import LoadResult
from tests.testbed.stack import Stack, StackFactory, body_of

pytestmark = pytest.mark.docker

BLUE = body_of("blue")
GREEN = body_of("green")
CONCURRENCY = 8
LOAD_LIMIT_S = 60.0
SETTLE_REQUESTS = 200


def failures_of(result: LoadResult) -> list[str]:
    """The failed samples, described (first 10), for a readable assertion."""
    return [s.describe() for s in result.failures()[:10]]


def clean_cutover(result: LoadResult, old: str, new: str, start: float, end: float) -> bool:
    """Requests started in ``[start, end)`` moved from ``old`` to ``new`` once, for good."""
    segment = LoadResult(result.between(start, end))
    return segment.cutover(old, new) is not None


def switches(stack: Stack) -> list[tuple[str | None, str, str]]:
    """(from, to, reason) of every recorded switch of the stack's service."""
    return [(r["from"], r["to"], r["reason"]) for r in stack.provider.history(stack.service)]


def test_auto_promotion_moves_traffic_without_a_failed_request(stack: Stack) -> None:
    """Blue serves; a new green generation turns healthy and is auto-promoted;
    from one instant on every response is green; not one request fails."""
    stack.backend("blue")
    stack.wait_serving("blue")

    with stack.load(concurrency=CONCURRENCY, max_duration=LOAD_LIMIT_S) as load:
        load.wait_body(BLUE)
        stack.backend("green", wait=None)
        load.wait_body(GREEN, timeout=20)
        load.wait_requests(SETTLE_REQUESTS)

    result = load.result
    assert [] == failures_of(result)
    assert [BLUE, GREEN] == sorted(result.summary().bodies)
    assert result.cutover(BLUE, GREEN) is not None, result.body_sequence()[:20]
    assert [("blue", "green", "auto-promote")] == switches(stack)


def test_switch_and_rollback_under_load(stack_factory: StackFactory) -> None:
    """``POST /switch`` to green, back to blue, then ``POST /rollback``: each moves
    all traffic once and for good, with zero failed requests."""
    stack = stack_factory.start(extra_args=["--no-auto-promote"])
    stack.backend("blue")
    stack.backend("green")
    stack.wait_serving("blue")
    stack.provider.wait_routable(stack.service, "green")

    marks: list[float] = []
    with stack.load(concurrency=CONCURRENCY, max_duration=LOAD_LIMIT_S) as load:
        load.wait_body(BLUE)
        for action, target in (("switch", "green"), ("switch", "blue"), ("rollback", "green")):
            marks.append(time.monotonic())
            answer = (
                stack.provider.switch(stack.service, target)
                if action == "switch"
                else stack.provider.rollback(stack.service)
            )
            assert 200 == answer.status, answer.body
            assert target == answer.json["active"]
            load.wait_body(body_of(target), timeout=10, after=marks[-1])
            load.wait_requests(SETTLE_REQUESTS)

    result = load.result
    assert [] == failures_of(result)
    moves = ((BLUE, GREEN), (GREEN, BLUE), (BLUE, GREEN))
    ends = [*marks[1:], float("inf")]
    for start, end, (old, new) in zip(marks, ends, moves, strict=True):
        assert clean_cutover(result, old, new, start, end)
    expected = [
        ("blue", "green", "manual"),
        ("green", "blue", "manual"),
        ("blue", "green", "rollback"),
    ]
    assert expected == switches(stack)


def test_preview_header_reaches_the_idle_color(stack_factory: StackFactory) -> None:
    """``X-Bluegreen-Color`` reaches green while blue is active and blue after the
    switch, under load on all three routes, with zero failed requests."""
    stack = stack_factory.start(extra_args=["--no-auto-promote"])
    stack.backend("blue")
    stack.backend("green")
    stack.wait_serving("blue")
    stack.traefik.wait_response(host=stack.host, headers={"X-Bluegreen-Color": "green"}, body=GREEN)

    main = stack.load(concurrency=4, max_duration=LOAD_LIMIT_S)
    to_green = stack.load(
        concurrency=2, max_duration=LOAD_LIMIT_S, headers={"X-Bluegreen-Color": "green"}
    )
    to_blue = stack.load(
        concurrency=2, max_duration=LOAD_LIMIT_S, headers={"X-Bluegreen-Color": "blue"}
    )
    with main, to_green, to_blue:
        main.wait_body(BLUE)
        to_blue.wait_body(BLUE)
        to_green.wait_requests(50)
        switched = time.monotonic()
        assert 200 == stack.provider.switch(stack.service, "green").status
        main.wait_body(GREEN, timeout=10, after=switched)
        main.wait_requests(SETTLE_REQUESTS)
        to_blue.wait_requests(50)

    for load in (main, to_green, to_blue):
        assert [] == failures_of(load.result)
    assert [GREEN] == sorted(to_green.result.summary().bodies)
    assert [BLUE] == sorted(to_blue.result.summary().bodies)
    assert [BLUE, GREEN] == sorted(main.result.summary().bodies)
    assert main.result.cutover(BLUE, GREEN) is not None


def test_provider_sigkill_keeps_traffic_and_restart_keeps_the_color(
    stack_factory: StackFactory, docker_daemon: DockerDaemon
) -> None:
    """SIGKILL the provider under load: Traefik keeps routing; the restarted
    provider answers 503 until its first sync, then serves the same active
    color (green, which is not the no-state default); nothing fails."""
    with StallingDockerProxy(docker_daemon.socket_path) as proxy:
        stack = stack_factory.start(docker_host=proxy.host, extra_args=["--no-auto-promote"])
        stack.backend("blue")
        stack.backend("green")
        stack.wait_serving("blue")
        stack.provider.wait_routable(stack.service, "green")
        assert 200 == stack.provider.switch(stack.service, "green").status
        stack.wait_serving("green")
        served = stack.provider.get("/traefik").body

        with stack.load(concurrency=CONCURRENCY, max_duration=LOAD_LIMIT_S) as load:
            load.wait_requests(SETTLE_REQUESTS)
            stack.provider.kill()
            proxy.stall()
            load.wait_requests(SETTLE_REQUESTS)  # Traefik polls a dead endpoint meanwhile
            stack.provider.start()
            not_ready = [stack.provider.get("/traefik").status for _ in range(5)]
            load.wait_requests(SETTLE_REQUESTS)  # ...and now one answering 503
            proxy.resume()
            stack.provider.wait_ready()
            load.wait_requests(SETTLE_REQUESTS)

    result = load.result
    assert [] == failures_of(result)
    assert [GREEN] == sorted(result.summary().bodies)
    assert [503] * 5 == not_ready
    assert served == stack.provider.get("/traefik").body
    assert "green" == stack.provider.active(stack.service)
    assert [("blue", "green", "manual")] == switches(stack)


def test_green_that_never_gets_healthy_never_takes_traffic(stack: Stack) -> None:
    """A green generation whose healthcheck fails stays out of rotation; blue keeps
    every request; zero failures; ``/status`` still says blue."""
    stack.backend("blue")
    stack.wait_serving("blue")

    with stack.load(concurrency=CONCURRENCY, max_duration=LOAD_LIMIT_S) as load:
        load.wait_body(BLUE)
        green = stack.backend("green", healthy=False, wait="unhealthy")
        # Several promote-after periods and poll intervals with green present.
        deadline = time.monotonic() + 2.0
        load.wait_for("2 s of traffic", lambda _s: time.monotonic() > deadline, timeout=5)

    result = load.result
    assert [] == failures_of(result)
    assert [BLUE] == sorted(result.summary().bodies)
    status = stack.provider.status(stack.service)
    assert "blue" == status["active"]
    assert 0 == status["colors"]["green"]["routable"]
    shown = [(c["id"], c["health"]) for c in status["colors"]["green"]["containers"]]
    assert [(green.id[:12], "unhealthy")] == shown
    assert [] == switches(stack)


def test_provider_token_guards_the_config_and_traefik_keeps_its_routes(
    stack_factory: StackFactory,
) -> None:
    """With ``--provider-token``, ``/traefik`` answers 401 without the right bearer;
    a Traefik with a wrong token gets no routes; when the token changes under a
    running Traefik it keeps its last config and routes with zero failures."""
    stack = stack_factory.start(provider_token="right-token")
    stack.backend("blue")
    stack.wait_serving("blue")
    provider = stack.provider

    assert 401 == provider.get("/traefik").status
    assert 401 == provider.get("/traefik", headers={"Authorization": "Bearer wrong"}).status
    assert 200 == provider.get("/traefik", headers={"Authorization": "Bearer right-token"}).status
    stranger = stack_factory.traefiks.start(
        http_endpoint=provider.traefik_endpoint,
        http_headers={"Authorization": "Bearer wrong"},
        log_level="INFO",
        access_log=False,
    )

    with stack.load(concurrency=CONCURRENCY, max_duration=LOAD_LIMIT_S) as load:
        load.wait_requests(SETTLE_REQUESTS)
        provider.provider_token = "rotated-token"
        provider.restart()
        provider.wait_ready()
        # Traefik now polls with a stale token: 401 on every poll for >= 1 s.
        deadline = time.monotonic() + 1.5
        load.wait_for("1.5 s of traffic", lambda _s: time.monotonic() > deadline, timeout=5)

    result = load.result
    assert [] == failures_of(result)
    assert [BLUE] == sorted(result.summary().bodies)
    assert stack.traefik.router("web@http") is not None
    assert stranger.router("web@http") is None
    assert "401" in stranger.log_text()
    assert 401 == provider.get("/traefik", headers={"Authorization": "Bearer right-token"}).status
