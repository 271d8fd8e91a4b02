"""``bluegreen canary``: deploy the idle color and hand it to the provider's canary.

The provider owns the canary (it survives this command): the CLI reserves it
(``POST /canary`` with ``await_ready``, so the watcher cannot promote the new
color on its own), brings the color up with the deploy's compose steps, and
follows ``/status`` step by step. Promoted: exit 0. Aborted (a breach, the
color lost, an operator): the new containers are stopped, the live color is
untouched, exit 1. Ctrl-C aborts; ``--detach`` leaves the provider in charge.

As in ``deploy/deploy_rollout.py``, each step belongs to a :class:`Phase`
whose value is what a failure or Ctrl-C cleans up.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from deploy.errors import CliError, ComposeFileProblem, Interrupted, RolloutFailed, UsageError
from deploy.rollout import (
    DEFAULT_COMPOSE_SERVICE,
    Clock,
    ComposeApi,
    Outcome,
    ProviderApi,
    Reporter,
    Rollout,
    Sleep,
    compose_step,
    stop_after_interrupt,
)
from provider.core.model import Color


class CanaryApi(ProviderApi, Protocol):
    """The provider's API plus the canary calls (``deploy.client.ProviderClient``)."""

    def canary(self, service: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def canary_abort(self, service: str) -> dict[str, Any]: ...


class Phase(enum.Enum):
    """Where a canary rollout stands; the value is what a failure or Ctrl-C cleans up."""

    #: Asking the provider, reading the compose file: nothing was reserved or started.
    PREPARING = "nothing"
    #: From the reservation (``POST /canary``) until the provider promotes or aborts:
    #: abort the canary, then stop the new color unless the provider made it active.
    CANARY = "abort the canary, stop the new color unless active"
    #: Promoted, or ``--detach`` handed the canary to the provider: leave both colors.
    HANDED_OVER = "leave both colors as they are"


@dataclass(frozen=True)
class CanaryPlan:
    """What ``bluegreen canary`` was asked to do."""

    service: str
    image: str | None
    steps: list[int]
    interval: str
    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    min_requests: int | None = None
    timeout: float = 180.0
    detach: bool = False
    compose_service: str = DEFAULT_COMPOSE_SERVICE
    poll_interval: float = 0.5

    def compose_name(self, color: Color) -> str:
        return self.compose_service.format(service=self.service, color=color)

    def body(self, color: Color) -> dict[str, Any]:
        body: dict[str, Any] = {
            "color": color,
            "steps": self.steps,
            "interval": self.interval,
            "await_ready": True,
        }
        for key in ("max_error_rate", "max_p99_ms", "min_requests"):
            if getattr(self, key) is not None:
                body[key] = getattr(self, key)
        return body


def parse_percent(raw: str) -> float:
    """``1%`` or ``0.01``: an error-rate limit as a fraction."""
    text = raw.strip()
    value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    if not 0 <= value <= 1:
        raise ValueError("expected a rate such as 1% or 0.01")
    return value


def parse_ms(raw: str) -> float:
    """``500ms``, ``1.5s`` or a number of milliseconds."""
    text = raw.strip()
    if text.endswith("ms"):
        return float(text[:-2])
    if text.endswith("s"):
        return float(text[:-1]) * 1000
    return float(text)


def _figures(result: dict[str, Any]) -> str:
    fig = result.get("figures") or {}
    if not fig:
        return str(result.get("detail", ""))
    p99 = fig.get("p99_ms")
    latency = f", p99 {p99:.0f} ms" if isinstance(p99, int | float) else ""
    return (
        f"{fig.get('requests', 0)} requests, {fig.get('errors', 0)} errors "
        f"({100 * float(fig.get('error_rate', 0)):.2f} %){latency}"
    )


def canary_rollout(
    client: CanaryApi,
    open_compose: Callable[[], ComposeApi],
    plan: CanaryPlan,
    out: Reporter,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Outcome:
    """Reserve, deploy, follow; a failure cleans up by phase (RolloutFailed, Interrupted)."""
    started = clock()
    run = Rollout(client, plan.service, out, clock, sleep, plan.poll_interval)
    snap = run.snapshot()
    if not snap.adopted or snap.active is None:
        raise UsageError(f"{plan.service} has no live color yet: run `bluegreen deploy` first")
    active = snap.active
    target = active.other
    compose = open_compose()
    new_name = plan.compose_name(target)
    if plan.image:
        compose.check_image(new_name, plan.image)
    client.canary(plan.service, plan.body(target))
    phase = Phase.CANARY
    out.line(
        f"{plan.service}: {active} is live; canary of {plan.image or 'the compose image'} on "
        f"{target}, steps {plan.steps}, interval {plan.interval} (provider-owned)"
    )
    try:
        compose_step(compose, new_name, lambda: compose.up(new_name, plan.image))
        out.line(f"{compose.noun} started {new_name}; the first step starts once it is ready")
        final = _follow(client, plan, out, clock, sleep, started + plan.timeout)
        if final is None:
            phase = Phase.HANDED_OVER
            return Outcome(
                "canary started (detached)", plan.service, active, target, clock() - started
            )
        if final.get("phase") != "promoted":
            why = str(final.get("reason") or "aborted")
            raise _failed(run, client, compose, plan, target, active, why)
        phase = Phase.HANDED_OVER
        out.line(f"switched {plan.service}: {active} → {target} (canary)")
        return Outcome(
            "canary promoted", plan.service, active, target, clock() - started, image=plan.image
        )
    except KeyboardInterrupt:
        raise _interrupted(phase, run, client, compose, plan, target, active) from None
    except RolloutFailed:
        raise  # _failed cleaned up already
    except ComposeFileProblem:
        _abort(client, plan.service, out)  # the compose file lacks the service: nothing started
        raise
    except CliError as exc:
        if phase is not Phase.CANARY:
            raise
        raise _failed(run, client, compose, plan, target, active, exc.message) from exc


def _interrupted(
    phase: Phase,
    run: Rollout,
    client: CanaryApi,
    compose: ComposeApi,
    plan: CanaryPlan,
    target: Color,
    active: Color,
) -> Interrupted:
    """Ctrl-C: clean up by ``phase`` and say what runs now."""
    if phase is Phase.CANARY:
        run.out.line("interrupted: aborting the canary")
        _abort(client, plan.service, run.out)
        stop_after_interrupt(run, compose, plan.compose_name(target), target)
        return Interrupted(
            f"canary interrupted; {active} keeps serving {plan.service} and the new {target} "
            "containers were stopped"
        )
    return Interrupted(
        f"interrupted after the canary was handed over: see `bluegreen status {plan.service}`"
    )


def _abort(client: CanaryApi, service: str, out: Reporter) -> None:
    """Abort the canary at the provider (weight 0, the color rejected); a failure is reported."""
    try:
        client.canary_abort(service)
    except CliError as exc:
        out.line(f"abort failed: {exc.message}")


def _failed(
    run: Rollout,
    client: CanaryApi,
    compose: ComposeApi,
    plan: CanaryPlan,
    target: Color,
    active: Color,
    why: str,
) -> RolloutFailed:
    """The canary ended without promotion: abort it (if it still runs), stop the new color."""
    _abort(client, plan.service, run.out)
    try:
        left = run.stop_unless_active(compose, plan.compose_name(target), target)
    except CliError as cleanup:
        left = f"stopping them failed: {cleanup.message}"
    fate = "were stopped" if left is None else f"were left running ({left})"
    return RolloutFailed(
        f"canary of {plan.service} on {target} aborted: {why}\n"
        f"{active} keeps serving; the new {target} containers {fate}."
    )


def _follow(
    client: CanaryApi,
    plan: CanaryPlan,
    out: Reporter,
    clock: Clock,
    sleep: Sleep,
    deadline: float,
) -> dict[str, Any] | None:
    """Print each step as the provider reports it; the finished canary (``None``: detached)."""
    shown_results = 0
    last_key: tuple[Any, ...] = ()
    while True:
        doc = client.status(plan.service).get("canary") or {}
        phase = doc.get("phase")
        key = (phase, doc.get("step"), doc.get("extensions"))
        if key != last_key:
            last_key = key
            if phase == "running":
                out.line(
                    f"step {int(doc.get('step', 0)) + 1}/{len(doc.get('steps', [])) - 1}: "
                    f"{doc.get('color')} weight {doc.get('weight')} % "
                    f"(analysis: {doc.get('analysis')})"
                )
        results = doc.get("results") or []
        for result in results[shown_results:]:
            out.line(f"  step {int(result['step']) + 1} {result['verdict']}: {_figures(result)}")
        shown_results = len(results)
        for warning in doc.get("warnings") or []:
            if key == last_key and phase != "running":
                out.line(f"  warning: {warning}")
        if phase in ("promoted", "aborted"):
            return dict(doc)
        if phase == "running" and plan.detach:
            out.line("--detach: the provider drives the canary; follow it with `bluegreen status`")
            return None
        if phase == "waiting" and clock() > deadline:
            client.canary_abort(plan.service)
            out.line(f"the new containers were not ready within {plan.timeout:g}s")
            return client.status(plan.service).get("canary") or {"phase": "aborted"}
        sleep(plan.poll_interval)
