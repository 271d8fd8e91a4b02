"""Pinned by mutation testing (issue 20): what the pure commands record and mark.

``tests/core/test_commands.py`` pins each command's refusals and outcomes; these
tables pin the facts the outcomes carry: the history records' fields (reason,
actor, colors, detail figures), the marks' instants and reasons, the ended
canaries' instants and reasons, history limits and the decisions' verdicts.
Refusal messages are matched on their distinguishing words only.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from provider.core import canary as canaries
from provider.core.commands import (
    CanaryEvent,
    Command,
    Decision,
    Retire,
    Rollback,
    StartCanary,
    Switch,
    decide,
)
from provider.core.model import Color, MarkKind, State, SwitchRecord
from provider.errors import RetireRefused, SwitchRefused
from tests.core.test_commands import LIMITS, NOW, STEP, known, view, with_running

BLUE, GREEN = Color.BLUE, Color.GREEN
BREACH = replace(STEP, verdict=canaries.Verdict.BREACH)
START = StartCanary("web", None, (10, 100), 60.0, LIMITS, actor="ops")


def run(state: State, command: Command, *, history_limit: int = 10, **kw: object) -> Decision:
    return decide(state, view(**kw), command, NOW, history_limit=history_limit)  # type: ignore[arg-type]


def committed(decision: Decision) -> State:
    assert decision.state is not None
    return decision.state


def fields(record: SwitchRecord) -> tuple[object, ...]:
    return (
        record.service,
        record.from_color,
        record.to_color,
        record.reason,
        record.actor,
        record.at,
    )


# --- records -----------------------------------------------------------------------------

RECORDS = [
    ("retire ends the canary of that color", with_running(known()), Retire("web", GREEN, "ops"),
     ("web", BLUE, GREEN, "canary-abort", "ops", 1000.0),
     {"reason": "retired by ops", "weight": 10}),
    ("canary starts", known(), START,
     ("web", BLUE, GREEN, "canary-step", "ops", 1000.0),
     {"step": 0, "weight": 10, "verdict": "running"}),
    ("canary of blue when green is active", known(GREEN, BLUE), START,
     ("web", GREEN, BLUE, "canary-step", "ops", 1000.0),
     {"step": 0, "weight": 10, "verdict": "running"}),
    ("a passed step", with_running(replace(known(), seq=3)),
     CanaryEvent("web", replace(STEP, weight=10), "ops"),
     ("web", BLUE, GREEN, "canary-step", "ops", 1000.0),
     {"step": 0, "weight": 10, "verdict": "pass", "detail": "ok"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "command", "expected", "detail"),
    [r[1:] for r in RECORDS],
    ids=[r[0] for r in RECORDS],
)
def test_first_record_fields(
    state: State, command: Command, expected: tuple[object, ...], detail: dict[str, object]
) -> None:
    """The first record a command appends names the service, colors, reason, actor, figures."""
    new = committed(run(state, command))
    record = new.history[len(state.history)]
    assert expected == fields(record)
    assert detail == dict(record.detail or {})


def test_a_step_with_a_two_step_plan_promotes_with_both_records() -> None:
    """The last step passed: its step record, then the promotion's switch record, by the actor."""
    new = committed(run(with_running(known()), CanaryEvent("web", STEP, "ops")))
    expected = [
        ("web", BLUE, GREEN, "canary-step", "ops", 1000.0),
        ("web", BLUE, GREEN, "canary", "ops", 1000.0),
    ]
    assert expected == [fields(r) for r in new.history]
    assert new.services["web"].anchor == 1000.5


def test_a_breach_records_the_step_then_the_abort_with_reason_and_figures() -> None:
    new = committed(run(with_running(known()), CanaryEvent("web", BREACH, "ops")))
    step, abort = new.history
    assert ("web", BLUE, GREEN, "canary-abort", "ops", 1000.0) == fields(abort)
    assert dict(abort.detail or {}) == {
        "reason": "ok",
        "weight": 10,
        "step": 0,
        "verdict": "breach",
    }
    assert dict(step.detail or {})["detail"] == "ok"


def test_an_operator_abort_records_its_reason_and_weight() -> None:
    new = committed(run(with_running(known()), CanaryEvent("web", canaries.OperatorAbort("stop"))))
    (abort,) = new.history
    assert ("canary-abort", {"reason": "stop", "weight": 10}) == (abort.reason, abort.detail)


@pytest.mark.parametrize(
    ("command", "actor"),
    [
        (Rollback("web", actor="ops"), "ops"),
        (Switch("web", BLUE, actor="ops", reason="manual"), "ops"),
    ],
    ids=["rollback", "switch"],
)
def test_switch_records_carry_the_actor(command: Command, actor: str) -> None:
    decision = run(known(GREEN, BLUE), command)
    assert decision.record is not None and actor == decision.record.actor
    assert BLUE is decision.target


# --- marks and ended canaries --------------------------------------------------------------


