"""The automatic switcher wired to a real Controller, with a fake clock and no Docker."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from provider.auto_switch import AutoSwitcher, policy_from
from provider.controller import Controller
from provider.core import canary as canaries
from provider.core.model import Color, Container, Health, State
from provider.settings import Settings
from tests.factories import make_container
from tests.loop_wakes import evaluations_per_wait


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ctr(cid: str, color: str, created: float, health: Health = Health.HEALTHY) -> Container:
    return make_container(
        "web", color, port=80, cid=cid, name=f"web-{cid}", health=health, created=created
    )


async def connected_controller(tmp_path: Path, clock: Clock, promote_after: float) -> Controller:
    controller = Controller(
        Settings(state_file=tmp_path / "state.json", promote_after=promote_after),
        State(),
        clock=clock,
    )
    await controller.replace_containers([ctr("b1", "blue", clock.now - 50)])
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    return controller


async def test_promotes_after_the_hold_and_records_the_watcher(tmp_path: Path) -> None:
    """A ready new generation is held for promote_after, then switched by the watcher."""
    clock = Clock(1000.0)
    controller = await connected_controller(tmp_path, clock, promote_after=2.0)
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.update_containers([ctr("g1", "green", clock.now + 1)])
    clock.now += 5

    planned, wake_at = switcher.evaluate()
    clock.now += 2
    due, _ = switcher.evaluate()
    for item in due:
        await switcher._switch(item)

    assert ([], clock.now) == (planned, wake_at)
    assert Color.GREEN is controller.state.services["web"].active
    [record] = controller.state.history
    assert ("auto-promote", "watcher") == (record.reason, record.actor)
    assert None is controller.status("web")["pending_promotion"]


async def test_disconnected_docker_shows_in_status_and_decides_nothing(tmp_path: Path) -> None:
    """While Docker is disconnected a ready generation is only reported, never switched."""
    clock = Clock(1000.0)
    controller = await connected_controller(tmp_path, clock, promote_after=0.0)
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.set_docker_connected(False, "socket gone")
    await controller.update_containers([ctr("g1", "green", clock.now + 1)])
    clock.now += 60

    planned, wake_at = switcher.evaluate()

    pending = controller.status("web")["pending_promotion"]
    assert ([], None) == (planned, wake_at)
    assert ("docker_disconnected", "green") == (pending["stage"], pending["color"])
    assert Color.BLUE is controller.state.services["web"].active


async def test_run_loop_switches_on_change_and_stops_on_cancel(tmp_path: Path) -> None:
    """The loop wakes on the controller's change notification and is cancelled cleanly."""
    controller = Controller(Settings(state_file=tmp_path / "s.json", promote_after=0.0), State())
    await controller.replace_containers([ctr("b1", "blue", 0.0)])
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    switcher = AutoSwitcher(controller, policy_from(controller.settings))
    task = asyncio.create_task(switcher.run())
    try:
        await controller.update_containers([ctr("g1", "green", controller.clock() + 1)])
        async with asyncio.timeout(5):
            while controller.state.services["web"].active is not Color.GREEN:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert ["auto-promote"] == [r.reason for r in controller.state.history]
    assert task.cancelled()


async def test_pending_rollback_shows_in_status_then_rolls_back(tmp_path: Path) -> None:
    """A dead active color with the previous one ready: /status shows the pending
    rollback during --rollback-after, then the watcher switches back."""
    clock = Clock(1000.0)
    controller = await connected_controller(tmp_path, clock, promote_after=0.0)
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.update_containers([ctr("g1", "green", clock.now + 1)])
    clock.now += 2
    for item in switcher.evaluate()[0]:
        await switcher._switch(item)
    assert Color.GREEN is controller.state.services["web"].active

    await controller.update_containers([ctr("g1", "green", 1001.0, Health.UNHEALTHY)])
    clock.now += 1
    planned, _ = switcher.evaluate()
    pending = controller.status("web")["pending_rollback"]
    assert [] == planned
    assert "blue" == pending["color"]

    clock.now += controller.settings.rollback_after
    for item in switcher.evaluate()[0]:
        await switcher._switch(item)
    assert Color.BLUE is controller.state.services["web"].active
    assert "auto-rollback" == controller.state.history[-1].reason
    assert None is controller.status("web")["pending_rollback"]


