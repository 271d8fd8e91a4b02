"""Deciding automatic promotions and rollbacks.

Pure: no asyncio, aiohttp or aiodocker. One call of :func:`decide` looks at a
service's observed view, its persisted state and what the previous call
remembered (:class:`Timers`), and answers what to do now, what to remember,
what ``/status`` should say and when to look again. The caller owns the
clock and the timers; nothing here is hidden state.

The rules (README "Automatic promotion and rollback"):

* A **generation** is the idle color's containers created after the
  service's last switch (before any switch: after the provider first saw the
  service) and, when the color is marked (rejected by a rollback, or being
  retired by an operator), after the mark. Both instants are in the Docker
  daemon's clock, as ``created`` is. Restarted old containers are never a
  new generation.
* **Promote** when every container of the generation is routable, at least
  ``replicas`` of them exist, and that has held for ``promote_after``.
* **Roll back** when the active color has had no routable container for
  ``rollback_after`` (stopped, unhealthy, or restarting and still in its
  start period: all serve 503) while the previous color is ready and not
  marked. A marked color is never an automatic target, so an operator's
  rollback is never undone.
* **Gates** (``bluegreen.smoke``, a gate webhook): a ready generation is promoted only
  once its own gates passed (:mod:`provider.core.gates`); a failed one waits.
* Never while Docker is disconnected (timers restart after a reconnect),
  never on label errors, never for ``promote=manual`` services, never when
  the matching global switch is off.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from provider.core.gates import GateResult, gate_wait
from provider.core.model import Color, ColorMark, MarkKind, PromoteMode, ServiceState
from provider.core.routing import Member, ServiceView


class Action(enum.StrEnum):
    """What the watcher should do for a service; the value is the switch reason."""

    PROMOTE = "auto-promote"
    ROLLBACK = "auto-rollback"


class Stage(enum.StrEnum):
    """Why a pending promotion or rollback has not happened yet."""

    #: Docker is not connected: nothing is decided on stale data.
    DISCONNECTED = "docker_disconnected"
    #: The service has label errors; a switch would be refused.
    LABEL_ERRORS = "label_errors"
    #: Some container of the generation is not routable (starting, unhealthy, stopped).
    NOT_ROUTABLE = "not_routable"
    #: Fewer routable containers than ``bluegreen.replicas``.
    TOO_FEW = "too_few_replicas"
    #: The previous color is not ready, so there is nothing to roll back to.
    PREVIOUS_NOT_READY = "previous_not_ready"
    #: A rollback left the previous color: never rolled back to automatically.
    PREVIOUS_REJECTED = "previous_rejected"
    #: An operator is retiring (stopping) the previous color.
    PREVIOUS_RETIRING = "previous_retiring"
    #: The idle color's containers predate its REJECTED mark: not a new generation.
    COLOR_REJECTED = "color_rejected"
    #: The idle color's containers predate its RETIRING mark: not a new generation.
    COLOR_RETIRING = "color_retiring"
    #: Ready; its gates (``bluegreen.smoke`` checks, a gate webhook) have not all passed yet.
    GATES_PENDING = "gates_pending"
    #: Ready; a check failed or the webhook rejected: never promoted automatically.
    GATE_FAILED = "gate_failed"
    #: ``bluegreen.promote=manual``: only an operator switches.
    MANUAL = "manual"
    #: ``--no-auto-promote`` or ``--no-auto-rollback``.
    DISABLED = "disabled"
    #: Ready; waiting for ``promote_after`` / ``rollback_after`` to elapse.
    HOLDING = "holding"


@dataclass(frozen=True)
class Policy:
    """The settings the decisions depend on."""

    promote_after: float = 1.0
    rollback_after: float = 5.0
    auto_promote: bool = True
    auto_rollback: bool = True


@dataclass(frozen=True)
class Timers:
    """What one service's decision remembers until the next evaluation.

    ``ready_since``: when the current generation (``generation``, its
    container ids) was first seen ready. ``dead_since``: when the active
    color was first seen with no routable container.
    """

    generation: frozenset[str] = frozenset()
    ready_since: float | None = None
    dead_since: float | None = None


@dataclass(frozen=True)
class Pending:
    """A promotion or rollback that has not happened, and why.

    ``provider.core.status.pending_json`` shapes it for ``/status``.
    """

    kind: Action
    color: Color
    stage: Stage
    detail: str
    since: float | None = None
    due_at: float | None = None
    generation_after: float | None = None
    containers: tuple[Member, ...] = ()
    routable: int = 0
    replicas: int = 1


@dataclass(frozen=True)
class Decision:
    """The outcome of one evaluation of one service."""

    action: Action | None = None
    target: Color | None = None
    timers: Timers = field(default_factory=Timers)
    promotion: Pending | None = None
    rollback: Pending | None = None
    #: When to evaluate again even if nothing changes (a hold elapsing).
    wake_at: float | None = None


def generation_anchor(state: ServiceState) -> float:
    """Containers created after this instant (daemon clock) form a new generation."""
    if state.anchor is not None:
        return state.anchor
    return state.last_switch.at if state.last_switch is not None else state.first_seen


def _after_anchor(view: ServiceView, state: ServiceState) -> tuple[Member, ...]:
    anchor = generation_anchor(state)
    return tuple(m for m in view.color(state.active.other).members if m.container.created > anchor)


def generation(view: ServiceView, state: ServiceState) -> tuple[Member, ...]:
    """The idle color's containers created after the anchor and its mark (the deploy to promote)."""
    mark = state.marks.get(state.active.other)
    members = _after_anchor(view, state)
    return tuple(m for m in members if mark is None or m.container.created > mark.since)


