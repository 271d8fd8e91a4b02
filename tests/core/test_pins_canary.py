"""The canary core's contract, table by table: what its parsers accept, what its
verdicts and transitions record, and the JSON it keeps.

Pinned by mutation testing (docs/mutation.md): each table states behaviour the
first run of ``provider/core/canary.py`` and ``canary_analysis.py`` left unjudged.
How a counter reset is folded into a window is deliberately not pinned here
(``tests/core/test_canary_core.py`` owns it).
"""

# ruff: noqa: E501  (table rows read best one to a line)

from __future__ import annotations

import json

import pytest

from provider.core import canary as c
from provider.core import canary_json, state_json
from provider.core.canary_analysis import (
    AnalysisError,
    Snapshot,
    Window,
    delta,
    quantile,
    snapshot,
)
from provider.core.model import Color, ColorMark, MarkKind, ServiceState, State
from provider.errors import BadRequest, CanaryNotRunning

BLUE, GREEN = Color.BLUE, Color.GREEN
INF = float("inf")


def canary(
    steps: tuple[int, ...] = (5, 25, 50, 100),
    *,
    limits: c.Limits | None = None,
    extensions: int = 0,
    await_after: float | None = None,
) -> c.Canary:
    started = c.start(
        "web",
        GREEN,
        BLUE,
        steps=steps,
        interval=2.0,
        limits=limits or c.Limits(),
        now=10.0,
        await_after=await_after,
    )
    return c.Canary(**{**started.__dict__, "extensions": extensions})


