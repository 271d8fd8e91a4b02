"""A bake after the flip: the new color serves, the old one stays warm, metrics judge.

Pure. ``bluegreen deploy --bake 60s`` (or the auto-switcher, for a color
labelled ``bluegreen.bake``) starts a bake right after its switch
(:class:`StartBake`). Each analysis interval the bake driver
(``provider/bake_driver.py``) scrapes Traefik's metrics of the new color and
:func:`judge` decides with the canary's own analysis
(:func:`provider.core.canary.breach`: error rate, p99; too few requests keep
the window open): a breach, or the new color losing its containers, switches
back to the warm old color and marks the new one rejected; a clean bake
passes once its time ran out, and only then may the old color be drained.

A bake owns its service only while the switch it follows is the service's
last one and no canary runs (:func:`owner`): an operator's later switch,
rollback or canary ends it (:data:`BakePhase.SUPERSEDED`) and nothing is
reverted. Every decision re-checks that under the controller's lock
(:func:`decide`), since the driver judges on a scrape made without it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from provider.core import canary as canaries
from provider.core import commands
from provider.core.canary_analysis import Window
from provider.core.model import Bake, BakePhase, Color, Limits, State
from provider.core.refusals import BakeNotRunning, BakeRefused, SwitchRefused
from provider.core.routing import ServiceView

__all__ = [
    "MAX_DURATION",
    "REASON_REVERT",
    "Bake",
    "BakeCommand",
    "BakeEvent",
    "BakePhase",
    "Color",
    "Judgement",
    "Outcome",
    "StartBake",
    "decide",
    "judge",
    "owner",
    "running",
]

#: The history reason of a bake's switch back.
REASON_REVERT = "bake-revert"
MAX_DURATION = 86400.0


class Outcome:
    """What one judged window means for the bake (string constants, see :func:`judge`)."""

    #: Breach or the new color lost: switch back to the old color.
    REVERT = "revert"
    #: The bake's time ran out without a breach: it passed.
    PASS = "pass"
    #: The window was clean over at least ``min_requests``: the next window starts.
    NEXT = "next"
    #: Too few requests (or no figures) yet: the window stays open.
    EXTEND = "extend"


@dataclass(frozen=True)
class Judgement:
    """The verdict on one window of a bake, and the figures behind it."""

    outcome: str
    detail: str
    window: Window | None
    started: float  #: the bake's ``started``: a verdict on a replaced bake is stale


@dataclass(frozen=True)
class StartBake:
    """Start baking ``color``, the service's new active color, against the warm previous one."""

    service: str
    color: Color
    duration: float
    interval: float
    limits: Limits
    actor: str = "api"


@dataclass(frozen=True)
class BakeEvent:
    """A judgement of the running bake (the driver), or its end because it lost ownership."""

    service: str
    judgement: Judgement | None  #: ``None``: no verdict, end it if superseded
    actor: str = "watcher"


#: The bake's commands (decided by :func:`decide`, beside ``commands.decide``'s).
BakeCommand = StartBake | BakeEvent


def running(state: State, service: str) -> Bake | None:
    """The service's bake if one runs."""
    bake = state.bakes.get(service)
    return bake if bake is not None and bake.running else None


def owner(state: State, bake: Bake) -> str | None:
    """``None`` while ``bake`` still owns its service, else what superseded it.

    It owns it while the switch it follows is the last one, its color is
    active, and no canary runs: anything else is an operator's later decision.
    """
    known = state.services.get(bake.service)
    if known is None or known.last_switch is None:
        return "the service's state is gone"
    last = known.last_switch
    if last.seq != bake.switch_seq or known.active is not bake.color:
        return f"a later switch ({last.reason} by {last.actor}) to {known.active}"
    if canaries.running(state, bake.service) is not None:
        return "a canary started"
    return None


def judge(
    bake: Bake, window: Window | None, *, ready: bool, metrics: bool, now: float
) -> Judgement:
    """The verdict on the bake's current window at ``now``.

    ``ready``: the new color still has its replicas routable (else: revert at
    once, the old color is warm). ``metrics``: a Traefik metrics URL is set
    (without one the bake only keeps the old color warm for its duration).
    ``window``: the figures since the window opened (``None``: unreadable).
    """

    def verdict(outcome: str, detail: str) -> Judgement:
        return Judgement(outcome, detail, window, bake.started)

    if not ready:
        return verdict(Outcome.REVERT, f"{bake.color} stopped being ready")
    if window is not None and metrics:
        breached = canaries.breach(bake.limits, window)
        if breached is not None:
            return verdict(Outcome.REVERT, breached)
    if now >= bake.ends:
        if not metrics:
            return verdict(Outcome.PASS, "no Traefik metrics URL: the old color was kept warm")
        if window is None:
            return verdict(Outcome.PASS, "baked; Traefik's metrics could not be read at the end")
        return verdict(Outcome.PASS, f"baked: {window.errors} errors in {window.requests} requests")
    if window is not None and window.requests >= bake.limits.min_requests:
        return verdict(Outcome.NEXT, f"{window.errors} errors in {window.requests} requests")
    seen = 0 if window is None else window.requests
    return verdict(Outcome.EXTEND, f"{seen} of {bake.limits.min_requests} requests so far")


