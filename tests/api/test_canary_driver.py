"""The canary driver wired to a real Controller, with a fake clock and Traefik's metrics
as text (issue 19): no busy loop while Docker is away, no promotion onto a color that
lost its containers during the scrape, and a promotion announced like every switch."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from provider.canary_driver import CanaryDriver
from provider.controller import Controller
from provider.core import canary as canaries
from provider.core.model import Color, Container, Health, State
from provider.events import Event, EventKind
from provider.settings import Settings
from tests.factories import make_container
from tests.loop_wakes import evaluations_per_wait

INTERVAL = 10.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ctr(cid: str, color: str, created: float) -> Container:
    return make_container(
        "web", color, port=80, cid=cid, name=f"web-{cid}", health=Health.HEALTHY, created=created
    )


class Metrics:
    """Traefik's ``/metrics`` for green; ``during`` runs inside the next scrape (the
    driver holds no lock then), as a Docker event landing meanwhile would."""

    def __init__(self) -> None:
        self.ok = 0
        self.during: Callable[[], Awaitable[None]] | None = None

    async def fetch(self) -> str:
        if self.during is not None:
            during, self.during = self.during, None
            await during()
        return (
            "# TYPE traefik_service_requests_total counter\n"
            'traefik_service_requests_total{code="200",method="GET",protocol="http",'
            f'service="web-green@http"}} {self.ok}\n'
        )


async def canary_of_green(
    tmp_path: Path, clock: Clock, metrics: Metrics
) -> tuple[Controller, CanaryDriver, list[Event]]:
    """blue active, green ready; a canary of green (50 %, then 100) with its window open."""
    controller = Controller(Settings(state_file=tmp_path / "state.json"), State(), clock=clock)
    await controller.replace_containers([ctr("b1", "blue", clock.now - 50)])
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    await controller.update_containers([ctr("g1", "green", clock.now - 10)])
    events: list[Event] = []
    controller.events.add_listener(events.append)
    await controller.start_canary(
        "web",
        Color.GREEN,
        steps=(50, 100),
        interval=INTERVAL,
        limits=canaries.Limits(max_error_rate=0.1, min_requests=10),
    )
    driver = CanaryDriver(controller, fetch=metrics.fetch, clock=clock)
    [opening] = driver.evaluate()[0]
    await driver._act(opening)
    return controller, driver, events


async def judge_once(driver: CanaryDriver) -> None:
    [due] = driver.evaluate()[0]
    assert "judge" == due.kind
    await driver._act(due)


async def test_a_passed_deadline_while_docker_is_away_does_not_spin(tmp_path: Path) -> None:
    """Defect 1: the step's interval ends while Docker is disconnected. The driver waits
    for the reconnection; it used to re-arm the passed deadline and evaluate at once,
    forever (147,274 evaluations in 2 s)."""
    clock = Clock(1000.0)
    controller, driver, _ = await canary_of_green(tmp_path, clock, Metrics())
    await controller.set_docker_connected(False, "daemon stopped")
    clock.now += INTERVAL + 1

    calls = await evaluations_per_wait(controller, driver.evaluate, clock)

    assert ([], None) == driver.evaluate()
    assert 1 == calls


async def test_a_pass_landing_after_the_color_lost_its_containers_does_not_switch(
    tmp_path: Path,
) -> None:
    """Defect 2: green's only container goes while the driver scrapes (without the lock).
    The last step's pass must not switch onto a color without servers: it is refused,
    and the driver's next look aborts the canary as lost; blue keeps serving."""
    clock = Clock(1000.0)
    metrics = Metrics()
    controller, driver, events = await canary_of_green(tmp_path, clock, metrics)
    clock.now += INTERVAL
    metrics.ok = 100

    async def green_goes() -> None:
        await controller.update_containers([], removed=["g1"])

    metrics.during = green_goes
    await judge_once(driver)

    assert Color.BLUE is controller.state.services["web"].active
    assert canaries.Phase.RUNNING is controller.state.canaries["web"].phase
    [lost] = driver.evaluate()[0]
    await driver._act(lost)
    canary = controller.state.canaries["web"]
    assert ("lost", canaries.Phase.ABORTED) == (lost.kind, canary.phase)
    assert Color.BLUE is controller.state.services["web"].active
    assert [] == [e for e in events if e.kind is EventKind.SWITCH]
    assert b"web-blue" in controller.body and b"web-green" not in controller.body


async def test_a_canary_promotion_is_announced_as_a_switch(tmp_path: Path) -> None:
    """Defect 3: the last step's pass switches with reason ``canary``: one ``switch``
    event, one ``service_switched`` log line and the switch metric, as every switch."""
    clock = Clock(1000.0)
    metrics = Metrics()
    controller, driver, events = await canary_of_green(tmp_path, clock, metrics)
    clock.now += INTERVAL
    metrics.ok = 100

    with structlog.testing.capture_logs() as logs:
        await judge_once(driver)

    switches = [e for e in events if e.kind is EventKind.SWITCH]
    switched = [line for line in logs if line["event"] == "service_switched"]
    assert Color.GREEN is controller.state.services["web"].active
    assert [("blue", "green", "canary")] == [(e.from_, e.to, e.reason) for e in switches]
    assert [("blue", "green", "canary")] == [
        (line["from_color"], line["to_color"], line["reason"]) for line in switched
    ]
    assert 1 == controller.metrics.switches[("web", canaries.REASON_PROMOTE)]


async def test_an_operator_promote_is_announced_as_a_switch(tmp_path: Path) -> None:
    """Defect 3: ``POST /canary/promote`` publishes its ``switch`` event too, once."""
    clock = Clock(1000.0)
    controller, _, events = await canary_of_green(tmp_path, clock, Metrics())

    await controller.canary_event("web", canaries.OperatorPromote("operator"), actor="operator")

    switches = [(e.to, e.reason, e.actor) for e in events if e.kind is EventKind.SWITCH]
    assert [("green", "canary", "operator")] == switches


async def test_status_shows_when_the_driver_judges_the_step_next(tmp_path: Path) -> None:
    """The driver tells the controller when the running step is judged (``/status``'s
    ``next_decision_at``); the value goes once the canary ends."""
    clock = Clock(1000.0)
    metrics = Metrics()
    controller, driver, _ = await canary_of_green(tmp_path, clock, metrics)
    assert ([], 1000.0 + INTERVAL) == driver.evaluate()
    canary = controller.status("web")["canary"]
    assert 1000.0 + INTERVAL == canary["next_decision_at"]

    await controller.canary_event("web", canaries.OperatorAbort("stop"))

    assert controller.status("web")["canary"]["next_decision_at"] is None
