"""``bluegreen deploy`` and ``bluegreen rollback``: the steps, their progress and their failures.

Deploy, for service S whose active color is A and idle color T:

1. ask the provider which color is active (a service it does not know yet is
   a first deploy, to blue);
2. ``compose up -d --no-deps --force-recreate S-T`` with ``BLUEGREEN_IMAGE``;
3. follow T's new containers (created → starting → healthy) through
   ``/status`` until the provider promotes T (or switch through the API when
   the service is ``promote=manual`` or auto-promotion is off);
4. wait ``--drain`` seconds, then ``compose stop S-A`` unless ``--keep-old``;
5. print one summary line.

Any failure before the switch (timeout, a new container unhealthy or exited,
compose or the provider failing, Ctrl-C) stops T's new containers and leaves A
serving; traffic never depended on them. The one exception is checked, not
assumed: if the provider already made T active, T is left running.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from deploy.client import ProviderClient
from deploy.compose import Compose
from deploy.errors import (
    CliError,
    ComposeError,
    ComposeFileProblem,
    Interrupted,
    NothingToRollBack,
    ProviderUnreachable,
    RolloutFailed,
    SwitchRefusedError,
    TokenError,
    UnknownServiceError,
)
from deploy.progress import RolloutTracker, Verdict
from deploy.snapshot import ContainerSnapshot, ServiceSnapshot, other_color, parse_service

DEFAULT_COMPOSE_SERVICE = "{service}-{color}"
#: How long the provider may be unreachable mid-rollout before we give up.
UNREACHABLE_GRACE_S = 10.0
#: A ready color the provider has not promoted, nor said why, after this long: switch via API.
OPERATOR_SWITCH_AFTER_S = 5.0

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Reporter:
    """Progress lines, each prefixed with the seconds since the command started."""

    def __init__(self, stream: TextIO, clock: Clock = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self.started = clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def line(self, text: str) -> None:
        self.stream.write(f"[{self.elapsed():6.1f}s] {text}\n")
        self.stream.flush()


@dataclass(frozen=True)
class DeployPlan:
    """What ``bluegreen deploy`` was asked to do."""

    service: str
    image: str | None = None
    timeout: float = 180.0
    drain: float = 15.0
    keep_old: bool = False
    compose_service: str = DEFAULT_COMPOSE_SERVICE
    poll_interval: float = 0.25

    def compose_name(self, color: str) -> str:
        return self.compose_service.format(service=self.service, color=color)


@dataclass(frozen=True)
class Outcome:
    """A finished deploy or rollback, for the summary line and ``--json``."""

    action: str
    service: str
    from_color: str | None
    to_color: str
    seconds: float
    image: str | None = None
    switched_by: str | None = None
    old_stopped: bool = False
    #: The compose flags the user passed (``-f``, ``-p``, ...), for the rollback hint.
    compose_args: tuple[str, ...] = ()

    def summary(self) -> str:
        origin = self.from_color or "(new)"
        text = f"{self.action} {self.service}: {origin} → {self.to_color}"
        if self.action == "deployed":
            text += f", image {self.image or '(from the compose file)'}"
        text += f", in {self.seconds:.1f}s"
        if self.old_stopped and self.from_color:
            command = shlex.join(["bluegreen", "rollback", self.service, *self.compose_args])
            text += f" ({self.from_color} stopped; `{command}` restarts it)"
        elif self.action == "deployed" and self.from_color:
            text += f" ({self.from_color} still running)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "service": self.service,
            "from": self.from_color,
            "to": self.to_color,
            "image": self.image,
            "seconds": round(self.seconds, 3),
            "switched_by": self.switched_by,
            "old_stopped": self.old_stopped,
        }


def _describe(containers: Sequence[ContainerSnapshot]) -> list[str]:
    lines: list[str] = []
    for c in containers:
        lines.append(f"  {c.name or c.id} ({c.id[:12]}): {c.state}, health {c.health}")
        output = c.health_output.strip()
        if output:
            lines += [f"    last healthcheck: {line}" for line in output.splitlines()[-5:]]
        elif c.problem:
            lines.append(f"    problem: {c.problem}")
    return lines


class _Rollout:
    """Shared polling machinery of deploy and rollback."""

    def __init__(
        self,
        client: ProviderClient,
        service: str,
        out: Reporter,
        clock: Clock,
        sleep: Sleep,
        poll_interval: float,
    ) -> None:
        self.client = client
        self.service = service
        self.out = out
        self.clock = clock
        self.sleep = sleep
        self.poll_interval = poll_interval
        self.last: ServiceSnapshot | None = None

    def snapshot(self) -> ServiceSnapshot:
        snap = parse_service(self.client.status(self.service))
        self.last = snap
        return snap

    def wait(
        self, tracker: RolloutTracker, deadline: float, *, may_switch: bool
    ) -> tuple[Verdict, tuple[ContainerSnapshot, ...]]:
        """Poll until SWITCHED (or READY when not ``may_switch``), FAILED or the deadline.

        Returns the final verdict and, for FAILED or a timeout, the containers to blame.
        """
        unreachable_since: float | None = None
        ready_since: float | None = None
        switch_sent = False
        polls = int(max(deadline - self.clock(), 0) / max(self.poll_interval, 0.01)) + 2
        for _ in range(polls):
            try:
                snap: ServiceSnapshot | None = self.snapshot()
                unreachable_since = None
            except UnknownServiceError:
                snap = None  # a first deploy: the provider has not seen the containers yet
            except ProviderUnreachable as exc:
                now = self.clock()
                if unreachable_since is None:
                    unreachable_since = now
                    self.out.line(f"provider unreachable ({exc.reason}); retrying")
                elif now - unreachable_since > UNREACHABLE_GRACE_S:
                    raise
                snap = None
            if snap is not None:
                step = tracker.observe(snap)
                for line in step.lines:
                    self.out.line(line)
                if step.verdict is Verdict.SWITCHED or step.verdict is Verdict.FAILED:
                    return step.verdict, step.failing
                if step.verdict is Verdict.READY:
                    if not may_switch:
                        return step.verdict, ()
                    now = self.clock()
                    ready_since = ready_since if ready_since is not None else now
                    waited = now - ready_since
                    silent_too_long = step.provider_silent and waited >= OPERATOR_SWITCH_AFTER_S
                    if not switch_sent and (step.needs_operator_switch or silent_too_long):
                        switch_sent = self._operator_switch(tracker.target)
                        continue
                else:
                    ready_since = None
            if self.clock() >= deadline:
                break
            self.sleep(self.poll_interval)
        return Verdict.WAITING, tracker.not_ready(self.last)

    def _operator_switch(self, target: str) -> bool:
        """The provider will not promote on its own: switch through the API."""
        self.out.line(f"{target} is ready; switching through the API (needs BLUEGREEN_TOKEN)")
        try:
            self.client.switch(self.service, target, reason="deploy")
        except SwitchRefusedError as exc:
            self.out.line(f"switch refused for now: {exc.detail}")
            return False
        return True

    def stop_unless_active(
        self, compose: Compose, compose_name: str, color: str, what: str = "new"
    ) -> bool:
        """Stop ``color``'s containers unless the provider made ``color`` active meanwhile."""
        try:
            known: ServiceSnapshot | None = self.snapshot()
        except CliError:
            known = self.last
        if known is not None and known.active == color and known.adopted:
            self.out.line(f"{color} is the active color now; leaving its containers running")
            return False
        self.out.line(f"stopping the {what} {color} containers ({compose_name})")
        compose.stop(compose_name)
        return True


