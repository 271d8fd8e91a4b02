"""The held ``/traefik`` poll with the real Traefik binary: switches are pushed.

Traefik polls a ``bluegreen serve`` subprocess on the session's private
Docker daemon; busybox backends answer their color on 127.0.0.1 ports.  "A
request is held" is read from the provider's ``/metrics``
(``bluegreen_traefik_held_requests``), and the figures the assertions use
are loose behaviour (a switch seen before Traefik's next poll could have
fetched it), never tight timings.  Every wait is bounded.
"""

from __future__ import annotations

import time

from tests.testbed.load import LoadResult
from tests.testbed.provider import ProviderProcess
from tests.testbed.stack import Stack, StackFactory, body_of
from tests.testbed.traefik import TraefikFactory, TraefikProcess

#: Traefik's poll interval in the proof of push: plain polling averages half of it.
SLOW_POLL = "3s"
SLOW_POLL_S = 3.0
LOAD_LIMIT_S = 90.0


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


def metrics(provider: ProviderProcess) -> dict[str, float]:
    """The provider's ``/metrics`` samples, keyed by their full name with labels."""
    answer = provider.get("/metrics")
    assert 200 == answer.status, answer.body
    out: dict[str, float] = {}
    for line in answer.body.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def held(provider: ProviderProcess) -> int:
    return int(metrics(provider)["bluegreen_traefik_held_requests"])


def released(provider: ProviderProcess, cause: str) -> int:
    return int(metrics(provider)[f'bluegreen_traefik_releases_total{{cause="{cause}"}}'])


def wait_held(provider: ProviderProcess, count: int = 1, timeout: float = 20.0) -> None:
    provider.wait_for(f"{count} held poll(s)", lambda: held(provider) >= count, timeout)


def wait_next_poll(provider: ProviderProcess) -> None:
    """Return just after Traefik's next poll was answered."""
    before = metrics(provider)["bluegreen_traefik_polls_total"]

    def polled() -> bool:
        return metrics(provider)["bluegreen_traefik_polls_total"] > before

    provider.wait_for("the next poll", polled, 3 * SLOW_POLL_S)


def wait_serving(traefik: TraefikProcess, stack: Stack, color: str, timeout: float = 20.0) -> None:
    traefik.wait_response(host=stack.host, body=body_of(color), timeout=timeout)


def switch_and_time(stack: Stack, color: str) -> float:
    """Seconds from ``POST /switch`` to the first answer of ``color`` through Traefik."""
    start = time.monotonic()
    answer = stack.provider.switch(stack.service, color)
    assert (200, color) == (answer.status, answer.json["active"]), answer.body
    stack.wait_serving(color, timeout=3 * SLOW_POLL_S)
    return time.monotonic() - start


def two_colors(stack_factory: StackFactory, *, hold: str, **options: str) -> Stack:
    """A stack with healthy blue (serving) and green, switched only by the API."""
    stack = stack_factory.start(extra_args=["--no-auto-promote", "--hold", hold], **options)
    stack.backend("blue")
    stack.backend("green")
    stack.wait_serving("blue", timeout=20)
    stack.provider.wait_routable(stack.service, "green")
    return stack


def failures_of(result: LoadResult) -> list[str]:
    return [s.describe() for s in result.failures()[:10]]


def test_switches_are_pushed_well_inside_the_poll_interval(stack_factory: StackFactory) -> None:
    """pollInterval 3 s, pollTimeout 9 s, hold 6 s: each of five switches, made while
    Traefik's poll is held, reaches traffic before its next poll could have fetched it,
    and is delivered by a held poll released on the change."""
    stack = two_colors(
        stack_factory, hold="6", poll_interval=SLOW_POLL, poll_timeout="9s", throttle="10ms"
    )
    color, took = "blue", []
    for _ in range(5):
        wait_held(stack.provider)
        color = other(color)
        took.append(switch_and_time(stack, color))

    assert [True] * 5 == [t < SLOW_POLL_S for t in took], took
    assert released(stack.provider, "change") >= 5


def test_without_hold_switches_wait_for_the_next_poll(stack_factory: StackFactory) -> None:
    """The same stack with ``--hold 0``: a switch made right after a poll waits for the
    next one (none is held), so none reaches traffic within a fifth of the interval."""
    stack = two_colors(
        stack_factory, hold="0", poll_interval=SLOW_POLL, poll_timeout="9s", throttle="10ms"
    )
    color, took = "blue", []
    for _ in range(3):
        wait_next_poll(stack.provider)
        color = other(color)
        took.append(switch_and_time(stack, color))

    assert [False] * 3 == [t < SLOW_POLL_S / 5 for t in took], took
    assert 0 == held(stack.provider)
    assert 0 == sum(released(stack.provider, c) for c in ("change", "timeout"))


