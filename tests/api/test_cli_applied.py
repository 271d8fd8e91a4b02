"""``deploy/applied.py``: the CLI waits for Traefik to apply a switch, or says why it did not.

A scripted provider (its ``/status`` answers in order) and a fake clock: the
wait's outcomes and messages, without time passing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from deploy.applied import AppliedResult, SwitchedAway, TraefikNotApplied, wait_applied
from deploy.errors import ProviderUnreachable
from provider.core.model import Color


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


class ScriptedProvider:
    """Answers ``/status/web`` from ``answers`` (the last one repeats), ``/status`` with pollers."""

    token = None

    def __init__(self, answers: list[Any], pollers: list[dict[str, Any]] | None = None) -> None:
        self.answers = answers
        self.pollers = pollers or []

    def status(self, service: str | None = None) -> dict[str, Any]:
        if service is None:
            return {"services": {}, "traefik_pollers": self.pollers}
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def traefik(applied: bool | None, color: str | None = None) -> dict[str, Any]:
    return {"traefik": {"applied": applied, "color": color, "since": None, "lag_s": 0.4}}


def run(provider: ScriptedProvider, timeout: float = 10.0) -> tuple[AppliedResult, Clock]:
    clock = Clock()
    result = wait_applied(provider, "web", Color.GREEN, timeout, clock=clock, sleep=clock.sleep)
    return result, clock


def test_returns_once_traefik_applied_the_color() -> None:
    """Not yet, not yet, then green applied: the result, after two waits."""
    provider = ScriptedProvider([traefik(False, "blue"), traefik(False), traefik(True, "green")])
    result, clock = run(provider)
    assert (True, "green", 2) == (result.applied, result.color, clock.sleeps)
    assert "Traefik applied the switch to green 0.40s after the switch" == result.describe()


def test_applied_to_another_color_is_not_done() -> None:
    """Applied, but to blue (a switch back meanwhile): the wait goes on."""
    provider = ScriptedProvider([traefik(True, "blue"), traefik(True, "green")])
    result, clock = run(provider)
    assert (True, "green", 1) == (result.applied, result.color, clock.sleeps)


def test_a_switch_undone_meanwhile_ends_the_wait() -> None:
    """The provider made blue active again (a bake's revert) before Traefik applied green:
    the apply awaited will never come, so the wait ends at once, naming blue."""
    provider = ScriptedProvider(
        [{**traefik(False, "blue"), "active": "green"}, {**traefik(True, "blue"), "active": "blue"}]
    )
    with pytest.raises(SwitchedAway) as raised:
        run(provider)
    assert "blue" == raised.value.active
    assert "the provider made blue active while waiting for Traefik to apply green" == str(
        raised.value
    )


@pytest.mark.parametrize("doc", [traefik(None), {}])
def test_unknown_returns_at_once(doc: dict[str, Any]) -> None:
    """No Traefik ever polled (or a provider without the field): nothing to wait for."""
    result, clock = run(ScriptedProvider([doc]))
    assert (None, 0) == (result.applied, clock.sleeps)
    assert "has not seen Traefik poll it" in result.describe()


def test_a_provider_unreachable_for_a_moment_is_asked_again() -> None:
    """One failed request does not end the wait: only a yes or the deadline does."""
    down = ProviderUnreachable("http://provider", "connection refused")
    result, _ = run(ScriptedProvider([down, traefik(True, "green")]))
    assert result.applied


def test_traefik_that_stopped_polling_is_named() -> None:
    """No live poller: the message says Traefik stopped polling and when it last did."""
    stale = {"id": "edge-a", "last_poll": time.time() - 42, "applied_version": 3, "live": False}
    provider = ScriptedProvider([traefik(False, "blue")], [stale])
    with pytest.raises(TraefikNotApplied) as raised:
        run(provider, timeout=2)
    message = raised.value.message
    assert message.startswith("Traefik did not apply the switch of web to green within 2s: ")
    assert "Traefik stopped polling the provider (edge-a (last poll 4" in message
    assert (False, "blue") == (raised.value.result.applied, raised.value.result.color)


def test_a_poller_silent_for_long_counts_as_stopped() -> None:
    """Still "live" to the provider, but silent past 5 s: named as having stopped polling."""
    silent = {"id": "edge-a", "last_poll": time.time() - 8, "applied_version": 3, "live": True}
    with pytest.raises(TraefikNotApplied, match="stopped polling"):
        run(ScriptedProvider([traefik(False, "blue")], [silent]), timeout=1)


def test_traefik_that_polls_but_routes_the_old_color_is_named() -> None:
    """Live pollers still routing blue: the message says so and where to look."""
    live = {"id": "edge-a", "last_poll": time.time(), "applied_version": 3, "live": True}
    with pytest.raises(TraefikNotApplied) as raised:
        run(ScriptedProvider([traefik(False, "blue")], [live]), timeout=1)
    assert "Traefik (edge-a) polls the provider but still routes web to blue" in str(raised.value)


def test_a_provider_down_at_the_deadline_raises_its_error() -> None:
    """Unreachable until the deadline: that error, not a guess about Traefik."""
    down = ProviderUnreachable("http://provider", "connection refused")
    with pytest.raises(ProviderUnreachable):
        run(ScriptedProvider([down]), timeout=1)