async def settle(switcher: AutoSwitcher) -> None:
    """Evaluate and carry out whatever is due now, as the run loop would."""
    for item in switcher.evaluate()[0]:
        await switcher._switch(item)


async def promoted_green(tmp_path: Path, clock: Clock) -> tuple[Controller, AutoSwitcher]:
    """blue (old) then a new green auto-promoted: green active, blue previous."""
    controller = await connected_controller(tmp_path, clock, promote_after=0.0)
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.update_containers([ctr("g1", "green", controller.daemon_now() + 1)])
    clock.now += 2
    await settle(switcher)
    assert Color.GREEN is controller.state.services["web"].active
    return controller, switcher


async def test_an_operator_rollback_is_not_undone_when_the_old_color_restarts(
    tmp_path: Path,
) -> None:
    """Issue 9 defect 1: after POST /rollback (green → blue), blue restarting and staying in
    its start period past rollback_after does not switch back to the rejected green."""
    clock = Clock(1000.0)
    controller, switcher = await promoted_green(tmp_path, clock)
    await controller.rollback("web")
    # blue restarts (OOM kill, docker restart): running, health starting, for a long time.
    await controller.update_containers([ctr("b1", "blue", 950.0, Health.STARTING)])
    await settle(switcher)
    clock.now += controller.settings.rollback_after + 1
    await settle(switcher)

    pending = controller.status("web")["pending_rollback"]
    assert Color.BLUE is controller.state.services["web"].active
    assert ["auto-promote", "rollback"] == [r.reason for r in controller.state.history]
    assert ("green", "previous_rejected") == (pending["color"], pending["stage"])
    assert "rejected" == controller.status("web")["marks"]["green"]["kind"]


async def test_an_automatic_rollback_is_not_undone_either(tmp_path: Path) -> None:
    """After an auto-rollback (green dead → blue), blue dying too does not flip back to green
    when green's containers come back: the color a rollback left is rejected."""
    clock = Clock(1000.0)
    controller, switcher = await promoted_green(tmp_path, clock)
    await controller.update_containers([ctr("g1", "green", 1001.0, Health.UNHEALTHY)])
    await settle(switcher)
    clock.now += controller.settings.rollback_after
    await settle(switcher)
    assert Color.BLUE is controller.state.services["web"].active

    await controller.update_containers(
        [ctr("g1", "green", 1001.0), ctr("b1", "blue", 950.0, Health.UNHEALTHY)]
    )
    await settle(switcher)
    clock.now += controller.settings.rollback_after + 1
    await settle(switcher)

    assert Color.BLUE is controller.state.services["web"].active
    assert ["auto-promote", "auto-rollback"] == [r.reason for r in controller.state.history]
    assert "previous_rejected" == controller.status("web")["pending_rollback"]["stage"]


async def test_a_retire_landing_between_decision_and_switch_wins(tmp_path: Path) -> None:
    """The watcher decided to promote green; POST /retire green lands before the switch:
    the switch is refused under the lock, blue keeps serving, and green is never promoted."""
    clock = Clock(1000.0)
    controller = await connected_controller(tmp_path, clock, promote_after=0.0)
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.update_containers([ctr("g1", "green", clock.now + 1)])
    clock.now += 2
    planned, _ = switcher.evaluate()
    assert [Color.GREEN] == [item.target for item in planned]

    await controller.retire("web", Color.GREEN, actor="api")
    for item in planned:
        await switcher._switch(item)
    clock.now += 10
    await settle(switcher)

    assert Color.BLUE is controller.state.services["web"].active
    assert () == controller.state.history
    assert "color_retiring" == controller.status("web")["pending_promotion"]["stage"]


