"""Table tests of the canary's analysis edges (issue 19): counter resets per series, a
malformed histogram bound, and a pass that lands on a color gone meanwhile."""

# ruff: noqa: E501  (metric lines are Traefik's exposition as it prints it)

from __future__ import annotations

import pytest

from provider.core import canary as c
from provider.core import canary_analysis as analysis
from provider.core import state_json
from provider.core.canary_analysis import AnalysisError, Snapshot, delta, snapshot

INF = float("inf")


@pytest.mark.parametrize(
    ("before", "after", "requests", "errors"),
    [
        # No reset: the difference, series by series.
        (Snapshot({"200": 40, "500": 2}), Snapshot({"200": 100, "500": 12}), 70, 10),
        # The case: earlier 500s, a restart, then more requests than before in
        # total (old code: 90 requests, 0 errors, PASS); the window is the current values.
        (Snapshot({"200": 10, "500": 50}), Snapshot({"200": 100, "500": 10}), 110, 10),
        # A series that vanished after the restart (no error since) is a reset too.
        (Snapshot({"200": 10, "500": 50}), Snapshot({"200": 100}), 100, 0),
        # The total fell: a reset, as before.
        (Snapshot({"200": 1000, "500": 100}), Snapshot({"200": 100, "500": 10}), 110, 10),
        # Only a histogram bucket fell: a reset of every series.
        (
            Snapshot({"200": 10, "500": 5}, {0.1: 15, INF: 15}),
            Snapshot({"200": 30, "500": 5}, {0.1: 5, INF: 35}),
            35,
            5,
        ),
        # A new code appears: no reset.
        (Snapshot({"200": 10}), Snapshot({"200": 10, "503": 4}), 4, 4),
    ],
)
def test_delta_detects_resets_per_series(
    before: Snapshot, after: Snapshot, requests: int, errors: int
) -> None:
    """Any series that fell means Traefik restarted: every series counts from zero."""
    window = delta(before, after)
    assert (requests, errors) == (window.requests, window.errors)


def test_was_reset_is_per_series() -> None:
    """A fallen series is a reset even when the total grew."""
    assert analysis.was_reset(Snapshot({"500": 50, "200": 10}), Snapshot({"500": 10, "200": 100}))
    assert not analysis.was_reset(Snapshot({"500": 5}), Snapshot({"500": 5, "200": 1}))


HISTOGRAM = """# TYPE traefik_service_request_duration_seconds histogram
traefik_service_request_duration_seconds_bucket{{code="200",method="GET",protocol="http",service="web-green@http",le="{le}"}} 3
traefik_service_request_duration_seconds_bucket{{code="200",method="GET",protocol="http",service="web-green@http",le="+Inf"}} 3
traefik_service_request_duration_seconds_sum{{code="200",method="GET",protocol="http",service="web-green@http"}} 0.3
traefik_service_request_duration_seconds_count{{code="200",method="GET",protocol="http",service="web-green@http"}} 3
"""


@pytest.mark.parametrize("le", ["fast", "", "NaN", "0.1s"])
def test_a_malformed_bucket_bound_is_an_analysis_error(le: str) -> None:
    """A bound that is no number fails the scrape (the driver extends, then aborts the
    step for want of figures) instead of raising ValueError out of the driver."""
    with pytest.raises(AnalysisError):
        snapshot(HISTOGRAM.format(le=le), "web-green@http")


def test_a_good_bucket_bound_still_reads() -> None:
    assert {0.25: 3.0, INF: 3.0} == dict(
        snapshot(HISTOGRAM.format(le="0.25"), "web-green@http").buckets
    )


def _result(verdict: c.Verdict) -> c.StepResult:
    return c.StepResult(0, 50, verdict, "", 0.0)


@pytest.mark.parametrize(
    ("event", "ready", "stale"),
    [
        (_result(c.Verdict.PASS), False, True),
        (_result(c.Verdict.PASS_HEALTH_ONLY), False, True),
        (_result(c.Verdict.PASS), True, False),
        (_result(c.Verdict.EXTEND), False, False),
        (_result(c.Verdict.BREACH), False, False),
        (_result(c.Verdict.NOT_READY), False, False),
        (c.OperatorAbort("x"), False, False),
        (c.OperatorPromote(), False, False),
    ],
)
def test_stale_pass(event: c.Event, ready: bool, stale: bool) -> None:
    """Only a passing verdict on a color no longer ready is refused at commit time;
    aborts and extensions still land (the operator's promote is checked as a switch)."""
    assert stale is c.stale_pass(event, ready=ready)


def test_a_judged_window_is_what_the_state_file_keeps() -> None:
    """The p99 is rounded where it is computed, as the state file stores it: a canary
    read back after a restart equals the one acknowledged (99.0, not 98.99999999999999)."""
    window = delta(Snapshot(), Snapshot({"200": 35}, {0.1: 35, INF: 35}))
    canary = c.start(
        "web",
        c.Color.GREEN,
        c.Color.BLUE,
        steps=(50, 100),
        interval=1.0,
        limits=c.Limits(),
        now=0.0,
    )
    judged = c.apply(canary, c.StepResult(0, 50, c.Verdict.BREACH, "", 1.0, window), 1.0)
    assert judged == state_json.canary_from_doc("web", state_json.canary_doc(judged))
