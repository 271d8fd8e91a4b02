"""``bluegreen deploy``: bring up the idle color with a new image and switch to it.

For service S whose active color is A and idle color T:

1. ask the provider which color is active (a service it does not know yet is
   a first deploy, to blue);
2. ``compose up -d --no-deps --force-recreate S-T`` with ``BLUEGREEN_IMAGE``;
3. follow T's new containers (created → starting → healthy) through
   ``/status`` until the provider promotes T (or switch through the API when
   the service is ``promote=manual`` or auto-promotion is off);
4. wait until Traefik applied the switch (``--apply-timeout``; else A keeps
   running and the deploy fails naming the cause: ``deploy/applied.py``); with
   ``--bake`` let the provider judge T while A stays warm (``deploy/bake_wait.py``);
   unless ``--keep-old``, drain A by evidence (``deploy/drain.py``), then
   ``compose stop S-A`` with the service's stop grace period;
5. one summary line; exit 8 if A was killed with connections open.

Each step belongs to a :class:`Phase`, and each phase has one cleanup rule
for a failure or Ctrl-C: before the switch the new containers are stopped
(traffic never depended on them; unless the provider already made T active,
which is checked, not assumed), after it both colors are left as they are.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from deploy.applied import DEFAULT_TIMEOUT_S as DEFAULT_APPLY_TIMEOUT_S
from deploy.bake_wait import BakePlan
from deploy.drain import BlindProbe, ConnectionProbe, DrainReport
from deploy.drain_policy import DEFAULT_TIMEOUT_S
from deploy.errors import (
    CliError,
    ComposeFileProblem,
    EngineUnreachable,
    Interrupted,
    MissingToken,
    RolloutFailed,
    UnknownServiceError,
)
from deploy.maintenance_cli import DeployWindow, MaintenancePlan
from deploy.old_color import retire_old
from deploy.progress import RolloutTracker, Verdict
from deploy.release_step import ReleasePlan, before_new_color
from deploy.rollout import (
    DEFAULT_COMPOSE_SERVICE,
    Clock,
    ComposeApi,
    Outcome,
    ProviderApi,
    Reporter,
    Rollout,
    Sleep,
    check_token,
    compose_step,
    describe_containers,
    new_containers,
    record_image,
    stop_after_interrupt,
)
from deploy.snapshot import ContainerSnapshot, ServiceSnapshot
from provider.core.model import Color, PromoteMode

#: How the old color went: its drain and the containers killed with streams open (None: kept).
Retired = tuple[DrainReport, tuple[str, ...]] | None


class Phase(enum.Enum):
    """Where a deploy stands; the value is what a failure or Ctrl-C cleans up."""

    #: Asking the provider, reading the compose file: nothing was started, nothing to clean.
    PREPARING = "nothing"
    #: ``compose up`` and following the new color until the provider switches:
    #: stop the new containers, unless the provider made their color active meanwhile.
    STARTING_NEW = "stop the new color unless active"
    #: Traffic is on the new color (drain, stop the old one): leave both as they are.
    SWITCHED = "leave both colors as they are"


@dataclass(frozen=True)
class DeployPlan:
    """What ``bluegreen deploy`` was asked to do."""

    service: str
    image: str | None = None
    timeout: float = 180.0
    drain_timeout: float = DEFAULT_TIMEOUT_S
    apply_timeout: float = DEFAULT_APPLY_TIMEOUT_S
    keep_old: bool = False
    compose_service: str = DEFAULT_COMPOSE_SERVICE
    poll_interval: float = 0.25
    #: ``--release`` / the ``bluegreen.release`` label: run before the new color starts.
    release: ReleasePlan | None = None
    #: ``--maintenance``: the public gets a 503 page from before the release step to the switch.
    maintenance: MaintenancePlan | None = None
    labels: tuple[tuple[str, str], ...] = ()  #: ``--smoke``: the new color's gate labels
    bake: BakePlan | None = None  #: ``--bake``: judged after the switch, old color warm

    def compose_name(self, color: Color) -> str:
        return self.compose_service.format(service=self.service, color=color)


def deploy(
    client: ProviderApi,
    open_compose: Callable[[], ComposeApi],
    plan: DeployPlan,
    out: Reporter,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    probe: ConnectionProbe | None = None,
) -> Outcome:
    """Steps 1-5; a failure cleans up by phase and raises RolloutFailed or Interrupted.

    ``probe`` sees the old color's connections (None: it cannot, so the drain waits
    ``drain_timeout``).
    """
    started = clock()
    run = Rollout(client, plan.service, out, clock, sleep, plan.poll_interval)
    # 1. Which color is live?
    snap, active = _live_color(client, run, plan, out)
    target = active.other if active else Color.BLUE
    compose = open_compose()
    new_name = plan.compose_name(target)
    image = plan.image or "the compose file's image"
    live = f"{active} is live" if active else "first deploy"
    out.line(f"{plan.service}: {live}; deploying {image} to {target} ({compose.describe()})")
    # What exists before `up`: everything else of the target color is what compose creates.
    before = [c.id for c in snap.color(target).containers] if snap is not None else []
    try:  # may pull the image: a while, and nothing is started yet
        pins = bool(plan.image) and compose.check_image(new_name, plan.image or "")
    except KeyboardInterrupt:
        raise Interrupted(
            f"deploy interrupted while checking {plan.image}; nothing was started or changed, "
            f"{active or 'no color'} keeps serving {plan.service}"
        ) from None
    window = DeployWindow(client, plan.service, plan.maintenance, out.line)
    try:
        window.start()
        before_new_color(
            compose, plan.release, plan.service, new_name, target, plan.image, out.line, client
        )
        deadline = started + plan.timeout
        by, retired = _switch_over(
            run, compose, plan, (target, active), (before, pins, deadline), window, probe
        )
    except BaseException:
        window.left_on()
        raise
    # 5. Summary.
    return _summary(plan, (active, target), clock() - started, by, retired)


def _summary(
    plan: DeployPlan,
    colors: tuple[Color | None, Color],
    seconds: float,
    by: str,
    retired: Retired,
) -> Outcome:
    """The deploy's outcome: what moved, how, and how the old color's drain went."""
    active, target = colors
    return Outcome(
        "deployed",
        plan.service,
        active,
        target,
        seconds,
        image=plan.image,
        switched_by=by,
        old_stopped=retired is not None,
        drain=retired[0].describe() if retired else None,
        cut=retired[1] if retired else (),
    )


def _switch_over(
    run: Rollout,
    compose: ComposeApi,
    plan: DeployPlan,
    colors: tuple[Color, Color | None],
    start: tuple[list[str], bool, float],
    window: DeployWindow,
    probe: ConnectionProbe | None,
) -> tuple[str, Retired]:
    """Steps 2-4, cleaned up by phase; maintenance (if any) ends right after the switch.

    ``start``: the target color's containers before ``up``, whether the image is pinned,
    and the deadline of the switch. Returns how it switched and how the old color was
    drained and stopped (None: it was not).
    """
    target, active = colors
    before, pins, deadline = start
    phase = Phase.STARTING_NEW
    try:
        # 2-3. Bring up the target color and follow it until the provider switches.
        _start_new(run, compose, plan, target, active, before, pins, deadline)
        phase = Phase.SWITCHED
        by = _switched_by(run.last, active)
        run.out.line(f"switched {plan.service}: {active or '(new)'} → {target} ({by})")
        window.end()
        # 4. Wait for Traefik, drain, then stop (not remove) the old color.
        return by, retire_old(run, compose, plan, target, active, probe or BlindProbe())
    except KeyboardInterrupt:
        raise _interrupted(phase, run, compose, plan, target, active) from None
    except (RolloutFailed, ComposeFileProblem):
        raise
    except CliError as exc:
        if phase is not Phase.STARTING_NEW:
            raise
        raise _failed_before_switch(run, compose, plan, colors, exc, before) from exc


def _start_new(
    run: Rollout,
    compose: ComposeApi,
    plan: DeployPlan,
    target: Color,
    active: Color | None,
    before: list[str],
    pins: bool,
    deadline: float,
) -> None:
    """Steps 2-3: ``up`` the target color and follow it until the provider switches to it.

    Returns only once traffic is on the target; anything else cleans up and raises.
    """
    new_name = plan.compose_name(target)
    tracker = RolloutTracker(target, exclude=before)
    compose_step(compose, new_name, lambda: compose.up(new_name, plan.image, dict(plan.labels)))
    if pins and plan.image:
        record_image(compose, new_name, plan.image, run.out)
    run.out.line(
        f"{compose.noun} started {new_name}; waiting until healthy and promoted "
        f"(timeout {plan.timeout:g}s)"
    )
    verdict, blamed = run.wait(tracker, deadline, may_switch=True)
    if verdict is not Verdict.SWITCHED:
        _fail_deploy(run, compose, plan, target, active, verdict, blamed, tracker)


def _live_color(
    client: ProviderApi, run: Rollout, plan: DeployPlan, out: Reporter
) -> tuple[ServiceSnapshot | None, Color | None]:
    """Step 1: the service as the provider sees it, and its active color (None: first deploy).

    Everything that would make the deploy fail for sure (no Docker behind the provider, a
    manual switch without a token, a wrong token) is refused here, before compose changes
    anything.
    """
    try:
        snap: ServiceSnapshot | None = run.snapshot()
    except UnknownServiceError:
        snap = None
    active = snap.active if snap is not None and snap.adopted else None
    if snap is not None and not snap.docker_connected:
        raise RolloutFailed(
            "the provider has lost its connection to Docker, so it cannot promote anything; "
            f"nothing was deployed. See `bluegreen status {plan.service}` and the provider's log."
        )
    manual = snap is not None and active and snap.color(active).promote == PromoteMode.MANUAL
    if manual and not client.token:
        raise MissingToken(
            f"{plan.service} is promote=manual, so the deploy must switch through the API: set "
            "BLUEGREEN_TOKEN (or pass --token) first; nothing was deployed"
        )
    if client.token:
        check_token(client, "deployed")  # here, not after compose changed things
    if snap is not None and snap.errors:
        out.line(f"warning: {plan.service} has label errors: {'; '.join(snap.errors)}")
    return snap, active


def _switched_by(last: ServiceSnapshot | None, active: Color | None) -> str:
    switch = last.last_switch if last is not None else None
    if active is None or switch is None:
        return "adopted by the provider"
    return f"{switch.reason} by {switch.actor}"


def _interrupted(
    phase: Phase,
    run: Rollout,
    compose: ComposeApi,
    plan: DeployPlan,
    target: Color,
    active: Color | None,
) -> Interrupted:
    """Ctrl-C: clean up by ``phase`` and say what runs now."""
    if phase is Phase.STARTING_NEW:
        run.out.line("interrupted")
        stop_after_interrupt(run, compose, plan.compose_name(target), target)
        return Interrupted(
            f"deploy interrupted; {active or 'no color'} keeps serving {plan.service} "
            f"and the new {target} containers were stopped"
        )
    old_name = plan.compose_name(active) if active else "(none)"
    return Interrupted(
        f"interrupted after the switch: {target} serves {plan.service}; {active} still "
        f"runs. Stop it with `{compose.hint('stop', old_name)}`, or go back with "
        f"`bluegreen rollback {plan.service}`"
    )


def _failed_before_switch(
    run: Rollout,
    compose: ComposeApi,
    plan: DeployPlan,
    colors: tuple[Color, Color | None],
    exc: CliError,
    before: list[str],
) -> RolloutFailed:
    """Compose or the provider failed before the switch: stop the new color, say what serves.

    What the message says of the new containers is checked with the provider, not assumed:
    compose that never reached the engine created none, and then nothing is stopped.
    """
    target, active = colors
    run.out.line(f"error: {exc.message}")
    created = new_containers(run, target, before)
    if isinstance(exc, EngineUnreachable) and created == []:
        fate = "were never created"
    else:
        fate = _stop_new(run, compose, plan, target, before)
    return RolloutFailed(
        f"deploy of {plan.service} to {target} failed: {exc.message}\n"
        f"{active or 'no color'} keeps serving; the new {target} containers {fate}. "
        f"Fix the cause above and run `bluegreen deploy {plan.service}` again."
    )


def _stop_new(
    run: Rollout, compose: ComposeApi, plan: DeployPlan, target: Color, before: list[str]
) -> str:
    """Stop the new color unless active; what became of its containers, as checked."""
    left: str | None = None
    try:
        left = run.stop_unless_active(compose, plan.compose_name(target), target)
    except CliError as cleanup:
        left = f"stopping them failed: {cleanup.message}"
        run.out.line(f"could not stop the new {target} containers: {cleanup.message}")
    if left is None:
        return "were stopped"
    created = new_containers(run, target, before)
    if created == []:
        return "were never created"
    if created is not None and not any(c.state == "running" for c in created):
        return f"are not running ({left})"
    return f"were left running ({left})"


def _fail_deploy(
    run: Rollout,
    compose: ComposeApi,
    plan: DeployPlan,
    target: Color,
    active: Color | None,
    verdict: Verdict,
    blamed: tuple[ContainerSnapshot, ...],
    tracker: RolloutTracker,
) -> NoReturn:
    """The new color failed or timed out: stop it (unless active) and raise why."""
    new_name = plan.compose_name(target)
    if verdict is Verdict.FAILED and tracker.gate_failure:
        headline = f"the gate before the flip failed: {tracker.gate_failure}"
    elif verdict is Verdict.FAILED:
        what = ", ".join(f"{c.name or c.id} is {c.phase}" for c in blamed)
        headline = f"new {target} container(s) failed: {what}"
    elif not tracker.seen_any(run.last):
        headline = (
            f"the provider saw no new {target} container within {plan.timeout:g}s: check that "
            f"{new_name} carries the labels bluegreen.service={plan.service} and "
            f"bluegreen.color={target} (with the provider's --label-prefix)"
        )
    else:
        headline = f"{target} was not promoted within {plan.timeout:g}s"
    run.out.line(headline)
    for line in describe_containers(blamed):
        run.out.line(line)
    left = run.stop_unless_active(compose, new_name, target)
    if left is not None:
        raise RolloutFailed(
            f"deploy of {plan.service}: {headline}; but {left}, so the new {target} "
            f"containers were left running. Check `bluegreen status {plan.service}`."
        )
    detail = "\n".join(describe_containers(blamed))
    raise RolloutFailed(
        f"deploy of {plan.service} to {target} failed: {headline}\n"
        + (f"{detail}\n" if detail else "")
        + f"{active or 'no color'} keeps serving; the new {target} containers were stopped. "
        f"Next: look at `{compose.hint('logs', new_name)}`, fix the image or its "
        f"healthcheck, and run `bluegreen deploy {plan.service}` again"
        + ("" if verdict is Verdict.FAILED else " (or raise --timeout)")
        + "."
    )
