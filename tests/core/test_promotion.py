"""Table-driven tests of the automatic promotion and rollback decisions (pure, no Docker)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest

from provider.core.model import (
    Color,
    ColorMark,
    Container,
    Health,
    MarkKind,
    ServiceState,
    SwitchRecord,
)
from provider.core.promotion import (
    Action,
    Decision,
    Pending,
    Policy,
    Stage,
    Timers,
    blocking_mark,
    decide,
    generation,
)
from provider.core.routing import Options, ServiceView, observe
from provider.core.status import pending_json
from tests.factories import make_container

BLUE, GREEN = Color.BLUE, Color.GREEN
FIRST_SEEN = 100.0
NOW = 200.0


def ctr(
    cid: str,
    color: str,
    created: float,
    *,
    health: Health = Health.HEALTHY,
    state: str = "running",
    healthy_since: float | None = None,
    labels: dict[str, str] | None = None,
    output: str = "",
) -> Container:
    return make_container(
        "web",
        color,
        cid=cid,
        name=f"web-{cid}",
        state=state,
        health=health,
        extra=labels,
        created=created,
        health_output=output,
        healthy_since=healthy_since,
    )


def view_of(containers: Sequence[Container]) -> ServiceView:
    return observe(containers, Options()).services["web"]


def switched(active: Color, at: float) -> ServiceState:
    record = SwitchRecord("web", active.other, active, "manual", "api", at, 1)
    return ServiceState(active, active.other, record, FIRST_SEEN)


ADOPTED_BLUE = ServiceState(BLUE, first_seen=FIRST_SEEN)
OLD_BLUE = ctr("b1", "blue", 50.0)
DEAD_BLUE = ctr("b1", "blue", 50.0, state="exited", health=Health.UNHEALTHY)


@dataclass(frozen=True)
class Row:
    """One scenario: inputs and what the decision should be."""

    containers: tuple[Container, ...]
    state: ServiceState | None = ADOPTED_BLUE
    timers: Timers = field(default_factory=Timers)
    policy: Policy = field(default_factory=Policy)
    connected: bool = True
    # expected:
    action: Action | None = None
    promotion: Stage | None = None
    rollback: Stage | None = None
    ready_since: float | None = None
    wake_at: float | None = None


GEN = frozenset({"g1"})
ROWS: dict[str, Row] = {
    "both colors older than first sight: no generation, nothing pending": Row(
        (OLD_BLUE, ctr("g1", "green", 60.0)),
    ),
    "new healthy green: hold starts now": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0)),
        promotion=Stage.HOLDING,
        ready_since=NOW,
        wake_at=NOW + 1.0,
    ),
    "new healthy green held for promote_after: promote": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0)),
        timers=Timers(GEN, NOW - 1.0),
        action=Action.PROMOTE,
        promotion=Stage.HOLDING,
        ready_since=NOW - 1.0,
        wake_at=NOW,
    ),
    "a different generation was ready before: the hold restarts": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0)),
        timers=Timers(frozenset({"g0"}), NOW - 10.0),
        promotion=Stage.HOLDING,
        ready_since=NOW,
        wake_at=NOW + 1.0,
    ),
    "docker saw a blip we missed: the hold counts from its healthy_since": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0, healthy_since=NOW - 0.5)),
        timers=Timers(GEN, NOW - 5.0),
        promotion=Stage.HOLDING,
        ready_since=NOW - 0.5,
        wake_at=NOW + 0.5,
    ),
    "promote_after 0: promote at once": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0)),
        policy=Policy(promote_after=0.0),
        action=Action.PROMOTE,
        promotion=Stage.HOLDING,
        ready_since=NOW,
        wake_at=NOW,
    ),
    "new green still starting: not routable, no hold": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0, health=Health.STARTING)),
        timers=Timers(GEN, NOW - 5.0),
        promotion=Stage.NOT_ROUTABLE,
    ),
    "one of two new greens unhealthy: not routable": Row(
        (
            OLD_BLUE,
            ctr("g1", "green", 150.0),
            ctr("g2", "green", 151.0, health=Health.UNHEALTHY, output="wget: 404"),
        ),
        promotion=Stage.NOT_ROUTABLE,
    ),
    "a new green that exited blocks its generation": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0), ctr("g2", "green", 151.0, state="exited")),
        promotion=Stage.NOT_ROUTABLE,
    ),
    "replicas=2 with one healthy: too few": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0, labels={"bluegreen.replicas": "2"})),
        promotion=Stage.TOO_FEW,
        ready_since=None,
    ),
    "replicas=2 with two healthy, held: promote": Row(
        (
            OLD_BLUE,
            ctr("g1", "green", 150.0, labels={"bluegreen.replicas": "2"}),
            ctr("g2", "green", 151.0, labels={"bluegreen.replicas": "2"}),
        ),
        timers=Timers(frozenset({"g1", "g2"}), NOW - 2.0),
        action=Action.PROMOTE,
        promotion=Stage.HOLDING,
        ready_since=NOW - 2.0,
        wake_at=NOW - 1.0,
    ),
    "old unhealthy green left over: only the new generation counts": Row(
        (
            OLD_BLUE,
            ctr("g0", "green", 60.0, state="exited", health=Health.UNHEALTHY),
            ctr("g1", "green", 150.0),
        ),
        timers=Timers(GEN, NOW - 1.0),
        action=Action.PROMOTE,
        promotion=Stage.HOLDING,
        ready_since=NOW - 1.0,
        wake_at=NOW,
    ),
    "promote=manual: ready but never switched by the watcher": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0, labels={"bluegreen.promote": "manual"})),
        timers=Timers(GEN, NOW - 10.0),
        promotion=Stage.MANUAL,
        ready_since=NOW - 10.0,
    ),
    "--no-auto-promote: ready but disabled": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0)),
        timers=Timers(GEN, NOW - 10.0),
        policy=Policy(auto_promote=False),
        promotion=Stage.DISABLED,
        ready_since=NOW - 10.0,
    ),
    "docker disconnected: nothing decided, hold forgotten": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0)),
        timers=Timers(GEN, NOW - 10.0),
        connected=False,
        promotion=Stage.DISCONNECTED,
    ),
    "label errors: no promotion": Row(
        (
            OLD_BLUE,
            ctr("g1", "green", 150.0),
            ctr("g2", "green", 151.0, labels={"bluegreen.rule": "Host(`other`)"}),
        ),
        timers=Timers(frozenset({"g1", "g2"}), NOW - 10.0),
        promotion=Stage.LABEL_ERRORS,
    ),
    "old color created before the last switch is no generation (restart after switch)": Row(
        (ctr("g1", "green", 150.0), ctr("b1", "blue", 50.0, healthy_since=NOW - 0.1)),
        state=switched(GREEN, at=160.0),
    ),
    "a deploy after the last switch is a generation": Row(
        (ctr("g1", "green", 150.0), ctr("b2", "blue", 170.0)),
        state=switched(GREEN, at=160.0),
        promotion=Stage.HOLDING,
        ready_since=NOW,
        wake_at=NOW + 1.0,
    ),
    "service not adopted yet: no decision": Row(
        (ctr("b1", "blue", 150.0, health=Health.STARTING),),
        state=None,
    ),
    "active dead, previous ready: rollback hold starts": Row(
        (DEAD_BLUE, ctr("g1", "green", 40.0)),
        state=switched(BLUE, at=60.0),
        rollback=Stage.HOLDING,
        wake_at=NOW + 5.0,
    ),
    "active dead for rollback_after, previous ready: roll back": Row(
        (DEAD_BLUE, ctr("g1", "green", 40.0)),
        state=switched(BLUE, at=60.0),
        timers=Timers(dead_since=NOW - 5.0),
        action=Action.ROLLBACK,
        rollback=Stage.HOLDING,
        wake_at=NOW,
    ),
    "active dead, previous not ready: no rollback": Row(
        (DEAD_BLUE, ctr("g1", "green", 40.0, health=Health.UNHEALTHY)),
        state=switched(BLUE, at=60.0),
        timers=Timers(dead_since=NOW - 50.0),
        rollback=Stage.PREVIOUS_NOT_READY,
    ),
    "active dead, no previous color: nothing to roll back to": Row(
        (DEAD_BLUE, ctr("g1", "green", 40.0)),
        timers=Timers(dead_since=NOW - 50.0),
    ),
    "--no-auto-rollback: disabled": Row(
        (DEAD_BLUE, ctr("g1", "green", 40.0)),
        state=switched(BLUE, at=60.0),
        timers=Timers(dead_since=NOW - 50.0),
        policy=Policy(auto_rollback=False),
        rollback=Stage.DISABLED,
    ),
    "active promote=manual: no automatic rollback": Row(
        (
            ctr("b1", "blue", 50.0, state="exited", labels={"bluegreen.promote": "manual"}),
            ctr("g1", "green", 40.0),
        ),
        state=switched(BLUE, at=60.0),
        timers=Timers(dead_since=NOW - 50.0),
        rollback=Stage.MANUAL,
    ),
    "active alive again: rollback forgotten": Row(
        (OLD_BLUE, ctr("g1", "green", 40.0)),
        state=switched(BLUE, at=60.0),
        timers=Timers(dead_since=NOW - 50.0),
    ),
    "disconnected: no rollback on stale data": Row(
        (DEAD_BLUE, ctr("g1", "green", 40.0)),
        state=switched(BLUE, at=60.0),
        timers=Timers(dead_since=NOW - 50.0),
        connected=False,
    ),
    "promotion and rollback both due: promote the new generation": Row(
        (DEAD_BLUE, ctr("g1", "green", 40.0), ctr("g2", "green", 150.0)),
        state=switched(BLUE, at=60.0),
        timers=Timers(frozenset({"g2"}), NOW - 1.0, NOW - 50.0),
        action=Action.PROMOTE,
        promotion=Stage.HOLDING,
        rollback=Stage.HOLDING,
        ready_since=NOW - 1.0,
        wake_at=NOW - 45.0,
    ),
}


def marked(state: ServiceState, color: Color, kind: MarkKind, since: float) -> ServiceState:
    return replace(state, marks={color: ColorMark(kind, since, "test")})


REJECTED, RETIRING = MarkKind.REJECTED, MarkKind.RETIRING
GREEN_LIVE_BLUE_DEAD = (DEAD_BLUE, ctr("g1", "green", 40.0))
#: The provider-side rule of issue 9 defects 1 and 6: a marked color's containers
#: created at or before the mark are never an automatic target, either way.
MARK_ROWS: dict[str, Row] = {
    "green rejected, its containers predate the mark: never promoted": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0)),
        state=marked(ADOPTED_BLUE, GREEN, REJECTED, 160.0),
        timers=Timers(GEN, NOW - 10.0),
        promotion=Stage.COLOR_REJECTED,
    ),
    "green retiring, its containers predate the mark: never promoted": Row(
        (OLD_BLUE, ctr("g1", "green", 150.0)),
        state=marked(ADOPTED_BLUE, GREEN, RETIRING, 160.0),
        timers=Timers(GEN, NOW - 10.0),
        promotion=Stage.COLOR_RETIRING,
    ),
    "green retiring, a container created exactly at the mark: still not new": Row(
        (OLD_BLUE, ctr("g1", "green", 160.0)),
        state=marked(ADOPTED_BLUE, GREEN, RETIRING, 160.0),
        timers=Timers(GEN, NOW - 10.0),
        promotion=Stage.COLOR_RETIRING,
    ),
    "green retiring, a deploy after the mark: a new generation, promoted": Row(
        (OLD_BLUE, ctr("g0", "green", 150.0, state="exited"), ctr("g1", "green", 170.0)),
        state=marked(ADOPTED_BLUE, GREEN, RETIRING, 160.0),
        timers=Timers(GEN, NOW - 1.0),
        action=Action.PROMOTE,
        promotion=Stage.HOLDING,
        ready_since=NOW - 1.0,
        wake_at=NOW,
    ),
    "green rejected by the last rollback, old green restarted: nothing pending": Row(
        (ctr("b1", "blue", 40.0), ctr("g1", "green", 50.0, healthy_since=NOW - 5.0)),
        state=marked(switched(BLUE, at=60.0), GREEN, REJECTED, 60.0),
    ),
    "blue (active) dead, previous green rejected: no rollback": Row(
        GREEN_LIVE_BLUE_DEAD,
        state=marked(switched(BLUE, at=60.0), GREEN, REJECTED, 60.0),
        timers=Timers(dead_since=NOW - 50.0),
        rollback=Stage.PREVIOUS_REJECTED,
    ),
    "blue (active) dead, previous green retiring: no rollback": Row(
        GREEN_LIVE_BLUE_DEAD,
        state=marked(switched(BLUE, at=60.0), GREEN, RETIRING, 70.0),
        timers=Timers(dead_since=NOW - 50.0),
        rollback=Stage.PREVIOUS_RETIRING,
    ),
    "blue (active) restarting, previous green rejected: no rollback": Row(
        (ctr("b1", "blue", 50.0, health=Health.STARTING), ctr("g1", "green", 40.0)),
        state=marked(switched(BLUE, at=60.0), GREEN, REJECTED, 60.0),
        timers=Timers(dead_since=NOW - 50.0),
        rollback=Stage.PREVIOUS_REJECTED,
    ),
    "blue (active) restarting, previous green unmarked: rolled back (restarting is dead)": Row(
        (ctr("b1", "blue", 50.0, health=Health.STARTING), ctr("g1", "green", 40.0)),
        state=switched(BLUE, at=60.0),
        timers=Timers(dead_since=NOW - 50.0),
        action=Action.ROLLBACK,
        rollback=Stage.HOLDING,
        wake_at=NOW - 45.0,
    ),
    "a mark on the active color's other side only: blue's own rollback unaffected": Row(
        GREEN_LIVE_BLUE_DEAD,
        state=marked(switched(BLUE, at=60.0), BLUE, RETIRING, 70.0),
        timers=Timers(dead_since=NOW - 50.0),
        action=Action.ROLLBACK,
        rollback=Stage.HOLDING,
        wake_at=NOW - 45.0,
    ),
}


@pytest.mark.parametrize("row", MARK_ROWS.values(), ids=MARK_ROWS.keys())
def test_decide_never_targets_a_marked_color(row: Row) -> None:
    """Each marked-color scenario: no automatic switch to the marked color, and why."""
    assert row.state is not None
    decision = decide(
        view_of(row.containers),
        row.state,
        row.timers,
        row.policy,
        now=NOW,
        connected=row.connected,
    )

    expected = (row.action, row.promotion, row.rollback, row.ready_since, row.wake_at)
    assert expected == _summary(decision)
    if decision.action is not None:
        assert decision.target not in row.state.marks or decision.action is Action.PROMOTE


BLOCK_ROWS: dict[str, tuple[tuple[Container, ...], MarkKind | None, MarkKind | None]] = {
    "no mark: nothing blocks": ((ctr("g1", "green", 150.0),), None, None),
    "marked, only older containers: blocked": (
        (ctr("g1", "green", 150.0),),
        REJECTED,
        REJECTED,
    ),
    "marked, a routable container after the mark: not blocked": (
        (ctr("g1", "green", 150.0), ctr("g2", "green", 161.0)),
        RETIRING,
        None,
    ),
    "marked, the newer container not routable: blocked": (
        (ctr("g2", "green", 161.0, health=Health.STARTING),),
        RETIRING,
        RETIRING,
    ),
}


@pytest.mark.parametrize("row", BLOCK_ROWS.values(), ids=BLOCK_ROWS.keys())
def test_blocking_mark(row: tuple[tuple[Container, ...], MarkKind | None, MarkKind | None]) -> None:
    """The controller's last check before an automatic switch: marked, and nothing newer."""
    containers, kind, expected = row
    state = ADOPTED_BLUE if kind is None else marked(ADOPTED_BLUE, GREEN, kind, 160.0)

    found = blocking_mark(view_of((OLD_BLUE, *containers)), state, GREEN)

    assert expected == (found.kind if found else None)


