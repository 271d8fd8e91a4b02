"""Several provider replicas on one Swarm-like config table, as a hypothesis state machine.

Each replica is a real ``Controller`` committing through the real
:class:`~provider.swarm_state.SwarmStateStore` and following through the real
:class:`~provider.swarm_state.StateFollower`; only the Docker API under the
store is replaced (:class:`SwarmConfigs`, the one fake): an in-memory table of
configs that behaves like Swarm's, measured in ``docs/swarm-findings.md``: a
create of an existing name is refused with 409, every write takes the next
Raft index (``Version.Index``), pruning frees old names, no quorum answers
"does not have a leader", and a create's answer can be lost after it landed
or while it is still in flight (it lands later, or never).

Operators switch, roll back, retire and run canaries through any replica;
canary steps are judged on what each replica has seen, so several replicas
judge the same interval. Invariants, after every step:

- every switch answered ``changed: true`` is in the newest history, in commit
  order, with no seq twice (nothing acknowledged is lost);
- every switch went where it was asked;
- replicas that followed the newest version serve its state and one body;
- no switch is announced as its own (sent to webhooks) by two replicas, and
  none that is not in the newest history;
- a canary never uses more extensions than the limit.

:meth:`ReplicaMachine.settle` (a rule) lets every held create land or fail,
heals the table and has every replica read: then all replicas hold one
history and one body, and every switch in it was announced as its own by
exactly one replica (so its webhooks are sent exactly once).

The real Swarm store is tested against a real manager (tests/swarm/test_swarm_state.py)
and the whole under load on three managers (tests/swarm/test_swarm_e2e.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiodocker
import aiohttp
import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from provider.controller import Controller, SwitchResult
from provider.core import canary as canaries
from provider.core.canary_analysis import Window
from provider.core.model import Color, State, SwitchRecord
from provider.errors import BlueGreenError
from provider.events import Event, EventKind
from provider.settings import Settings
from provider.state_store import CommitOutcomeUnknown, StateConflict
from provider.swarm_state import StateFollower, SwarmStateStore
from tests.factories import make_container
from tests.property.machine_bake import ReplicaBakeRules
from tests.property.machine_maintenance import ReplicaMaintenanceRules

T = TypeVar("T")
REPLICAS = 3
#: Small, so a replica that misses a few commits falls more than ``keep`` behind.
KEEP = 2
MAX_EXTENSIONS = 2
COLORS = st.sampled_from([Color.BLUE, Color.GREEN])
REPLICA = st.integers(min_value=0, max_value=REPLICAS - 1)
NO_LEADER = "rpc error: code = Unknown desc = The swarm does not have a leader."
#: How a switch event names its record: what a receiver could deduplicate on.
Key = tuple[int, str, str, str]


def key(record: SwitchRecord) -> Key:
    return (record.seq, record.to_color.value, record.reason, record.actor)


def switches(state: State) -> list[Key]:
    """The keys of the state's switches (canary steps and aborts change no color)."""
    return [key(r) for r in state.history if r.reason not in canaries.RECORD_ONLY]


class SwarmConfigs:
    """The managers' configs as the Docker API shows them (the one fake).

    ``hold`` / ``lose``: what happens to the next create (held in flight /
    landed with its answer lost); ``then_silent``: how many calls after that
    one get no answer either (so the store cannot resolve the outcome).
    """

    def __init__(self) -> None:
        self.configs: dict[str, dict[str, Any]] = {}
        self.index = 0
        self.outage = False
        self.hold = False
        self.lose = False
        self.silent = 0
        self.then_silent = 0
        self.in_flight: list[Mapping[str, Any]] = []
        self.creates = 0

    def _answer(self) -> None:
        if self.outage:
            raise aiodocker.DockerError(500, {"message": NO_LEADER})
        if self.silent > 0:
            self.silent -= 1
            raise aiohttp.ServerDisconnectedError()

    def list(self) -> list[Mapping[str, Any]]:
        self._answer()
        return [dict(c) for c in self.configs.values()]

    def land(self, body: Mapping[str, Any]) -> bool:
        """Create (a Raft write) unless the name exists."""
        name = str(body["Name"])
        if name in self.configs:
            return False
        self.index += 1
        self.configs[name] = {"ID": f"id{self.index}", "Version": {"Index": self.index}}
        self.configs[name]["Spec"] = dict(body)
        return True

    def create(self, body: Mapping[str, Any]) -> None:
        self.creates += 1
        if self.hold and not self.outage and not self.silent:
            self.hold, self.silent = False, self.then_silent
            self.in_flight.append(body)
            raise TimeoutError()
        self._answer()
        landed = self.land(body)
        if self.lose:
            self.lose, self.silent = False, self.then_silent
            raise aiohttp.ServerDisconnectedError()
        if not landed:
            raise aiodocker.DockerError(409, {"message": f"config {body['Name']} exists"})

    def remove(self, name: str) -> None:
        self._answer()
        if self.configs.pop(name, None) is None:
            raise aiodocker.DockerError(404, {"message": f"config {name} not found"})
        self.index += 1