def blocking_mark(view: ServiceView, state: ServiceState, target: Color) -> ColorMark | None:
    """The mark that forbids an automatic switch to ``target`` now, or ``None``.

    Marked, and no routable container of ``target`` was created after the mark.
    The controller re-checks this under its lock just before an automatic
    switch, so a ``/retire`` or ``/rollback`` racing a decision always wins.
    """
    mark = state.marks.get(target)
    if mark is None:
        return None
    members = view.color(target).members
    fresh = any(m.routable and m.container.created > mark.since for m in members)
    return None if fresh else mark


def _describe_mark(color: Color, mark: ColorMark) -> str:
    return f"{color} is {mark.kind} ({mark.reason}); only a new deploy or POST /switch uses it"


def _why_not_routable(member: Member) -> str:
    c = member.container
    if member.problem:
        return f"{c.name} ({member.problem})"
    reason = c.state if c.state != "running" else str(c.health)
    output = c.health_output.strip().splitlines()[-1:] if c.health_output else []
    return f"{c.name} ({reason}: {output[0][:120]})" if output else f"{c.name} ({reason})"


def _promote_mode(view: ServiceView, color: Color) -> PromoteMode:
    route = view.color(color).route
    return route.promote if route is not None else PromoteMode.AUTO


def _evaluate_promotion(
    view: ServiceView,
    state: ServiceState,
    timers: Timers,
    policy: Policy,
    now: float,
    connected: bool,
    gates: GateResult | None = None,
) -> tuple[Pending | None, Timers, bool]:
    """The pending promotion (or ``None``), updated timers, and whether it is due."""
    members = generation(view, state)
    target = state.active.other
    if not members:
        return _marked_promotion(view, state, target), Timers(dead_since=timers.dead_since), False
    mark = state.marks.get(target)
    ids = frozenset(m.container.id for m in members)
    routable = sum(1 for m in members if m.routable)
    replicas = view.color(target).replicas
    ready = routable == len(members) and routable >= replicas

    ready_since: float | None = None
    if ready and connected and not view.errors:
        ready_since = _ready_since(members, ids, timers, now)
    new_timers = Timers(ids, ready_since, timers.dead_since)
    due_at = ready_since + policy.promote_after if ready_since is not None else None
    route = view.color(target).route
    gate = gate_wait(route.smoke if route else (), gates, ids, bool(route and route.gate_url))
    stage, detail, due = _promotion_stage(
        view, policy, target, members, (replicas, gate), due_at, now, connected
    )
    pending = Pending(
        kind=Action.PROMOTE,
        color=target,
        stage=stage,
        detail=detail,
        since=ready_since,
        due_at=due_at,
        generation_after=max(generation_anchor(state), mark.since if mark else 0.0),
        containers=members,
        routable=routable,
        replicas=replicas,
    )
    return pending, new_timers, due


def _marked_promotion(view: ServiceView, state: ServiceState, target: Color) -> Pending | None:
    """With no new generation: the marked (rejected or retiring) one still running, if any."""
    mark = state.marks.get(target)
    stale = _after_anchor(view, state)
    if mark is None or not stale:
        return None
    stage = Stage.COLOR_REJECTED if mark.kind is MarkKind.REJECTED else Stage.COLOR_RETIRING
    return Pending(
        kind=Action.PROMOTE,
        color=target,
        stage=stage,
        detail=_describe_mark(target, mark),
        generation_after=mark.since,
        containers=stale,
        routable=sum(1 for m in stale if m.routable),
        replicas=view.color(target).replicas,
    )


def _ready_since(
    members: tuple[Member, ...], ids: frozenset[str], timers: Timers, now: float
) -> float | None:
    """Since when the whole generation has been ready: kept while it is the same one."""
    same = timers.generation == ids and timers.ready_since is not None
    ready_since = timers.ready_since if same else now
    # Docker's own record of when each container last turned healthy is
    # level-triggered truth: a blip we never observed still restarts the hold.
    seen = [m.container.healthy_since for m in members if m.container.healthy_since]
    if seen and ready_since is not None:
        ready_since = max(ready_since, *seen)
    return ready_since