def test_a_container_created_exactly_at_the_anchor_is_no_new_generation() -> None:
    """The generation rule is strictly "created after": a container created at the very
    instant of the last switch (or of first sight) is not a new deploy."""
    at_switch = view_of((ctr("g1", "green", 150.0), ctr("b1", "blue", 160.0)))
    at_first_sight = view_of((OLD_BLUE, ctr("g1", "green", FIRST_SEEN)))

    assert [] == list(generation(at_switch, switched(GREEN, at=160.0)))
    assert [] == list(generation(at_first_sight, ADOPTED_BLUE))


def test_the_anchor_in_the_daemon_clock_wins_over_the_record_time() -> None:
    """A switch's ``anchor`` (daemon clock) decides the generation, not ``last_switch.at``
    (the provider's clock, for the audit trail)."""
    view = view_of((ctr("g1", "green", 150.0), ctr("b1", "blue", 3650.0)))
    state = replace(switched(GREEN, at=160.0), anchor=3660.0)

    assert [] == list(generation(view, state))


def _summary(decision: Decision) -> tuple[object, ...]:
    return (
        decision.action,
        decision.promotion.stage if decision.promotion else None,
        decision.rollback.stage if decision.rollback else None,
        decision.timers.ready_since,
        decision.wake_at,
    )


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_decide(row: Row) -> None:
    """Each scenario's action, pending stages, hold start and wake-up time."""
    decision = decide(
        view_of(row.containers),
        row.state,
        row.timers,
        row.policy,
        now=NOW,
        connected=row.connected,
    )

    expected = (row.action, row.promotion, row.rollback, row.ready_since, row.wake_at)
    assert expected == _summary(decision)
    if decision.action is not None:
        assert decision.target is (GREEN if row.state and row.state.active is BLUE else BLUE)


