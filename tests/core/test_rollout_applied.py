"""``bluegreen deploy`` against a scripted provider: nothing is drained or stopped before
Traefik applied the switch (``deploy/applied.py``), and a switch Traefik never applies
keeps the old color running and fails the deploy."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.errors import RolloutFailed
from tests.core.test_rollout_core import NEW, FakeCompose, FakeProvider, container, run_deploy
from tests.core.test_rollout_core import status as service_status

SWITCH = {"reason": "auto-promote", "actor": "watcher"}


def promoted(applied: bool | None, color: str | None) -> dict[str, Any]:
    doc = service_status("green", green=[container(NEW)], previous="blue", last_switch=SWITCH)
    doc["traefik"] = {"applied": applied, "color": color, "since": 12.0, "lag_s": 0.31}
    return doc


def test_the_drain_starts_once_traefik_applied_the_switch() -> None:
    """Traefik still on blue, then on green: only then the drain and the stop of blue."""
    provider = FakeProvider([service_status(), promoted(False, "blue"), promoted(True, "green")])
    compose = FakeCompose()
    outcome, text, _ = run_deploy(provider, compose)
    assert [("up", "web-green"), ("stop", "web-blue")] == compose.calls
    assert outcome.old_stopped
    lines = text.splitlines()
    applied = next(i for i, line in enumerate(lines) if "Traefik applied the switch to" in line)
    draining = next(i for i, line in enumerate(lines) if "draining" in line)
    assert applied < draining
    assert "Traefik applied the switch to green 0.31s after the switch" in lines[applied]


def test_a_switch_traefik_never_applies_keeps_the_old_color_and_fails() -> None:
    """Traefik stays on blue past --apply-timeout: blue is not stopped, exit non-zero."""
    provider = FakeProvider([service_status(), promoted(False, "blue")])
    compose = FakeCompose()
    with pytest.raises(RolloutFailed) as raised:
        run_deploy(provider, compose, apply_timeout=5.0)
    assert [("up", "web-green")] == compose.calls
    message = str(raised.value)
    assert "Traefik did not apply the switch of web to green within 5s" in message
    assert "blue (web-blue) keeps running, since Traefik may still route web to it" in message
    assert "docker-compose -p app stop web-blue" in message


def test_without_traefik_seen_the_deploy_goes_on_and_says_so() -> None:
    """applied null (no Traefik ever polled): nothing to wait for; the output says so."""
    provider = FakeProvider([service_status(), promoted(None, None)])
    compose = FakeCompose()
    _, text, _ = run_deploy(provider, compose)
    assert [("up", "web-green"), ("stop", "web-blue")] == compose.calls
    assert "the provider has not seen Traefik poll it" in text
