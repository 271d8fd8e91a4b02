"""Maintenance in the Swarm's Raft store, against a real single-manager Swarm.

The state a replica commits is a Swarm config: a replica started after another one
went away (a failover) reads it and serves the same maintenance page; turned off
through it, the first replica follows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provider.core.maintenance import SetMaintenance
from provider.core.render import maintenance_name
from tests.swarm.test_swarm_state import controller_on, manager, unique_prefix
from tests.testbed.dockerd import DockerDaemon

pytestmark = [pytest.mark.docker, pytest.mark.slow]
__all__ = ["manager"]  # the module's Swarm, as test_swarm_state.py starts it


def public_service(body: bytes) -> str:
    return str(json.loads(body)["http"]["routers"]["web"]["service"])


async def test_a_replica_started_after_a_failover_serves_the_maintenance_page(
    manager: DockerDaemon, tmp_path: Path
) -> None:
    """Replica A turns it on and goes away; replica B, started afterwards, serves the page
    from the Raft store; B turns it off and A, following, serves the colors again."""
    prefix = unique_prefix()
    first = await controller_on(manager, prefix, tmp_path)
    second = None
    try:
        window, record = await first.set_maintenance(
            SetMaintenance("web", True, "migrating", 20, actor="op1")
        )
        assert window is not None and record is not None
        await first.store.close()  # type: ignore[attr-defined]
        second = await controller_on(manager, prefix, tmp_path)
        assert first.state == second.state
        assert first.body == second.body
        assert maintenance_name("web") == public_service(second.body)
        _, off = await second.set_maintenance(SetMaintenance("web", False, actor="op2"))
        assert off is not None
        first = await controller_on(manager, prefix, tmp_path)  # back after the failover
        assert {} == dict(first.state.maintenance)
        assert "web" == public_service(first.body)
        reasons = [r.reason for r in first.state.history if "maintenance" in r.reason]
        assert ["maintenance-on", "maintenance-off"] == reasons
    finally:
        for replica in (first, second):
            if replica is not None:
                await replica.store.close()  # type: ignore[attr-defined]
