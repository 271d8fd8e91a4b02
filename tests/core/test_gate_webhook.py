"""The gate webhook in the pure core (provider/core/gates.py, labels.py, promotion.py): which
URL a service asks, how the approver's answer is judged, and that a generation waits for it
after its smoke checks, keyed by its container ids as the checks are."""

from __future__ import annotations

import pytest

from provider.core.gates import GateResult, SmokeCheck, gate_wait, judge_webhook, webhook_problem
from provider.core.labels import LabelDefaults, LabelProblem, Placement, parse
from provider.core.model import Color, Container
from provider.core.promotion import Action, Policy, Stage, decide
from tests.core.test_promotion import ADOPTED_BLUE, NOW, OLD_BLUE, ctr, view_of
from tests.core.test_promotion_gates import GEN, HELD
from tests.factories import make_container

HOOK = "https://gate.example/approve?token=s3cret"


@pytest.mark.parametrize(
    ("status", "body", "error", "reason"),
    [
        (200, b"", None, None),
        (204, b"", None, None),
        (299, b"ok", None, None),
        (403, b"tests failed on staging", None, "answered 403: 'tests failed on staging'"),
        (500, b"x" * 300, None, "answered 500: '" + "x" * 120 + "'"),
        (302, b"", None, "answered 302 (redirects are not followed): ''"),
        (199, b"", None, "answered 199"),
        (None, b"", None, "no answer within 2.5s"),
        (None, b"", "Connection refused", "not reached: Connection refused"),
    ],
)
def test_the_approvers_answer_is_judged(
    status: int | None, body: bytes, error: str | None, reason: str | None
) -> None:
    """A 2xx approves; anything else rejects, saying what came back."""
    found = judge_webhook(status, body, error, 2.5)
    if reason is None:
        assert found is None
    else:
        assert found is not None and found.startswith(reason), found


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:9000/gate", None),
        (HOOK, None),
        ("ftp://x/", "is not an http:// or https:// URL with a host"),
        ("http:///path", "is not an http:// or https:// URL with a host"),
        ("http://a b/", "is not an http:// or https:// URL with a host"),
        ("http://x:99999/", "has a bad port"),
    ],
)
def test_a_gate_url_is_checked(url: str, problem: str | None) -> None:
    assert problem == webhook_problem(url)


def _route_of(labels: dict[str, str], default: str | None = None) -> tuple[str | None, str]:
    container: Container = make_container("web", "green", extra=labels)
    found = parse(container, LabelDefaults(gate_url=default))
    if isinstance(found, LabelProblem):
        return None, found.message
    assert isinstance(found, Placement)
    return found.route.gate_url, ""


@pytest.mark.parametrize(
    ("labels", "default", "url", "problem"),
    [
        ({}, None, None, ""),
        ({}, HOOK, HOOK, ""),
        ({"bluegreen.gate.url": "http://127.0.0.1:9/g"}, HOOK, "http://127.0.0.1:9/g", ""),
        ({"bluegreen.gate.url": "off"}, HOOK, None, ""),
        ({"bluegreen.gate.url": "gate"}, None, None, "label bluegreen.gate.url is not an http"),
    ],
)
def test_which_gate_url_a_service_asks(
    labels: dict[str, str], default: str | None, url: str | None, problem: str
) -> None:
    """The label wins over the provider's --gate-url; ``off`` opts a service out."""
    found, message = _route_of(labels, default)
    assert (url, True) == (found, problem in message)


def test_the_gate_url_is_not_in_the_routes_repr() -> None:
    """A gate URL may carry a token: a debug print of the route never shows it."""
    container = make_container("web", "green")
    found = parse(container, LabelDefaults(gate_url=HOOK))
    assert isinstance(found, Placement)
    assert "s3cret" not in repr(found.route)


IDS = frozenset({"c1"})
CHECKS = (SmokeCheck("/h"),)


@pytest.mark.parametrize(
    ("checks", "result", "wait"),
    [
        ((), None, (False, "gate webhook pending")),
        (CHECKS, None, (False, "pending (/h), then the gate webhook")),
        ((), GateResult(IDS, True, True), None),
        ((), GateResult(frozenset({"old"}), True, True), (False, "gate webhook pending")),
        ((), GateResult(IDS, False, False), (False, "gate webhook running")),
        (
            CHECKS,
            GateResult(IDS, True, False, "https://gate.example/… answered 403: 'no'", "webhook"),
            (True, "gate webhook rejected: https://gate.example/… answered 403: 'no'"),
        ),
        (CHECKS, GateResult(IDS, True, False, "GET /h 500"), (True, "smoke check failed: GET")),
    ],
)
def test_where_a_gated_generation_stands(
    checks: tuple[SmokeCheck, ...], result: GateResult | None, wait: tuple[bool, str] | None
) -> None:
    """One result covers the checks and the webhook: neither alone passes a generation."""
    found = gate_wait(checks, result, IDS, webhook=True)
    if wait is None:
        assert found is None
    else:
        assert found is not None
        assert (wait[0], True) == (found[0], wait[1] in found[1]), found


@pytest.mark.parametrize(
    ("gates", "action", "stage", "detail"),
    [
        (None, None, Stage.GATES_PENDING, "gate webhook pending"),
        (GateResult(GEN, True, True), Action.PROMOTE, Stage.HOLDING, "ready"),
        (
            GateResult(GEN, True, False, "http://127.0.0.1:9/… answered 409: 'frozen'", "webhook"),
            None,
            Stage.GATE_FAILED,
            "gate webhook rejected: http://127.0.0.1:9/… answered 409: 'frozen'",
        ),
        (GateResult(frozenset({"g0"}), True, True), None, Stage.GATES_PENDING, "pending"),
    ],
)
def test_a_webhook_gates_the_promotion(
    gates: GateResult | None, action: Action | None, stage: Stage, detail: str
) -> None:
    """A service with a gate URL (no smoke label) is promoted only once the webhook approved
    this generation; a rejection is never promoted and says why."""
    green = ctr("g1", "green", 150.0, labels={"bluegreen.gate.url": "http://127.0.0.1:9/g"})
    decision = decide(
        view_of((OLD_BLUE, green)), ADOPTED_BLUE, HELD, Policy(), now=NOW, connected=True,
        gates=gates,
    )  # fmt: skip
    assert decision.promotion is not None
    assert (action, stage) == (decision.action, decision.promotion.stage)
    assert detail in decision.promotion.detail
    if action is not None:
        assert Color.GREEN is decision.target
