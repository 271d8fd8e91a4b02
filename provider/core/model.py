"""The values the pure core reasons about.

Everything here is a small frozen dataclass or an enum, a canary's too (its
transitions are in ``provider/core/canary.py``, which imports this module and
never the reverse). The Docker watcher normalizes raw inspect JSON into
:class:`Container` at the edge, so the core never sees Docker's dicts; the
state store turns :class:`ServiceState` and :class:`SwitchRecord` into JSON
and back.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from provider.core.canary_analysis import Window


class Color(enum.StrEnum):
    """The two slots of a blue/green service."""

    BLUE = "blue"
    GREEN = "green"

    @property
    def other(self) -> Color:
        """The idle counterpart of this color."""
        return Color.GREEN if self is Color.BLUE else Color.BLUE


class Health(enum.StrEnum):
    """Docker's health verdict for a container, as in ``State.Health.Status``."""

    #: The image declares no HEALTHCHECK: running means routable.
    NONE = "none"
    #: Inside the start period or before the first check passed: not routable.
    STARTING = "starting"
    #: The last checks passed: routable while running.
    HEALTHY = "healthy"
    #: The checks failed ``retries`` times in a row: not routable.
    UNHEALTHY = "unhealthy"


class PromoteMode(enum.StrEnum):
    """Whether the watcher may switch a service on its own."""

    #: Switch to a new generation as soon as it is ready.
    AUTO = "auto"
    #: Only an operator's ``POST /switch`` changes the active color.
    MANUAL = "manual"


@dataclass(frozen=True)
class Container:
    """One container as observed by the watcher, normalized.

    ``labels`` holds only the labels under the configured prefix; ``networks``
    maps network name to IP address; ``created`` and ``observed_healthy_since``
    are POSIX timestamps.
    """

    id: str
    name: str
    state: str
    health: Health
    labels: Mapping[str, str]
    created: float
    networks: Mapping[str, str] = field(default_factory=dict)
    network_mode: str = "default"
    exposed_ports: tuple[int, ...] = ()
    health_output: str = ""
    healthy_since: float | None = None
    #: ``Config.Image`` as the container was created (shown in events and webhooks).
    image: str = ""
    #: The image's ID (``sha256:...``): which build runs, whatever the tag now names.
    image_id: str = ""

    @property
    def routable(self) -> bool:
        """Running, and healthy or without a healthcheck (as Traefik's Docker provider)."""
        return self.state == "running" and self.health in (Health.HEALTHY, Health.NONE)


#: ``Container.network_mode`` of a Swarm task (``provider/core/swarm_normalize.py``):
#: reached on its overlay address, and its image's exposed ports are not known.
SWARM_TASK = "swarm-task"


class MarkKind(enum.StrEnum):
    """Why a color must not be switched to automatically."""

    #: A rollback (operator or automatic) left it: its version was judged bad.
    REJECTED = "rejected"
    #: An operator (the CLI) is stopping it (``POST /retire``).
    RETIRING = "retiring"


@dataclass(frozen=True)
class ColorMark:
    """A color that no automatic switch may target, until a new generation is deployed.

    ``since`` is in the Docker daemon's clock, like ``Container.created``: the
    color's containers created at or before it are never an automatic target.
    """

    kind: MarkKind
    since: float
    reason: str


@dataclass(frozen=True)
class SwitchRecord:
    """One entry of the audit trail: who moved which service where, and why."""

    service: str
    from_color: Color | None
    to_color: Color
    reason: str
    actor: str
    at: float
    seq: int
    #: Figures of a canary step or abort (``None`` for a plain switch).
    detail: Mapping[str, Any] | None = None
    #: The image each color ran at the switch (``from`` and ``to``, where known):
    #: which version the switch moved away from and to.
    images: Mapping[str, str] | None = None


@dataclass(frozen=True)
class ServiceState:
    """What the provider remembers of one service across restarts.

    ``first_seen`` anchors the generation rule: before any switch is
    recorded, only containers created after the provider first saw the
    service count as a new deploy. ``anchor`` is the instant of the last
    switch; both are in the Docker daemon's clock (``None``: a state file
    written before anchors existed, then ``last_switch.at`` stands in).
    ``marks`` holds the colors no automatic switch may target.
    """

    active: Color
    previous: Color | None = None
    last_switch: SwitchRecord | None = None
    first_seen: float = 0.0
    anchor: float | None = None
    marks: Mapping[Color, ColorMark] = field(default_factory=dict)


# -- a canary's persisted values (its transitions: provider/core/canary.py) ------


class Phase(enum.StrEnum):
    """Where a canary is."""

    #: Reserved before its deploy (``await_ready``): weight 0, automatic promotion of
    #: the color suspended; the first step starts when containers created after the
    #: reservation are ready.
    WAITING = "waiting"
    #: Its step's weight is served; the step's window is measured until it is judged.
    RUNNING = "running"
    #: It reached 100: the service switched to its color (history reason ``canary``).
    PROMOTED = "promoted"
    #: A breach, a lost color or an operator stopped it: weight 0, color marked rejected.
    ABORTED = "aborted"


