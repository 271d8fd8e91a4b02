"""Table-driven tests of the canary's pure core: plan parsing, verdicts, transitions,
weights in the rendered config, Traefik metrics analysis and the state file."""

# ruff: noqa: E501  (TRAEFIK_TEXT is Traefik's exposition as it prints it)

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from provider import store
from provider.core import canary as c
from provider.core import canary_json, state_json, transitions
from provider.core.canary_analysis import Snapshot, Window, delta, quantile, snapshot
from provider.core.model import Color, MarkKind, State
from provider.core.refusals import BadCommand, CanaryNotRunning, CanaryRefused
from provider.core.render import render
from provider.core.routing import Options, observe
from tests.factories import make_container

BLUE, GREEN = Color.BLUE, Color.GREEN


def running(steps: tuple[int, ...] = (5, 25, 50, 100), **limits: object) -> c.Canary:
    return c.start(
        "web",
        GREEN,
        BLUE,
        steps=steps,
        interval=2.0,
        limits=canary_json.parse_limits(
            limits.get("max_error_rate"), limits.get("max_p99_ms"), limits.get("min_requests")
        ),
        now=10.0,
    )


@pytest.mark.parametrize("module", ["canary", "canary_analysis"])
def test_canary_core_imports_no_io_framework(module: str) -> None:
    """The canary's decisions import no asyncio, aiohttp or aiodocker (house style 1)."""
    path = Path(__file__).parents[2] / "provider" / "core" / f"{module}.py"
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert set() == imported & {"asyncio", "aiohttp", "aiodocker", "socket", "subprocess"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, (5, 25, 50, 100)),
        ([10, 100], (10, 100)),
        ([10, 50], (10, 50, 100)),
        ("5,25,50,100", (5, 25, 50, 100)),
        ([1], (1, 100)),
    ],
)
def test_steps_parse(raw: object, expected: tuple[int, ...]) -> None:
    """Steps increase strictly and always end at 100 (the switch)."""
    assert expected == canary_json.parse_steps(raw)


@pytest.mark.parametrize("raw", [[], [0], [50, 50], [60, 10], [101], [True], "a,b", {"x": 1}])
def test_bad_steps_are_refused(raw: object) -> None:
    """Empty, repeated, decreasing, out-of-range or non-numeric steps are a 400."""
    with pytest.raises(BadCommand):
        canary_json.parse_steps(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("60s", 60.0), ("2m", 120.0), ("500ms", 0.5), (90, 90.0), (2.5, 2.5), ("3", 3.0)],
)
def test_interval_parse(raw: object, expected: float) -> None:
    """Durations with s/m/h/ms units or plain seconds."""
    assert expected == canary_json.parse_interval(raw)


@pytest.mark.parametrize("raw", ["", "1d", "-1s", "0s", True, None, [1], "99999h"])
def test_bad_interval_is_refused(raw: object) -> None:
    """Unknown units, zero, negative, absurd or non-duration values are a 400."""
    with pytest.raises(BadCommand):
        canary_json.parse_interval(raw)


def test_start_refuses_the_active_color_and_a_plan_of_only_100() -> None:
    """A canary needs the idle color (409) and at least one step below 100 (400)."""
    with pytest.raises(CanaryRefused):
        c.start("web", BLUE, BLUE, steps=(5, 100), interval=1, limits=c.Limits(), now=0)
    with pytest.raises(BadCommand):
        c.start("web", GREEN, BLUE, steps=(100,), interval=1, limits=c.Limits(), now=0)


W = Window


@pytest.mark.parametrize(
    ("window", "ready", "metrics", "extensions", "verdict"),
    [
        (W(1000, 0, 20.0), True, True, 0, c.Verdict.PASS),
        (W(1000, 10, 20.0), True, True, 0, c.Verdict.PASS),  # exactly 1 % is within
        (W(1000, 11, 20.0), True, True, 0, c.Verdict.BREACH),
        (W(10, 5, 20.0), True, True, 0, c.Verdict.BREACH),  # errors breach even below min
        (W(10, 0, 20.0), True, True, 0, c.Verdict.EXTEND),
        (W(10, 0, 20.0), True, True, 3, c.Verdict.PASS_HEALTH_ONLY),
        (None, True, True, 0, c.Verdict.EXTEND),
        (None, True, True, 3, c.Verdict.NO_FIGURES),
        (None, True, False, 0, c.Verdict.PASS_HEALTH_ONLY),
        (W(1000, 0, 20.0), False, True, 0, c.Verdict.NOT_READY),
        (None, False, False, 0, c.Verdict.NOT_READY),
        (W(0, 0, None), True, True, 0, c.Verdict.EXTEND),
    ],
)
def test_judge(
    window: Window | None, ready: bool, metrics: bool, extensions: int, verdict: c.Verdict
) -> None:
    """Breach > too few (extend, then health-only) > pass; no figures extend, then abort."""
    canary = c.Canary(**{**running().__dict__, "extensions": extensions})
    result = c.judge(canary, window, ready=ready, metrics=metrics, max_extensions=3, now=11.0)
    assert verdict == result.verdict


