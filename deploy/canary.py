"""``bluegreen canary``: deploy the idle color and hand it to the provider's canary.

The provider owns the canary (it survives this command): the CLI reserves it
(``POST /canary`` with ``await_ready``, so the watcher cannot promote the new
color on its own), brings the color up with the deploy's compose steps, and
follows ``/status`` step by step. Promoted: exit 0. Aborted (a breach, the
color lost, an operator): the new containers are stopped, the live color is
untouched, exit 1. Ctrl-C aborts; ``--detach`` leaves the provider in charge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deploy.client import ProviderClient
from deploy.compose import Compose
from deploy.errors import CliError, Interrupted, RolloutFailed, UsageError
from deploy.rollout import Clock, Outcome, Reporter, Sleep, _compose_step, _Rollout
from deploy.snapshot import other_color


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
    compose_service: str = "{service}-{color}"
    poll_interval: float = 0.5

    def compose_name(self, color: str) -> str:
        return self.compose_service.format(service=self.service, color=color)

    def body(self, color: str) -> dict[str, Any]:
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
    client: ProviderClient,
    open_compose: Callable[[], Compose],
    plan: CanaryPlan,
    out: Reporter,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Outcome:
    """Reserve, deploy, follow; raise :class:`RolloutFailed` when the canary is aborted."""
    started = clock()
    run = _Rollout(client, plan.service, out, clock, sleep, plan.poll_interval)
    snap = run.snapshot()
    if not snap.adopted or snap.active is None:
        raise UsageError(f"{plan.service} has no live color yet: run `bluegreen deploy` first")
    active = snap.active
    target = other_color(active)
    compose = open_compose()
    new_name = plan.compose_name(target)
    if plan.image:
        compose.check_image(new_name, plan.image)
    client.canary(plan.service, plan.body(target))
    out.line(
        f"{plan.service}: {active} is live; canary of {plan.image or 'the compose image'} on "
        f"{target}, steps {plan.steps}, interval {plan.interval} (provider-owned)"
    )
    try:
        try:
            _compose_step(compose, new_name, lambda: compose.up(new_name, plan.image))
        except CliError:
            client.canary_abort(plan.service)
            raise
        out.line(f"compose started {new_name}; the first step starts once it is ready")
        final = _follow(client, plan, out, clock, sleep, started + plan.timeout)
    except KeyboardInterrupt:
        out.line("interrupted: aborting the canary")
        try:
            client.canary_abort(plan.service)
        except CliError as exc:
            out.line(f"abort failed: {exc.message}")
        run.stop_unless_active(compose, new_name, target)
        raise Interrupted(
            f"canary interrupted; {active} keeps serving {plan.service} and the new {target} "
            "containers were stopped"
        ) from None
    if final is None:  # detached
        return Outcome("canary started (detached)", plan.service, active, target, clock() - started)
    if final.get("phase") == "promoted":
        out.line(f"switched {plan.service}: {active} → {target} (canary)")
        return Outcome(
            "canary promoted", plan.service, active, target, clock() - started, image=plan.image
        )
    reason = final.get("reason") or "aborted"
    left = run.stop_unless_active(compose, new_name, target)
    fate = "were stopped" if left is None else f"were left running ({left})"
    raise RolloutFailed(
        f"canary of {plan.service} on {target} aborted: {reason}\n"
        f"{active} keeps serving; the new {target} containers {fate}."
    )


def _follow(
    client: ProviderClient,
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