# -- parsing a plan ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0.1, 0.1),
        (86400, 86400.0),
        ("86400", 86400.0),
        ("24h", 86400.0),
        ("100ms", 0.1),
        ("1.5m", 90.0),
        (" 60 s ", 60.0),
        ("2", 2.0),
        (7, 7.0),
    ],
)
def test_interval_bounds_are_inclusive(raw: object, expected: float) -> None:
    """0.1 s and 24 h are both accepted; spaces around the figure and its unit are."""
    assert expected == pytest.approx(canary_json.parse_interval(raw))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (0.09, "between 0.1 s and 24 h"),
        (86400.5, "between 0.1 s and 24 h"),
        ("25h", "between 0.1 s and 24 h"),
        ("99ms", "between 0.1 s and 24 h"),
        ("1 d", "must look like '60s', '2m', '500ms' or 90"),
        ("60S", "must look like '60s', '2m', '500ms' or 90"),
        ("x60s", "must look like '60s', '2m', '500ms' or 90"),
        ("60sx", "must look like '60s', '2m', '500ms' or 90"),
        ("1e3", "must look like '60s', '2m', '500ms' or 90"),
        (False, "must be seconds or a duration like '60s'"),
        ([60], "must be seconds or a duration like '60s'"),
        (None, "must be seconds or a duration like '60s'"),
    ],
)
def test_bad_intervals_say_why(raw: object, message: str) -> None:
    """Out of range, unreadable and non-duration values each get their own 400 message."""
    with pytest.raises(BadRequest) as caught:
        canary_json.parse_interval(raw)
    assert message in str(caught.value)
    assert "field 'interval'" in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 5 , 50 ,, 100 ", (5, 50, 100)),
        ("5,50", (5, 50, 100)),
        (["5", "99"], (5, 99, 100)),
        ((1, 2), (1, 2, 100)),
        ([100], (100,)),
        (list(range(81, 101)), tuple(range(81, 101))),
    ],
)
def test_steps_accepted(raw: object, expected: tuple[int, ...]) -> None:
    """Strings split on commas (blanks dropped), digit strings count, 20 steps are allowed."""
    assert expected == canary_json.parse_steps(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "must list 1 to 20 percentages"),
        ("", "must list 1 to 20 percentages"),
        (" , ", "must list 1 to 20 percentages"),
        (list(range(80, 101)), "must list 1 to 20 percentages"),
        (7, "must list 1 to 20 percentages"),
        ([5.0], "must hold whole percentages"),
        ([None], "must hold whole percentages"),
        ([False, 100], "must hold whole percentages"),
        (["x"], "must hold whole percentages"),
        ([0], "must increase strictly within 1..100"),
        ([101], "must increase strictly within 1..100"),
        ([5, 5], "must increase strictly within 1..100"),
        ([50, 10], "must increase strictly within 1..100"),
    ],
)
def test_bad_steps_say_why(raw: object, message: str) -> None:
    """A plan that is not 1 to 20 strictly increasing whole percentages is a 400 naming why."""
    with pytest.raises(BadRequest) as caught:
        canary_json.parse_steps(raw)
    assert message in str(caught.value)
    assert "field 'steps'" in str(caught.value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((None, None, None), c.Limits(0.01, None, 50)),
        ((0, None, None), c.Limits(0.0, None, 50)),
        ((1, None, None), c.Limits(1.0, None, 50)),
        ((0.5, None, None), c.Limits(0.5, None, 50)),
        ((None, 0.001, None), c.Limits(0.01, 0.001, 50)),
        ((None, 3_600_000, None), c.Limits(0.01, 3_600_000.0, 50)),
        ((None, None, 0), c.Limits(0.01, None, 0)),
        ((None, None, 10_000_000), c.Limits(0.01, None, 10_000_000)),
        ((0.2, 250, 7), c.Limits(0.2, 250.0, 7)),
    ],
)
def test_limits_accepted(args: tuple[object, object, object], expected: c.Limits) -> None:
    """Each limit's whole range is accepted, bounds included; ``None`` keeps the default."""
    got = canary_json.parse_limits(*args)
    assert expected == got
    assert isinstance(got.max_error_rate, float)
    assert got.max_p99_ms is None or isinstance(got.max_p99_ms, float)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-0.01, None, None), "'max_error_rate' must be a number in 0..1"),
        ((1.01, None, None), "'max_error_rate' must be a number in 0..1"),
        ((True, None, None), "'max_error_rate' must be a number in 0..1"),
        (("0.1", None, None), "'max_error_rate' must be a number in 0..1"),
        ((None, 0, None), "'max_p99_ms' must be a positive number or null"),
        ((None, -5, None), "'max_p99_ms' must be a positive number or null"),
        ((None, 3_600_001, None), "'max_p99_ms' must be a positive number or null"),
        ((None, False, None), "'max_p99_ms' must be a positive number or null"),
        ((None, "500", None), "'max_p99_ms' must be a positive number or null"),
        ((None, None, -1), "'min_requests' must be a whole number >= 0"),
        ((None, None, 10_000_001), "'min_requests' must be a whole number >= 0"),
        ((None, None, 5.0), "'min_requests' must be a whole number >= 0"),
        ((None, None, True), "'min_requests' must be a whole number >= 0"),
        ((None, None, "5"), "'min_requests' must be a whole number >= 0"),
    ],
)
def test_bad_limits_say_which(args: tuple[object, object, object], message: str) -> None:
    """A limit out of its range or of the wrong type is a 400 naming the field."""
    with pytest.raises(BadRequest) as caught:
        canary_json.parse_limits(*args)
    assert message in str(caught.value)


def test_start_runs_at_once_or_waits() -> None:
    """Without ``await_after`` the first step serves at once; with it the canary waits at 0."""
    now = canary()
    assert (c.Phase.RUNNING, 0, 5, 10.0, 10.0, None) == (
        now.phase,
        now.step,
        now.weight,
        now.started,
        now.step_started,
        now.created_after,
    )
    assert {BLUE: 95, GREEN: 5} == now.weights()
    waiting = canary(await_after=3.5)
    assert (c.Phase.WAITING, 0, 3.5) == (waiting.phase, waiting.weight, waiting.created_after)
    assert {BLUE: 100, GREEN: 0} == waiting.weights()
    assert waiting.running and now.running


def test_start_refusals_name_the_service_and_color() -> None:
    """The refusals say what to do instead."""
    with pytest.raises(Exception, match="green is the active color of web"):
        c.start("web", GREEN, GREEN, steps=(5, 100), interval=1, limits=c.Limits(), now=0)
    with pytest.raises(BadRequest, match="use POST /switch to switch"):
        c.start("web", GREEN, BLUE, steps=(100,), interval=1, limits=c.Limits(), now=0)


# -- verdicts ----------------------------------------------------------------------

W = Window