class Verdict(enum.StrEnum):
    """What the analysis of one step concluded."""

    #: Error rate and p99 within the limits over at least ``min_requests``.
    PASS = "pass"
    #: Passed on health alone: no metrics URL, or too few requests after every extension.
    PASS_HEALTH_ONLY = "pass_health_only"
    #: Too few requests (or no figures) yet: the step waits one more interval.
    EXTEND = "extend"
    #: Error rate or p99 above the limit: abort.
    BREACH = "breach"
    #: The canary color stopped being ready: abort.
    NOT_READY = "not_ready"
    #: The metrics could not be read through every extension: abort (no hope-based pass).
    NO_FIGURES = "no_figures"


@dataclass(frozen=True)
class Limits:
    """What a step must stay within, and how many requests make a verdict."""

    max_error_rate: float = 0.01
    max_p99_ms: float | None = None
    min_requests: int = 50


@dataclass(frozen=True)
class StepResult:
    """The verdict of one step (or extension) and the figures behind it."""

    step: int
    weight: int
    verdict: Verdict
    detail: str
    at: float
    window: Window | None = None
    #: The step's extensions when judged: a result judged before another extension is stale.
    extensions: int = 0


@dataclass(frozen=True)
class Canary:
    """One service's canary: which color, its plan, where it is, and what each step showed.

    ``base`` is the active color when it started. ``step_started`` is when the
    current step's weight was first served (wall clock). ``extensions``
    counts the current step's extra intervals. ``results`` are the finished
    steps' verdicts; ``warnings`` say what passed on health alone.
    """

    service: str
    color: Color
    base: Color
    steps: tuple[int, ...]
    interval: float
    limits: Limits
    started: float
    step_started: float
    phase: Phase = Phase.RUNNING
    step: int = 0
    extensions: int = 0
    results: tuple[StepResult, ...] = ()
    warnings: tuple[str, ...] = ()
    ended: float | None = None
    reason: str | None = None
    #: Waiting canaries: only containers created after this (daemon clock) count.
    created_after: float | None = None

    @property
    def running(self) -> bool:
        """Not finished: it owns the service's switches (waiting or stepping)."""
        return self.phase in (Phase.WAITING, Phase.RUNNING)

    @property
    def weight(self) -> int:
        """The canary color's share now, in percent (0 while waiting and once it ended)."""
        return self.steps[self.step] if self.phase is Phase.RUNNING else 0

    def weights(self) -> dict[Color, int]:
        """Both colors' weights as served while it runs."""
        return {self.base: 100 - self.weight, self.color: self.weight}


@dataclass(frozen=True)
class Maintenance:
    """A service in maintenance: its public rule answers 503 with ``Retry-After`` and
    ``message`` (the preview header still reaches the colors). ``since`` is our clock."""

    message: str
    retry_after: int
    since: float
    actor: str
    reason: str = ""


class BakePhase(enum.StrEnum):
    """Where a bake after a switch is (``provider/core/bake.py``)."""

    #: The new color serves, judged each interval; the old color is kept warm.
    RUNNING = "running"
    #: Its time ran out without a breach: the old color may be drained.
    PASSED = "passed"
    #: A breach (or the new color lost): switched back to the old color, the new one rejected.
    REVERTED = "reverted"
    #: A breach, but the old color could not take traffic back (marked or not ready).
    FAILED = "failed"
    #: An operator decided later (a switch, rollback, canary): ended, nothing reverted.
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Bake:
    """A bake after the flip: ``color`` serves while ``old`` stays warm, judged by metrics.

    It owns the service only while the switch it follows (history ``seq``
    ``switch_seq``) is the service's last one: any later switch ends it with
    nothing reverted. ``started``, ``ended``: our clock.
    """

    service: str
    color: Color
    old: Color
    duration: float
    interval: float
    limits: Limits
    started: float
    switch_seq: int
    phase: BakePhase = BakePhase.RUNNING
    ended: float | None = None
    reason: str | None = None
    #: The figures of the last judged window (the breach's, on a revert).
    window: Window | None = None
    #: Windows judged so far (a window with too few requests goes on, unjudged).
    judged: int = 0
    actor: str = "api"

    @property
    def running(self) -> bool:
        return self.phase is BakePhase.RUNNING

    @property
    def ends(self) -> float:
        """When a clean bake passes (our clock)."""
        return self.started + self.duration


@dataclass(frozen=True)
class State:
    """The whole persisted state: every service's colors and the audit trail.

    ``canaries`` holds each service's latest canary (running or finished);
    ``maintenance`` the services in maintenance (absent: serving); ``bakes`` each
    service's latest bake after a switch.
    """

    services: Mapping[str, ServiceState] = field(default_factory=dict)
    history: tuple[SwitchRecord, ...] = ()
    seq: int = 0
    canaries: Mapping[str, Canary] = field(default_factory=dict)
    maintenance: Mapping[str, Maintenance] = field(default_factory=dict)
    bakes: Mapping[str, Bake] = field(default_factory=dict)