@pytest.mark.parametrize(
    ("p99", "limit", "verdict"),
    [
        (120.0, 500.0, c.Verdict.PASS),
        (600.0, 500.0, c.Verdict.BREACH),
        (None, 500.0, c.Verdict.PASS),
    ],
)
def test_judge_p99(p99: float | None, limit: float, verdict: c.Verdict) -> None:
    """p99 above ``max_p99_ms`` is a breach; no latency figures judge on errors only."""
    canary = running(max_p99_ms=limit)
    result = c.judge(canary, W(100, 0, p99), ready=True, metrics=True, max_extensions=3, now=1)
    assert verdict == result.verdict


def step(canary: c.Canary, verdict: c.Verdict) -> c.StepResult:
    return c.StepResult(canary.step, canary.weight, verdict, "x", 1.0, W(100, 0, 1.0))


def test_passing_steps_walk_the_plan_then_promote() -> None:
    """Each pass moves to the next weight; the step before 100 promotes (100 is the switch)."""
    canary = running()
    weights = []
    while canary.running:
        weights.append(canary.weight)
        canary = c.apply(canary, step(canary, c.Verdict.PASS), 20.0)
    assert [5, 25, 50] == weights
    assert c.Phase.PROMOTED == canary.phase
    assert 3 == len(canary.results)
    assert 0 == canary.weight


def test_extension_keeps_the_step_and_health_only_warns() -> None:
    """An extension counts but keeps the weight; a health-only pass leaves a warning."""
    canary = c.apply(running(), step(running(), c.Verdict.EXTEND), 11.0)
    assert (0, 1, 5) == (canary.step, canary.extensions, canary.weight)
    canary = c.apply(canary, step(canary, c.Verdict.PASS_HEALTH_ONLY), 12.0)
    assert (1, 0, 25) == (canary.step, canary.extensions, canary.weight)
    assert 1 == len(canary.warnings)


@pytest.mark.parametrize("verdict", list(c.ABORTING))
def test_aborting_verdicts_end_at_weight_zero(verdict: c.Verdict) -> None:
    """A breach, a lost color or missing figures abort: weight 0 at once."""
    canary = c.apply(running(), step(running(), verdict), 11.0)
    assert (c.Phase.ABORTED, 0) == (canary.phase, canary.weight)
    assert {} == c.weights(c.with_canary(State(), canary))


@pytest.mark.parametrize(
    "event", [c.OperatorAbort("x"), c.OperatorPromote(), c.StepResult(0, 5, c.Verdict.PASS, "", 1)]
)
def test_no_event_after_the_end(event: c.Event) -> None:
    """A finished canary refuses every event with a typed error (409)."""
    done = c.apply(running(), c.OperatorAbort("stop"), 11.0)
    with pytest.raises(CanaryNotRunning):
        c.apply(done, event, 12.0)


def test_operator_promote_and_abort() -> None:
    """Promote skips to 100; abort ends at 0 with the reason."""
    assert c.Phase.PROMOTED == c.apply(running(), c.OperatorPromote(), 11.0).phase
    aborted = c.apply(running(), c.OperatorAbort("ctrl-c"), 11.0)
    assert ("ctrl-c", c.Phase.ABORTED) == (aborted.reason, aborted.phase)


def views(blue: bool = True, green: bool = True) -> dict[str, object]:
    containers = [
        make_container(color="blue", port=8081, state="running" if blue else "exited"),
        make_container(color="green", port=8082, state="running" if green else "exited"),
    ]
    return dict(observe(containers, Options()).services)


def weighted_of(config: dict[str, object], name: str = "web") -> object:
    return config["http"]["services"][name]["weighted"]  # type: ignore[index]


def test_render_weights_and_sticky_cookie() -> None:
    """While a canary runs, both colors are children with their weights and the cookie."""
    config = render(views(), {"web": BLUE}, Options(), {"web": {BLUE: 90, GREEN: 10}})
    assert {
        "services": [{"name": "web-blue", "weight": 90}, {"name": "web-green", "weight": 10}],
        "sticky": {"cookie": {"name": "bluegreen_web", "httpOnly": True, "sameSite": "lax"}},
    } == weighted_of(config)


def test_render_cookie_renamed_or_off() -> None:
    """``--canary-cookie`` renames the cookie (``{service}`` filled in) or turns it off."""
    renamed = render(
        views(),
        {"web": BLUE},
        Options(canary_cookie="cv_{service}"),
        {"web": {BLUE: 50, GREEN: 50}},
    )
    assert "cv_web" == weighted_of(renamed)["sticky"]["cookie"]["name"]  # type: ignore[index]
    off = render(views(), {"web": BLUE}, Options(canary_cookie=""), {"web": {BLUE: 50, GREEN: 50}})
    assert "sticky" not in weighted_of(off)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("blue", "green", "child"),
    [(True, False, "web-blue"), (False, True, "web-green"), (False, False, "web-blue")],
)
def test_render_drops_a_child_without_servers(blue: bool, green: bool, child: str) -> None:
    """A color with no routable container is no child: its share would answer 503."""
    config = render(views(blue, green), {"web": BLUE}, Options(), {"web": {BLUE: 90, GREEN: 10}})
    assert {"services": [{"name": child, "weight": 1}]} == weighted_of(config)