@pytest.mark.parametrize(
    ("window", "limits", "extensions", "verdict", "detail"),
    [
        (W(200, 3, 9.0), c.Limits(), 0, c.Verdict.BREACH, "error rate 1.50% above 1.00% (3 of 200 requests)"),
        (W(1, 1, None), c.Limits(), 0, c.Verdict.BREACH, "error rate 100.00% above 1.00% (1 of 1 requests)"),
        (W(100, 0, 9.0), c.Limits(), 0, c.Verdict.PASS, "0 errors in 100 requests"),
        (W(50, 0, 9.0), c.Limits(), 0, c.Verdict.PASS, "0 errors in 50 requests"),
        (W(49, 0, 9.0), c.Limits(), 0, c.Verdict.EXTEND, "49 of 50 requests; step extended"),
        (W(49, 0, 9.0), c.Limits(), 1, c.Verdict.EXTEND, "49 of 50 requests; step extended"),
        (W(49, 0, 9.0), c.Limits(), 2, c.Verdict.PASS_HEALTH_ONLY, "only 49 of 50 requests after 2 extension(s): passed on health alone"),
        (W(0, 0, None), c.Limits(min_requests=0), 0, c.Verdict.PASS, "0 errors in 0 requests"),
        (W(10, 10, None), c.Limits(max_error_rate=1.0), 0, c.Verdict.EXTEND, "10 of 50 requests; step extended"),
        (W(100, 0, 250.4), c.Limits(max_p99_ms=250.0), 0, c.Verdict.BREACH, "p99 250 ms above 250 ms"),
        (W(100, 0, 250.0), c.Limits(max_p99_ms=250.0), 0, c.Verdict.PASS, "0 errors in 100 requests"),
        (W(100, 0, 900.0), c.Limits(), 0, c.Verdict.PASS, "0 errors in 100 requests"),
        (None, c.Limits(), 1, c.Verdict.EXTEND, "Traefik's metrics could not be read; step extended"),
        (None, c.Limits(), 2, c.Verdict.NO_FIGURES, "Traefik's metrics could not be read in any extension"),
    ],
)  # fmt: skip
def test_judge_verdicts_and_details(
    window: Window | None, limits: c.Limits, extensions: int, verdict: c.Verdict, detail: str
) -> None:
    """Each verdict with the sentence operators read in ``/status`` and the history."""
    judged = canary(limits=limits, extensions=extensions)
    result = c.judge(judged, window, ready=True, metrics=True, max_extensions=2, now=42.0)
    assert (verdict, detail) == (result.verdict, result.detail)
    assert (0, 5, 42.0, window) == (result.step, result.weight, result.at, result.window)


def test_judge_without_readiness_or_metrics_says_so() -> None:
    """A lost color is named; without a metrics URL the step is health-gated."""
    lost = c.judge(canary(), W(100, 0, 1.0), ready=False, metrics=True, max_extensions=2, now=1)
    assert (c.Verdict.NOT_READY, "green stopped being ready") == (lost.verdict, lost.detail)
    blind = c.judge(canary(), None, ready=True, metrics=False, max_extensions=0, now=1)
    assert (c.Verdict.PASS_HEALTH_ONLY, "no Traefik metrics URL: health-gated only") == (
        blind.verdict,
        blind.detail,
    )


# -- transitions -------------------------------------------------------------------


def result(of: c.Canary, verdict: c.Verdict, detail: str = "d") -> c.StepResult:
    return c.StepResult(of.step, of.weight, verdict, detail, 1.0, W(100, 0, 1.0))


def test_a_pass_moves_on_and_starts_the_next_window() -> None:
    """The next step starts now, with its extensions counted afresh and the result kept."""
    first = canary(extensions=2)
    passed = c.apply(first, result(first, c.Verdict.PASS), 30.0)
    assert (1, 25, 0, 30.0, 10.0, None) == (
        passed.step,
        passed.weight,
        passed.extensions,
        passed.step_started,
        passed.started,
        passed.ended,
    )
    assert (result(first, c.Verdict.PASS),) == passed.results
    assert () == passed.warnings


def test_an_extension_changes_nothing_but_its_count() -> None:
    """An extended step keeps its window start, weight and results."""
    first = canary()
    extended = c.apply(first, result(first, c.Verdict.EXTEND), 30.0)
    assert (0, 1, 10.0, (), c.Phase.RUNNING) == (
        extended.step,
        extended.extensions,
        extended.step_started,
        extended.results,
        extended.phase,
    )