def test_dead_since_is_remembered_across_evaluations() -> None:
    """The rollback hold starts when the active color is first seen dead, and elapses."""
    view = view_of((DEAD_BLUE, ctr("g1", "green", 40.0)))
    state = switched(BLUE, at=60.0)
    policy = Policy(rollback_after=5.0)

    first = decide(view, state, Timers(), policy, now=NOW, connected=True)
    early = decide(view, state, first.timers, policy, now=NOW + 4.9, connected=True)
    due = decide(view, state, early.timers, policy, now=NOW + 5.0, connected=True)

    assert (NOW, None, Action.ROLLBACK) == (first.timers.dead_since, early.action, due.action)


def test_pending_promotion_explains_what_it_waits_for() -> None:
    """The /status document names each container, its health and last healthcheck output."""
    view = view_of(
        (OLD_BLUE, ctr("g1", "green", 150.0, health=Health.UNHEALTHY, output="wget: 404\n"))
    )

    decision = decide(view, ADOPTED_BLUE, Timers(), Policy(), now=NOW, connected=True)

    assert decision.promotion is not None
    doc = pending_json(decision.promotion)
    assert {
        "kind": "auto-promote",
        "color": "green",
        "stage": "not_routable",
        "waiting_for": "1 of 1 new green container(s) not routable: web-g1 (unhealthy: wget: 404)",
        "since": None,
        "due_at": None,
        "generation_after": FIRST_SEEN,
        "routable": 0,
        "replicas": 1,
        "containers": [
            {
                "id": "g1",
                "name": "web-g1",
                "state": "running",
                "health": "unhealthy",
                "routable": False,
                "health_output": "wget: 404\n",
                "problem": None,
                "address": "http://127.0.0.1:8080",
                "created": 150.0,
                "image": "",
                "image_id": "",
            }
        ],
    } == doc