def test_poll_timeout_shorter_than_the_hold_falls_back_to_polling(
    stack_factory: StackFactory,
) -> None:
    """Traefik's pollTimeout (1 s) is below the hold (3 s): its dropped poll is logged
    once with the fix, Traefik keeps routing without one failed request, and three
    switches still reach traffic by plain polling."""
    stack = stack_factory.start(
        extra_args=["--no-auto-promote", "--hold", "3"], poll_timeout="1s", throttle="10ms"
    )
    stack.backend("blue")
    stack.backend("green")
    stack.wait_serving("blue", timeout=20)
    stack.provider.wait_routable(stack.service, "green")
    stack.provider.wait_for(
        "the dropped held poll", lambda: released(stack.provider, "disconnect") >= 1, 20.0
    )

    with stack.load(concurrency=2, max_duration=LOAD_LIMIT_S) as load:
        load.wait_body(body_of("blue"))
        for color in ("green", "blue", "green"):
            mark = time.monotonic()
            assert 200 == stack.provider.switch(stack.service, color).status
            load.wait_body(body_of(color), timeout=20, after=mark)

    stack.provider.wait_for(
        "an unchanged poll answered at once",
        lambda: released(stack.provider, "degraded") >= 1,
        20.0,
    )
    assert [] == failures_of(load.result)
    assert 1 == stack.provider.log_text().count("traefik_poll_dropped_while_held")
    assert "--providers.http.pollTimeout" in stack.provider.log_text()
    assert 0 == held(stack.provider)


def test_two_traefiks_each_keep_a_held_poll(
    stack_factory: StackFactory, traefik_factory: TraefikFactory
) -> None:
    """Two Traefik instances on one provider: both polls are held at once, and every
    switch reaches traffic through both."""
    stack = two_colors(stack_factory, hold="10", poll_interval="1s")
    second = traefik_factory.start(
        http_endpoint=stack.provider.traefik_endpoint,
        poll_interval="1s",
        throttle="100ms",
        log_level="INFO",
    )
    wait_serving(second, stack, "blue")
    for color in ("green", "blue", "green"):
        wait_held(stack.provider, 2)
        assert 200 == stack.provider.switch(stack.service, color).status
        stack.wait_serving(color)
        wait_serving(second, stack, color)
    assert released(stack.provider, "change") >= 6


def test_provider_restart_during_a_hold_keeps_traefik_routing(
    stack_factory: StackFactory,
) -> None:
    """SIGTERM and SIGKILL restarts of the provider while Traefik's poll is held: Traefik
    keeps its config (not one failed request) and picks up the next switch."""
    stack = two_colors(stack_factory, hold="10", poll_interval="1s", throttle="10ms")
    with stack.load(concurrency=2, max_duration=LOAD_LIMIT_S) as load:
        load.wait_body(body_of("blue"))
        color = "blue"
        for kill in (False, True):
            wait_held(stack.provider)
            stack.provider.restart(kill=kill)
            stack.provider.wait_ready()
            color = other(color)
            mark = time.monotonic()
            assert 200 == stack.provider.switch(stack.service, color).status
            load.wait_body(body_of(color), timeout=20, after=mark)

    assert [] == failures_of(load.result)
    assert "bluegreen_traefik_held_requests" in stack.provider.get("/metrics").body


def test_traefik_killed_during_a_hold_is_forgotten_and_a_new_one_is_served(
    stack_factory: StackFactory, traefik_factory: TraefikFactory
) -> None:
    """SIGKILL of Traefik while its poll is held: the provider lets the poll go, and a
    new Traefik gets the current config at once and the next switch."""
    stack = two_colors(stack_factory, hold="10", poll_interval="1s")
    assert 200 == stack.provider.switch(stack.service, "green").status
    stack.wait_serving("green")
    wait_held(stack.provider)

    stack.traefik.kill()
    stack.provider.wait_for("held poll let go", lambda: held(stack.provider) == 0, 10.0)
    fresh = traefik_factory.start(
        http_endpoint=stack.provider.traefik_endpoint, poll_interval="1s", log_level="INFO"
    )
    wait_serving(fresh, stack, "green")
    assert 200 == stack.provider.switch(stack.service, "blue").status
    wait_serving(fresh, stack, "blue")
    assert released(stack.provider, "disconnect") >= 1
