"""A bake after the flip: rules and invariants, mixed into ``BlueGreenMachine``.

Rules: an operator's switch followed by a bake (``deploy --bake``); users' requests
reach the baked color, good or bad, and an analysis interval passes (the bake driver,
``provider/bake_driver.py``, judges what is due); an operator rolls back or switches
while the driver scrapes Traefik (without the controller's lock).
Invariants: a bake revert never targets a rejected or retiring color (nor one without
servers); nothing reverts an operator's later decision: every revert directly follows
the switch its bake was started on.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from provider import bake_driver
from provider.bake_driver import BakeDriver
from provider.core import bake as bakes
from provider.core import canary as canaries
from provider.core.model import Color, State
from provider.core.promotion import blocking_mark
from provider.errors import BlueGreenError, StateFileError

BAKE_INTERVAL = 10.0
BAKE_LIMITS = canaries.Limits(max_error_rate=0.05, min_requests=10)
SERVICES = ("shop", "blog")


class _Revert:
    """One revert the driver made: where it went, and what held just before it."""

    def __init__(self, service: str, to: Color, blocked: bool, seq: int, switch_seq: int) -> None:
        self.service, self.to, self.blocked = service, to, blocked
        self.seq, self.switch_seq = seq, switch_seq


class BakeRules:
    """Mixin: needs the machine's ``controller``, ``metrics``, ``clock``, ``disk`` and model."""

    controller: Any
    metrics: Any
    clock: Any
    disk: Any
    history: list[tuple[str, Color | None, Color, str, str, float]]

    def run(self, coro: Any) -> Any:
        raise NotImplementedError

    def _settle(self) -> float | None:
        raise NotImplementedError

    def _advance(self, dt: float) -> None:
        raise NotImplementedError

    def _current(self, service: str) -> Color:
        raise NotImplementedError

    def _record_switch(
        self, service: str, to: Color, reason: str, actor: str, *, marks_left: bool
    ) -> None:
        raise NotImplementedError

    def operator_switch(self, service: str, color: Color | None, force: bool) -> None:
        raise NotImplementedError

    def _baker(self) -> BakeDriver:
        """The current provider's bake driver: a restarted provider opens fresh windows."""
        if getattr(self, "_baked_controller", None) is not self.controller:
            bake_driver.RETRY_AFTER_S = 0.0  # real time; the machine has none to spare
            self._baked_controller = self.controller
            self._bake_driver = BakeDriver(
                self.controller, fetch=self.metrics.fetch, clock=self.clock
            )
        return self._bake_driver

    def _reverts(self) -> list[_Revert]:
        reverts: list[_Revert] = getattr(self, "_bake_reverts", [])
        self._bake_reverts = reverts
        return reverts

    async def _evaluate_bakes(self) -> list[Any]:
        async with self.controller.lock:
            due, _ = self._baker().evaluate()
            return due

    def _bake_settle(self) -> None:
        """What the bake driver's loop does now: open windows, judge, end superseded bakes."""
        for _ in range(6):
            due = self.run(self._evaluate_bakes())
            if not due:
                return
            for item in due:
                self._bake_act(item)
            self._settle()

    def _bake_act(self, due: Any) -> None:
        """One action of the driver; a revert it makes is adopted into the model."""
        service, bake = due.service, due.bake
        state: State = self.controller.state
        svc = state.services.get(service)
        view = self.controller.observation.services.get(service)
        blocked = svc is None or view is None or blocking_mark(view, svc, bake.old) is not None
        self.run(self._baker()._act(due))
        # An operator's switch during the scrape is in the model already; the rest is ours.
        for record in self.controller.state.history[len(self.history) :]:
            assert record.reason == bakes.REASON_REVERT, f"a bake wrote {record}"
            event(f"bake reverted ({due.kind})")
            self._reverts().append(
                _Revert(service, record.to_color, blocked, record.seq, bake.switch_seq)
            )
            self._record_switch(
                service, record.to_color, record.reason, record.actor, marks_left=True
            )
        latest = self.controller.state.bakes.get(service)
        if latest is not None and not latest.running:
            event(f"bake {latest.phase}")

    def rollout(self, service: str, replicas: int, checks: str) -> None:
        raise NotImplementedError

    @rule(
        service=st.sampled_from(SERVICES),
        duration=st.sampled_from([15.0, 40.0]),
        errors=st.sampled_from([0, 10]),
    )
    def bake_after_switch(self, service: str, duration: float, errors: int) -> None:
        """``deploy --bake``: the idle color rolled out, switched to (by the operator if the
        watcher did not), ``POST /bake``; users' requests (``errors`` of them 500s) reach
        it and one analysis interval passes."""
        target = self._current(service).other
        self.rollout(service, 1, "none")
        if self._current(service) is not target:
            self.operator_switch(service, target, False)
        color = self._current(service)
        seq = self.controller.state.seq
        command = bakes.StartBake(service, color, duration, BAKE_INTERVAL, BAKE_LIMITS, "operator")
        try:
            bake = self.run(self.controller.bake(command))
        except (BlueGreenError, StateFileError) as exc:
            event(f"bake refused ({type(exc).__name__})")
            return
        assert seq == self.controller.state.seq, "starting a bake wrote a history record"
        assert bake.running and bake.old is color.other
        event("bake started")
        self._bake_settle()
        self.bake_traffic(service, 40, errors)

    @rule(
        service=st.sampled_from(SERVICES),
        ok=st.sampled_from([0, 40]),
        errors=st.sampled_from([0, 0, 10]),
    )
    def bake_traffic(self, service: str, ok: int, errors: int) -> None:
        """Users' requests reach the active color; one analysis interval passes."""
        self.metrics.add(service, self._current(service), ok, errors)
        self._bake_settle()
        self._advance(BAKE_INTERVAL)
        self._bake_settle()

    @precondition(lambda self: self.disk.mode == "ok")
    @rule(service=st.sampled_from(SERVICES), rollback=st.booleans())
    def bake_scrape_races_an_operator(self, service: str, rollback: bool) -> None:
        """While the driver scrapes a bad window, an operator rolls back (or switches back
        and forth): the breach lands after the operator's decision and reverts nothing."""
        bake = bakes.running(self.controller.state, service)
        if bake is None or canaries.running(self.controller.state, service) is not None:
            return  # (a canary supersedes it; its driver's scrapes are not this rule's)
        self._bake_settle()  # its window is open
        self._advance(BAKE_INTERVAL)
        self.metrics.add(service, bake.color, 10, 10)
        decided: list[int] = []

        async def meanwhile() -> None:
            before = self.controller.state.seq
            try:
                if rollback:
                    await self.controller.rollback(service, actor="operator")
                else:
                    await self.controller.switch(service, bake.old, actor="operator")
            except BlueGreenError:
                return
            for record in self.controller.state.history[len(self.history) :]:
                self._record_switch(
                    service, record.to_color, record.reason, "operator", marks_left=rollback
                )
            if self.controller.state.seq != before:
                decided.append(self.controller.state.seq)

        self.metrics.during = meanwhile  # inside the bake driver's next scrape
        self._bake_settle()
        self.metrics.during = None
        if decided:
            event("an operator decided during a bake's scrape")
            later = [r for r in self._reverts() if r.service == service and r.seq > decided[0]]
            assert not later, f"a bake reverted {service} after the operator's decision"

    @invariant()
    def a_bake_revert_never_targets_a_marked_color(self) -> None:
        """Each revert went to a color no mark blocked (rejected or retiring) just before."""
        for revert in self._reverts():
            assert not revert.blocked, f"a bake reverted {revert.service} to marked {revert.to}"

    @invariant()
    def nothing_reverts_an_operators_later_decision(self) -> None:
        """Each revert's previous switch of its service is the one its bake followed."""
        records = self.controller.state.history
        for revert in self._reverts():
            before = [
                r
                for r in records
                if r.service == revert.service
                and r.seq < revert.seq
                and r.reason not in canaries.RECORD_ONLY
            ]
            if before and records and records[0].seq <= revert.switch_seq:
                assert revert.switch_seq == before[-1].seq, (
                    f"a bake of {revert.service} reverted over a later switch"
                )

    @invariant()
    def the_bake_driver_waits(self) -> None:
        """At one instant with nothing changing, the bake driver evaluates once per wait."""
        from tests.loop_wakes import evaluations_per_wait

        calls = self.run(evaluations_per_wait(self.controller, self._baker().evaluate, self.clock))
        assert 1 == calls, f"the bake driver evaluated {calls} times at one instant"