def test_generation_is_anchored_at_first_seen_before_any_switch() -> None:
    """Before a switch, only idle containers created after the provider first saw the service."""
    view = view_of((OLD_BLUE, ctr("g0", "green", 99.0), ctr("g1", "green", 101.0)))

    assert ["g1"] == [m.container.id for m in generation(view, ADOPTED_BLUE)]


# --- Pinned by mutation testing (docs/mutation.md) ---------------------------------------


def _pendings(row: Row) -> list[tuple[str, Pending]]:
    decision = decide(
        view_of(row.containers), row.state, row.timers, row.policy, now=NOW, connected=row.connected
    )
    found = [("promotion", decision.promotion), ("rollback", decision.rollback)]
    return [(which, p) for which, p in found if p is not None]


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_every_pending_decision_explains_itself(row: Row) -> None:
    """Whatever a pending promotion or rollback waits for, /status gets a sentence saying so."""
    for _, pending in _pendings(row):
        assert isinstance(pending.detail, str)
        assert pending.detail.strip() != ""
        assert "None" not in pending.detail


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_pending_decision_kind_and_color(row: Row) -> None:
    """A pending promotion targets the idle color, a pending rollback the previous one."""
    for which, pending in _pendings(row):
        assert row.state is not None
        if which == "promotion":
            assert (Action.PROMOTE, row.state.active.other) == (pending.kind, pending.color)
        else:
            assert (Action.ROLLBACK, row.state.previous) == (pending.kind, pending.color)


