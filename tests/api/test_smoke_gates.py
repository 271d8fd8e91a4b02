"""The gates wired to a real Controller and AutoSwitcher, without Docker or Traefik:
a gated generation with no ``--smoke-url`` fails its gate (named) and is never promoted;
the same generation without the label is promoted as before. (Checks through the real
Traefik: tests/traefik/test_gates.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from provider.auto_switch import AutoSwitcher, policy_from, smoke_settings
from provider.controller import Controller
from provider.core.model import Color, Container, Health, State
from provider.settings import Settings
from provider.smoke import SmokeGates
from tests.factories import make_container


def ctr(cid: str, color: str, created: float, labels: dict[str, str] | None = None) -> Container:
    return make_container(
        "web",
        color,
        port=80,
        cid=cid,
        name=f"web-{cid}",
        health=Health.HEALTHY,
        created=created,
        extra=labels,
    )


async def _run_until(
    controller: Controller, switcher: AutoSwitcher, done: Callable[[], bool]
) -> None:
    """Run the switcher's loop until ``done()`` holds (bounded: 10 s)."""
    task = asyncio.create_task(switcher.run())
    try:
        async with asyncio.timeout(10):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _controller(tmp_path: Path, green_labels: dict[str, str]) -> Controller:
    settings = Settings(state_file=tmp_path / "state.json", promote_after=0.0)
    controller = Controller(settings, State())
    await controller.replace_containers([ctr("b1", "blue", 0.0)])
    await controller.set_docker_connected(True)
    await controller.mark_synced()
    await controller.update_containers(
        [ctr("g1", "green", controller.daemon_now() + 1, green_labels)]
    )
    return controller


async def test_a_gate_without_a_smoke_url_fails_named_and_blocks_the_promotion(
    tmp_path: Path,
) -> None:
    controller = await _controller(tmp_path, {"bluegreen.smoke": "/healthz"})
    gates = SmokeGates(controller, smoke_settings(controller.settings))
    switcher = AutoSwitcher(controller, policy_from(controller.settings), gates=gates)

    def failed() -> bool:
        pending = controller.status("web")["pending_promotion"]
        return pending is not None and pending["stage"] == "gate_failed"

    try:
        await _run_until(controller, switcher, failed)
    finally:
        await gates.close()
    pending = controller.status("web")["pending_promotion"]
    assert pending is not None
    assert "bluegreen.smoke is set but the provider has no --smoke-url" in pending["waiting_for"]
    assert Color.BLUE is controller.state.services["web"].active
    assert () == tuple(controller.state.history)


async def test_without_the_label_the_generation_is_promoted_as_before(tmp_path: Path) -> None:
    controller = await _controller(tmp_path, {})
    gates = SmokeGates(controller, smoke_settings(controller.settings))
    switcher = AutoSwitcher(controller, policy_from(controller.settings), gates=gates)
    try:
        await _run_until(
            controller, switcher, lambda: controller.state.services["web"].active is Color.GREEN
        )
    finally:
        await gates.close()
    [record] = controller.state.history
    assert ("auto-promote", "watcher") == (record.reason, record.actor)