class ReplicaBakeRules:
    """A bake on Swarm: any replica starts it, every replica's driver judges a breach.

    A mixin of :class:`tests.property.test_replica_machine.ReplicaMachine`. Promises: one
    bake reverts at most once however many replicas judge it (the first verdict commits,
    the others land on an ended bake and are refused); every acknowledged revert is in the
    newest history, directly after the switch its bake followed.
    """

    replicas: list[Any]
    run: Any
    newest: Any
    clock: Any
    seen: Any

    def _bake_log(self) -> dict[float, tuple[int, int | None]]:
        """Per acknowledged bake (its ``started``): the switch it followed, its revert's seq."""
        if not hasattr(self, "bake_log"):
            self.bake_log: dict[float, tuple[int, int | None]] = {}
        return self.bake_log

    @rule(replica=st.integers(min_value=0, max_value=2))
    def bake_start(self, replica: int) -> None:
        """``POST /bake`` through one replica, of the color it sees active."""
        controller = self.replicas[replica]
        color = controller.active("web")
        command = bakes.StartBake("web", color, 60.0, 10.0, canaries.Limits(), "op")
        try:
            bake = self.run(controller.bake(command))
        except (BlueGreenError, StateFileError):
            self.seen["bake start refused"] += 1
            return
        self._bake_log()[bake.started] = (bake.switch_seq, None)
        self.seen["bake started"] += 1

    @rule(order=st.permutations(range(3)))
    def every_replica_judges_a_breach(self, order: list[int]) -> None:
        """Every replica's driver judged a breach of the bake it last saw."""
        for replica in order:
            controller = self.replicas[replica]
            seen = bakes.running(controller.state, "web")
            if seen is None:
                continue
            judged = bakes.Judgement(bakes.Outcome.REVERT, "error rate 20%", None, seen.started)
            try:
                bake = self.run(controller.bake(bakes.BakeEvent("web", judged, f"bake{replica}")))
            except (BlueGreenError, StateFileError):
                self.seen["a breach on an ended bake: refused"] += 1
                continue
            if bake.phase is bakes.BakePhase.REVERTED and bake.started in self._bake_log():
                last = controller.state.services["web"].last_switch
                assert last is not None
                switch_seq, done = self._bake_log()[bake.started]
                assert done is None or done == last.seq, "one bake reverted twice"
                self._bake_log()[bake.started] = (switch_seq, last.seq)
                self.seen["bake reverted on a replica"] += 1

    @invariant()
    def a_bake_reverts_once_right_after_its_switch(self) -> None:
        _, latest = self.newest()
        switches = [r for r in latest.history if r.reason not in canaries.RECORD_ONLY]
        reverts = [r for r in switches if r.reason == bakes.REASON_REVERT]
        acknowledged = {s for s, (_, seq) in self._bake_log().items() if seq is not None}
        assert len(reverts) <= len(self._bake_log())
        for started in acknowledged:
            switch_seq, seq = self._bake_log()[started]
            index = [r.seq for r in switches].index(seq)
            assert index > 0 and switch_seq == switches[index - 1].seq, (
                "a bake reverted over a later switch"
            )
