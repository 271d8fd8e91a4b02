"""The bake driver wired to a real Controller, with a fake clock and Traefik's metrics as
text: a breach switches back to the warm old color within one interval and rejects the
new one; a clean bake passes at its end; an operator's rollback ends it, nothing reverted;
the state file keeps the bake; a passed deadline while Docker is away does not spin."""

from __future__ import annotations

from pathlib import Path

from provider.bake_driver import BakeDriver
from provider.controller import Controller
from provider.core import bake as bakes
from provider.core import canary as canaries
from provider.core.model import BakePhase, Color, MarkKind, State
from provider.events import Event, EventKind
from provider.settings import Settings
from provider.store import load as load_state
from tests.api.test_canary_driver import Clock, ctr
from tests.factories import make_container
from tests.loop_wakes import evaluations_per_wait

INTERVAL = 10.0
LIMITS = canaries.Limits(max_error_rate=0.05, min_requests=20)


class Metrics:
    """Traefik's ``/metrics`` for green: ``ok`` 200s and ``bad`` 500s so far."""

    def __init__(self) -> None:
        self.ok = 0
        self.bad = 0

    async def fetch(self) -> str:
        series = 'traefik_service_requests_total{{code="{}",method="GET",service="web-green@http"}}'
        return (
            "# TYPE traefik_service_requests_total counter\n"
            f"{series.format(200)} {self.ok}\n{series.format(500)} {self.bad}\n"
        )


async def baking_green(
    tmp_path: Path, clock: Clock, metrics: Metrics, duration: float = 60.0
) -> tuple[Controller, BakeDriver, list[Event]]:
    """blue was active; the operator switched to green and started a bake; window open."""
    controller = Controller(Settings(state_file=tmp_path / "state.json"), State(), clock=clock)
    await controller.replace_containers([ctr("b1", "blue", clock.now - 50)])
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    await controller.update_containers([ctr("g1", "green", clock.now - 10)])
    await controller.switch("web", Color.GREEN)
    events: list[Event] = []
    controller.events.add_listener(events.append)
    await controller.bake(bakes.StartBake("web", Color.GREEN, duration, INTERVAL, LIMITS))
    driver = BakeDriver(controller, fetch=metrics.fetch, clock=clock)
    [opening] = driver.evaluate()[0]
    assert "open" == opening.kind
    await driver._act(opening)
    return controller, driver, events


async def step(driver: BakeDriver, kind: str = "judge") -> None:
    [due] = driver.evaluate()[0]
    assert kind == due.kind
    await driver._act(due)


async def test_a_breach_reverts_within_one_interval(tmp_path: Path) -> None:
    """20 % of green's answers are 500s: at the first window's end blue serves again,
    green is REJECTED, the bake says why; a bake event for its start, its end and the switch."""
    clock, metrics = Clock(1000.0), Metrics()
    controller, driver, events = await baking_green(tmp_path, clock, metrics)
    assert ([], 1000.0 + INTERVAL) == driver.evaluate()
    clock.now += INTERVAL
    metrics.ok, metrics.bad = 80, 20

    await step(driver)

    svc = controller.state.services["web"]
    bake = controller.state.bakes["web"]
    assert (Color.BLUE, MarkKind.REJECTED) == (svc.active, svc.marks[Color.GREEN].kind)
    assert (BakePhase.REVERTED, bakes.REASON_REVERT) == (
        bake.phase,
        svc.last_switch and svc.last_switch.reason,
    )
    assert "error rate 20.00%" in (bake.reason or "")
    assert [EventKind.BAKE, EventKind.SWITCH, EventKind.BAKE] == [e.kind for e in events]
    assert bake == load_state(tmp_path / "state.json").bakes["web"]
    assert "reverted" == (controller.status("web")["bake"] or {}).get("phase")


async def test_a_clean_bake_passes_at_its_end(tmp_path: Path) -> None:
    """Clean windows go on; at the end the bake passes and green keeps serving."""
    clock, metrics = Clock(1000.0), Metrics()
    controller, driver, _ = await baking_green(tmp_path, clock, metrics, duration=15.0)
    clock.now += INTERVAL
    metrics.ok = 100
    await step(driver)
    assert (BakePhase.RUNNING, 1) == (
        controller.state.bakes["web"].phase,
        controller.state.bakes["web"].judged,
    )
    clock.now += 5.0
    metrics.ok = 150
    await step(driver)
    assert BakePhase.PASSED == controller.state.bakes["web"].phase
    assert Color.GREEN == controller.state.services["web"].active
    assert ([], None) == driver.evaluate()


async def test_an_operators_rollback_is_never_reverted(tmp_path: Path) -> None:
    """The operator rolls back during the bake: the bake ends superseded, and a later
    breach of green changes nothing (blue stays, no switch)."""
    clock, metrics = Clock(1000.0), Metrics()
    controller, driver, _ = await baking_green(tmp_path, clock, metrics)
    await controller.rollback("web")
    await controller.switch("web", Color.GREEN, force=True)
    metrics.bad = 50
    clock.now += INTERVAL
    seq = controller.state.seq

    await step(driver, "superseded")

    bake = controller.state.bakes["web"]
    assert (BakePhase.SUPERSEDED, Color.GREEN) == (
        bake.phase,
        controller.state.services["web"].active,
    )
    assert seq == controller.state.seq
    assert ([], None) == driver.evaluate()


async def test_a_passed_deadline_while_docker_is_away_does_not_spin(tmp_path: Path) -> None:
    """The window ends while Docker is disconnected: the driver waits for the change."""
    clock = Clock(1000.0)
    controller, driver, _ = await baking_green(tmp_path, clock, Metrics())
    await controller.set_docker_connected(False, "daemon stopped")
    clock.now += INTERVAL + 1

    calls = await evaluations_per_wait(controller, driver.evaluate, clock)

    assert ([], None) == driver.evaluate()
    assert 1 == calls


async def test_an_automatic_promotion_of_a_labelled_color_starts_its_bake(
    tmp_path: Path,
) -> None:
    """Green carries ``bluegreen.bake=30s`` and ``bake-interval=5s``: the watcher's promotion
    starts a bake (actor watcher, the canary's default limits), blue kept as the old color."""
    from provider.auto_switch import AutoSwitcher, policy_from

    clock = Clock(1000.0)
    controller = Controller(Settings(state_file=tmp_path / "state.json"), State(), clock=clock)
    await controller.replace_containers([ctr("b1", "blue", clock.now - 50)])
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    labelled = make_container(
        "web",
        "green",
        port=80,
        cid="g1",
        name="web-g1",
        created=clock.now + 1,
        extra={"bluegreen.bake": "30s", "bluegreen.bake-interval": "5s"},
    )
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.update_containers([labelled])
    clock.now += 60
    switcher.evaluate()  # ready: held for promote_after
    clock.now += 60
    for item in switcher.evaluate()[0]:
        await switcher._switch(item)

    bake = controller.state.bakes["web"]
    assert (Color.GREEN, Color.BLUE, 30.0, 5.0, "watcher") == (
        bake.color,
        bake.old,
        bake.duration,
        bake.interval,
        bake.actor,
    )
    assert canaries.Limits() == bake.limits and bake.running
