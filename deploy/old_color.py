"""After the switch: wait for Traefik's apply, drain the old color by evidence, stop it.

Step 4 of ``bluegreen deploy`` (``deploy/deploy_rollout.py``), apart because it
holds its own decisions: nothing is drained before Traefik applied the switch
(``deploy/applied.py``), the drain ends on the evidence of the old containers'
connections (``deploy/drain.py``), and a stream cut at the stop is reported,
never passed off as clean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from deploy.applied import SwitchedAway, TraefikNotApplied, wait_applied
from deploy.bake_wait import bake_after_switch, running_bake
from deploy.drain import ConnectionProbe, DrainReport, StopWatch, drain
from deploy.drain_policy import DrainPolicy
from deploy.errors import CliError, RolloutFailed
from deploy.rollout import ComposeApi, Rollout
from deploy.snapshot import ServiceSnapshot
from provider.core.model import Color

if TYPE_CHECKING:
    from deploy.deploy_rollout import DeployPlan


def retire_old(
    run: Rollout,
    compose: ComposeApi,
    plan: DeployPlan,
    target: Color,
    active: Color | None,
    probe: ConnectionProbe,
) -> tuple[DrainReport, tuple[str, ...]] | None:
    """Drain, then stop the old color unless ``--keep-old``.

    Returns None when nothing was stopped, else how the drain went and the old
    containers that were killed with connections open (their streams were cut).
    """
    if active is None:
        return None
    if plan.bake is not None or running_bake(run, target):  # --bake or bluegreen.bake
        _wait_traefik(run, compose, plan, target, active)  # judged first, the old color warm
        bake_after_switch(run, compose, plan.bake, plan.compose_name(target), (target, active))
    if plan.keep_old:
        run.out.line(f"--keep-old: {active} keeps running for an instant rollback")
        return None
    old_name = plan.compose_name(active)
    _wait_traefik(run, compose, plan, target, active)
    if plan.bake is None and running_bake(run, target):
        # The provider starts a bluegreen.bake label's bake in a commit of its own, right
        # after the promotion this CLI saw: it may land after the look above, not after
        # Traefik's apply. Stopping the old color under it would leave a breach nothing
        # to revert to.
        bake_after_switch(run, compose, None, plan.compose_name(target), (target, active))
    ids, ports = _running(run, active)
    run.out.line(
        f"draining {active} ({old_name}): until no connection is open to it, "
        f"at most {plan.drain_timeout:g}s"
    )
    report = drain(probe, ids, ports, DrainPolicy(plan.drain_timeout), run.clock, run.sleep)
    run.out.line(report.describe())
    with StopWatch(probe, ids, ports) as watch:
        left = run.stop_unless_active(compose, old_name, active, "old", ids)
    if left is not None:
        raise RolloutFailed(
            f"{plan.service}: {left}, so {active} was not stopped and is left running "
            f"(see `bluegreen history {plan.service}` and `bluegreen status "
            f"{plan.service}`)"
        )
    # What was open when the processes died; else when the drain ended (nothing seen since).
    last_open = watch.last if watch.last is not None else report.open_at_stop
    cut = tuple(probe.killed(ids)) if last_open else ()
    if cut:
        run.out.line(
            f"warning: {len(cut)} {active} container(s) were killed (SIGKILL after the stop "
            f"grace period, or a SIGTERM they did not handle) with {last_open} "
            "connection(s) open: streams were cut"
        )
    _check_still_serving(run, plan.service, target, active)
    return report, cut


def _running(run: Rollout, color: Color) -> tuple[list[str], set[int]]:
    """The old color's running containers and the ports Traefik reaches them on."""
    snap: ServiceSnapshot | None
    try:
        snap = run.snapshot()
    except CliError:
        snap = run.last
    if snap is None:
        return [], set()
    running = [c for c in snap.color(color).containers if c.state == "running"]
    ports = {urlsplit(c.address).port or 80 for c in running if c.address}
    return [c.id for c in running], ports


def _wait_traefik(
    run: Rollout, compose: ComposeApi, plan: DeployPlan, target: Color, active: Color
) -> None:
    """Nothing is drained or stopped before Traefik applied the switch; else fail, keep active."""
    run.out.line(f"waiting until Traefik applied the switch (timeout {plan.apply_timeout:g}s)")
    try:
        result = wait_applied(
            run.client, plan.service, target, plan.apply_timeout, clock=run.clock, sleep=run.sleep
        )
    except SwitchedAway as exc:
        raise _switched_away(run, compose, plan, target, exc) from exc
    except TraefikNotApplied as exc:
        old_name = plan.compose_name(active)
        raise RolloutFailed(
            f"{exc.message}\n{active} ({old_name}) keeps running, since Traefik may still route "
            f"{plan.service} to it; the provider serves {target}. Once `bluegreen status "
            f"{plan.service}` shows it applied by Traefik, stop {active} with "
            f"`{compose.hint('stop', old_name)}`."
        ) from exc
    run.out.line(result.describe())


def _switched_away(
    run: Rollout, compose: ComposeApi, plan: DeployPlan, target: Color, exc: SwitchedAway
) -> RolloutFailed:
    """The switch was undone before Traefik applied it: a bake's revert says why."""
    bake = run.client.status(plan.service).get("bake")
    if (
        isinstance(bake, dict)
        and bake.get("color") == str(target)
        and bake.get("phase") == "reverted"
    ):
        return RolloutFailed(
            f"{plan.service}: the bake reverted the release before Traefik applied it: "
            f"{bake.get('reason')}; {exc.active} serves again; {target} is marked rejected "
            f"and left running for a look "
            f"(`{compose.hint('stop', plan.compose_name(target))}` stops it)"
        )
    return RolloutFailed(
        f"{plan.service}: {exc.message}; both colors are left running (see `bluegreen "
        f"history {plan.service}` and `bluegreen status {plan.service}`)"
    )


def _check_still_serving(run: Rollout, service: str, target: Color, old: Color) -> None:
    """After stopping the old color, say so if the new one serves nothing (exit 1).

    The retire mark keeps the watcher from rolling back to the color being
    stopped, so a new color that died during the drain leaves the service
    without a backend: the exit code must not claim success.
    """
    try:
        now = run.snapshot()
    except CliError:
        return
    if now.active == target and now.color(target).routable == 0:
        raise RolloutFailed(
            f"{service}: {old} was stopped, but {target} (active) has no routable container "
            f"now, so nothing serves {service}. Look at `bluegreen status {service}`; "
            f"`bluegreen rollback {service}` restarts {old} and switches back."
        )