class ModelStore(SwarmStateStore):
    """The real Swarm store over :class:`SwarmConfigs` instead of a manager's API.

    ``seen`` counts the paths its commits took, for the run's statistics.
    """

    def __init__(self, table: SwarmConfigs, seen: Counter[str] | None = None) -> None:
        super().__init__("unix:///nonexistent", prefix="bg", keep=KEEP)
        self.table = table
        self.resolve_delays = (0.0, 0.0)
        self.seen: Counter[str] = Counter() if seen is None else seen

    async def _check_newest(
        self, version: int, commit: str, versions: Mapping[int, Mapping[str, Any]]
    ) -> None:
        try:
            await super()._check_newest(version, commit, versions)
        except StateConflict:
            self.seen["a commit re-created a pruned version: undone"] += 1
            raise

    async def _resolve(
        self, body: Mapping[str, Any], version: int, commit: str, failure: BaseException
    ) -> None:
        try:
            await super()._resolve(body, version, commit, failure)
        except CommitOutcomeUnknown:
            self.seen["a lost answer stayed unknown (503, remembered)"] += 1
            raise
        except StateConflict:
            self.seen["a lost answer was another's version (conflict)"] += 1
            raise
        self.seen["a lost answer was resolved: ours landed"] += 1

    async def _list(self) -> list[Mapping[str, Any]]:
        return self.table.list()

    async def _create(self, body: Mapping[str, Any]) -> None:
        self.table.create(body)

    async def _remove(self, name: str) -> None:
        self.table.remove(name)