def test_pending_promotion_reports_its_hold_and_counts() -> None:
    """A held promotion shows since when it is ready, when it is due, and its counts."""
    view = view_of((OLD_BLUE, ctr("g1", "green", 150.0), ctr("g2", "green", 151.0)))
    decision = decide(view, ADOPTED_BLUE, Timers(), Policy(), now=NOW, connected=True)
    assert decision.promotion is not None
    assert (Stage.HOLDING, NOW, NOW + 1.0, 2, 1) == (
        decision.promotion.stage,
        decision.promotion.since,
        decision.promotion.due_at,
        decision.promotion.routable,
        decision.promotion.replicas,
    )


def test_pending_promotion_counts_too_few_replicas() -> None:
    """With fewer routable containers than replicas, /status shows how many of how many."""
    view = view_of((OLD_BLUE, ctr("g1", "green", 150.0, labels={"bluegreen.replicas": "3"})))
    decision = decide(view, ADOPTED_BLUE, Timers(), Policy(), now=NOW, connected=True)
    assert decision.promotion is not None
    assert (Stage.TOO_FEW, 1, 3) == (
        decision.promotion.stage,
        decision.promotion.routable,
        decision.promotion.replicas,
    )


def test_pending_rollback_reports_the_previous_color() -> None:
    """A pending rollback shows since when the active color is dead and the previous color's
    containers and counts."""
    green = ctr("g1", "green", 40.0)
    view = view_of((DEAD_BLUE, green))
    timers = Timers(dead_since=NOW - 2.0)
    decision = decide(view, switched(BLUE, at=60.0), timers, Policy(), now=NOW, connected=True)
    pending = decision.rollback
    assert pending is not None
    assert (Action.ROLLBACK, GREEN, Stage.HOLDING, NOW - 2.0, NOW + 3.0, 1, 1, ["g1"]) == (
        pending.kind,
        pending.color,
        pending.stage,
        pending.since,
        pending.due_at,
        pending.routable,
        pending.replicas,
        [m.container.id for m in pending.containers],
    )


