"""``bluegreen rollback``: switch back to the previous color, starting its stopped containers.

The previous color's containers are those that served before the last switch
(never a failed deploy's newer ones). If they were stopped, they are started
and followed until routable; a failure or Ctrl-C stops them again (unless
the provider made their color active meanwhile) and leaves the active color
serving. The switch itself names the color, so a provider whose previous
color changed meanwhile refuses instead of switching somewhere unexpected.
After the switch it waits, as ``deploy`` does, until Traefik applied it
(``deploy/applied.py``): the provider serving the previous color is not yet
Traefik routing to it, and a rollback that only the provider made must not
exit 0 while users still reach the color being rolled back from.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from deploy.applied import DEFAULT_TIMEOUT_S, TraefikNotApplied, wait_applied
from deploy.errors import Interrupted, MissingToken, NothingToRollBack, RolloutFailed
from deploy.progress import RolloutTracker, Verdict
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
    stop_after_interrupt,
)
from deploy.snapshot import ServiceSnapshot
from provider.core.model import Color


def _undeployed_generation(snap: ServiceSnapshot, color: Color) -> list[str]:
    """Names of ``color``'s containers that a deploy created but never promoted.

    The provider's pending promotion lists the idle color's containers created
    after the last switch (its "generation"): after a failed deploy those are
    the broken ones, not the version that served before the switch.
    """
    pending = snap.pending
    if pending is None or pending.color != color:
        return []
    return [c.name or c.id for c in pending.containers]


def rollback(
    client: ProviderApi,
    open_compose: Callable[[], ComposeApi],
    service: str,
    out: Reporter,
    *,
    timeout: float = 120.0,
    compose_service: str = DEFAULT_COMPOSE_SERVICE,
    poll_interval: float = 0.25,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
    swarm: bool = False,
    apply_timeout: float = DEFAULT_TIMEOUT_S,
) -> Outcome:
    """Switch back to the previous color, starting its stopped containers first.

    ``swarm``: the color is a Swarm service scaled to 0, whose tasks are gone;
    starting it scales it back up, which makes new tasks: those are followed.
    ``apply_timeout``: seconds Traefik may take to apply the switch back; past
    it the rollback fails (RolloutFailed, exit 1), the switch staying made.
    """
    started = clock()
    run = Rollout(client, service, out, clock, sleep, poll_interval)
    snap = run.snapshot()
    previous = snap.previous
    if previous is None or previous == snap.active:
        raise NothingToRollBack(
            f"{service} has no previous color to roll back to (it was never switched; "
            f"see `bluegreen history {service}`)"
        )
    if not client.token:
        raise MissingToken(
            "rollback switches through the API: set BLUEGREEN_TOKEN (or pass --token) to the "
            "token `bluegreen serve` was started with; nothing was changed"
        )
    check_token(client, "changed")  # before compose starts anything
    color = snap.color(previous)
    newer = _undeployed_generation(snap, previous)
    if newer:
        names = ", ".join(newer)
        raise NothingToRollBack(
            f"the {previous} containers of {service} ({names}) were created after the last "
            f"switch, by a deploy that did not take traffic: they are not the version that "
            f"served before. Deploy the old image instead: `bluegreen deploy {service} "
            "--image ...`"
        )
    if not color.ready and swarm:
        _start_swarm_color(run, open_compose(), compose_service, service, previous, timeout)
    elif not color.ready:
        _start_compose_color(
            run, open_compose, compose_service, snap, previous, started + timeout, timeout
        )
    # Name the color: if the provider's previous color changed meanwhile, it refuses.
    outcome = _switch_back(client, service, snap, previous, out, clock() - started)
    _wait_traefik(run, snap, previous, apply_timeout)
    return dataclasses.replace(outcome, seconds=clock() - started)


def _start_compose_color(
    run: Rollout,
    open_compose: Callable[[], ComposeApi],
    compose_service: str,
    snap: ServiceSnapshot,
    previous: Color,
    deadline: float,
    timeout: float,
) -> None:
    """Start ``previous``'s stopped containers and follow them until routable.

    A failure or Ctrl-C stops what was started (unless the provider made the color
    active meanwhile), so the active color keeps serving and nothing is switched.
    """
    service = run.service
    color = snap.color(previous)
    if not color.containers:
        raise NothingToRollBack(
            f"no {previous} containers exist for {service} (removed?); nothing to start. "
            f"Deploy the old image instead: `bluegreen deploy {service} --image ...`"
        )
    compose = open_compose()
    name = compose_service.format(service=service, color=previous)
    stopped = [c for c in color.containers if c.state != "running"]
    try:
        if stopped:
            run.out.line(f"starting {len(stopped)} stopped {previous} container(s) ({name})")
            compose_step(compose, name, lambda: compose.start(name))
        ids = [c.id for c in color.containers]
        run.out.line(f"waiting until {previous} is routable (timeout {timeout:g}s)")
        tracker = RolloutTracker(previous, ids, restarting=bool(stopped))
        verdict, blamed = run.wait(tracker, deadline, may_switch=False)
    except KeyboardInterrupt:
        run.out.line("interrupted")
        stop_after_interrupt(run, compose, name, previous, "restarted")
        raise Interrupted(f"rollback interrupted; {snap.active} keeps serving {service}") from None
    if verdict is not Verdict.READY:
        why = "failed" if verdict is Verdict.FAILED else f"not routable within {timeout:g}s"
        detail = "\n".join(describe_containers(blamed))
        if stopped:
            run.stop_unless_active(compose, name, previous, "restarted")
        raise RolloutFailed(
            f"rollback of {service}: {previous} {why}\n"
            + (f"{detail}\n" if detail else "")
            + f"{snap.active} keeps serving; nothing was switched."
        )


def _start_swarm_color(
    run: Rollout,
    compose: ComposeApi,
    compose_service: str,
    service: str,
    previous: Color,
    timeout: float,
) -> None:
    """Scale ``previous``'s Swarm service back up and follow its tasks until routable.

    Tasks that are not running are the scaled-down ones: excluded, so the new
    tasks (and any still running) are what must become routable.
    """
    started = run.clock()
    name = compose_service.format(service=service, color=previous)
    snap = run.last
    gone = [c.id for c in snap.color(previous).containers if c.state != "running"] if snap else []
    try:
        run.out.line(f"scaling {previous} back up ({name})")
        compose_step(compose, name, lambda: compose.start(name))
        run.out.line(f"waiting until {previous} is routable (timeout {timeout:g}s)")
        tracker = RolloutTracker(previous, exclude=gone)
        verdict, blamed = run.wait(tracker, started + timeout, may_switch=False)
    except KeyboardInterrupt:
        run.out.line("interrupted")
        stop_after_interrupt(run, compose, name, previous, "restarted")
        active = previous.other
        raise Interrupted(f"rollback interrupted; {active} keeps serving {service}") from None
    if verdict is not Verdict.READY:
        why = "failed" if verdict is Verdict.FAILED else f"not routable within {timeout:g}s"
        detail = "\n".join(describe_containers(blamed))
        run.stop_unless_active(compose, name, previous, "restarted")
        raise RolloutFailed(
            f"rollback of {service}: {previous} {why}\n"
            + (f"{detail}\n" if detail else "")
            + f"{previous.other} keeps serving; {previous} was scaled down again and nothing "
            "was switched."
        )


def _switch_back(
    client: ProviderApi,
    service: str,
    snap: ServiceSnapshot,
    previous: Color,
    out: Reporter,
    seconds: float,
) -> Outcome:
    """``POST /rollback`` naming the color, then the outcome."""
    result = client.rollback(service, color=previous)
    out.line(f"switched {service}: {snap.active} → {result.get('active', previous)}")
    return Outcome(
        "rolled back",
        service,
        snap.active,
        str(result.get("active", previous)),
        seconds,
        switched_by="rollback by api",
    )


def _wait_traefik(run: Rollout, snap: ServiceSnapshot, previous: Color, timeout: float) -> None:
    """Until Traefik applied the switch back; else fail naming the cause and what to check."""
    service = run.service
    run.out.line(f"waiting until Traefik applied the switch (timeout {timeout:g}s)")
    try:
        result = wait_applied(
            run.client, service, previous, timeout, clock=run.clock, sleep=run.sleep
        )
    except TraefikNotApplied as exc:
        raise RolloutFailed(
            f"{exc.message}\nThe switch back is made in the provider: it serves {previous}, "
            f"and both colors keep running. Traefik may still route {service} to "
            f"{snap.active}: check Traefik's log and `bluegreen status {service}` until it "
            f"shows {previous} applied by Traefik; nothing else needs doing then."
        ) from exc
    run.out.line(result.describe())
