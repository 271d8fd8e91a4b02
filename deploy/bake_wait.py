"""``deploy --bake 60s``: after the switch, keep the old color warm until the bake ends.

The bake is the provider's (``POST /bake``, :mod:`provider.core.bake`): it has
Traefik's metrics and goes on judging if the CLI dies. The CLI starts it once
Traefik applied the switch, then follows ``/status`` (woken by ``/events``)
until it ends. A clean bake lets the deploy drain and stop the old color; a
revert (the provider switched back and marked the new color rejected) fails
the deploy with the figures that breached, the new color left running for a
look (no automatic switch goes back to it); a bake an
operator superseded (a later switch, rollback or canary) fails it with both
colors left as they are.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from deploy.errors import CliError, RolloutFailed
from deploy.rollout import ComposeApi, Rollout
from provider.core.model import Color

#: How long past the bake's own end the CLI waits for the provider's verdict.
GRACE_S = 60.0


@runtime_checkable
class BakeApi(Protocol):
    """The call this adds to the provider API (``deploy.client.ProviderClient``)."""

    def bake(self, service: str, body: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BakePlan:
    """What ``--bake`` asked for; ``None`` limits take the provider's canary defaults."""

    duration: float
    interval: float | None = None
    max_error_rate: float | None = None
    max_p99_ms: float | None = None
    min_requests: int | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"duration": self.duration}
        for key in ("interval", "max_error_rate", "max_p99_ms", "min_requests"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body


def bake_arguments(parser: argparse.ArgumentParser, seconds: Any, percent: Any, ms: Any) -> None:
    """``--bake`` and its analysis options on ``deploy`` (the canary's, renamed)."""
    parser.add_argument(
        "--bake",
        type=seconds,
        default=None,
        metavar="DURATION",
        help="after the switch, keep the old color warm this long while Traefik's metrics "
        "judge the new one; a breach switches back (default: the bluegreen.bake label)",
    )
    parser.add_argument(
        "--bake-interval", type=seconds, default=None, help="analysis window (default 60s)"
    )
    parser.add_argument(
        "--bake-max-error-rate", type=percent, default=None, help="e.g. 1%% (default 1%%)"
    )
    parser.add_argument("--bake-max-p99", type=ms, default=None, help="e.g. 500ms (default none)")
    parser.add_argument(
        "--bake-min-requests", type=int, default=None, help="per window (default 50)"
    )


def plan_of(args: argparse.Namespace) -> BakePlan | None:
    if args.bake is None:
        return None
    return BakePlan(
        args.bake,
        args.bake_interval,
        args.bake_max_error_rate,
        args.bake_max_p99,
        args.bake_min_requests,
    )


def running_bake(run: Rollout, target: Color) -> Mapping[str, Any] | None:
    """The provider's running bake of ``target`` (its ``bluegreen.bake`` label), if any."""
    bake = run.client.status(run.service).get("bake")
    if isinstance(bake, dict) and bake.get("phase") == "running":
        return bake if bake.get("color") == str(target) else None
    return None


def bake_after_switch(
    run: Rollout,
    compose: ComposeApi,
    plan: BakePlan | None,
    new_name: str,
    colors: tuple[Color, Color],
) -> None:
    """Start the bake of ``target`` (or follow the label's) and wait for its end; raise
    unless it passed. Without ``--bake`` and without a running bake: nothing to wait for."""
    target, old = colors
    started = running_bake(run, target)
    if started is None and plan is None:
        return
    if started is None and plan is not None:
        client = run.client
        if not isinstance(client, BakeApi):
            raise CliError("this provider client cannot start a bake")
        started = client.bake(run.service, plan.body())["bake"]
    assert started is not None
    duration = float(started["duration"])
    run.out.line(
        f"baking {target} for {duration:g}s ({old} kept warm; judged every "
        f"{started['interval']:g}s: error rate ≤ {started['max_error_rate']:.2%}, "
        f"at least {started['min_requests']} requests per window)"
    )
    deadline = run.clock() + duration + float(started["interval"]) + GRACE_S
    bake = _wait_end(run, float(started["started"]), deadline)
    phase, reason = bake["phase"], bake.get("reason") or ""
    if phase == "passed":
        run.out.line(f"bake passed: {reason}")
        return
    if phase == "reverted":
        run.out.line(f"bake breached: {reason}; the provider switched back to {old}")
        raise RolloutFailed(
            f"{run.service}: the bake reverted the release: {reason}{_figures(bake)}; "
            f"{old} serves again; {target} is marked rejected and left running for a look "
            f"(`{compose.hint('stop', new_name)}` stops it)"
        )
    raise RolloutFailed(
        f"{run.service}: the bake ended {phase}: {reason}; both colors are left as they are "
        f"(see `bluegreen status {run.service}`)"
    )


def _figures(bake: Mapping[str, Any]) -> str:
    figures = bake.get("figures")
    if not figures:
        return ""
    p99 = figures.get("p99_ms")
    latency = f", p99 {p99:.0f} ms" if p99 is not None else ""
    return f" ({figures['errors']} errors in {figures['requests']} requests{latency})"


def _wait_end(run: Rollout, started: float, deadline: float) -> Mapping[str, Any]:
    """Until the bake that started at ``started`` ended; its document then."""
    with run.event_stream() as stream:
        while True:
            bake = run.client.status(run.service).get("bake")
            if not isinstance(bake, dict) or bake.get("started") != started:
                raise RolloutFailed(f"{run.service}: the bake was replaced by another one")
            if bake.get("phase") != "running":
                return bake
            now = run.clock()
            if now >= deadline:
                raise RolloutFailed(
                    f"{run.service}: the bake had not ended by its deadline; the provider "
                    "still judges it and both colors are left running"
                )
            if stream is None or stream.ended:
                run.sleep(run.poll_interval)
            else:
                stream.wait(min(deadline - now, 5.0))


def status_lines(doc: Any) -> list[str]:
    """``bluegreen status``: one line per service with a running bake, or one that reverted."""
    if not isinstance(doc, dict):
        return []
    services = doc.get("services")
    docs = services if isinstance(services, dict) else {str(doc.get("service")): doc}
    lines = []
    for name, svc in sorted(docs.items()):
        bake = svc.get("bake") if isinstance(svc, dict) else None
        if not isinstance(bake, dict):
            continue
        if bake.get("phase") == "running":
            lines.append(
                f"{name}: baking {bake['color']} ({bake['old']} kept warm), "
                f"{bake['judged']} clean window(s) so far"
            )
        elif bake.get("phase") in ("reverted", "failed"):
            lines.append(f"{name}: the bake of {bake['color']} {bake['phase']}: {bake['reason']}")
    return lines
