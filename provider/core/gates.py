"""Gates before the flip: smoke checks a new generation must pass before it is promoted.

Pure: the ``bluegreen.smoke`` label's grammar, the Host a check sends, how one
answer is judged, and where a generation's gates stand for the promotion
decision (:func:`provider.core.promotion.decide`). Sending the requests through
Traefik is :mod:`provider.smoke`'s job; its outcome comes back here as a
:class:`GateResult`, keyed by the generation's container ids, so a result
never approves other containers than the ones it checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provider.core.rule_syntax import And, Expr, Matcher, RuleSyntaxError, parse_rule

#: A smoke path: absolute, no spaces, commas or ``=`` (the label's separators).
_PATH = re.compile(r"^/[A-Za-z0-9._~/%+!$&'()*;@?-]{0,199}$")
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?(?::[0-9]{1,5})?$")
#: An http(s) URL with a host (and an optional port): what a gate webhook may be.
_WEBHOOK = re.compile(
    r"^https?://(?:[^/?#\s@]*@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)"
    r"(?::(?P<port>[0-9]{1,5}))?(?:[/?#][^\x00-\x20]*)?$"
)
MAX_CHECKS = 10
#: How many bytes of a failing answer's body the report quotes.
FIRST_BYTES = 120


@dataclass(frozen=True)
class SmokeCheck:
    """``GET path`` through Traefik's preview route answers ``status`` (holding ``contains``)."""

    path: str
    status: int = 200
    contains: str | None = None

    def describe(self) -> str:
        want = f"{self.status}" + (f" containing {self.contains!r}" if self.contains else "")
        return f"GET {self.path} (expected {want})"


@dataclass(frozen=True)
class GateResult:
    """What the checks of one generation (its container ids) found.

    ``finished`` false: still being checked (a failing check is retried until
    the provider's smoke timeout); ``failure`` names the check that failed last.
    """

    generation: frozenset[str]
    finished: bool
    passed: bool
    failure: str | None = None
    #: Which gate the failure is of: ``smoke`` (a check) or ``webhook`` (the approver).
    by: str = "smoke"


def parse_smoke(raw: str) -> tuple[SmokeCheck, ...] | str:
    """``/healthz,/api/ping=204,/=200:Welcome`` -> checks, or why the label is wrong."""
    checks: list[SmokeCheck] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        path, sep, expect = item.partition("=")
        if not _PATH.match(path):
            return (
                f"item {item[:80]!r}: {path[:80]!r} is not a path (it must start with / and "
                "hold no spaces, commas or =)"
            )
        status, contains = 200, None
        if sep:
            code, colon, text = expect.partition(":")
            if not (code.isascii() and code.isdigit() and 100 <= int(code[:4]) <= 599):
                return f"item {item[:80]!r}: status {code[:20]!r} is not 100-599"
            status, contains = int(code), (text if colon else None)
            if colon and not text:
                return f"item {item[:80]!r}: the expected body text after ':' is empty"
        checks.append(SmokeCheck(path, status, contains))
    if not checks:
        return "is empty; give paths such as /healthz,/api/ping"
    if len(checks) > MAX_CHECKS:
        return f"has {len(checks)} checks; at most {MAX_CHECKS}"
    return tuple(checks)


def _conjuncts(expr: Expr) -> list[Expr]:
    if isinstance(expr, And):
        return _conjuncts(expr.left) + _conjuncts(expr.right)
    return [expr]


def rule_host(rule: str) -> str | None:
    """The Host a request needs to match ``rule``: its one top-level ``Host(`x`)``, if any."""
    try:
        expr = parse_rule(rule)
    except RuleSyntaxError:
        return None
    hosts = [
        m.args[0]
        for m in _conjuncts(expr)
        if isinstance(m, Matcher) and m.name == "Host" and len(m.args) == 1
    ]
    return hosts[0] if len(hosts) == 1 else None


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot be a smoke request's Host header, or ``None``."""
    return None if _HOST.match(host) else f"{host[:80]!r} is not a host name"


def judge(check: SmokeCheck, status: int, body: bytes) -> str | None:
    """``None`` when the answer passes ``check``; else what failed, with the body's first bytes."""
    text = body.decode("utf-8", "replace")
    if status == check.status and (check.contains is None or check.contains in text):
        return None
    first = body[:FIRST_BYTES].decode("utf-8", "replace")
    return f"{check.describe()} answered {status}: {first!r}"


def gate_wait(
    checks: tuple[SmokeCheck, ...],
    result: GateResult | None,
    ids: frozenset[str],
    webhook: bool = False,
) -> tuple[bool, str] | None:
    """Where a ready generation's gates stand: ``None`` when they passed (or there are none),
    else (failed, detail) — failed true only when its own gates finished and one failed.

    ``webhook``: a gate webhook must approve too (after the checks pass): one result
    covers both, so neither passes a generation alone."""
    if not checks and not webhook:
        return None
    mine = result if result is not None and result.generation == ids else None
    if mine is not None and mine.finished and mine.passed:
        return None
    if mine is None:
        return False, _gates_named(checks, webhook, "pending")
    if not mine.finished:
        last = f"; last: {mine.failure}" if mine.failure else ""
        return False, _gates_named(checks, webhook, "running") + last
    if mine.by == "webhook":
        return True, f"gate webhook rejected: {mine.failure}"
    return True, f"smoke check failed: {mine.failure}"


def _gates_named(checks: tuple[SmokeCheck, ...], webhook: bool, state: str) -> str:
    if not checks:
        return f"gate webhook {state}"
    names = ", ".join(c.path for c in checks)
    then = ", then the gate webhook" if webhook else ""
    return f"smoke checks through Traefik's preview route {state} ({names}){then}"


def judge_webhook(status: int | None, body: bytes, error: str | None, timeout: float) -> str | None:
    """``None`` when the gate webhook approved (a 2xx in time), else why it rejected.

    ``status`` None: no answer (``error`` says why: refused, unreachable; ``None`` with no
    status: the timeout passed). A 3xx rejects (redirects are not followed: a followed
    POST becomes a GET without the candidate).
    """
    if status is None:
        return f"no answer within {timeout:g}s" if error is None else f"not reached: {error}"
    if 200 <= status < 300:
        return None
    first = body[:FIRST_BYTES].decode("utf-8", "replace")
    redirect = " (redirects are not followed)" if 300 <= status < 400 else ""
    return f"answered {status}{redirect}: {first!r}"


def webhook_problem(url: str) -> str | None:
    """Why ``url`` cannot be a gate webhook (an http(s) URL with a host), or ``None``."""
    match = _WEBHOOK.match(url)
    if match is None:
        return "is not an http:// or https:// URL with a host"
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return "has a bad port"
    return None