# -- decisions (under the controller's lock) --------------------------------------


def decide(
    state: State,
    view: ServiceView,
    command: StartBake | BakeEvent,
    now: commands.Now,
    *,
    history_limit: int,
) -> commands.Decision:
    """The state to commit for ``command``, or a refusal (nothing changed)."""
    if isinstance(command, StartBake):
        return commands.Decision(_with_bake(state, start(state, command, now.wall)))
    return _event(state, view, command, now, history_limit=history_limit)


def start(state: State, command: StartBake, now: float) -> Bake:
    """A new bake of the active ``color``; refused unless the service just switched there."""
    service, color = command.service, command.color
    known = state.services.get(service)
    if known is None or known.last_switch is None or known.active is not color:
        raise BakeRefused(f"{color} is not the active color of {service}; nothing to bake")
    if known.last_switch.from_color is not color.other:
        raise BakeRefused(
            f"{service} did not switch from {color.other}; no warm color to revert to"
        )
    if canaries.running(state, service) is not None:
        raise BakeRefused(f"a canary of {service} runs; it judges the color itself")
    if not 0 < command.duration <= MAX_DURATION:
        raise BakeRefused("a bake lasts between 0 s and 24 h")
    return Bake(
        service,
        color,
        color.other,
        command.duration,
        command.interval,
        command.limits,
        now,
        known.last_switch.seq,
        actor=command.actor,
    )


def _event(
    state: State, view: ServiceView, command: BakeEvent, now: commands.Now, *, history_limit: int
) -> commands.Decision:
    bake = running(state, command.service)
    judgement = command.judgement
    if bake is None or (judgement is not None and judgement.started != bake.started):
        raise BakeNotRunning(f"no bake of {command.service} runs (or it was replaced)")
    superseded = owner(state, bake)
    if superseded is not None:
        ended = _ended(bake, BakePhase.SUPERSEDED, f"ended by {superseded}", now.wall, None)
        return commands.Decision(_with_bake(state, ended))
    if judgement is None:
        raise BakeNotRunning(f"the bake of {command.service} still owns it")
    if judgement.outcome == Outcome.PASS:
        passed = _ended(bake, BakePhase.PASSED, judgement.detail, now.wall, judgement.window)
        return commands.Decision(_with_bake(state, passed))
    if judgement.outcome != Outcome.REVERT:
        window = judgement.window if judgement.outcome == Outcome.NEXT else bake.window
        judged = bake.judged + (judgement.outcome == Outcome.NEXT)
        return commands.Decision(_with_bake(state, replace(bake, window=window, judged=judged)))
    return _revert(state, view, bake, command, now, history_limit=history_limit)


def _revert(
    state: State,
    view: ServiceView,
    bake: Bake,
    command: BakeEvent,
    now: commands.Now,
    *,
    history_limit: int,
) -> commands.Decision:
    """Back to the warm old color, the new one rejected; never to a marked or lost color."""
    assert command.judgement is not None
    why = command.judgement.detail
    back = commands.Switch(
        bake.service,
        bake.old,
        reason=REASON_REVERT,
        actor=command.actor,
        automatic=True,
        reject=True,
    )
    try:  # automatic: refused towards a rejected or retiring color (promotion.blocking_mark)
        decision = commands.switch(state, view, back, now, history_limit=history_limit)
    except SwitchRefused as refused:
        detail = f"{why}; not reverted: {refused.detail}"
        failed = _ended(bake, BakePhase.FAILED, detail, now.wall, command.judgement.window)
        return commands.Decision(_with_bake(state, failed))
    assert decision.state is not None  # the old color is not active: a switch is decided
    reverted = _ended(bake, BakePhase.REVERTED, why, now.wall, command.judgement.window)
    return replace(decision, state=_with_bake(decision.state, reverted))


def _ended(bake: Bake, phase: BakePhase, reason: str, now: float, window: Window | None) -> Bake:
    return replace(bake, phase=phase, ended=now, reason=reason, window=window or bake.window)


def _with_bake(state: State, bake: Bake) -> State:
    bakes = dict(state.bakes)
    bakes[bake.service] = bake
    return replace(state, bakes=bakes)