def test_a_color_deployed_between_first_sight_and_the_last_switch_is_no_generation() -> None:
    """After a switch, the anchor is the switch: older idle containers are not a new deploy,
    even when they are newer than the provider's first sight of the service."""
    view = view_of((ctr("g1", "green", 150.0), ctr("b1", "blue", 120.0)))
    state = switched(GREEN, at=160.0)

    assert [] == list(generation(view, state))
    assert None is decide(view, state, Timers(), Policy(), now=NOW, connected=True).promotion


@pytest.mark.parametrize(
    ("container", "shown"),
    [
        (ctr("g1", "green", 150.0, state="exited"), "web-g1 (exited)"),
        (
            ctr("g1", "green", 150.0, health=Health.UNHEALTHY, output="first\nsecond\n"),
            "web-g1 (unhealthy: second)",
        ),
        (
            ctr("g1", "green", 150.0, health=Health.UNHEALTHY, output="x" * 120 + "y" * 50),
            "web-g1 (unhealthy: " + "x" * 120 + ")",
        ),
    ],
)
def test_not_routable_detail_shows_state_or_last_check_line(
    container: Container, shown: str
) -> None:
    """A stopped container shows its state; an unhealthy one its last check line, cut short."""
    view = view_of((OLD_BLUE, container))
    decision = decide(view, ADOPTED_BLUE, Timers(), Policy(), now=NOW, connected=True)
    assert decision.promotion is not None
    assert decision.promotion.detail.endswith(shown)