def test_health_only_pass_warns_with_the_step_and_weight() -> None:
    """The warning names the step (1-based), its weight and the detail."""
    first = canary()
    passed = c.apply(first, result(first, c.Verdict.PASS_HEALTH_ONLY, "too quiet"), 30.0)
    assert ("step 1 (5%): too quiet",) == passed.warnings


@pytest.mark.parametrize(
    ("steps", "passes", "step"),
    [((5, 25, 50, 100), 3, 3), ((50, 100), 1, 1), ((1, 2, 100), 2, 2), ((5, 50), 2, 1)],
)
def test_the_last_pass_promotes_at_the_final_step(
    steps: tuple[int, ...], passes: int, step: int
) -> None:
    """Passing the step before 100 promotes: the canary records its final step and end."""
    current = canary(steps)
    for at in range(passes):
        current = c.apply(current, result(current, c.Verdict.PASS), 20.0 + at)
    assert (c.Phase.PROMOTED, step, "every step passed", 20.0 + passes - 1) == (
        current.phase,
        current.step,
        current.reason,
        current.ended,
    )
    assert passes == len(current.results)


def test_a_health_only_last_step_keeps_its_warning_in_the_promoted_canary() -> None:
    """The warning of the step that promotes is kept with the earlier ones."""
    current = canary((5, 50, 100))
    for detail in ("quiet 1", "quiet 2"):
        current = c.apply(current, result(current, c.Verdict.PASS_HEALTH_ONLY, detail), 30.0)
    assert c.Phase.PROMOTED == current.phase
    assert ("step 1 (5%): quiet 1", "step 2 (50%): quiet 2") == current.warnings


def test_an_aborting_verdict_ends_with_its_detail() -> None:
    """A breach ends the canary at once: its detail is the reason, its result kept."""
    first = canary()
    breach = result(first, c.Verdict.BREACH, "error rate too high")
    aborted = c.apply(first, breach, 31.0)
    assert (c.Phase.ABORTED, 31.0, "error rate too high", (breach,), 0) == (
        aborted.phase,
        aborted.ended,
        aborted.reason,
        aborted.results,
        aborted.step,
    )


def test_operator_events_record_who_and_when() -> None:
    """A promote names its actor, an abort its reason; both end the canary now."""
    promoted = c.apply(canary(), c.OperatorPromote("cli"), 50.0)
    assert (c.Phase.PROMOTED, "promoted by cli", 50.0) == (
        promoted.phase,
        promoted.reason,
        promoted.ended,
    )
    assert "promoted by api" == c.apply(canary(), c.OperatorPromote(), 50.0).reason
    aborted = c.apply(canary(await_after=1.0), c.OperatorAbort("stop"), 51.0)
    assert (c.Phase.ABORTED, "stop", 51.0) == (aborted.phase, aborted.reason, aborted.ended)
    assert c.OperatorAbort("x").reject


def test_a_waiting_canary_starts_stepping_when_its_color_is_ready() -> None:
    """``ColorReady`` starts the first step now; a step result before it is refused."""
    waiting = canary(await_after=1.0)
    with pytest.raises(CanaryNotRunning, match="waits for green"):
        c.apply(waiting, result(waiting, c.Verdict.PASS), 20.0)
    stepping = c.apply(waiting, c.ColorReady(), 20.0)
    assert (c.Phase.RUNNING, 20.0, 5) == (stepping.phase, stepping.step_started, stepping.weight)
    with pytest.raises(CanaryNotRunning, match="already stepping"):
        c.apply(stepping, c.ColorReady(), 21.0)


def test_a_finished_canary_says_what_it_is() -> None:
    """The refusal names the phase and what to do."""
    done = c.apply(canary(), c.OperatorAbort("x"), 11.0)
    assert not done.running
    with pytest.raises(CanaryNotRunning, match="canary of web is aborted; start a new one"):
        c.apply(done, c.OperatorPromote(), 12.0)


# -- the persisted State -----------------------------------------------------------


def test_running_finds_only_a_running_canary() -> None:
    """A finished canary stays in the state but does not run."""
    state = c.with_canary(State(), canary())
    assert state.canaries["web"] == c.running(state, "web")
    assert c.running(state, "api") is None
    ended = c.with_canary(state, c.apply(canary(), c.OperatorAbort("x"), 11.0))
    assert c.running(ended, "web") is None
    assert c.Phase.ABORTED == ended.canaries["web"].phase


