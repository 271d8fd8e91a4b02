"""The promotion decision with gates (bluegreen.smoke): a ready generation is promoted only
after its own smoke checks passed; a failed or pending gate says why it waits, never switches."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from provider.core.gates import GateResult
from provider.core.model import Color, Health
from provider.core.promotion import Action, Policy, Stage, Timers, decide
from provider.core.status import pending_json
from provider.core.words import stage_text
from tests.core.test_promotion import ADOPTED_BLUE, NOW, OLD_BLUE, ctr, view_of

SMOKE = {"bluegreen.smoke": "/healthz"}
GEN = frozenset({"g1"})
HELD = Timers(GEN, NOW - 5.0)


@dataclass(frozen=True)
class Row:
    gates: GateResult | None
    action: Action | None
    stage: Stage
    detail: str
    labels: dict[str, str] | None = None
    health: Health = Health.HEALTHY
    timers: Timers = HELD
    policy: Policy = field(default_factory=Policy)


ROWS: dict[str, Row] = {
    "no smoke label: promoted as before": Row(None, Action.PROMOTE, Stage.HOLDING, "ready", {}),
    "smoke label, no result yet: waits": Row(None, None, Stage.GATES_PENDING, "pending (/healthz)"),
    "checks running: waits, showing the last failure": Row(
        GateResult(GEN, finished=False, passed=False, failure="GET /healthz answered 502"),
        None,
        Stage.GATES_PENDING,
        "last: GET /healthz answered 502",
    ),
    "checks passed for this generation: promoted": Row(
        GateResult(GEN, finished=True, passed=True), Action.PROMOTE, Stage.HOLDING, "ready"
    ),
    "checks passed for another generation: waits": Row(
        GateResult(frozenset({"g0"}), finished=True, passed=True),
        None,
        Stage.GATES_PENDING,
        "pending",
    ),
    "a check failed: never promoted, says which": Row(
        GateResult(GEN, finished=True, passed=False, failure="GET /healthz answered 500: 'boom'"),
        None,
        Stage.GATE_FAILED,
        "smoke check failed: GET /healthz answered 500: 'boom'",
    ),
    "not healthy yet: the containers come first": Row(
        None, None, Stage.NOT_ROUTABLE, "not routable", health=Health.STARTING
    ),
    "manual after the gates passed: the operator's turn": Row(
        GateResult(GEN, finished=True, passed=True),
        None,
        Stage.MANUAL,
        "promote=manual",
        {**SMOKE, "bluegreen.promote": "manual"},
    ),
    "manual before the gates passed: gates first": Row(
        None, None, Stage.GATES_PENDING, "pending", {**SMOKE, "bluegreen.promote": "manual"}
    ),
    "auto-promote off after a failed gate: still the gate": Row(
        GateResult(GEN, finished=True, passed=False, failure="x"),
        None,
        Stage.GATE_FAILED,
        "failed: x",
        policy=Policy(auto_promote=False),
    ),
    "passed but the hold has not elapsed: holding": Row(
        GateResult(GEN, finished=True, passed=True),
        None,
        Stage.HOLDING,
        "holding",
        timers=Timers(),
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_gates_decide_the_promotion(row: Row) -> None:
    labels = SMOKE if row.labels is None else row.labels
    green = ctr("g1", "green", 150.0, labels=labels, health=row.health)
    decision = decide(
        view_of((OLD_BLUE, green)),
        ADOPTED_BLUE,
        row.timers,
        row.policy,
        now=NOW,
        connected=True,
        gates=row.gates,
    )
    assert decision.action is row.action
    assert decision.promotion is not None
    assert decision.promotion.stage is row.stage
    assert row.detail in decision.promotion.detail
    if row.action is not None:
        assert decision.target is Color.GREEN
    doc = pending_json(decision.promotion)
    assert doc["stage"] == str(row.stage)


@pytest.mark.parametrize("stage", [Stage.GATES_PENDING, Stage.GATE_FAILED])
def test_gate_stages_have_the_operators_words(stage: Stage) -> None:
    assert stage_text(stage) != stage.replace("_", " ")