class ReplicaMachine(ReplicaMaintenanceRules, ReplicaBakeRules, RuleBasedStateMachine):
    """Three replicas, one service with both colors ready, one shared config table."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.table = SwarmConfigs()
        self.seen: Counter[str] = Counter()
        ticks = itertools.count(1)
        self.clock = lambda: 1000.0 + next(ticks) / 1000  # every record's time differs
        settings = Settings(
            state_file=Path("/nonexistent/unused.json"),
            promote_after=0.0,
            canary_max_extensions=MAX_EXTENSIONS,
        )
        self.containers = {
            Color.BLUE: make_container("web", "blue", cid="b" * 64, ip="10.0.0.2"),
            Color.GREEN: make_container("web", "green", cid="g" * 64, ip="10.0.0.3"),
        }
        self.replicas: list[Controller] = []
        self.followers: list[StateFollower] = []
        #: Per replica, every switch event it announced as its own (sent to webhooks).
        self.announced: list[list[Key]] = []
        for n in range(REPLICAS):
            store = ModelStore(self.table, self.seen)
            controller = Controller(settings, State(), store=store, clock=self.clock)
            self.announced.append([])
            controller.events.add_listener(lambda e, n=n: self._heard(n, e))
            self.run(controller.replace_containers(list(self.containers.values())))
            self.replicas.append(controller)
            self.followers.append(StateFollower(controller, store, poll=1.0))
        #: Every switch a replica answered as changed.
        self.acknowledged: list[SwitchRecord] = []

    def _heard(self, replica: int, event: Event) -> None:
        if event.kind is EventKind.SWITCH and not event.detail.get("followed"):
            seq = int(event.detail["seq"])
            self.announced[replica].append(
                (seq, str(event.to), str(event.reason), str(event.actor))
            )

    def teardown(self) -> None:
        for what in sorted(self.seen):
            event(what)
        self.close()

    def close(self) -> None:
        for controller in self.replicas:
            assert isinstance(controller.store, ModelStore)
            self.run(controller.store.close())
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def newest(self) -> tuple[int, State]:
        """What a replica reading now would serve (the table, outage or not)."""
        store = ModelStore(self.table)
        versions = {
            int(c["Spec"]["Name"].rsplit("-", 1)[1]): c for c in self.table.configs.values()
        }
        if not versions:
            return 0, State()
        version = max(versions)
        return version, store._decode(version, versions[version])

    def _answered(self, call: Coroutine[Any, Any, SwitchResult]) -> SwitchResult | None:
        try:
            result = self.run(call)
        except BlueGreenError:
            return None
        if result.record is not None:
            self.acknowledged.append(result.record)
        return result

    # -- rules: operators ------------------------------------------------------------

    @rule(replica=REPLICA, color=COLORS, automatic=st.booleans())
    def switch(self, replica: int, color: Color, automatic: bool) -> None:
        reason = "auto-promote" if automatic else "manual"
        result = self._answered(
            self.replicas[replica].switch(
                "web", color, reason=reason, automatic=automatic, actor=f"op{replica}"
            )
        )
        if result is not None:
            assert color == result.active

    @rule(replica=REPLICA)
    def switch_to_the_other(self, replica: int) -> None:
        """No color given: "the other one" as this replica saw it, resolved once."""
        controller = self.replicas[replica]
        meant = controller.active("web").other
        result = self._answered(controller.switch("web", actor=f"op{replica}"))
        if result is not None:
            assert meant == result.active

    @rule(replica=REPLICA)
    def rollback(self, replica: int) -> None:
        controller = self.replicas[replica]
        known = controller.state.services.get("web")
        meant = known.previous if known is not None else None
        result = self._answered(controller.rollback("web", actor=f"op{replica}"))
        if result is not None and result.record is not None:
            assert meant == result.record.to_color

    @rule(replica=REPLICA, color=COLORS)
    def retire(self, replica: int, color: Color) -> None:
        with contextlib.suppress(BlueGreenError):
            self.run(self.replicas[replica].retire("web", color))

    @rule(color=COLORS)
    def deployed_again(self, color: Color) -> None:
        """A new container of ``color`` (newer than any mark); every replica's watcher sees it."""
        created = self.clock() + 1.0
        cid = f"{color.value[0]}{int(created * 1000):063d}"
        address = "10.0.0.2" if color is Color.BLUE else "10.0.0.3"
        self.containers[color] = make_container(
            "web", color.value, cid=cid, ip=address, created=created
        )
        for controller in self.replicas:
            self.run(controller.replace_containers(list(self.containers.values())))

    @rule(replica=REPLICA)
    def start_canary(self, replica: int) -> None:
        with contextlib.suppress(BlueGreenError):
            self.run(
                self.replicas[replica].start_canary(
                    "web", None, steps=(50, 100), interval=60.0, limits=canaries.Limits()
                )
            )
            self.seen["a canary started"] += 1

    @rule(replica=REPLICA, requests=st.sampled_from([0, 100]))
    def canary_judged(self, replica: int, requests: int) -> None:
        """This replica's driver judged the step on the canary as it last saw it.

        Few requests extend the step; enough pass it (the last step promotes).
        """
        controller = self.replicas[replica]
        seen = canaries.running(controller.state, "web")
        if seen is None or seen.phase is not canaries.Phase.RUNNING:
            return
        result = canaries.judge(
            seen,
            Window(requests, 0, 10.0),
            ready=True,
            metrics=True,
            max_extensions=MAX_EXTENSIONS,
            now=self.clock(),
        )
        try:
            self.run(controller.canary_event("web", result, actor=f"canary{replica}"))
        except BlueGreenError as exc:
            if "moved on" in str(exc):
                self.seen["a verdict on a canary that moved on: refused"] += 1

    @rule(order=st.permutations(range(REPLICAS)), requests=st.sampled_from([0, 100]))
    def every_replica_judges_the_interval(self, order: list[int], requests: int) -> None:
        """Every replica's driver wakes at the step's deadline and judges (three drivers, one
        canary): one verdict may count per interval, whichever commits first."""
        for replica in order:
            self.canary_judged(replica, requests)

    # -- rules: the Swarm ------------------------------------------------------------

    @rule(replica=REPLICA)
    def follow(self, replica: int) -> None:
        """The replica's follower read the newest version (a config event, or its poll)."""
        self.run(self.followers[replica].read())

    @rule(silent=st.booleans())
    def next_answer_lost(self, silent: bool) -> None:
        """The next create lands but its answer is lost (and perhaps the retries' too)."""
        self.table.lose = True
        self.table.then_silent = 4 if silent else 0

    @rule(silent=st.booleans())
    def next_create_held(self, silent: bool) -> None:
        """The next create times out still in flight: it lands later, or finds its name taken."""
        self.table.hold = True
        self.table.then_silent = 4 if silent else 0

    @rule()
    def held_create_arrives(self) -> None:
        if self.table.in_flight:
            self.table.land(self.table.in_flight.pop(0))

    @rule()
    def quorum_lost(self) -> None:
        self.table.outage = True

    @rule()
    def quorum_back(self) -> None:
        self.table.outage = False

    @rule()
    def settle(self) -> None:
        """Everything in flight arrives, the Swarm heals, every replica reads: all agree."""
        table = self.table
        while table.in_flight:
            table.land(table.in_flight.pop(0))
        table.outage, table.hold, table.lose, table.silent = False, False, False, 0
        for follower in self.followers:
            self.run(follower.read())
        version, latest = self.newest()
        self.seen["settled"] += 1
        if any(r.reason == canaries.REASON_PROMOTE for r in latest.history):
            self.seen["settled after a canary promotion"] += 1
        assert [version] * REPLICAS == [r.store.version for r in self.replicas]
        assert all(latest == r.state for r in self.replicas)
        assert len({r.body for r in self.replicas}) == 1
        assert Counter(switches(latest)) == Counter(itertools.chain(*self.announced))

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def acknowledged_switches_are_in_the_history(self) -> None:
        _, latest = self.newest()
        assert [r for r in latest.history if r in self.acknowledged] == self.acknowledged
        assert len({r.seq for r in latest.history}) == len(latest.history)

    @invariant()
    def each_switch_is_announced_once_and_only_if_it_is_in_the_history(self) -> None:
        _, latest = self.newest()
        counts = Counter(itertools.chain(*self.announced))
        assert all(n == 1 for n in counts.values()), counts
        assert set(counts) <= set(switches(latest))

    @invariant()
    def followers_serve_the_newest_state(self) -> None:
        version, latest = self.newest()
        current = [r for r in self.replicas if r.store.version == version]
        for replica in current:
            assert latest == replica.state
            if "web" in latest.services:
                assert latest.services["web"].active == replica.active("web")
        assert len({r.body for r in current}) <= 1

    @invariant()
    def no_canary_uses_more_extensions_than_allowed(self) -> None:
        _, latest = self.newest()
        for canary in latest.canaries.values():
            assert canary.extensions <= MAX_EXTENSIONS


