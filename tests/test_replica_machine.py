"""Several provider replicas on one compare-and-swap store, as a hypothesis state machine.

The real ``Controller`` of each replica commits through its own view of one
shared store that, like Swarm's configs, accepts version *n* once
(:class:`CasStore`, the one fake: an in-memory table of versions). Operators
switch, roll back, retire and force automatic switches through any replica,
replicas follow (or miss) each other's commits, and the store goes away and
comes back. Invariants, after every step:

- the store's newest history is exactly the switches some replica acknowledged
  as changed, in commit order, with no seq twice;
- every switch went where it was asked (a retried "switch to green" never
  toggles back what another replica did; a retried rollback goes only to the
  color it first meant);
- a replica that followed the newest version serves the newest state's active
  color, and replicas that followed it serve byte-identical bodies.

The real Swarm store is tested against a real manager (tests/test_swarm_state.py)
and the whole under load on three managers (tests/test_swarm_e2e.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from provider.controller import Controller, SwitchResult
from provider.core.model import Color, State
from provider.errors import BlueGreenError, StateStoreUnavailable
from provider.settings import Settings
from provider.state_store import StateConflict
from tests.factories import make_container

T = TypeVar("T")
REPLICAS = 3
COLORS = st.sampled_from([Color.BLUE, Color.GREEN])
REPLICA = st.integers(min_value=0, max_value=REPLICAS - 1)


class CasStore:
    """One replica's view of the shared table: version ``n`` can be committed once."""

    kind = "swarm"

    def __init__(self, table: dict[int, State], outage: list[bool]) -> None:
        self.table = table
        self.outage = outage
        self.version = 0

    def latest(self) -> tuple[int, State]:
        newest = max(self.table, default=0)
        return newest, self.table.get(newest, State())

    async def commit(self, state: State) -> str | None:
        if self.outage[0]:
            raise StateStoreUnavailable("no quorum (the machine's outage)")
        version = self.version + 1
        if version in self.table:
            self.version, latest = self.latest()
            raise StateConflict(latest, self.version)
        self.table[version] = state
        self.version = version
        return None

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "location": "memory"}


class ReplicaMachine(RuleBasedStateMachine):
    """Three replicas, one service with both colors ready, one shared store."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.table: dict[int, State] = {}
        self.outage = [False]
        settings = Settings(state_file=Path("/nonexistent/unused.json"), promote_after=0.0)
        containers = [
            make_container("web", "blue", cid="b" * 64, ip="10.0.0.2"),
            make_container("web", "green", cid="g" * 64, ip="10.0.0.3"),
        ]
        self.replicas: list[Controller] = []
        for _ in range(REPLICAS):
            controller = Controller(settings, State(), store=CasStore(self.table, self.outage))
            self.run(controller.replace_containers(containers))
            self.replicas.append(controller)
        #: (seq, to) of every switch a replica answered as changed.
        self.acknowledged: list[tuple[int, Color]] = []

    def teardown(self) -> None:
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def _answered(self, call: Coroutine[Any, Any, SwitchResult]) -> SwitchResult | None:
        try:
            result = self.run(call)
        except BlueGreenError:
            return None
        if result.record is not None:
            self.acknowledged.append((result.record.seq, result.record.to_color))
        return result

    # -- rules ---------------------------------------------------------------------

    @rule(replica=REPLICA, color=COLORS, automatic=st.booleans())
    def switch(self, replica: int, color: Color, automatic: bool) -> None:
        reason = "auto-promote" if automatic else "manual"
        result = self._answered(
            self.replicas[replica].switch("web", color, reason=reason, automatic=automatic)
        )
        if result is not None:
            assert color == result.active

    @rule(replica=REPLICA)
    def switch_to_the_other(self, replica: int) -> None:
        """No color given: "the other one" as this replica saw it, resolved once."""
        controller = self.replicas[replica]
        meant = controller.active("web").other
        result = self._answered(controller.switch("web"))
        if result is not None:
            assert meant == result.active

    @rule(replica=REPLICA)
    def rollback(self, replica: int) -> None:
        controller = self.replicas[replica]
        known = controller.state.services.get("web")
        meant = known.previous if known is not None else None
        result = self._answered(controller.rollback("web"))
        if result is not None and result.record is not None:
            assert meant == result.record.to_color

    @rule(replica=REPLICA, color=COLORS)
    def retire(self, replica: int, color: Color) -> None:
        with contextlib.suppress(BlueGreenError):
            self.run(self.replicas[replica].retire("web", color))

    @rule(replica=REPLICA)
    def follow(self, replica: int) -> None:
        """The replica's follower read the newest version (a config event, or its poll)."""
        version, state = CasStore(self.table, self.outage).latest()
        self.run(self.replicas[replica].follow(state, version))

    @rule()
    def quorum_lost(self) -> None:
        self.outage[0] = True

    @rule()
    def quorum_back(self) -> None:
        self.outage[0] = False

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def history_is_what_was_acknowledged(self) -> None:
        _, latest = CasStore(self.table, self.outage).latest()
        recorded = [(r.seq, r.to_color) for r in latest.history]
        assert sorted(self.acknowledged) == recorded
        assert len({seq for seq, _ in recorded}) == len(recorded)

    @invariant()
    def followers_serve_the_newest_state(self) -> None:
        version, latest = CasStore(self.table, self.outage).latest()
        current = [r for r in self.replicas if r.store.version == version]
        for replica in current:
            assert latest == replica.state
            if "web" in latest.services:
                assert latest.services["web"].active == replica.active("web")
        assert len({r.body for r in current}) <= 1


TestReplicaMachine = ReplicaMachine.TestCase
