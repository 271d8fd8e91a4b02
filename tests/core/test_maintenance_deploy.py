"""``deploy --maintenance`` against the rollout fakes: on before the new color starts (and
before the release step), off right after the switch and before the old color stops; left
on, and said so, when the deploy fails before switching."""

from __future__ import annotations

import io
from typing import Any

import pytest

from deploy.deploy_rollout import DeployPlan, deploy
from deploy.errors import RolloutFailed
from deploy.maintenance_cli import MaintenancePlan, describe, status_lines
from deploy.rollout import Reporter
from tests.core.test_rollout_core import (
    NEW,
    FakeClock,
    FakeCompose,
    FakeProvider,
    container,
    status,
)


class MaintenanceProvider(FakeProvider):
    """Records each ``POST /maintenance`` in the compose fake's call list (one order)."""

    def __init__(self, docs: list[dict[str, Any]], calls: list[tuple[str, str]]) -> None:
        super().__init__(docs)
        self.calls = calls
        self.bodies: list[dict[str, Any]] = []

    def status(self, service: str | None = None) -> dict[str, Any]:
        doc = super().status(service)
        return {**doc, "maintenance": self.before}

    before: dict[str, Any] | None = None

    def maintenance(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        on = body["on"]
        self.calls.append(("maintenance", "on" if on else "off"))
        window = {"message": body.get("message", "m"), "retry_after": body.get("retry_after")}
        return {"service": service, "changed": True, "maintenance": window if on else None}


def run(docs: list[dict[str, Any]], compose: FakeCompose) -> tuple[MaintenanceProvider, str]:
    provider = MaintenanceProvider(docs, compose.calls)
    clock = FakeClock()
    out = io.StringIO()
    plan = DeployPlan(
        "web",
        image="app:2",
        drain_timeout=1.0,
        timeout=30.0,
        maintenance=MaintenancePlan("Migrating", 20),
    )
    deploy(provider, lambda: compose, plan, Reporter(out, clock), clock=clock, sleep=clock.sleep)
    return provider, out.getvalue()


def test_on_before_the_new_color_off_after_the_switch_before_the_old_stops() -> None:
    """The public is kept out from before ``up`` to right after the switch."""
    compose = FakeCompose()
    switched = status("green", green=[container(NEW)], previous="blue")
    provider, text = run(
        [status(), status(green=[container(NEW, health="starting")]), switched], compose
    )
    order = [
        ("maintenance", "on"),
        ("up", "web-green"),
        ("maintenance", "off"),
        ("stop", "web-blue"),
    ]
    assert order == compose.calls
    assert {"on": True, "retry_after": 20, "message": "Migrating", "reason": "deploy"} == (
        provider.bodies[0]
    )
    assert "maintenance of web is on" in text and "maintenance of web is off" in text


def test_a_failed_deploy_leaves_maintenance_on_and_says_how_to_end_it() -> None:
    """Unhealthy new color: the deploy fails, the new color stops, maintenance stays on (the
    release step may have changed the data), and the output names the command."""
    compose = FakeCompose()
    bad = status(green=[container(NEW, health="unhealthy")])
    with pytest.raises(RolloutFailed):
        run([status(), bad], compose)
    assert [("maintenance", "on"), ("up", "web-green"), ("stop", "web-green")] == compose.calls


def test_the_failure_output_says_maintenance_is_still_on() -> None:
    """The note is printed once, with the command that ends it."""
    compose = FakeCompose()
    provider = MaintenanceProvider(
        [status(), status(green=[container(NEW, health="unhealthy")])], compose.calls
    )
    clock, out = FakeClock(), io.StringIO()
    plan = DeployPlan("web", image="app:2", timeout=30.0, maintenance=MaintenancePlan())
    with pytest.raises(RolloutFailed):
        deploy(
            provider, lambda: compose, plan, Reporter(out, clock), clock=clock, sleep=clock.sleep
        )
    text = out.getvalue()
    assert 1 == text.count("maintenance of web is still ON")
    assert "bluegreen maintenance web off" in text


def test_status_lines_name_each_service_in_maintenance() -> None:
    """``bluegreen status`` adds one line per service in maintenance, none otherwise."""
    window = {"message": "back soon", "retry_after": 30, "since": 1.0, "actor": "api", "reason": ""}
    doc = {"services": {"web": {"maintenance": window}, "api": {"maintenance": None}}}
    assert [describe("web", {"maintenance": window, "changed": True})] == status_lines(doc)
    assert [] == status_lines({"service": "api", "maintenance": None})
    assert 'Retry-After 30s, "back soon"' in status_lines(doc)[0]


def test_maintenance_an_operator_opened_before_the_deploy_stays_on() -> None:
    """Already on: the deploy neither replaces its page nor ends it, and says so."""
    compose = FakeCompose()
    switched = status("green", green=[container(NEW)], previous="blue")
    provider = MaintenanceProvider([status(), switched], compose.calls)
    provider.before = {"message": "operator's", "retry_after": 60}
    clock, out = FakeClock(), io.StringIO()
    plan = DeployPlan("web", image="app:2", drain_timeout=1.0, maintenance=MaintenancePlan())
    deploy(provider, lambda: compose, plan, Reporter(out, clock), clock=clock, sleep=clock.sleep)
    assert [("up", "web-green"), ("stop", "web-blue")] == compose.calls
    assert "maintenance of web is already on (since before this deploy)" in out.getvalue()