def test_weights_list_only_stepping_canaries_by_name() -> None:
    """Waiting and finished canaries serve no weights."""
    state = c.with_canary(State(), canary())
    other = c.start(
        "api", BLUE, GREEN, steps=(10, 100), interval=1, limits=c.Limits(), now=1, await_after=0
    )
    state = c.with_canary(state, other)
    assert {"web": {BLUE: 95, GREEN: 5}} == c.weights(state)
    state = c.with_canary(state, c.apply(other, c.ColorReady(), 2))
    assert ["api", "web"] == list(c.weights(state))
    assert {GREEN: 90, BLUE: 10} == c.weights(state)["api"]


def test_with_record_numbers_and_bounds_the_history() -> None:
    """A record takes the next sequence number and the history keeps the newest ``limit``."""
    state = State()
    for n in range(4):
        state, record = c.with_record(
            state, "web", BLUE, GREEN, reason=c.REASON_STEP, actor="watcher",
            now=float(n), detail={"n": n}, history_limit=3,
        )  # fmt: skip
        assert n + 1 == record.seq
    assert 4 == state.seq
    assert [1, 2, 3] == [r.detail["n"] for r in state.history if r.detail]
    assert ("web", BLUE, GREEN, "canary-step", "watcher", 3.0, 4) == (
        record.service,
        record.from_color,
        record.to_color,
        record.reason,
        record.actor,
        record.at,
        record.seq,
    )


def test_with_rejected_marks_a_color_of_a_known_or_new_service() -> None:
    """The mark keeps the service's other fields; an unknown service gets the other color."""
    known = State(services={"web": ServiceState(active=BLUE, first_seen=1.0)})
    marked = c.with_rejected(known, "web", GREEN, since=5.0, reason="r")
    assert (
        ServiceState(
            active=BLUE, first_seen=1.0, marks={GREEN: ColorMark(MarkKind.REJECTED, 5.0, "r")}
        )
        == marked.services["web"]
    )
    fresh = c.with_rejected(State(), "api", GREEN, since=6.0, reason="q")
    assert (
        ServiceState(
            active=BLUE, first_seen=6.0, marks={GREEN: ColorMark(MarkKind.REJECTED, 6.0, "q")}
        )
        == fresh.services["api"]
    )
    assert known.services["web"].marks == {}


# -- JSON --------------------------------------------------------------------------


def test_to_json_shows_every_field() -> None:
    """``/status`` and the state file see the whole canary."""
    first = canary(limits=c.Limits(0.05, 300.0, 9), await_after=None)
    judged = c.apply(first, result(first, c.Verdict.PASS_HEALTH_ONLY, "quiet"), 12.0)
    assert {
        "color": "green",
        "base": "blue",
        "phase": "running",
        "steps": [5, 25, 50, 100],
        "step": 1,
        "weight": 25,
        "interval": 2.0,
        "max_error_rate": 0.05,
        "max_p99_ms": 300.0,
        "min_requests": 9,
        "started": 10.0,
        "step_started": 12.0,
        "extensions": 0,
        "next_decision_at": 14.0,
        "results": [
            {
                "step": 0,
                "weight": 5,
                "verdict": "pass_health_only",
                "detail": "quiet",
                "at": 1.0,
                "figures": {"requests": 100, "errors": 0, "error_rate": 0.0, "p99_ms": 1.0},
                "extensions": 0,
            }
        ],
        "warnings": ["step 1 (5%): quiet"],
        "ended": None,
        "reason": None,
        "created_after": None,
    } == state_json.canary_doc(judged, next_decision_at=14.0)
    assert state_json.canary_doc(judged)["next_decision_at"] is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: canary(),
        lambda: canary(await_after=7.25, limits=c.Limits(0.5, None, 0)),
        lambda: c.apply(canary(), c.OperatorAbort("x"), 11.0),
        lambda: c.apply(canary(), c.OperatorPromote(), 11.0),
        lambda: c.apply(
            canary(), c.StepResult(0, 5, c.Verdict.PASS_HEALTH_ONLY, "q", 3.0, None), 12.0
        ),
        lambda: c.apply(
            canary(limits=c.Limits(0.1, 120.5, 3)),
            c.StepResult(0, 5, c.Verdict.PASS, "ok", 3.5, W(7, 1, 12.5)),
            12.0,
        ),
        lambda: c.apply(canary(), c.StepResult(0, 5, c.Verdict.EXTEND, "e", 3.0), 12.0),
        lambda: c.apply(
            canary(), c.StepResult(0, 5, c.Verdict.PASS, "p", 3.0, W(60, 0, None)), 12.0
        ),
    ],
)
def test_json_round_trip(build: object) -> None:
    """Every canary reads back as it was written (through real JSON text)."""
    original = build()  # type: ignore[operator]
    raw = json.loads(json.dumps(state_json.canary_doc(original)))
    assert original == state_json.canary_from_doc("web", raw)