def _promotion_stage(
    view: ServiceView,
    policy: Policy,
    target: Color,
    members: tuple[Member, ...],
    needs: tuple[int, tuple[bool, str] | None],
    due_at: float | None,
    now: float,
    connected: bool,
) -> tuple[Stage, str, bool]:
    """Where the new generation's promotion stands: its stage, the detail, and whether due."""
    replicas, gate = needs  # the replicas required, where the gates stand (``gate_wait``)
    routable = sum(1 for m in members if m.routable)
    if not connected:
        return Stage.DISCONNECTED, "Docker is disconnected", False
    if view.errors:
        return Stage.LABEL_ERRORS, f"label errors: {view.errors[0]}", False
    if routable < len(members):
        waiting = [_why_not_routable(m) for m in members if not m.routable]
        detail = f"{len(waiting)} of {len(members)} new {target} container(s) not routable: "
        return Stage.NOT_ROUTABLE, detail + "; ".join(waiting), False
    if routable < replicas:
        detail = f"{routable} of {replicas} required {target} container(s) routable (replicas)"
        return Stage.TOO_FEW, detail, False
    if gate is not None:
        return (Stage.GATE_FAILED if gate[0] else Stage.GATES_PENDING), gate[1], False
    if _promote_mode(view, target) is PromoteMode.MANUAL:
        return Stage.MANUAL, f"{target} is ready; promote=manual, switch with POST /switch", False
    if not policy.auto_promote:
        detail = f"{target} is ready; auto-promote is off, switch with POST /switch"
        return Stage.DISABLED, detail, False
    assert due_at is not None
    if now < due_at:
        detail = f"{target} is ready; holding for promote_after ({policy.promote_after:g}s)"
        return Stage.HOLDING, detail, False
    return Stage.HOLDING, f"{target} is ready", True


def _evaluate_rollback(
    view: ServiceView,
    state: ServiceState,
    timers: Timers,
    policy: Policy,
    now: float,
    connected: bool,
) -> tuple[Pending | None, Timers, bool]:
    """The pending rollback (or ``None``), updated timers, and whether it is due."""
    active = view.color(state.active)
    if active.routable > 0 or not connected:
        return None, Timers(timers.generation, timers.ready_since, None), False
    dead_since = timers.dead_since if timers.dead_since is not None else now
    new_timers = Timers(timers.generation, timers.ready_since, dead_since)
    previous = state.previous
    if previous is None:
        return None, new_timers, False
    prev_view = view.color(previous)
    due_at = dead_since + policy.rollback_after

    def pending(stage: Stage, detail: str) -> Pending:
        return Pending(
            kind=Action.ROLLBACK,
            color=previous,
            stage=stage,
            detail=detail,
            since=dead_since,
            due_at=due_at,
            containers=prev_view.members,
            routable=prev_view.routable,
            replicas=prev_view.replicas,
        )

    head = f"active {state.active} has no routable container"
    if view.errors:
        return pending(Stage.LABEL_ERRORS, f"label errors: {view.errors[0]}"), new_timers, False
    mark = state.marks.get(previous)
    if mark is not None:
        stage = (
            Stage.PREVIOUS_REJECTED if mark.kind is MarkKind.REJECTED else Stage.PREVIOUS_RETIRING
        )
        return pending(stage, f"{head}; {_describe_mark(previous, mark)}"), new_timers, False
    if not prev_view.ready:
        detail = (
            f"{head}; previous {previous} has {prev_view.routable} of "
            f"{prev_view.replicas} required routable container(s)"
        )
        return pending(Stage.PREVIOUS_NOT_READY, detail), new_timers, False
    if _promote_mode(view, state.active) is PromoteMode.MANUAL:
        detail = f"{head}; promote=manual, roll back with POST /rollback"
        return pending(Stage.MANUAL, detail), new_timers, False
    if not policy.auto_rollback:
        detail = f"{head}; auto-rollback is off, roll back with POST /rollback"
        return pending(Stage.DISABLED, detail), new_timers, False
    if now < due_at:
        detail = f"{head}; rolling back after rollback_after ({policy.rollback_after:g}s)"
        return pending(Stage.HOLDING, detail), new_timers, False
    return pending(Stage.HOLDING, head), new_timers, True


def decide(
    view: ServiceView,
    state: ServiceState | None,
    timers: Timers,
    policy: Policy,
    *,
    now: float,
    connected: bool,
    gates: GateResult | None = None,
) -> Decision:
    """What to do for one service now.

    ``state`` is ``None`` for a service not adopted yet (no color was ever
    routable): nothing to promote from or roll back to. ``connected`` must be
    false whenever the observations may be stale; every hold then restarts. ``gates``:
    the service's last smoke checks' result (of any generation: ``gate_wait`` matches it).
    """
    if state is None:
        return Decision()
    promotion, timers, promote_due = _evaluate_promotion(
        view, state, timers, policy, now, connected, gates
    )
    rollback, timers, rollback_due = _evaluate_rollback(view, state, timers, policy, now, connected)
    wakes = [
        p.due_at
        for p in (promotion, rollback)
        if p is not None and p.stage is Stage.HOLDING and p.due_at is not None
    ]
    wake_at = min(wakes) if wakes else None
    if promote_due and promotion is not None:
        return Decision(Action.PROMOTE, promotion.color, timers, promotion, rollback, wake_at)
    if rollback_due and rollback is not None:
        return Decision(Action.ROLLBACK, rollback.color, timers, promotion, rollback, wake_at)
    return Decision(None, None, timers, promotion, rollback, wake_at)
