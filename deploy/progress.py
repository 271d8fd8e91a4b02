"""Following a color's new containers from created to taking traffic.

Pure: a :class:`RolloutTracker` is fed successive :class:`ServiceSnapshot`\\ s
and answers, each time, what changed (progress lines) and where the rollout
stands (:class:`Verdict`). The driver in ``deploy/rollout.py`` owns the
clock, the polling and every side effect.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from deploy.snapshot import ContainerSnapshot, PendingSnapshot, ServiceSnapshot
from provider.core.model import Color, PromoteMode
from provider.core.promotion import Stage

#: Pending-promotion stages in which the provider will not switch on its own.
OPERATOR_STAGES = frozenset({Stage.MANUAL, Stage.DISABLED})
#: Stages in which nobody may switch yet: the gates (``bluegreen.smoke``) have not passed.
GATE_STAGES = frozenset({Stage.GATES_PENDING, Stage.GATE_FAILED})


class Verdict(enum.StrEnum):
    """Where a rollout stands after one snapshot."""

    #: Some watched container is not routable yet (or not seen by the provider yet).
    WAITING = "waiting"
    #: The target color has enough routable watched containers; traffic not moved yet.
    READY = "ready"
    #: The provider's active color is the target: traffic has moved.
    SWITCHED = "switched"
    #: A watched container went unhealthy, exited or died; or a gate failed.
    FAILED = "failed"


@dataclass(frozen=True)
class Step:
    """The outcome of one observation."""

    verdict: Verdict
    lines: tuple[str, ...] = ()
    #: The watched containers that failed (for the failure report).
    failing: tuple[ContainerSnapshot, ...] = ()
    #: True when the provider will not promote on its own (promote=manual, auto-promote off).
    needs_operator_switch: bool = False
    #: True when the provider reports no pending promotion at all for a ready color.
    provider_silent: bool = False


class RolloutTracker:
    """Watches ``target``'s containers whose ids are in ``watched``.

    Without ``watched``: every container of ``target`` whose id is not in
    ``exclude`` (a deploy passes the ids that existed before ``compose up``, so
    what is left is exactly what compose created, without asking compose).

    ``restarting``: the watched containers were stopped and have just been
    started again, so a snapshot that still shows them exited is stale: exited
    counts as a failure only after the container was seen running.
    """

    def __init__(
        self,
        target: Color,
        watched: Iterable[str] = (),
        *,
        exclude: Iterable[str] = (),
        restarting: bool = False,
    ) -> None:
        self.target = target
        self.watched = tuple(watched)
        self.exclude = tuple(exclude)
        self.restarting = restarting
        self._ran: set[str] = set()
        self._phases: dict[str, str] = {}
        self._pending_stage: Stage | str | None = None
        self._missing_reported = -1
        #: The provider's words for the failed gate (a smoke check), once one failed.
        self.gate_failure: str | None = None

    def _mine(self, containers: Iterable[ContainerSnapshot]) -> list[ContainerSnapshot]:
        if not self.watched:
            return [c for c in containers if not any(c.matches(x) for x in self.exclude)]
        return [c for c in containers if any(c.matches(w) for w in self.watched)]

    def observe(self, snap: ServiceSnapshot) -> Step:
        """Compare ``snap`` with what was seen before; report changes and the verdict."""
        color = snap.color(self.target)
        mine = self._mine(color.containers)
        lines: list[str] = []
        for c in mine:
            if c.state == "running":
                self._ran.add(c.id)
            before = self._phases.get(c.id)
            if before != c.phase:
                arrow = f"{before} → {c.phase}" if before else c.phase
                lines.append(f"{self.target}  {c.name or c.id}  {arrow}")
                self._phases[c.id] = c.phase
        missing = len(self.watched) - len(mine) if self.watched else int(not mine)
        if missing > 0 and missing != self._missing_reported:
            count = f"{missing} " if self.watched else ""
            what = f"{count}new {self.target} container(s)"
            lines.append(f"waiting for the provider to see the {what}")
        self._missing_reported = missing

        promotion = snap.pending
        stage = promotion.stage if promotion is not None else None
        if (
            stage != self._pending_stage
            and promotion is not None
            and promotion.color == self.target
            and stage != Stage.NOT_ROUTABLE
        ):
            lines.append(f"promotion: {promotion.why}")
        self._pending_stage = stage

        all_routable = bool(mine) and missing <= 0 and all(c.routable for c in mine)
        if snap.active == self.target and snap.adopted and all_routable:
            # Done only when the new containers serve: the provider may have made the
            # color active thanks to older containers (a first deploy's adoption, or a
            # promotion already under way), so "active" alone does not prove the deploy.
            return Step(Verdict.SWITCHED, tuple(lines))
        failing = tuple(c for c in mine if c.failed and self._counts(c))
        if failing:
            return Step(Verdict.FAILED, tuple(lines), failing)
        if stage == Stage.GATE_FAILED and promotion is not None and self._gated(promotion, mine):
            self.gate_failure = promotion.why
            return Step(Verdict.FAILED, tuple(lines))
        if all_routable and color.ready:
            gated = stage in GATE_STAGES  # never an operator switch before the gates pass
            manual = color.promote == PromoteMode.MANUAL
            operator = not gated and (stage in OPERATOR_STAGES or manual)
            return Step(
                Verdict.READY,
                tuple(lines),
                needs_operator_switch=operator,
                provider_silent=promotion is None,
            )
        return Step(Verdict.WAITING, tuple(lines))

    def _gated(self, promotion: PendingSnapshot, mine: list[ContainerSnapshot]) -> bool:
        """Whether the pending promotion is of the watched containers (not an older generation)."""
        ids = {c.id for c in promotion.containers}
        return promotion.color == self.target and bool(mine) and all(c.id in ids for c in mine)

    def _counts(self, c: ContainerSnapshot) -> bool:
        """Whether a failed-looking container really failed (see ``restarting``)."""
        return not self.restarting or c.state == "running" or c.id in self._ran

    def seen_any(self, snap: ServiceSnapshot | None) -> bool:
        """Whether the provider has shown any watched container yet."""
        return snap is not None and bool(self._mine(snap.color(self.target).containers))

    def not_ready(self, snap: ServiceSnapshot | None) -> tuple[ContainerSnapshot, ...]:
        """The watched containers that are not routable in ``snap`` (for a timeout report)."""
        if snap is None:
            return ()
        return tuple(c for c in self._mine(snap.color(self.target).containers) if not c.routable)
