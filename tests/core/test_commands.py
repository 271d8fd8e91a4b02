"""Table tests of the pure commands: (state, view, command, now) -> decision | refusal.

One row per refusal and per outcome of each command, no asyncio, no
controller: the controller only commits what these decide (house style 7).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from provider.core import canary as canaries
from provider.core import commands
from provider.core.commands import (
    CanaryEvent,
    Command,
    Now,
    Retire,
    Rollback,
    StartCanary,
    Switch,
    decide,
)
from provider.core.model import Color, ColorMark, Health, MarkKind, ServiceState, State
from provider.core.routing import Options, ServiceView, observe
from provider.errors import (
    BlueGreenError,
    CanaryNotRunning,
    CanaryRefused,
    RetireRefused,
    SwitchRefused,
)
from tests.factories import make_container

BLUE, GREEN = Color.BLUE, Color.GREEN
NOW = Now(wall=1000.0, daemon=1000.5)
LIMITS = canaries.Limits()


def view(
    *, blue: int = 1, green: int = 1, green_ready: bool = True, errors: bool = False
) -> ServiceView:
    """``web`` with running blue and green containers, created at 100."""
    containers = [make_container(color="blue") for _ in range(blue)]
    health = Health.HEALTHY if green_ready else Health.UNHEALTHY
    containers += [make_container(color="green", health=health) for _ in range(green)]
    if errors:
        containers.append(make_container(color="blue", extra={"bluegreen.port": "nope"}))
    return observe(containers, Options()).services["web"]


def known(active: Color = BLUE, previous: Color | None = None, **marks: ColorMark) -> State:
    service = ServiceState(
        active=active,
        previous=previous,
        first_seen=50.0,
        marks={Color(k): m for k, m in marks.items()},
    )
    return State(services={"web": service}, seq=3)


def with_running(state: State, color: Color = GREEN, base: Color = BLUE) -> State:
    canary = canaries.start(
        "web", color, base, steps=(10, 100), interval=60.0, limits=LIMITS, now=900.0
    )
    return canaries.with_canary(state, canary)


def run(state: State, v: ServiceView, command: Command) -> commands.Decision:
    return decide(state, v, command, NOW, history_limit=10)


@dataclass(frozen=True)
class Refusal:
    name: str
    state: State
    view: ServiceView
    command: Command
    error: type[BlueGreenError]
    message: str


REJECTED = ColorMark(MarkKind.REJECTED, 500.0, "rollback")
STEP = canaries.StepResult(0, 10, canaries.Verdict.PASS, "ok", 990.0)

REFUSALS = [
    Refusal("switch to a color not ready", known(), view(green_ready=False),
            Switch("web", GREEN), SwitchRefused, "routable container(s)"),
    Refusal("switch with label errors", known(), view(errors=True),
            Switch("web", GREEN), SwitchRefused, "label errors"),
    Refusal("automatic switch to a marked color", known(green=REJECTED), view(),
            Switch("web", GREEN, automatic=True), SwitchRefused, "no automatic switch goes"),
    Refusal("automatic switch while a canary runs", with_running(known()), view(),
            Switch("web", GREEN, automatic=True), SwitchRefused, "a canary of web runs"),
    Refusal("rollback without a previous color", known(), view(),
            Rollback("web"), SwitchRefused, "no previous color"),
    Refusal("rollback to another color than expected", known(GREEN, BLUE), view(),
            Rollback("web", expect=GREEN), SwitchRefused, "not green"),
    Refusal("retire the active color", known(), view(),
            Retire("web", BLUE), RetireRefused, "active color"),
    Refusal("retire the serving color of an unadopted service", State(), view(green=0),
            Retire("web", BLUE), RetireRefused, "active color"),
    Refusal("canary while one runs", with_running(known()), view(),
            StartCanary("web", None, (10, 100), 60.0, LIMITS), CanaryRefused, "already runs"),
    Refusal("canary of an unadopted service", State(), view(),
            StartCanary("web", None, (10, 100), 60.0, LIMITS), CanaryRefused, "not adopted"),
    Refusal("canary of a color not ready", known(), view(green_ready=False),
            StartCanary("web", None, (10, 100), 60.0, LIMITS), CanaryRefused, "not ready"),
    Refusal("canary of a marked color", known(green=REJECTED), view(),
            StartCanary("web", None, (10, 100), 60.0, LIMITS), CanaryRefused, "is marked"),
    Refusal("canary of the active color", known(), view(),
            StartCanary("web", BLUE, (10, 100), 60.0, LIMITS), CanaryRefused, "needs the idle"),
    Refusal("event without a running canary", known(), view(),
            CanaryEvent("web", STEP), CanaryNotRunning, "no canary of web runs"),
    Refusal("verdict of a step that moved on", with_running(known()), view(),
            CanaryEvent("web", replace(STEP, step=1)), CanaryNotRunning, "moved on"),
    Refusal("promote to a color not ready", with_running(known()), view(green_ready=False),
            CanaryEvent("web", canaries.OperatorPromote("api")), SwitchRefused, "routable"),
    Refusal("pass of a color that stopped being ready", with_running(known()),
            view(green_ready=False), CanaryEvent("web", STEP), CanaryNotRunning,
            "stopped being ready"),
]  # fmt: skip


@pytest.mark.parametrize("row", REFUSALS, ids=[r.name for r in REFUSALS])
def test_refusals(row: Refusal) -> None:
    """Each refusal raises the error the API answers, with its message, and decides nothing."""
    with pytest.raises(row.error) as caught:
        run(row.state, row.view, row.command)
    assert row.message in str(caught.value)


@dataclass(frozen=True)
class Outcome:
    name: str
    state: State
    view: ServiceView
    command: Command
    #: (active, previous, reason of the switch record or None, canary phase or None, marks)
    expected: tuple[object, ...]


def _summary(decision: commands.Decision) -> tuple[object, ...]:
    assert decision.state is not None
    svc = decision.state.services["web"]
    canary = decision.canary.phase if decision.canary is not None else None
    reason = decision.record.reason if decision.record is not None else None
    marks = {str(c): str(m.kind) for c, m in svc.marks.items()}
    return (svc.active, svc.previous, reason, canary, marks)


OUTCOMES = [
    Outcome("switch", known(), view(), Switch("web", GREEN),
            (GREEN, BLUE, "manual", None, {})),
    Outcome("forced switch to a color not ready", known(), view(green_ready=False),
            Switch("web", GREEN, force=True), (GREEN, BLUE, "manual", None, {})),
    Outcome("switch of an unadopted service adopts it first", State(), view(green=0),
            Switch("web", GREEN, force=True), (GREEN, BLUE, "manual", None, {})),
    Outcome("switch with reject marks the color left", known(), view(),
            Switch("web", GREEN, reject=True), (GREEN, BLUE, "manual", None, {"blue": "rejected"})),
    Outcome("operator switch ends a running canary", with_running(known()), view(),
            Switch("web", GREEN), (GREEN, BLUE, "manual", None, {})),
    Outcome("rollback", known(GREEN, BLUE), view(), Rollback("web"),
            (BLUE, GREEN, "rollback", None, {"green": "rejected"})),
    Outcome("retire the idle color", known(), view(), Retire("web", GREEN),
            (BLUE, None, None, None, {"green": "retiring"})),
    Outcome("retire ends the canary of that color", with_running(known()), view(),
            Retire("web", GREEN),
            (BLUE, None, None, canaries.Phase.ABORTED, {"green": "retiring"})),
    Outcome("canary starts", known(), view(),
            StartCanary("web", None, (10, 100), 60.0, LIMITS),
            (BLUE, None, None, canaries.Phase.RUNNING, {})),
    Outcome("canary awaiting its deploy waits", known(), view(green_ready=False),
            StartCanary("web", None, (10, 100), 60.0, LIMITS, await_ready=True),
            (BLUE, None, None, canaries.Phase.WAITING, {})),
    Outcome("last step passed promotes", with_running(known()), view(),
            CanaryEvent("web", STEP), (GREEN, BLUE, "canary", canaries.Phase.PROMOTED, {})),
    Outcome("breach aborts and rejects", with_running(known()), view(),
            CanaryEvent("web", replace(STEP, verdict=canaries.Verdict.BREACH)),
            (BLUE, None, None, canaries.Phase.ABORTED, {"green": "rejected"})),
    Outcome("operator abort without reject marks nothing", with_running(known()), view(),
            CanaryEvent("web", canaries.OperatorAbort("stop", reject=False)),
            (BLUE, None, None, canaries.Phase.ABORTED, {})),
    Outcome("extension changes only the canary", with_running(known()), view(),
            CanaryEvent("web", replace(STEP, verdict=canaries.Verdict.EXTEND)),
            (BLUE, None, None, canaries.Phase.RUNNING, {})),
    Outcome("operator promote switches", with_running(known()), view(),
            CanaryEvent("web", canaries.OperatorPromote("api")),
            (GREEN, BLUE, "canary", canaries.Phase.PROMOTED, {})),
]  # fmt: skip


@pytest.mark.parametrize("row", OUTCOMES, ids=[r.name for r in OUTCOMES])
def test_outcomes(row: Outcome) -> None:
    """Each outcome decides the state to commit and what to announce."""
    assert row.expected == _summary(run(row.state, row.view, row.command))


def test_a_switch_already_done_commits_nothing() -> None:
    """A switch to the active color of an adopted service decides no commit."""
    assert commands.Decision(None, target=BLUE) == run(known(), view(), Switch("web", BLUE))


def test_a_rollback_another_replica_did_commits_nothing() -> None:
    """Retried after a conflict, a rollback already landed elsewhere is done, once."""
    decision = run(known(BLUE, GREEN), view(), Rollback("web", first=BLUE))
    assert commands.Decision(None, target=BLUE) == decision


def test_records_use_both_clocks() -> None:
    """A switch's record is stamped with our clock, its anchor with the daemon's."""
    decision = run(known(), view(), Switch("web", GREEN))
    assert decision.state is not None and decision.record is not None
    assert (1000.0, 1000.5) == (decision.record.at, decision.state.services["web"].anchor)


def test_the_canary_history_records_each_step() -> None:
    """A judged step adds a ``canary-step`` record with its figures; an abort one more."""
    decision = run(
        with_running(known()),
        view(),
        CanaryEvent("web", replace(STEP, verdict=canaries.Verdict.BREACH)),
    )
    assert decision.state is not None
    assert ["canary-step", "canary-abort"] == [r.reason for r in decision.state.history]