def test_active_color_removed_entirely_rolls_back() -> None:
    """An active color whose containers are all gone counts as dead: roll back when due."""
    view = view_of((ctr("g1", "green", 40.0),))
    timers = Timers(dead_since=NOW - 5.0)
    decision = decide(view, switched(BLUE, at=60.0), timers, Policy(), now=NOW, connected=True)
    assert (Action.ROLLBACK, GREEN) == (decision.action, decision.target)


def test_no_automatic_rollback_while_the_service_has_label_errors() -> None:
    """A running container with bad labels blocks an automatic rollback (a switch would be
    refused); /status says so."""
    view = view_of(
        (
            DEAD_BLUE,
            ctr("g1", "green", 40.0),
            ctr("g2", "green", 41.0, labels={"bluegreen.rule": "Host(`other`)"}),
        )
    )
    timers = Timers(dead_since=NOW - 50.0)
    decision = decide(view, switched(BLUE, at=60.0), timers, Policy(), now=NOW, connected=True)
    assert decision.rollback is not None
    assert (None, Stage.LABEL_ERRORS) == (decision.action, decision.rollback.stage)
    assert "label errors" in decision.rollback.detail


def test_promotion_hold_survives_evaluations_while_the_active_color_is_dead() -> None:
    """A new deploy coming up while the active color is down keeps its hold across evaluations
    and is promoted once ``promote_after`` has passed."""
    view = view_of((DEAD_BLUE, ctr("g2", "green", 150.0)))
    policy = Policy(promote_after=1.0, rollback_after=60.0)

    first = decide(view, ADOPTED_BLUE, Timers(), policy, now=NOW, connected=True)
    later = decide(view, ADOPTED_BLUE, first.timers, policy, now=NOW + 1.0, connected=True)

    assert (None, Action.PROMOTE, NOW) == (first.action, later.action, later.timers.ready_since)


def test_rollback_decision_still_reports_the_pending_promotion() -> None:
    """When a rollback happens, /status still shows what the new generation waits for."""
    view = view_of(
        (DEAD_BLUE, ctr("g1", "green", 40.0), ctr("g2", "green", 150.0, health=Health.STARTING))
    )
    timers = Timers(dead_since=NOW - 5.0)
    decision = decide(view, switched(BLUE, at=60.0), timers, Policy(), now=NOW, connected=True)
    assert decision.promotion is not None
    assert (Action.ROLLBACK, Stage.NOT_ROUTABLE) == (decision.action, decision.promotion.stage)


def test_pending_rollback_counts_the_previous_colors_replicas() -> None:
    """A pending rollback shows how many routable containers the previous color needs."""
    two = {"bluegreen.replicas": "2"}
    view = view_of((DEAD_BLUE, ctr("g1", "green", 40.0, labels=two)))
    timers = Timers(dead_since=NOW - 50.0)
    decision = decide(view, switched(BLUE, at=60.0), timers, Policy(), now=NOW, connected=True)
    assert decision.rollback is not None
    assert (Stage.PREVIOUS_NOT_READY, 1, 2) == (
        decision.rollback.stage,
        decision.rollback.routable,
        decision.rollback.replicas,
    )