def test_from_json_takes_defaults_for_fields_older_files_lack() -> None:
    """Extensions, results, warnings, end, reason and the wait are optional."""
    raw = state_json.canary_doc(canary())
    for key in ("extensions", "results", "warnings", "ended", "reason", "created_after"):
        del raw[key]
    assert canary() == state_json.canary_from_doc("web", raw)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"step": 4}, ValueError),
        ({"step": -1}, ValueError),
        ({"steps": []}, ValueError),
        ({"phase": "paused"}, ValueError),
        ({"color": "red"}, ValueError),
        ({"interval": None}, TypeError),
    ],
)
def test_from_json_refuses_what_it_cannot_be(change: dict[str, object], error: type) -> None:
    """A step outside the plan, an unknown phase or color is an error the store reports."""
    raw = {**state_json.canary_doc(canary()), **change}
    with pytest.raises(error) as caught:
        state_json.canary_from_doc("web", raw)
    if "step" in change or "steps" in change:
        assert "canary step out of range" == str(caught.value)
    with pytest.raises(TypeError, match="canary is not an object"):
        state_json.canary_from_doc("web", [raw])


def test_figures_flatten_a_result_for_the_history() -> None:
    """A judged step's record detail: where, what, and the window's figures if any."""
    measured = c.StepResult(2, 50, c.Verdict.BREACH, "x", 1.0, W(8, 2, 12.3456))
    assert {
        "step": 2,
        "weight": 50,
        "verdict": "breach",
        "requests": 8,
        "errors": 2,
        "error_rate": 0.25,
        "p99_ms": 12.346,
    } == c.figures(measured)
    blind = c.StepResult(0, 5, c.Verdict.NO_FIGURES, "x", 1.0)
    assert {"step": 0, "weight": 5, "verdict": "no_figures"} == c.figures(blind)


# -- canary_analysis ---------------------------------------------------------------

TEXT = """# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="a@http"} 7
traefik_service_requests_total{code="200",method="POST",protocol="http",service="a@http"} 3
traefik_service_requests_total{code="503",method="GET",protocol="http",service="a@http"} 2
traefik_service_requests_total{code="404",method="GET",protocol="http",service="a@http"} 4
traefik_service_requests_total{code="200",method="GET",protocol="http",service="b@http"} 100
traefik_service_requests_total{method="GET",protocol="http",service="c@http"} 3
# TYPE traefik_service_request_duration_seconds histogram
traefik_service_request_duration_seconds_bucket{code="200",service="a@http",le="0.5"} 9
traefik_service_request_duration_seconds_bucket{code="200",service="a@http",le="+Inf"} 10
traefik_service_request_duration_seconds_sum{code="200",service="a@http"} 2.5
traefik_service_request_duration_seconds_count{code="200",service="a@http"} 10
traefik_service_request_duration_seconds_bucket{code="503",service="a@http",le="0.5"} 1
traefik_service_request_duration_seconds_bucket{code="503",service="a@http",le="+Inf"} 6
traefik_service_request_duration_seconds_bucket{code="200",service="b@http",le="0.5"} 100
# TYPE traefik_entrypoint_requests_total counter
traefik_entrypoint_requests_total{code="200",entrypoint="web",service="a@http"} 1000
"""