def test_an_aborted_canary_rejects_its_color_at_the_daemon_instant_with_its_reason() -> None:
    new = committed(run(with_running(known()), CanaryEvent("web", BREACH)))
    mark = new.services["web"].marks[GREEN]
    assert (MarkKind.REJECTED, 1000.5) == (mark.kind, mark.since)
    assert mark.reason.startswith("canary-abort") and "ok" in mark.reason


def test_retire_marks_with_the_actor_and_ends_the_canary_then() -> None:
    decision = run(with_running(known()), Retire("web", GREEN, "ops"))
    mark = committed(decision).services["web"].marks[GREEN]
    assert (MarkKind.RETIRING, 1000.5, "retired by ops") == (mark.kind, mark.since, mark.reason)
    assert decision.canary is not None
    assert (1000.0, "retired by ops") == (decision.canary.ended, decision.canary.reason)
    assert decision.canary == committed(decision).canaries["web"]


def test_an_operator_switch_ends_the_canary_naming_reason_and_actor() -> None:
    new = committed(run(with_running(known()), Switch("web", GREEN, reason="manual", actor="ops")))
    ended = new.canaries["web"]
    assert (canaries.Phase.ABORTED, 1000.0) == (ended.phase, ended.ended)
    assert ended.reason is not None and "manual" in ended.reason and "ops" in ended.reason
    assert not new.services["web"].marks


@pytest.mark.parametrize(
    "event",
    [STEP, canaries.OperatorPromote("ops"), canaries.OperatorAbort("stop")],
    ids=["last step", "promote", "abort"],
)
def test_an_ending_event_stamps_the_canary_with_our_clock(event: canaries.Event) -> None:
    decision = run(with_running(known()), CanaryEvent("web", event))
    assert decision.canary is not None and 1000.0 == decision.canary.ended


# --- decisions' verdicts and targets -------------------------------------------------------

VERDICTS = [
    ("canary starts", known(), START, "running"),
    ("a passed step", with_running(known()), CanaryEvent("web", STEP), "pass"),
    ("a breach", with_running(known()), CanaryEvent("web", BREACH), "breach"),
    ("promote", with_running(known()), CanaryEvent("web", canaries.OperatorPromote()), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "command", "verdict"), [r[1:] for r in VERDICTS], ids=[r[0] for r in VERDICTS]
)
def test_decision_verdicts(state: State, command: Command, verdict: str | None) -> None:
    assert verdict == run(state, command).verdict


def test_a_switch_decides_its_target_and_adopts_with_the_first_sighting() -> None:
    decision = run(State(), Switch("web", GREEN, force=True, first_seen=42.0), green=0)
    assert GREEN is decision.target
    assert 42.0 == committed(decision).services["web"].first_seen


def test_a_forced_rollback_goes_to_a_color_not_ready() -> None:
    with pytest.raises(SwitchRefused, match="routable"):
        run(known(BLUE, GREEN), Rollback("web"), green_ready=False)
    decision = run(known(BLUE, GREEN), Rollback("web", force=True), green_ready=False)
    assert GREEN is committed(decision).services["web"].active


@pytest.mark.parametrize("first", [None, BLUE], ids=["first attempt", "retry"])
def test_a_rollback_of_an_unknown_service_is_refused(first: Color | None) -> None:
    with pytest.raises(SwitchRefused, match="no previous color"):
        run(State(), Rollback("web", first=first))


# --- the known active color decides, not the view's guess ----------------------------------


@pytest.mark.parametrize("active", [BLUE, GREEN])
def test_retire_follows_the_known_active_color(active: Color) -> None:
    with pytest.raises(RetireRefused, match=f"{active} is the active color"):
        run(known(active), Retire("web", active))
    marks = committed(run(known(active), Retire("web", active.other))).services["web"].marks
    assert MarkKind.RETIRING is marks[active.other].kind


@pytest.mark.parametrize("active", [BLUE, GREEN])
def test_a_canary_goes_to_the_color_idle_in_the_state(active: Color) -> None:
    decision = run(known(active, active.other), START)
    assert decision.canary is not None
    assert (active.other, active) == (decision.canary.color, decision.canary.base)


# --- history limits ------------------------------------------------------------------------

OLD = tuple(SwitchRecord("web", BLUE, GREEN, "manual", "api", float(i), i) for i in range(5))
LIMITED = [
    ("switch", known(), Switch("web", GREEN)),
    ("start", known(), START),
    ("step and promotion", with_running(known()), CanaryEvent("web", STEP)),
    ("breach", with_running(known()), CanaryEvent("web", BREACH)),
    ("retire", with_running(known()), Retire("web", GREEN)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("state", "command"), [r[1:] for r in LIMITED], ids=[r[0] for r in LIMITED]
)
def test_history_keeps_the_limit(state: State, command: Command) -> None:
    new = committed(run(replace(state, history=OLD), command, history_limit=2))
    assert 2 == len(new.history)
    assert all(r.at == 1000.0 for r in new.history[-1:])
