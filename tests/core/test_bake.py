"""Table tests of a bake after the flip: its verdicts and its decisions, pure.

``judge`` reads one window with the canary's analysis; ``decide`` starts a
bake, applies a verdict, reverts to the warm old color (the new one marked
rejected), or ends a bake an operator superseded with nothing reverted.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from provider.core import bake as bakes
from provider.core import bake_json, commands, state_json
from provider.core import canary as canaries
from provider.core.bake import BakeEvent, Judgement, Outcome, StartBake
from provider.core.canary_analysis import Window
from provider.core.model import Bake, BakePhase, Color, ColorMark, MarkKind, State
from provider.core.refusals import BakeNotRunning, BakeRefused, BlueGreenError
from provider.core.routing import ServiceView
from tests.core.test_commands import BLUE, GREEN, NOW, known, view, with_running

LIMITS = canaries.Limits(max_error_rate=0.05, max_p99_ms=500.0, min_requests=20)


def switched(to: Color = GREEN) -> State:
    """``web`` just switched from the other color to ``to`` (by deploy)."""
    decision = commands.decide(
        known(to.other), view(), commands.Switch("web", to, reason="manual"), NOW, history_limit=10
    )
    assert decision.state is not None
    return decision.state


def baking(state: State | None = None, *, duration: float = 60.0) -> State:
    state = state or switched()
    start = StartBake("web", GREEN, duration, 10.0, LIMITS)
    decided = bakes.decide(state, view(), start, NOW, history_limit=10)
    assert decided.state is not None
    return decided.state


def the_bake(state: State) -> Bake:
    return state.bakes["web"]


def event(state: State, outcome: str, window: Window | None = None) -> BakeEvent:
    judgement = Judgement(outcome, "because", window, the_bake(state).started)
    return BakeEvent("web", judgement)


def run(state: State, v: ServiceView, command: bakes.BakeCommand) -> commands.Decision:
    return bakes.decide(state, v, command, NOW, history_limit=10)


BAD = Window(requests=100, errors=20, p99_ms=20.0)
GOOD = Window(requests=100, errors=1, p99_ms=20.0)
SLOW = Window(requests=100, errors=0, p99_ms=900.0)
FEW = Window(requests=5, errors=0, p99_ms=20.0)


@pytest.mark.parametrize(
    ("name", "window", "ready", "metrics", "at", "outcome", "says"),
    [
        ("20 % errors breach", BAD, True, True, 1005.0, Outcome.REVERT, "error rate 20.00%"),
        ("breach even at the end", BAD, True, True, 2000.0, Outcome.REVERT, "above 5.00%"),
        ("p99 above the limit", SLOW, True, True, 1005.0, Outcome.REVERT, "p99 900 ms"),
        ("new color lost", GOOD, False, True, 1005.0, Outcome.REVERT, "stopped being ready"),
        ("clean window: next", GOOD, True, True, 1005.0, Outcome.NEXT, "1 errors in 100"),
        ("too few requests: extend", FEW, True, True, 1005.0, Outcome.EXTEND, "5 of 20"),
        ("unreadable: extend", None, True, True, 1005.0, Outcome.EXTEND, "0 of 20"),
        ("time out, clean: pass", GOOD, True, True, 1060.0, Outcome.PASS, "baked"),
        ("time out, few: pass", FEW, True, True, 1060.0, Outcome.PASS, "baked"),
        ("no metrics: pass at end", None, True, False, 1060.0, Outcome.PASS, "kept warm"),
        ("no metrics: extend", None, True, False, 1005.0, Outcome.EXTEND, "0 of 20"),
    ],
)
def test_judge_reads_a_window_with_the_canarys_analysis(
    name: str,
    window: Window | None,
    ready: bool,
    metrics: bool,
    at: float,
    outcome: str,
    says: str,
) -> None:
    """A breach (error rate, p99) or a lost color reverts at once; a clean bake passes at its
    end; too few requests keep the window open."""
    bake = the_bake(baking())
    judged = bakes.judge(bake, window, ready=ready, metrics=metrics, now=at)
    assert (outcome, True) == (judged.outcome, says in judged.detail), name


def test_start_follows_the_switch_and_keeps_the_old_color() -> None:
    """A bake of the new active color knows the old one and the switch it follows."""
    state = switched()
    bake = the_bake(baking(state))
    last = state.services["web"].last_switch
    assert last is not None
    assert (GREEN, BLUE, BakePhase.RUNNING, last.seq) == (
        bake.color,
        bake.old,
        bake.phase,
        bake.switch_seq,
    )
    assert bake.started + 60.0 == bake.ends


@pytest.mark.parametrize(
    ("name", "state", "color"),
    [
        ("not the active color", switched(), BLUE),
        ("never switched", known(GREEN, BLUE), GREEN),
        ("a canary runs", with_running(switched(), BLUE, GREEN), GREEN),
    ],
)
def test_start_refused(name: str, state: State, color: Color) -> None:
    """Nothing to bake unless the service just switched to ``color`` and no canary runs."""
    with pytest.raises(BakeRefused):
        run(state, view(), StartBake("web", color, 60.0, 10.0, LIMITS))


def test_a_breach_switches_back_and_rejects_the_new_color() -> None:
    """Back to the warm old color (reason bake-revert), the new color REJECTED, figures kept."""
    state = baking()
    decision = run(state, view(), event(state, Outcome.REVERT, BAD))
    assert decision.state is not None and decision.record is not None
    svc = decision.state.services["web"]
    assert (BLUE, bakes.REASON_REVERT) == (svc.active, decision.record.reason)
    assert MarkKind.REJECTED == svc.marks[GREEN].kind
    bake = the_bake(decision.state)
    assert (BakePhase.REVERTED, BAD) == (bake.phase, bake.window)


@pytest.mark.parametrize(
    ("name", "marks", "blue_running"),
    [
        ("old color retiring", {"blue": ColorMark(MarkKind.RETIRING, 999.0, "retired")}, 1),
        ("old color rejected", {"blue": ColorMark(MarkKind.REJECTED, 999.0, "bad")}, 1),
        ("old color gone", {}, 0),
    ],
)
def test_a_revert_never_targets_a_marked_or_lost_color(
    name: str, marks: dict[str, ColorMark], blue_running: int
) -> None:
    """The bake fails instead: the new color keeps serving, nothing is switched."""
    state = baking()
    svc = state.services["web"]
    state = replace(
        state,
        services={"web": replace(svc, marks={Color(k): m for k, m in marks.items()})},
    )
    decision = run(state, view(blue=blue_running), event(state, Outcome.REVERT, BAD))
    assert decision.state is not None and decision.record is None
    assert GREEN == decision.state.services["web"].active
    bake = the_bake(decision.state)
    assert BakePhase.FAILED == bake.phase
    assert "not reverted" in (bake.reason or "")


def operator_rollback(state: State) -> State:
    decision = commands.decide(state, view(), commands.Rollback("web"), NOW, history_limit=10)
    assert decision.state is not None
    return decision.state


def operator_switch_again(state: State) -> State:
    """Back, then forward again: GREEN is active, but by a later switch."""
    there = commands.decide(state, view(), commands.Switch("web", BLUE), NOW, history_limit=10)
    assert there.state is not None
    back = commands.decide(
        there.state, view(), commands.Switch("web", GREEN, force=True), NOW, history_limit=10
    )
    assert back.state is not None
    return back.state


def operator_canary(state: State) -> State:
    return with_running(state, BLUE, GREEN)


@pytest.mark.parametrize("later", [operator_rollback, operator_switch_again, operator_canary])
def test_an_operators_later_decision_is_never_reverted(later: object) -> None:
    """A breach judged after an operator's switch, rollback or canary ends the bake only."""
    assert callable(later)
    state = baking()
    judged = event(state, Outcome.REVERT, BAD)
    after: State = later(state)
    decision = run(after, view(), judged)
    assert decision.state is not None and decision.record is None
    assert after.services["web"].active == decision.state.services["web"].active
    assert after.services["web"].marks == decision.state.services["web"].marks
    bake = the_bake(decision.state)
    assert BakePhase.SUPERSEDED == bake.phase
    assert "ended by" in (bake.reason or "")


