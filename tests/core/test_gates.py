"""Gates before the flip (provider/core/gates.py, the bluegreen.smoke labels): the label's
grammar, the Host a check sends, how an answer is judged, where a generation's gates stand."""

from __future__ import annotations

import pytest

from provider.core.gates import GateResult, SmokeCheck, gate_wait, judge, parse_smoke, rule_host
from provider.core.labels import LabelDefaults, LabelProblem, Placement, parse
from provider.core.model import Container, Health
from tests.factories import make_container


@pytest.mark.parametrize(
    ("raw", "checks"),
    [
        ("/healthz", (SmokeCheck("/healthz"),)),
        ("/healthz, /api/ping", (SmokeCheck("/healthz"), SmokeCheck("/api/ping"))),
        ("/api/ping=204", (SmokeCheck("/api/ping", 204),)),
        ("/=200:Welcome", (SmokeCheck("/", 200, "Welcome"),)),
        ("/v=200:a:b", (SmokeCheck("/v", 200, "a:b"),)),
        ("/search?q&x,", (SmokeCheck("/search?q&x"),)),
    ],
)
def test_smoke_label_grammar(raw: str, checks: tuple[SmokeCheck, ...]) -> None:
    assert parse_smoke(raw) == checks


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "is empty"),
        (" , ", "is empty"),
        ("healthz", "is not a path"),
        ("/a b", "is not a path"),
        ("/a=ok", "status 'ok' is not 100-599"),
        ("/a=99", "status '99' is not 100-599"),
        ("/a=600", "is not 100-599"),
        ("/a=200:", "expected body text after ':' is empty"),
        (",".join(f"/p{i}" for i in range(11)), "has 11 checks; at most 10"),
    ],
)
def test_bad_smoke_labels_say_what_is_wrong(raw: str, message: str) -> None:
    problem = parse_smoke(raw)
    assert isinstance(problem, str)
    assert message in problem


@pytest.mark.parametrize(
    ("rule", "host"),
    [
        ("Host(`web.localhost`)", "web.localhost"),
        ("Host(`a.example`) && PathPrefix(`/api`)", "a.example"),
        ("PathPrefix(`/api`) && (Host(`b.example`))", "b.example"),
        ("Host(`a`) || Host(`b`)", None),
        ("Host(`a`) && Host(`b`)", None),
        ("PathPrefix(`/`)", None),
        ("HostRegexp(`.+`)", None),
    ],
)
def test_the_host_of_a_rule(rule: str, host: str | None) -> None:
    assert rule_host(rule) == host


def _labels(extra: dict[str, str]) -> Placement | LabelProblem:
    labels = {"bluegreen.service": "web", "bluegreen.color": "blue", "bluegreen.port": "1"}
    c = Container("x" * 64, "c1", "running", Health.HEALTHY, {**labels, **extra}, 1.0)
    return parse(c, LabelDefaults())


def test_smoke_labels_reach_the_route() -> None:
    placed = parse(make_container(extra={"bluegreen.smoke": "/healthz,/api=204"}), LabelDefaults())
    assert isinstance(placed, Placement)
    assert placed.route.smoke == (SmokeCheck("/healthz"), SmokeCheck("/api", 204))
    assert placed.route.smoke_host is not None


@pytest.mark.parametrize(
    ("extra", "smoke_host"),
    [
        ({"bluegreen.smoke": "/h"}, "web"),
        (
            {"bluegreen.smoke": "/h", "bluegreen.rule": "Host(`w.example`) && Path(`/`)"},
            "w.example",
        ),
        (
            {
                "bluegreen.smoke": "/h",
                "bluegreen.rule": "PathPrefix(`/`)",
                "bluegreen.smoke-host": "x",
            },
            "x",
        ),
        ({"bluegreen.smoke-host": "x"}, None),
    ],
)
def test_the_smoke_host_comes_from_the_rule_or_its_label(
    extra: dict[str, str], smoke_host: str | None
) -> None:
    placed = _labels(extra)
    assert isinstance(placed, Placement), placed
    assert placed.route.smoke_host == smoke_host


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"bluegreen.smoke": "healthz"}, "label bluegreen.smoke item 'healthz'"),
        (
            {"bluegreen.smoke": "/h", "bluegreen.rule": "PathPrefix(`/`)"},
            "label bluegreen.smoke needs bluegreen.smoke-host",
        ),
        ({"bluegreen.smoke": "/h", "bluegreen.smoke-host": "a b"}, "label bluegreen.smoke-host"),
    ],
)
def test_smoke_label_problems_name_the_label(extra: dict[str, str], message: str) -> None:
    problem = _labels(extra)
    assert isinstance(problem, LabelProblem)
    assert message in problem.message
    assert "container c1" in problem.message


@pytest.mark.parametrize(
    ("check", "status", "body", "failure"),
    [
        (SmokeCheck("/h"), 200, b"ok", None),
        (SmokeCheck("/h", 204), 204, b"", None),
        (SmokeCheck("/h", 200, "ok"), 200, b"all ok", None),
        (SmokeCheck("/h"), 500, b"boom", "GET /h (expected 200) answered 500: 'boom'"),
        (SmokeCheck("/h", 200, "ok"), 200, b"nope", "expected 200 containing 'ok'"),
        (SmokeCheck("/h"), 500, b"x" * 500, "answered 500: '" + "x" * 120 + "'"),
    ],
)
def test_an_answer_is_judged_and_a_failure_quotes_its_first_bytes(
    check: SmokeCheck, status: int, body: bytes, failure: str | None
) -> None:
    found = judge(check, status, body)
    if failure is None:
        assert found is None
    else:
        assert found is not None and failure in found
        assert found.endswith("'")


IDS = frozenset({"c1"})
CHECKS = (SmokeCheck("/h"),)


@pytest.mark.parametrize(
    ("checks", "result", "wait"),
    [
        ((), None, None),
        (CHECKS, None, (False, "pending (/h)")),
        (CHECKS, GateResult(IDS, finished=True, passed=True), None),
        (CHECKS, GateResult(frozenset({"old"}), finished=True, passed=True), (False, "pending")),
        (
            CHECKS,
            GateResult(IDS, finished=False, passed=False, failure="500"),
            (False, "last: 500"),
        ),
        (
            CHECKS,
            GateResult(IDS, finished=True, passed=False, failure="GET /h 500"),
            (True, "GET /h 500"),
        ),
        (CHECKS, GateResult(frozenset({"old"}), finished=True, passed=False), (False, "pending")),
    ],
)
def test_where_a_generations_gates_stand(
    checks: tuple[SmokeCheck, ...], result: GateResult | None, wait: tuple[bool, str] | None
) -> None:
    found = gate_wait(checks, result, IDS)
    if wait is None:
        assert found is None
    else:
        assert found is not None
        assert found[0] is wait[0]
        assert wait[1] in found[1]
