"""Operator and automatic commands as pure decisions (house style 7).

Each command is a frozen dataclass; :func:`decide` turns the current
:class:`State`, the service's :class:`ServiceView`, the command and the time
into a :class:`Decision` (the state to commit, what to announce), or raises
the refusal the API answers (409 and the like). The controller only takes its
lock, commits the decided state through its store (deciding again on a newer
state after a conflict) and publishes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from provider.core import canary as canaries
from provider.core import maintenance, promotion, transitions
from provider.core.model import Color, State, SwitchRecord
from provider.core.refusals import CanaryNotRunning, CanaryRefused, RetireRefused, SwitchRefused
from provider.core.routing import ServiceView, active_color, check_switch
from provider.core.status import view_images


@dataclass(frozen=True)
class Now:
    """The instant of a decision in both clocks."""

    wall: float  #: ours: records, canary times
    daemon: float  #: the Docker daemon's: generation anchors and marks


@dataclass(frozen=True)
class Switch:
    """Make ``target`` the active color (``POST /switch``, the automatic switcher)."""

    service: str
    target: Color
    force: bool = False
    reason: str = "manual"
    actor: str = "api"
    automatic: bool = False  #: refused towards a marked color or while a canary runs
    reject: bool = False  #: mark the color left REJECTED
    first_seen: float = 0.0  #: adopts a never-adopted service with this first sighting


@dataclass(frozen=True)
class Rollback:
    """Switch back to the previous color and mark the one left REJECTED."""

    service: str
    force: bool = False
    actor: str = "api"
    expect: Color | None = None  #: the color the caller means to go back to
    first: Color | None = None  #: the previous color the first attempt saw (retries)


@dataclass(frozen=True)
class Retire:
    """Mark ``color`` RETIRING: an operator is about to stop it."""

    service: str
    color: Color
    actor: str = "api"


@dataclass(frozen=True)
class StartCanary:
    """Start a canary of ``color`` (default: the idle one)."""

    service: str
    color: Color | None
    steps: tuple[int, ...]
    interval: float
    limits: canaries.Limits
    actor: str = "api"
    await_ready: bool = False  #: reserve it WAITING for containers created from now on


@dataclass(frozen=True)
class CanaryEvent:
    """Apply one event (a step's verdict, promote, abort, ready) to the running canary."""

    service: str
    event: canaries.Event
    actor: str = "api"


Command = Switch | Rollback | Retire | StartCanary | CanaryEvent | maintenance.SetMaintenance


@dataclass(frozen=True)
class Decision:
    """What a command decided: the state to commit and what to announce once committed."""

    state: State | None  #: ``None``: nothing to commit, the command was already done
    record: SwitchRecord | None = None  #: a change of the active color to announce
    canary: canaries.Canary | None = None  #: a canary change to serve and announce
    verdict: str | None = None  #: the canary announcement's verdict
    target: Color | None = None  #: the color a switch or rollback went to
    maintenance: SwitchRecord | None = None  #: maintenance turned on or off, to announce


def decide(
    state: State, view: ServiceView, command: Command, now: Now, *, history_limit: int
) -> Decision:
    """The one entry point: dispatch ``command`` to its decision."""
    if isinstance(command, Switch):
        return switch(state, view, command, now, history_limit=history_limit)
    if isinstance(command, Rollback):
        return rollback(state, view, command, now, history_limit=history_limit)
    if isinstance(command, Retire):
        return retire(state, view, command, now, history_limit=history_limit)
    if isinstance(command, StartCanary):
        return start_canary(state, view, command, now, history_limit=history_limit)
    if isinstance(command, maintenance.SetMaintenance):
        active = active_color(view, state.services.get(command.service))
        new, record = maintenance.decide(
            state, command, active, now.wall, history_limit=history_limit
        )
        return Decision(new, maintenance=record)
    return canary_event(state, view, command, now, history_limit=history_limit)


def retried(command: Command, decision: Decision) -> Command:
    """The command to decide again after another replica committed first.

    A rollback keeps the previous color its first attempt saw: decided again
    on the other replica's state, it must not go back further than the
    operator meant (the "previous" of a state it just changed).
    """
    if isinstance(command, Rollback) and command.first is None:
        return replace(command, first=decision.target)
    return command


def switch(
    state: State, view: ServiceView, command: Switch, now: Now, *, history_limit: int
) -> Decision:
    """A switch, refused when the target cannot take traffic (unless forced)."""
    service, target = command.service, command.target
    current = active_color(view, state.services.get(service))
    if target is current and service in state.services:
        return Decision(None, target=target)
    known = state.services.get(service)
    if command.automatic and known is not None:
        mark = promotion.blocking_mark(view, known, target)
        if mark is not None:
            raise SwitchRefused(
                f"{target} of {service} is {mark.kind} ({mark.reason}); "
                "no automatic switch goes there"
            )
    running = canaries.running(state, service)
    if command.automatic and running is not None:
        raise SwitchRefused(f"a canary of {service} runs; no automatic switch until it ends")
    check_switch(view, target, force=command.force)
    if running is not None:  # an operator's switch ends the canary (no mark)
        why = f"ended by a switch ({command.reason}, {command.actor})"
        stop = canaries.OperatorAbort(why, reject=False)
        state = canaries.with_canary(state, canaries.apply(running, stop, now.wall))
    if service not in state.services:
        state = transitions.adopt(state, service, current, command.first_seen)
    new_state, record = transitions.switch(
        state,
        service,
        target,
        reason=command.reason,
        actor=command.actor,
        now=now.wall,
        history_limit=history_limit,
        anchor=now.daemon,
        reject_left=command.reject,
        images=view_images(view),
    )
    return Decision(new_state, record=record, target=target)


def rollback(
    state: State, view: ServiceView, command: Rollback, now: Now, *, history_limit: int
) -> Decision:
    """Back to the previous color; refused without one, or if it is not ``expect``."""
    service = command.service
    known = state.services.get(service)
    if command.first is not None and known is not None and known.active is command.first:
        # Another replica rolled back (or switched) there meanwhile: done, once.
        return Decision(None, target=command.first)
    if known is None or known.previous is None:
        raise SwitchRefused(f"service {service} has no previous color to roll back to")
    expected = command.expect or command.first or known.previous
    if expected is not known.previous:
        raise SwitchRefused(
            f"the previous color of {service} is {known.previous}, not {expected} "
            f"(active {known.active}); nothing was switched"
        )
    again = Switch(
        service,
        known.previous,
        force=command.force,
        reason="rollback",
        actor=command.actor,
        reject=True,
    )
    return switch(state, view, again, now, history_limit=history_limit)


def retire(
    state: State, view: ServiceView, command: Retire, now: Now, *, history_limit: int
) -> Decision:
    """Mark a color RETIRING; refused while it is active. A canary of it ends with it."""
    service, color, actor = command.service, command.color, command.actor
    known = state.services.get(service)
    # Not adopted yet: only a color that serves (label errors hold adoption) counts.
    routable = view.color(color).routable > 0
    serving = known is None and active_color(view, known) is color and routable
    if (known is not None and known.active is color) or serving:
        raise RetireRefused(f"{color} is the active color of {service}; switch away from it first")
    reason = f"retired by {actor}"
    new_state = transitions.retire(state, service, color, since=now.daemon, reason=reason)
    running = canaries.running(state, service)
    if running is None or running.color is not color:
        return Decision(new_state)
    # A color being stopped takes no share: its canary ends in the same write.
    ended = canaries.apply(running, canaries.OperatorAbort(reason, reject=False), now.wall)
    new_state, _ = canaries.with_record(
        canaries.with_canary(new_state, ended),
        service,
        running.base,
        color,
        reason=canaries.REASON_ABORT,
        actor=actor,
        now=now.wall,
        detail={"reason": reason, "weight": running.weight},
        history_limit=history_limit,
    )
    return Decision(new_state, canary=ended)


def start_canary(
    state: State, view: ServiceView, command: StartCanary, now: Now, *, history_limit: int
) -> Decision:
    """A new canary; refused while one runs, or when its color is not ready or is marked."""
    service = command.service
    if canaries.running(state, service) is not None:
        raise CanaryRefused(f"a canary of {service} already runs")
    known = state.services.get(service)
    base = active_color(view, known)
    target = command.color or base.other
    if known is None or view.errors:
        raise CanaryRefused(f"{service} is not adopted yet or has label errors; no canary")
    colorview = view.color(target)
    waiting = command.await_ready and target is not base
    if target is not base and not waiting and not colorview.ready:
        raise CanaryRefused(
            f"{target} of {service} is not ready ({colorview.routable} of "
            f"{colorview.replicas} routable container(s))"
        )
    blocked = promotion.blocking_mark(view, known, target) is not None
    if target is not base and not waiting and blocked:
        raise CanaryRefused(
            f"{target} of {service} is marked {known.marks[target].kind} and has no "
            "newer container; deploy it again first"
        )
    new = canaries.start(
        service,
        target,
        base,
        steps=command.steps,
        interval=command.interval,
        limits=command.limits,
        now=now.wall,
        await_after=now.daemon if waiting else None,
    )
    new_state, _ = canaries.with_record(
        canaries.with_canary(state, new),
        service,
        base,
        target,
        reason=canaries.REASON_STEP,
        actor=command.actor,
        now=now.wall,
        detail={"step": 0, "weight": new.weight, "verdict": str(new.phase)},
        history_limit=history_limit,
    )
    return Decision(new_state, canary=new, verdict=str(new.phase))


def canary_event(
    state: State, view: ServiceView, command: CanaryEvent, now: Now, *, history_limit: int
) -> Decision:
    """One event on the running canary: a step recorded, an abort marked, a promotion."""
    service, event = command.service, command.event
    current = _running_for(state, view, command)
    new = canaries.apply(current, event, now.wall)
    new_state = canaries.with_canary(state, new)
    if isinstance(event, canaries.StepResult) and event.verdict is not canaries.Verdict.EXTEND:
        new_state = _recorded(
            new_state,
            current,
            command,
            canaries.REASON_STEP,
            canaries.figures(event) | {"detail": event.detail},
            now,
            history_limit,
        )
    record = None
    if new.phase is canaries.Phase.ABORTED:
        detail: dict[str, Any] = {"reason": new.reason, "weight": current.weight}
        if isinstance(event, canaries.StepResult):
            detail |= canaries.figures(event)
        new_state = _recorded(
            new_state, current, command, canaries.REASON_ABORT, detail, now, history_limit
        )
        if not isinstance(event, canaries.OperatorAbort) or event.reject:
            new_state = canaries.with_rejected(
                new_state,
                service,
                current.color,
                since=now.daemon,
                reason=f"{canaries.REASON_ABORT}: {new.reason}",
            )
    elif new.phase is canaries.Phase.PROMOTED:
        new_state, record = transitions.switch(
            new_state,
            service,
            current.color,
            reason=canaries.REASON_PROMOTE,
            actor=command.actor,
            now=now.wall,
            history_limit=history_limit,
            anchor=now.daemon,
            images=view_images(view),
        )
    verdict = str(event.verdict) if isinstance(event, canaries.StepResult) else None
    return Decision(new_state, record=record, canary=new, verdict=verdict)


def _running_for(state: State, view: ServiceView, command: CanaryEvent) -> canaries.Canary:
    """The running canary ``command`` applies to; refused if it ended or moved on.

    A step's pass judged before its color stopped being ready is refused too:
    the driver checks readiness, then releases the lock to scrape Traefik, so
    its verdict may land on containers that are gone. Nothing is written; the
    driver looks again at the current truth and aborts the canary as lost.
    """
    service, event = command.service, command.event
    current = canaries.running(state, service)
    if current is None:
        raise CanaryNotRunning(f"no canary of {service} runs")
    judged = (current.step, current.weight, current.extensions)
    if isinstance(event, canaries.StepResult) and (
        (event.step, event.weight, event.extensions) != judged
    ):
        raise CanaryNotRunning(f"the canary of {service} moved on meanwhile")
    if isinstance(event, canaries.OperatorPromote):
        check_switch(view, current.color, force=False)
    if canaries.stale_pass(event, ready=view.color(current.color).ready):
        raise CanaryNotRunning(
            f"{current.color} of {service} stopped being ready while its step was judged; "
            "judged again"
        )
    return current


def _recorded(
    state: State,
    current: canaries.Canary,
    command: CanaryEvent,
    reason: str,
    detail: dict[str, Any],
    now: Now,
    history_limit: int,
) -> State:
    new_state, _ = canaries.with_record(
        state,
        command.service,
        current.base,
        current.color,
        reason=reason,
        actor=command.actor,
        now=now.wall,
        detail=detail,
        history_limit=history_limit,
    )
    return new_state