def test_pass_ends_the_bake_without_a_switch() -> None:
    """A clean bake passes: nothing switches, the old color may be drained."""
    state = baking()
    decision = run(state, view(), event(state, Outcome.PASS, GOOD))
    assert decision.state is not None and decision.record is None
    assert (BakePhase.PASSED, GREEN) == (
        the_bake(decision.state).phase,
        decision.state.services["web"].active,
    )


def test_a_next_window_records_its_figures() -> None:
    """A clean window counts as judged and its figures are shown."""
    state = baking()
    decision = run(state, view(), event(state, Outcome.NEXT, GOOD))
    assert decision.state is not None
    assert (1, GOOD, True) == (
        the_bake(decision.state).judged,
        the_bake(decision.state).window,
        the_bake(decision.state).running,
    )


@pytest.mark.parametrize(
    ("name", "mutate"),
    [
        ("ended already", lambda s: run(s, view(), event(s, Outcome.PASS)).state),
        ("replaced by a new bake", lambda s: baking(s, duration=30.0)),
    ],
)
def test_a_verdict_on_an_ended_or_replaced_bake_is_refused(name: str, mutate: object) -> None:
    """Judged without the lock, a verdict lands on the bake it was made for, or nowhere."""
    assert callable(mutate)
    state = baking()
    judged = event(state, Outcome.REVERT, BAD)
    later: State = mutate(replace(state))
    if name == "replaced by a new bake":
        later = replace(later, bakes={"web": replace(the_bake(later), started=1.0)})
    with pytest.raises(BakeNotRunning):
        run(later, view(), judged)