async def test_a_new_generation_of_a_retired_color_is_promoted(tmp_path: Path) -> None:
    """Containers created after the retire mark are a new deploy: promoted, mark cleared."""
    clock = Clock(1000.0)
    controller = await connected_controller(tmp_path, clock, promote_after=0.0)
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.update_containers([ctr("g1", "green", clock.now + 1, Health.UNHEALTHY)])
    clock.now += 2
    await controller.retire("web", Color.GREEN, actor="api")
    clock.now += 2
    await controller.update_containers([ctr("g2", "green", clock.now)], removed=["g1"])
    clock.now += 1
    await settle(switcher)

    assert Color.GREEN is controller.state.services["web"].active
    assert {} == controller.status("web")["marks"]


async def test_an_idle_old_color_is_not_promoted_when_the_daemon_clock_is_ahead(
    tmp_path: Path,
) -> None:
    """Issue 9 defect 7: the daemon's clock is an hour ahead of the provider's. Green was
    created (daemon clock) before the provider first saw the service, and blue (restarted
    after a switch) before that switch: neither is a new generation, nothing is promoted."""
    clock = Clock(1000.0)
    skew = 3600.0
    controller = Controller(
        Settings(state_file=tmp_path / "state.json", promote_after=0.0), State(), clock=clock
    )
    controller.set_daemon_offset(skew)
    daemon = clock.now + skew
    await controller.replace_containers(
        [ctr("b1", "blue", daemon - 50), ctr("g1", "green", daemon - 40, Health.STARTING)]
    )
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.update_containers([ctr("g1", "green", daemon - 40)])
    clock.now += 5
    await settle(switcher)
    assert Color.BLUE is controller.state.services["web"].active

    await controller.switch("web", Color.GREEN)
    await controller.update_containers([ctr("b1", "blue", daemon - 50, Health.STARTING)])
    clock.now += 5
    await controller.update_containers([ctr("b1", "blue", daemon - 50)])
    await settle(switcher)

    assert Color.GREEN is controller.state.services["web"].active
    assert ["manual"] == [r.reason for r in controller.state.history]
    assert None is controller.status("web")["pending_promotion"]


async def test_a_due_promotion_held_by_a_canary_does_not_spin(tmp_path: Path) -> None:
    """Issue 19 defect 1: while a canary runs, a ready green's promotion is due but held.
    The switcher's loop evaluates once and waits for a change; it used to keep the hold's
    past end as its wake time and evaluate again at once, forever (a core at 100 %)."""
    clock = Clock(1000.0)
    controller = await connected_controller(tmp_path, clock, promote_after=1.0)
    switcher = AutoSwitcher(controller, policy_from(controller.settings), clock=clock)
    await controller.update_containers([ctr("g1", "green", controller.daemon_now() + 1)])
    await controller.start_canary(
        "web", None, steps=(50, 100), interval=60.0, limits=canaries.Limits()
    )
    switcher.evaluate()  # the hold starts
    clock.now += 5  # and ends: the promotion is due

    calls = await evaluations_per_wait(controller, switcher.evaluate, clock)
    planned, wake_at = switcher.evaluate()

    assert ([], None) == (planned, wake_at)
    assert 1 == calls
    assert "holding" == controller.status("web")["pending_promotion"]["stage"]


async def test_wait_until_due_never_rearms_a_past_wake(tmp_path: Path) -> None:
    """Every loop's wait: an evaluation asking for a wake that has already passed is
    not run again until something changes; one whose wake is ahead waits for it."""
    clock = Clock(1000.0)
    controller = await connected_controller(tmp_path, clock, promote_after=1.0)

    past = await evaluations_per_wait(controller, lambda: ([], clock.now - 1.0), clock)
    now = await evaluations_per_wait(controller, lambda: ([], clock.now), clock)
    ahead = await evaluations_per_wait(controller, lambda: ([], clock.now + 1.0), clock)

    assert (1, 1, 1) == (past, now, ahead)