def deploy(
    client: ProviderClient,
    open_compose: Callable[[], Compose],
    plan: DeployPlan,
    out: Reporter,
    *,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Outcome:
    """Steps 1-5; on failure clean up, raise :class:`RolloutFailed` or :class:`Interrupted`."""
    started = clock()
    run = _Rollout(client, plan.service, out, clock, sleep, plan.poll_interval)
    # 1. Which color is live?
    try:
        snap: ServiceSnapshot | None = run.snapshot()
    except UnknownServiceError:
        snap = None
    active = snap.active if snap is not None and snap.adopted else None
    target = other_color(active) if active else "blue"
    if snap is not None and not snap.docker_connected:
        raise RolloutFailed(
            "the provider has lost its connection to Docker, so it cannot promote anything; "
            f"nothing was deployed. See `bluegreen status {plan.service}` and the provider's log."
        )
    if active and snap is not None and snap.color(active).promote == "manual" and not client.token:
        raise TokenError(
            f"{plan.service} is promote=manual, so the deploy must switch through the API: set "
            "BLUEGREEN_TOKEN (or pass --token) first; nothing was deployed",
            status=401,
            code="unauthorized",
            detail="no token",
        )
    if client.token:
        _check_token(client, "deployed")  # here, not after compose changed things
    if snap is not None and snap.errors:
        out.line(f"warning: {plan.service} has label errors: {'; '.join(snap.errors)}")
    compose = open_compose()
    new_name = plan.compose_name(target)
    old_name = plan.compose_name(active) if active else None
    image = plan.image or "the compose file's image"
    live = f"{active} is live" if active else "first deploy"
    out.line(f"{plan.service}: {live}; deploying {image} to {target} ({compose.describe()})")
    # What exists before `up`: everything else of the target color is what compose creates.
    before = [c.id for c in snap.color(target).containers] if snap is not None else []

    # 2-3. Bring up the target color and follow it until the provider switches.
    deadline = started + plan.timeout
    tracker = RolloutTracker(target, exclude=before, first_deploy=active is None)
    pins = bool(plan.image) and compose.check_image(new_name, plan.image or "")
    try:
        _compose_step(compose, new_name, lambda: compose.up(new_name, plan.image))
        if pins and plan.image:
            _record_image(compose, new_name, plan.image, out)
        out.line(
            f"compose started {new_name}; waiting until healthy and promoted "
            f"(timeout {plan.timeout:g}s)"
        )
        verdict, blamed = run.wait(tracker, deadline, may_switch=True)
        if verdict is not Verdict.SWITCHED:
            _fail_deploy(run, compose, plan, target, active, verdict, blamed, tracker)
    except KeyboardInterrupt:
        out.line("interrupted")
        _cleanup_after_interrupt(run, compose, new_name, target)
        raise Interrupted(
            f"deploy interrupted; {active or 'no color'} keeps serving {plan.service} "
            f"and the new {target} containers were stopped"
        ) from None
    except (RolloutFailed, ComposeFileProblem):
        raise
    except CliError as exc:
        out.line(f"error: {exc.message}")
        try:
            run.stop_unless_active(compose, new_name, target)
        except CliError as cleanup:
            out.line(f"could not stop the new {target} containers: {cleanup.message}")
        raise RolloutFailed(
            f"deploy of {plan.service} to {target} failed: {exc.message}\n"
            f"{active or 'no color'} keeps serving; the new {target} containers were stopped. "
            f"Fix the cause above and run `bluegreen deploy {plan.service}` again."
        ) from exc

    switch = (run.last.last_switch if run.last else None) or {}
    if active is None or not switch:
        by = "adopted by the provider"
    else:
        by = f"{switch.get('reason', '?')} by {switch.get('actor', '?')}"
    out.line(f"switched {plan.service}: {active or '(new)'} → {target} ({by})")

    # 4. Drain, then stop (not remove) the old color.
    old_stopped = False
    if active and old_name and not plan.keep_old:
        try:
            out.line(f"draining {plan.drain:g}s before stopping {active} ({old_name})")
            sleep(plan.drain)
            now = run.snapshot()
            if now.active != target:
                raise RolloutFailed(
                    f"{plan.service} was switched back to {now.active} during the drain "
                    f"(see `bluegreen history {plan.service}`); {active} was left running"
                )
            _compose_step(compose, old_name, lambda: compose.stop(old_name))
            old_stopped = True
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted after the switch: {target} serves {plan.service}; {active} still "
                f"runs. Stop it with `{compose.describe()} stop {old_name}`, or go back with "
                f"`bluegreen rollback {plan.service}`"
            ) from None
    elif active and plan.keep_old:
        out.line(f"--keep-old: {active} keeps running for an instant rollback")
    # 5. Summary.
    return Outcome(
        "deployed",
        plan.service,
        active,
        target,
        clock() - started,
        image=plan.image,
        switched_by=by,
        old_stopped=old_stopped,
    )