def test_no_verdict_on_an_owned_bake_is_refused() -> None:
    """The driver's "superseded" end is refused while the bake still owns the service."""
    with pytest.raises(BlueGreenError):
        run(baking(), view(), BakeEvent("web", None))


def test_a_bake_round_trips_through_the_state_file() -> None:
    """The file keeps a bake (figures too); a file without bakes has no ``bakes`` key."""
    state = run(baking(), view(), event(baking(), Outcome.REVERT, BAD)).state
    assert state is not None
    assert state == state_json.from_doc(state_json.to_doc(state))
    assert "bakes" not in state_json.to_doc(switched())
    doc = bake_json.bake_doc(the_bake(state), next_decision_at=5.0)
    assert (None, 20) == (doc["next_decision_at"], doc["figures"] and doc["figures"]["errors"])


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, None),
        ({"bluegreen.bake": "60s"}, (60.0, 60.0)),
        ({"bluegreen.bake": "2m", "bluegreen.bake-interval": "10s"}, (120.0, 10.0)),
        ({"bluegreen.bake": "5s", "bluegreen.bake-interval": "1m"}, (5.0, 5.0)),
        ({"bluegreen.bake": "soon"}, "is not a duration"),
        ({"bluegreen.bake": "60s", "bluegreen.bake-interval": "0"}, "is not a duration"),
    ],
)
def test_the_bake_label(labels: dict[str, str], expected: object) -> None:
    """``bluegreen.bake`` (and ``bake-interval``, at most the bake) or a label error."""
    from provider.core.labels import LabelDefaults, LabelProblem, parse
    from tests.factories import make_container

    placed = parse(make_container(extra=labels), LabelDefaults())
    if isinstance(expected, str):
        assert isinstance(placed, LabelProblem) and expected in placed.message
    else:
        assert not isinstance(placed, LabelProblem) and expected == placed.route.bake


def test_status_lines_name_a_running_or_reverted_bake() -> None:
    """``bluegreen status`` says a bake runs (the old color warm) or how a breach ended."""
    from deploy.bake_wait import status_lines

    state = baking()
    running = bake_json.bake_doc(the_bake(state))
    reverted_state = run(state, view(), event(state, Outcome.REVERT, BAD)).state
    assert reverted_state is not None
    reverted = bake_json.bake_doc(the_bake(reverted_state))
    passed = {**running, "phase": "passed"}
    doc = {
        "services": {"shop": {"bake": running}, "web": {"bake": reverted}, "x": {"bake": passed}}
    }
    assert [
        "shop: baking green (blue kept warm), 0 clean window(s) so far",
        "web: the bake of green reverted: because",
    ] == status_lines(doc)
    assert [] == status_lines({"service": "web", "bake": None})