#: The ci profile takes about 35 s: the `slow` tier (CI runs every tier).
TestReplicaMachine = pytest.mark.slow(ReplicaMachine.TestCase)


def replay(*steps: tuple[str, dict[str, Any]]) -> None:
    """Run ``steps`` (rule name, arguments) on a fresh machine, every invariant after each."""
    machine = ReplicaMachine()
    checks = [
        machine.acknowledged_switches_are_in_the_history,
        machine.each_switch_is_announced_once_and_only_if_it_is_in_the_history,
        machine.followers_serve_the_newest_state,
        machine.no_canary_uses_more_extensions_than_allowed,
    ]
    try:
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            for check in checks:
                check()
    finally:
        machine.close()


def test_a_replica_behind_the_pruned_versions_loses_no_switch() -> None:
    """Issue 19, defect 4, as the machine first shrank it: replica 0 missed two commits
    (``keep`` is 2), so its next version's name was pruned; its switch must not be lost."""
    replay(("start_canary", {"replica": 1}), ("switch_to_the_other", {"replica": 0}))


def test_a_switch_whose_answer_was_lost_is_answered_and_announced_once() -> None:
    """Issue 19, defect 5, as shrunk: the create landed, its answer was lost."""
    replay(
        ("next_answer_lost", {"silent": False}),
        ("switch_to_the_other", {"replica": 2}),
        ("settle", {}),
    )


def test_a_switch_whose_outcome_stayed_unknown_is_announced_once_it_is_followed() -> None:
    """Issue 19, defect 5: every answer lost; the 503's switch is announced by its replica."""
    replay(
        ("next_answer_lost", {"silent": True}),
        ("switch_to_the_other", {"replica": 2}),
        ("follow", {"replica": 0}),
        ("settle", {}),
    )


def test_three_replicas_judging_one_interval_spend_one_extension() -> None:
    """Issue 19, defect 6, as shrunk: three drivers, one interval, one extension."""
    replay(
        ("start_canary", {"replica": 0}),
        ("settle", {}),
        ("every_replica_judges_the_interval", {"order": [0, 1, 2], "requests": 0}),
        ("every_replica_judges_the_interval", {"order": [2, 1, 0], "requests": 0}),
        ("every_replica_judges_the_interval", {"order": [1, 0, 2], "requests": 0}),
    )


def test_a_canary_promotion_is_announced_by_the_replica_that_made_it() -> None:
    """Issue 19, defect 3 as the replicas see it: a promotion reaches webhooks exactly once."""
    replay(
        ("start_canary", {"replica": 0}),
        ("canary_judged", {"replica": 0, "requests": 100}),
        ("settle", {}),
    )
