"""The automatic switcher wired to a real Controller, with a fake clock and no Docker."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from provider.auto_switch import AutoSwitcher, policy_from
from provider.controller import Controller
from provider.model import Color, Container, Health, State
from provider.settings import Settings


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def ctr(cid: str, color: str, created: float, health: Health = Health.HEALTHY) -> Container:
    return Container(
        id=cid,
        name=f"web-{cid}",
        state="running",
        health=health,
        labels={"bluegreen.service": "web", "bluegreen.color": color, "bluegreen.port": "80"},
        created=created,
        network_mode="host",
    )


async def connected_controller(tmp_path: Path, clock: Clock, promote_after: float) -> Controller:
    controller = Controller(
        Settings(state_file=tmp_path / "state.json", promote_after=promote_after),
        State(),
        clock=clock,
    )
    await controller.replace_containers([ctr("b1", "blue", clock.now - 50)])
    controller.set_docker_connected(True)
    controller.mark_synced()
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
    controller.set_docker_connected(False, "socket gone")
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
    controller.set_docker_connected(True)
    controller.mark_synced()
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
