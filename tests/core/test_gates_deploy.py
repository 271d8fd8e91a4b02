"""``bluegreen deploy`` and the gates before the flip (deploy/progress.py, deploy_rollout.py):
a failed gate fails the deploy like an unhealthy container, naming the check; a pending gate is
never overtaken by an operator switch of the CLI."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.errors import RolloutFailed
from deploy.progress import RolloutTracker, Verdict
from deploy.snapshot import parse_service
from tests.core.test_rollout_core import (
    NEW,
    OLD,
    FakeCompose,
    FakeProvider,
    container,
    run_deploy,
    status,
)

FAILURE = "smoke check failed: GET / (expected 200) answered 500: 'fail\\n'"


def gate(stage: str, waiting_for: str, ids: tuple[str, ...] = (NEW,)) -> dict[str, Any]:
    return {
        "color": "green",
        "stage": stage,
        "waiting_for": waiting_for,
        "containers": [container(cid) for cid in ids],
    }


@pytest.mark.parametrize(
    ("pending", "promote", "verdict", "operator"),
    [
        (gate("gate_failed", FAILURE), "auto", Verdict.FAILED, False),
        (gate("gate_failed", FAILURE), "manual", Verdict.FAILED, False),
        (gate("gates_pending", "smoke checks pending"), "auto", Verdict.READY, False),
        (gate("gates_pending", "smoke checks pending"), "manual", Verdict.READY, False),
        # An older generation's failed gate is not the watched containers' verdict.
        (gate("gate_failed", FAILURE, (OLD,)), "auto", Verdict.READY, False),
    ],
)
def test_the_tracker_reads_the_gates(
    pending: dict[str, Any], promote: str, verdict: Verdict, operator: bool
) -> None:
    doc = status(green=[container(NEW)], pending=pending, promote=promote)
    tracker = RolloutTracker("green", [NEW])
    step = tracker.observe(parse_service(doc))
    assert (verdict, operator) == (step.verdict, step.needs_operator_switch)
    assert (tracker.gate_failure == FAILURE) is (verdict is Verdict.FAILED)


def test_a_failed_gate_fails_the_deploy_naming_the_check() -> None:
    """Stop the new color (retired first), keep blue, never switch; say which check failed."""
    failed = status(green=[container(NEW)], pending=gate("gate_failed", FAILURE))
    provider = FakeProvider([status(), status(green=[container(NEW, health="starting")]), failed])
    compose = FakeCompose()
    with pytest.raises(RolloutFailed) as raised:
        run_deploy(provider, compose)
    message = raised.value.message
    assert f"the gate before the flip failed: {FAILURE}" in message
    assert "blue keeps serving; the new green containers were stopped" in message
    assert [] == provider.switches
    assert ["green"] == provider.retires
    assert [("up", "web-green"), ("stop", "web-green")] == compose.calls


def test_a_pending_gate_is_never_overtaken_by_the_cli() -> None:
    """promote=manual with gates still running: the CLI waits (times out), never switches."""
    pending = status(
        green=[container(NEW)], pending=gate("gates_pending", "running"), promote="manual"
    )
    provider = FakeProvider([status(promote="manual"), pending])
    with pytest.raises(RolloutFailed, match="green was not promoted within 20s"):
        run_deploy(provider, FakeCompose(), timeout=20.0)
    assert [] == provider.switches