def test_render_without_canary_is_unchanged() -> None:
    """No weights: the same bytes as before canaries existed."""
    assert render(views(), {"web": BLUE}, Options()) == render(
        views(), {"web": BLUE}, Options(), {}
    )


TRAEFIK_TEXT = """# HELP traefik_service_requests_total How many HTTP requests processed on a service.
# TYPE traefik_service_requests_total counter
traefik_service_requests_total{code="200",method="GET",protocol="http",service="web-green@http"} 90
traefik_service_requests_total{code="500",method="GET",protocol="http",service="web-green@http"} 10
traefik_service_requests_total{code="200",method="GET",protocol="http",service="web-blue@http"} 900
# HELP traefik_service_request_duration_seconds How long it took.
# TYPE traefik_service_request_duration_seconds histogram
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="web-green@http",le="0.1"} 80
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="web-green@http",le="0.3"} 90
traefik_service_request_duration_seconds_bucket{code="200",method="GET",protocol="http",service="web-green@http",le="+Inf"} 90
traefik_service_request_duration_seconds_sum{code="200",method="GET",protocol="http",service="web-green@http"} 3
traefik_service_request_duration_seconds_count{code="200",method="GET",protocol="http",service="web-green@http"} 90
traefik_service_request_duration_seconds_bucket{code="500",method="GET",protocol="http",service="web-green@http",le="0.1"} 10
traefik_service_request_duration_seconds_bucket{code="500",method="GET",protocol="http",service="web-green@http",le="0.3"} 10
traefik_service_request_duration_seconds_bucket{code="500",method="GET",protocol="http",service="web-green@http",le="+Inf"} 10
traefik_service_request_duration_seconds_sum{code="500",method="GET",protocol="http",service="web-green@http"} 0.1
traefik_service_request_duration_seconds_count{code="500",method="GET",protocol="http",service="web-green@http"} 10
"""


def test_snapshot_sums_codes_and_buckets_of_one_service() -> None:
    """Only the named service counts; codes and buckets sum over method and protocol."""
    snap = snapshot(TRAEFIK_TEXT, "web-green@http")
    assert {"200": 90.0, "500": 10.0} == dict(snap.codes)
    assert {0.1: 90.0, 0.3: 100.0, float("inf"): 100.0} == dict(snap.buckets)
    assert Snapshot() == snapshot(TRAEFIK_TEXT, "other@http")


def test_delta_error_rate_and_reset() -> None:
    """The window is the difference; a counter that went back (Traefik restart) restarts at 0."""
    after = snapshot(TRAEFIK_TEXT, "web-green@http")
    before = Snapshot({"200": 40.0, "500": 0.0}, {0.1: 40.0, 0.3: 40.0, float("inf"): 40.0})
    window = delta(before, after)
    assert (60, 10) == (window.requests, window.errors)
    reset = delta(Snapshot({"200": 10_000.0}, {}), after)
    assert (100, 10) == (reset.requests, reset.errors)


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        ({0.1: 100.0, float("inf"): 100.0}, 0.099),
        ({0.1: 0.0, 0.3: 100.0, float("inf"): 100.0}, 0.298),
        ({0.1: 0.0, 5.0: 0.0, float("inf"): 100.0}, 5.0),
        ({}, None),
        ({0.1: 0.0, float("inf"): 0.0}, None),
    ],
)
def test_quantile(buckets: dict[float, float], expected: float | None) -> None:
    """histogram_quantile's interpolation; a rank past the last finite bound answers it."""
    got = quantile(0.99, buckets)
    assert expected == (None if got is None else round(got, 3))


def test_state_file_keeps_canaries_and_loads_old_files(tmp_path: Path) -> None:
    """Canaries and record figures survive a save/load; files without them still load."""
    state = transitions.adopt(State(), "web", BLUE, 1.0)
    canary = c.apply(running(), step(running(), c.Verdict.PASS), 12.0)
    state = c.with_canary(state, canary)
    state, _ = c.with_record(
        state, "web", BLUE, GREEN, reason=c.REASON_STEP, actor="watcher", now=12.0,
        detail={"requests": 100}, history_limit=10,
    )  # fmt: skip
    store.save(tmp_path / "s.json", state)
    assert state == store.load(tmp_path / "s.json")
    old = state_json.to_doc(transitions.adopt(State(), "web", BLUE, 1.0))
    assert "canaries" not in old
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert {} == store.load(tmp_path / "old.json").canaries


def test_rejected_mark_and_switch_keep_canaries() -> None:
    """An aborted color is marked REJECTED; a later switch keeps the canary record."""
    state = c.with_canary(transitions.adopt(State(), "web", BLUE, 1.0), running())
    state = c.with_rejected(state, "web", GREEN, since=5.0, reason="canary-abort: x")
    assert MarkKind.REJECTED == state.services["web"].marks[GREEN].kind
    switched, _ = transitions.switch(state, "web", GREEN, reason="manual", actor="api", now=6.0)
    assert state.canaries == switched.canaries