def _compose_step(compose: Compose, service: str, step: Callable[[], None]) -> None:
    """Run one compose command; if it fails, say whether the service is missing from the file.

    The check costs a compose call, so it runs only on failure, never on the happy path.
    """
    try:
        step()
    except ComposeError:
        compose.require_services(service)
        raise


def _fail_deploy(
    run: _Rollout,
    compose: Compose,
    plan: DeployPlan,
    target: str,
    active: str | None,
    verdict: Verdict,
    blamed: tuple[ContainerSnapshot, ...],
    tracker: RolloutTracker,
) -> None:
    new_name = plan.compose_name(target)
    if verdict is Verdict.FAILED:
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
    for line in _describe(blamed):
        run.out.line(line)
    stopped = run.stop_unless_active(compose, new_name, target)
    if not stopped:
        raise RolloutFailed(
            f"deploy of {plan.service}: {headline}; but the provider made {target} active "
            f"meanwhile, so it was left running. Check `bluegreen status {plan.service}`."
        )
    detail = "\n".join(_describe(blamed))
    raise RolloutFailed(
        f"deploy of {plan.service} to {target} failed: {headline}\n"
        + (f"{detail}\n" if detail else "")
        + f"{active or 'no color'} keeps serving; the new {target} containers were stopped. "
        f"Next: look at `{compose.describe()} logs {new_name}`, fix the image or its "
        f"healthcheck, and run `bluegreen deploy {plan.service}` again"
        + ("" if verdict is Verdict.FAILED else " (or raise --timeout)")
        + "."
    )