def test_snapshot_reads_one_service_summed_over_method_and_code() -> None:
    """Other services, other metrics and the histogram's sum and count are ignored."""
    snap = snapshot(TEXT, "a@http")
    assert {"200": 10.0, "503": 2.0, "404": 4.0} == dict(snap.codes)
    assert {0.5: 10.0, INF: 16.0} == dict(snap.buckets)
    assert 16.0 == snap.requests
    assert Snapshot({"200": 100.0}, {0.5: 100.0}) == snapshot(TEXT, "b@http")
    no_code = snapshot(TEXT, "c@http")
    assert (Snapshot({"": 3.0}), Window(3, 0, None)) == (no_code, delta(Snapshot(), no_code))
    assert 0 == Snapshot().requests


@pytest.mark.parametrize("text", ["}{ not metrics", "a{b}1", "# TYPE a", 'a{b="1",} x'])
def test_text_that_is_not_prometheus_is_an_analysis_error(text: str) -> None:
    """Garbage from the metrics URL is a typed error, not a crash of the scrape."""
    with pytest.raises(AnalysisError, match="not Prometheus text"):
        snapshot(text, "a@http")


@pytest.mark.parametrize(
    ("window", "error_rate", "as_json"),
    [
        (W(0, 0, None), 0.0, {"requests": 0, "errors": 0, "error_rate": 0.0, "p99_ms": None}),
        (W(3, 1, 0.00049), 1 / 3, {"requests": 3, "errors": 1, "error_rate": 0.333333, "p99_ms": 0.0}),
        (W(7, 7, 1234.56789), 1.0, {"requests": 7, "errors": 7, "error_rate": 1.0, "p99_ms": 1234.568}),
    ],
)  # fmt: skip
def test_window_error_rate_and_json(
    window: Window, error_rate: float, as_json: dict[str, object]
) -> None:
    """Errors over requests (0 without requests); JSON rounds the rate and p99."""
    assert error_rate == window.error_rate
    assert as_json == state_json.figures_doc(window)


def test_delta_counts_5xx_only_and_reports_p99_in_ms() -> None:
    """4xx are the client's business; the p99 is the window's own histogram's, in ms."""
    before = Snapshot({"200": 10.0, "404": 1.0}, {0.1: 10.0, 0.5: 11.0, INF: 11.0})
    after = Snapshot(
        {"200": 100.0, "404": 5.0, "500": 3.0, "502": 1.0, "302": 2.0},
        {0.1: 10.0, 0.5: 111.0, INF: 111.0},
    )
    window = delta(before, after)
    assert (100, 4) == (window.requests, window.errors)
    assert window.p99_ms == pytest.approx(496.0)  # 0.1 s + 0.4 s * 99/100 of its bucket
    assert delta(after, after) == Window(0, 0, None)


def test_delta_of_a_new_series_counts_it_whole() -> None:
    """A code or bucket absent before (first seen in this window) counts from zero."""
    before = Snapshot({"200": 5.0}, {INF: 5.0})
    window = delta(before, Snapshot({"200": 5.0, "503": 5.0}, {INF: 10.0, 1.0: 5.0}))
    assert (5, 5) == (window.requests, window.errors)
    assert window.p99_ms == pytest.approx(990.0)


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {1.0: 50.0, 2.0: 100.0, INF: 100.0}, 1.0),
        (0.5, {1.0: 40.0, 2.0: 60.0, INF: 100.0}, 1.5),
        (0.99, {1.0: 40.0, 2.0: 60.0, INF: 100.0}, 2.0),
        (0.5, {2.0: 40.0, 1.0: 10.0, INF: 100.0}, 2.0),
        (0.1, {1.0: 0.0, 2.0: 10.0, 3.0: 10.0, INF: 10.0}, 1.1),
        (1.0, {1.0: 10.0, 3.0: 10.0, INF: 10.0}, 1.0),
        (0.0, {1.0: 0.0, 3.0: 10.0, INF: 10.0}, 1.0),  # rank 0: no division by zero
        (0.5, {0.25: 4.0, INF: 4.0}, 0.125),
        (0.5, {INF: 4.0}, 0.0),
        (0.5, {1.0: 5.0}, 0.5),
        (0.5, {1.0: -1.0}, None),
        (0.5, {0.5: 1.0, INF: 1.0}, 0.25),  # one request: half-way into its bucket
    ],
)
def test_quantile_interpolates_as_promql(
    q: float, buckets: dict[float, float], expected: float | None
) -> None:
    """Linear inside the bucket holding the rank, from the bound below it (0 first)."""
    got = quantile(q, buckets)
    assert expected == (None if got is None else pytest.approx(got))
