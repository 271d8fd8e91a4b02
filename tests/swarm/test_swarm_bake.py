"""A bake in the Swarm's Raft store, against a real single-manager Swarm.

The bake is part of the state a replica commits (a Swarm config): a replica started
after the one that began it went away (a failover) judges the same bake and reverts
it; the first replica, back, follows, and its own verdict on the same bake commits
nothing more, so one bake reverts once however many replicas judge it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provider.core import bake as bakes
from provider.core import canary as canaries
from provider.core.model import BakePhase, Color, MarkKind
from provider.core.refusals import BakeNotRunning
from tests.swarm.test_swarm_state import controller_on, manager, unique_prefix
from tests.testbed.dockerd import DockerDaemon

pytestmark = [pytest.mark.docker, pytest.mark.slow]
__all__ = ["manager"]  # the module's Swarm, as test_swarm_state.py starts it

LIMITS = canaries.Limits(max_error_rate=0.05, min_requests=20)


async def test_a_bake_survives_a_failover_and_reverts_once(
    manager: DockerDaemon, tmp_path: Path
) -> None:
    """Replica A switches to green, starts a bake and goes away; replica B, started
    afterwards, has the running bake from the Raft store and reverts it (blue active,
    green rejected); A, back, follows, and A's verdict on the same bake is refused."""
    prefix = unique_prefix()
    first = await controller_on(manager, prefix, tmp_path)
    second = None
    try:
        await first.set_docker_connected(True)
        await first.mark_synced()
        await first.switch("web", Color.GREEN)
        bake = await first.bake(bakes.StartBake("web", Color.GREEN, 60.0, 10.0, LIMITS))
        assert (BakePhase.RUNNING, Color.BLUE) == (bake.phase, bake.old)
        await first.store.close()  # type: ignore[attr-defined]

        second = await controller_on(manager, prefix, tmp_path)
        assert bake == second.state.bakes["web"]
        await second.set_docker_connected(True)
        await second.mark_synced()
        verdict = bakes.Judgement(bakes.Outcome.REVERT, "error rate 20.00%", None, bake.started)
        reverted = await second.bake(bakes.BakeEvent("web", verdict))
        svc = second.state.services["web"]
        assert (BakePhase.REVERTED, Color.BLUE, MarkKind.REJECTED) == (
            reverted.phase,
            svc.active,
            svc.marks[Color.GREEN].kind,
        )

        first = await controller_on(manager, prefix, tmp_path)  # back after the failover
        assert first.state == second.state
        await first.set_docker_connected(True)
        await first.mark_synced()
        with pytest.raises(BakeNotRunning):
            await first.bake(bakes.BakeEvent("web", verdict))
        reasons = [r.reason for r in first.state.history]
        assert 1 == reasons.count(bakes.REASON_REVERT)
    finally:
        for replica in (first, second):
            if replica is not None:
                await replica.store.close()  # type: ignore[attr-defined]