def _cleanup_after_interrupt(
    run: _Rollout, compose: Compose, name: str, color: str, what: str = "new"
) -> None:
    try:
        run.stop_unless_active(compose, name, color, what)
    except KeyboardInterrupt:
        raise Interrupted(
            f"cleanup interrupted: the new {color} containers may still run; "
            f"stop them with `{compose.describe()} stop {name}`"
        ) from None
    except CliError as exc:
        raise Interrupted(
            f"deploy interrupted, and stopping the new {color} containers failed: {exc.message}"
        ) from exc


def _undeployed_generation(snap: ServiceSnapshot, color: str) -> list[str]:
    """Names of ``color``'s containers that a deploy created but never promoted.

    The provider's pending promotion lists the idle color's containers created
    after the last switch (its "generation"): after a failed deploy those are
    the broken ones, not the version that served before the switch.
    """
    pending = snap.pending or {}
    if pending.get("color") != color:
        return []
    members = pending.get("containers") or []
    return [str(m.get("name") or m.get("id")) for m in members if isinstance(m, dict)]


def _record_image(compose: Compose, name: str, image: str, out: Reporter) -> None:
    """Pin the color's image in ``.env``: a later plain ``up -d`` then recreates nothing.

    Written as soon as compose created the containers, so ``.env`` always says what
    runs (after a failed deploy too: ``up -d`` then only restarts the stopped new
    containers, which the provider never promotes unless they get healthy).
    """
    try:
        line = compose.record_image(name, image)
    except CliError as exc:
        out.line(
            f"warning: could not record the image ({exc.message}); a plain `up -d` "
            f"would recreate {name} with its default image"
        )
        return
    out.line(f"recorded {line} in {compose.env_file()}")


def _check_token(client: ProviderClient, nothing_was: str) -> None:
    """``GET /auth``; a wrong token says that nothing happened yet."""
    try:
        client.check_token()
    except TokenError as exc:
        raise TokenError(
            f"{exc.message}; nothing was {nothing_was}",
            status=exc.status,
            code=exc.code,
            detail=exc.detail,
        ) from None


def rollback(
    client: ProviderClient,
    open_compose: Callable[[], Compose],
    service: str,
    out: Reporter,
    *,
    timeout: float = 120.0,
    compose_service: str = DEFAULT_COMPOSE_SERVICE,
    poll_interval: float = 0.25,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> Outcome:
    """Switch back to the previous color, starting its stopped containers first."""
    started = clock()
    run = _Rollout(client, service, out, clock, sleep, poll_interval)
    snap = run.snapshot()
    previous = snap.previous
    if previous is None or previous == snap.active:
        raise NothingToRollBack(
            f"{service} has no previous color to roll back to (it was never switched; "
            f"see `bluegreen history {service}`)"
        )
    if not client.token:
        raise TokenError(
            "rollback switches through the API: set BLUEGREEN_TOKEN (or pass --token) to the "
            "token `bluegreen serve` was started with; nothing was changed",
            status=401,
            code="unauthorized",
            detail="no token",
        )
    _check_token(client, "changed")  # before compose starts anything
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
    if not color.ready:
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
                out.line(f"starting {len(stopped)} stopped {previous} container(s) ({name})")
                _compose_step(compose, name, lambda: compose.start(name))
            ids = [c.id for c in color.containers]
            out.line(f"waiting until {previous} is routable (timeout {timeout:g}s)")
            tracker = RolloutTracker(previous, ids, restarting=bool(stopped))
            verdict, blamed = run.wait(tracker, started + timeout, may_switch=False)
        except KeyboardInterrupt:
            out.line("interrupted")
            _cleanup_after_interrupt(run, compose, name, previous, "restarted")
            raise Interrupted(
                f"rollback interrupted; {snap.active} keeps serving {service}"
            ) from None
        if verdict is not Verdict.READY:
            why = "failed" if verdict is Verdict.FAILED else f"not routable within {timeout:g}s"
            detail = "\n".join(_describe(blamed))
            if stopped:
                run.stop_unless_active(compose, name, previous, "restarted")
            raise RolloutFailed(
                f"rollback of {service}: {previous} {why}\n"
                + (f"{detail}\n" if detail else "")
                + f"{snap.active} keeps serving; nothing was switched."
            )
    result = client.rollback(service)
    out.line(f"switched {service}: {snap.active} → {result.get('active', previous)}")
    return Outcome(
        "rolled back",
        service,
        snap.active,
        str(result.get("active", previous)),
        clock() - started,
        switched_by="rollback by api",
    )
