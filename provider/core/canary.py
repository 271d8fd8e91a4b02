"""The canary state machine: weights, steps, and the verdict of each step.

Pure: no asyncio, aiohttp or aiodocker. A :class:`Canary` is part of the
persisted :class:`provider.core.model.State` (``State.canaries``): its values
(``Canary``, ``Phase``, ``Verdict``, ``Limits``, ``StepResult``) live in
``provider/core/model.py`` and are re-exported here; :func:`apply` is
the one place its phase changes, and it refuses an event on a canary that is
no longer running (:class:`CanaryNotRunning`). :func:`judge` turns one step's
figures (:mod:`provider.core.canary_analysis`) and the color's health into a
verdict. The controller persists every change before it is served.

A step with weight 100 is the switch itself: when the step before it passes
(or an operator promotes), the provider switches with reason ``canary``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from provider.core import maintenance
from provider.core.canary_analysis import Window
from provider.core.model import (
    Canary,
    Color,
    ColorMark,
    Limits,
    MarkKind,
    Phase,
    ServiceState,
    State,
    StepResult,
    SwitchRecord,
    Verdict,
)
from provider.core.refusals import BadCommand, CanaryNotRunning, CanaryRefused
from provider.core.state_json import figures_doc

#: Public: this module's own names and the canary's values it re-exports from the model.
__all__ = [
    "ABORTING",
    "DEFAULT_INTERVAL",
    "DEFAULT_STEPS",
    "MAX_INTERVAL",
    "MAX_STEPS",
    "PASSING",
    "REASON_ABORT",
    "REASON_PROMOTE",
    "REASON_STEP",
    "RECORD_ONLY",
    "Canary",
    "ColorReady",
    "Event",
    "Limits",
    "OperatorAbort",
    "OperatorPromote",
    "Phase",
    "StepResult",
    "Verdict",
    "apply",
    "breach",
    "figures",
    "judge",
    "running",
    "stale_pass",
    "start",
    "weights",
    "with_canary",
    "with_record",
    "with_rejected",
]

#: History reasons: a passed or extended step, the promotion, the abort.
REASON_STEP = "canary-step"
REASON_PROMOTE = "canary"
REASON_ABORT = "canary-abort"
#: History records that do not change the active color (a canary's, maintenance's).
RECORD_ONLY = frozenset({REASON_STEP, REASON_ABORT}) | maintenance.REASONS

DEFAULT_STEPS = (5, 25, 50, 100)
DEFAULT_INTERVAL = 60.0
MAX_STEPS = 20
MAX_INTERVAL = 86400.0


PASSING = (Verdict.PASS, Verdict.PASS_HEALTH_ONLY)
ABORTING = (Verdict.BREACH, Verdict.NOT_READY, Verdict.NO_FIGURES)


@dataclass(frozen=True)
class OperatorAbort:
    """``POST /canary/abort`` (or the CLI's Ctrl-C), or a switch that ends the canary."""

    reason: str
    reject: bool = True


@dataclass(frozen=True)
class OperatorPromote:
    """``POST /canary/promote``: skip to 100."""

    actor: str = "api"


@dataclass(frozen=True)
class ColorReady:
    """A waiting canary's new containers are ready: its first step starts."""


Event = StepResult | OperatorAbort | OperatorPromote | ColorReady


def start(
    service: str,
    color: Color,
    base: Color,
    *,
    steps: tuple[int, ...],
    interval: float,
    limits: Limits,
    now: float,
    await_after: float | None = None,
) -> Canary:
    """A new canary at its first step, or WAITING for containers created after ``await_after``.

    ``steps`` end at 100 (see :func:`parse_steps`).
    """
    if color is base:
        raise CanaryRefused(
            f"{color} is the active color of {service}; a canary needs the idle one"
        )
    if steps == (100,):
        raise BadCommand("field 'steps' needs a step below 100 (use POST /switch to switch)")
    phase = Phase.RUNNING if await_after is None else Phase.WAITING
    return Canary(
        service, color, base, steps, interval, limits, now, now, phase, created_after=await_after
    )


def judge(
    canary: Canary,
    window: Window | None,
    *,
    ready: bool,
    metrics: bool,
    max_extensions: int,
    now: float,
) -> StepResult:
    """The verdict of the current step.

    ``ready``: the canary color still has its replicas routable. ``metrics``:
    a Traefik metrics URL is configured (without one a canary is health-gated
    and time-based). ``window``: the step's figures, ``None`` when the scrape
    failed. Too few requests extend the step up to ``max_extensions`` times,
    then it passes on health alone (with a warning); missing figures extend it
    too, then abort: an unmeasured canary is never promoted on hope.
    """

    def result(verdict: Verdict, detail: str) -> StepResult:
        return StepResult(
            canary.step, canary.weight, verdict, detail, now, window, canary.extensions
        )

    more = canary.extensions < max_extensions
    if not ready:
        return result(Verdict.NOT_READY, f"{canary.color} stopped being ready")
    if not metrics:
        return result(Verdict.PASS_HEALTH_ONLY, "no Traefik metrics URL: health-gated only")
    if window is None:
        if more:
            return result(Verdict.EXTEND, "Traefik's metrics could not be read; step extended")
        return result(Verdict.NO_FIGURES, "Traefik's metrics could not be read in any extension")
    limits = canary.limits
    breached = breach(limits, window)
    if breached is not None:
        return result(Verdict.BREACH, breached)
    if window.requests < limits.min_requests:
        if more:
            return result(
                Verdict.EXTEND,
                f"{window.requests} of {limits.min_requests} requests; step extended",
            )
        return result(
            Verdict.PASS_HEALTH_ONLY,
            f"only {window.requests} of {limits.min_requests} requests after "
            f"{canary.extensions} extension(s): passed on health alone",
        )
    return result(Verdict.PASS, f"{window.errors} errors in {window.requests} requests")


def breach(limits: Limits, window: Window) -> str | None:
    """Why ``window`` breaches ``limits`` (error rate, then p99), or ``None``.

    Shared by a canary's steps and a bake's windows (``provider/core/bake.py``):
    one analysis, whoever judges.
    """
    if window.requests > 0 and window.error_rate > limits.max_error_rate:
        return (
            f"error rate {window.error_rate:.2%} above {limits.max_error_rate:.2%} "
            f"({window.errors} of {window.requests} requests)"
        )
    p99, max_p99 = window.p99_ms, limits.max_p99_ms
    if max_p99 is not None and p99 is not None and p99 > max_p99:
        return f"p99 {p99:.0f} ms above {max_p99:.0f} ms"
    return None


def apply(canary: Canary, event: Event, now: float) -> Canary:
    """The canary after ``event``: the only place a canary's phase or step changes."""
    if not canary.running:
        raise CanaryNotRunning(
            f"the canary of {canary.service} is {canary.phase}; start a new one with POST /canary"
        )
    if isinstance(event, OperatorPromote):
        return replace(canary, phase=Phase.PROMOTED, ended=now, reason=f"promoted by {event.actor}")
    if isinstance(event, OperatorAbort):
        return replace(canary, phase=Phase.ABORTED, ended=now, reason=event.reason)
    if isinstance(event, ColorReady):
        if canary.phase is not Phase.WAITING:
            raise CanaryNotRunning(f"the canary of {canary.service} is already stepping")
        return replace(canary, phase=Phase.RUNNING, step_started=now)
    if canary.phase is Phase.WAITING:
        raise CanaryNotRunning(f"the canary of {canary.service} waits for {canary.color}")
    if event.verdict is Verdict.EXTEND:
        return replace(canary, extensions=canary.extensions + 1)
    results = (*canary.results, event)
    if event.verdict in ABORTING:
        return replace(canary, phase=Phase.ABORTED, results=results, ended=now, reason=event.detail)
    warnings = canary.warnings
    if event.verdict is Verdict.PASS_HEALTH_ONLY:
        warnings = (*warnings, f"step {event.step + 1} ({event.weight}%): {event.detail}")
    nxt = canary.step + 1
    if nxt >= len(canary.steps) or canary.steps[nxt] >= 100:
        return replace(
            canary,
            phase=Phase.PROMOTED,
            step=min(nxt, len(canary.steps) - 1),
            results=results,
            warnings=warnings,
            ended=now,
            reason="every step passed",
        )
    return replace(
        canary,
        step=nxt,
        extensions=0,
        step_started=now,
        results=results,
        warnings=warnings,
    )


def stale_pass(event: Event, *, ready: bool) -> bool:
    """A passing verdict for a color that is not ready any more: it must not be applied.

    A step is judged on a scrape made without the controller's lock; the
    containers may have gone meanwhile. Applied, the last step's pass would
    switch the service to a color without servers (issue 19, defect 2).
    """
    return isinstance(event, StepResult) and event.verdict in PASSING and not ready


# -- the persisted State ------------------------------------------------------


def running(state: State, service: str) -> Canary | None:
    """The service's canary if one runs."""
    canary = state.canaries.get(service)
    return canary if canary is not None and canary.running else None


def with_canary(state: State, canary: Canary) -> State:
    """``state`` holding ``canary`` as its service's (latest) canary."""
    canaries = dict(state.canaries)
    canaries[canary.service] = canary
    return replace(state, canaries=canaries)


def with_record(
    state: State,
    service: str,
    from_color: Color | None,
    to_color: Color,
    *,
    reason: str,
    actor: str,
    now: float,
    detail: Mapping[str, Any] | None,
    history_limit: int,
) -> tuple[State, SwitchRecord]:
    """Append a history record that is not a switch (a canary step, an abort)."""
    seq = state.seq + 1
    record = SwitchRecord(service, from_color, to_color, reason, actor, now, seq, detail=detail)
    history = (*state.history, record)[-history_limit:]
    return replace(state, history=history, seq=seq), record


def with_rejected(state: State, service: str, color: Color, *, since: float, reason: str) -> State:
    """Mark ``color`` REJECTED (an aborted canary): no automatic switch goes there."""
    current = state.services.get(service) or ServiceState(active=color.other, first_seen=since)
    marks = dict(current.marks)
    marks[color] = ColorMark(MarkKind.REJECTED, since, reason)
    services = dict(state.services)
    services[service] = replace(current, marks=marks)
    return replace(state, services=services)


def weights(state: State) -> dict[str, dict[Color, int]]:
    """The weights of every stepping canary, for the renderer."""
    return {
        name: c.weights() for name, c in sorted(state.canaries.items()) if c.phase is Phase.RUNNING
    }


def figures(result: StepResult) -> dict[str, Any]:
    """A history record's ``detail`` for one judged step."""
    out: dict[str, Any] = {"step": result.step, "weight": result.weight}
    out["verdict"] = str(result.verdict)
    if result.window is not None:
        out.update(figures_doc(result.window))
    return out
