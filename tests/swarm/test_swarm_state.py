"""The state in Swarm configs, against a real single-manager Swarm.

Several stores (several aiodocker clients, as several provider replicas have)
commit to one manager at the same time: Swarm's Raft store must let exactly
one commit each version, and the controllers built on them must end with one
history equal to the switches they acknowledged.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.api import create_app
from provider.controller import Controller, SwitchResult
from provider.core.model import Color, State
from provider.errors import StateFileError, StateStoreUnavailable
from provider.settings import Settings
from provider.state_store import StateConflict
from provider.swarm_state import StateFollower, SwarmStateStore, config_name
from tests.factories import make_container
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.reply_loss import ReplyLosingProxy
from tests.testbed.swarm_single import SingleNodeSwarm
from tests.waiting import eventually

pytestmark = [pytest.mark.docker, pytest.mark.slow]

_prefixes = itertools.count(1)
WAIT_S = 30.0


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A private dockerd made a single-manager Swarm on loopback-only addresses."""
    node = SingleNodeSwarm.start(tmp_path_factory.mktemp("swarm-state"))
    try:
        yield node.daemon
    finally:
        node.destroy()


def new_store(manager: DockerDaemon, prefix: str, keep: int = 10) -> SwarmStateStore:
    return SwarmStateStore(manager.host, prefix=prefix, keep=keep)


def unique_prefix() -> str:
    """Each test keeps its versions under its own config names."""
    return f"bgt{next(_prefixes)}"


def config_versions(manager: DockerDaemon, prefix: str) -> list[int]:
    names = manager.docker("config", "ls", "--format", "{{.Name}}").stdout.split()
    return sorted(int(n.rsplit("-", 1)[1]) for n in names if n.startswith(f"{prefix}-state-"))


def settings(tmp_path: Path) -> Settings:
    return Settings(state_file=tmp_path / "unused.json", token="t", promote_after=0.0)


async def controller_on(manager: DockerDaemon, prefix: str, tmp_path: Path) -> Controller:
    """A controller committing to the Swarm, observing one blue and one green container."""
    store = new_store(manager, prefix)
    controller = Controller(settings(tmp_path), State(), store=store)
    latest = await store.latest()
    await controller.follow(latest.state, latest.version)
    await controller.replace_containers(
        [
            make_container("web", "blue", cid="b" * 64, ip="10.0.0.2"),
            make_container("web", "green", cid="g" * 64, ip="10.0.0.3"),
        ]
    )
    return controller


async def test_racing_replicas_commit_each_version_exactly_once(manager: DockerDaemon) -> None:
    """Four stores that all read version 0 commit at once: one wins, three see its state."""
    prefix = unique_prefix()
    stores = [new_store(manager, prefix) for _ in range(4)]
    states = [State(seq=n + 1) for n in range(4)]
    try:
        outcomes = await asyncio.gather(
            *(s.commit(state) for s, state in zip(stores, states, strict=True)),
            return_exceptions=True,
        )
        winners = [i for i, out in enumerate(outcomes) if not isinstance(out, BaseException)]
        assert 1 == len(winners)
        winner = states[winners[0]]
        conflicts = [out for out in outcomes if isinstance(out, StateConflict)]
        assert [(winner, 1)] * 3 == [(c.latest, c.version) for c in conflicts]
        assert [1, 1, 1, 1] == [s.version for s in stores]
        latest = await stores[0].latest()
        assert (1, winner) == (latest.version, latest.state)
    finally:
        for s in stores:
            await s.close()


async def test_old_versions_are_pruned_to_the_newest_kept(manager: DockerDaemon) -> None:
    """``keep`` bounds the configs a busy service leaves in the Raft store."""
    prefix = unique_prefix()
    store = new_store(manager, prefix, keep=3)
    try:
        for n in range(1, 8):
            await store.commit(State(seq=n))
        await eventually(
            "versions 1-4 pruned", lambda: [5, 6, 7] == config_versions(manager, prefix), WAIT_S
        )
        latest = await store.latest()
        assert (7, State(seq=7)) == (latest.version, latest.state)
    finally:
        await store.close()


async def test_what_a_crashed_pruner_left_is_pruned_after_the_next_commit(
    manager: DockerDaemon,
) -> None:
    """Versions left by a replica that never pruned go once another replica commits."""
    prefix = unique_prefix()
    hoarder, pruner = new_store(manager, prefix, keep=100), new_store(manager, prefix, keep=3)
    try:
        for n in range(1, 8):
            await hoarder.commit(State(seq=n))
        latest = await pruner.latest()
        pruner.version = latest.version
        assert list(range(1, 8)) == config_versions(manager, prefix)
        await pruner.commit(State(seq=8))
        await eventually(
            "versions 1-5 pruned", lambda: [6, 7, 8] == config_versions(manager, prefix), WAIT_S
        )
    finally:
        await hoarder.close()
        await pruner.close()


async def test_a_newest_version_that_is_not_a_state_is_an_error(manager: DockerDaemon) -> None:
    """As with a corrupt state file, a replica must not start over on an empty state."""
    prefix = unique_prefix()
    store = new_store(manager, prefix)
    try:
        await store.commit(State(seq=1))
        body = {
            "Name": config_name(prefix, 2),
            "Labels": {f"{prefix}.state-version": "2"},
            "Data": base64.b64encode(b'{"version": 1, "seq": "x"}').decode(),
        }
        await store.docker._query_json("configs/create", "POST", data=json.dumps(body))
        with pytest.raises(StateFileError, match=config_name(prefix, 2)):
            await store.latest()
    finally:
        await store.close()


async def test_an_unreachable_manager_refuses_the_commit_with_503(tmp_path: Path) -> None:
    """No manager to answer (as without a quorum): nothing is committed, the code says so."""
    store = SwarmStateStore(f"unix://{tmp_path / 'no-such.sock'}", prefix="bgx")
    try:
        with pytest.raises(StateStoreUnavailable) as refused:
            await store.commit(State(seq=1))
        assert (503, "state_store_unavailable", 0) == (
            refused.value.status,
            refused.value.code,
            store.version,
        )
    finally:
        await store.close()


async def test_concurrent_switches_through_two_replicas_leave_one_history(
    manager: DockerDaemon, tmp_path: Path
) -> None:
    """50 switches split over two replicas: the history is exactly the acknowledged ones."""
    prefix = unique_prefix()
    replicas = [await controller_on(manager, prefix, tmp_path) for _ in range(2)]
    rng = random.Random(14)
    try:
        results = await asyncio.gather(
            *(
                replicas[n % 2].switch(
                    "web", rng.choice([Color.BLUE, Color.GREEN]), actor=f"op{n}", reason="manual"
                )
                for n in range(50)
            )
        )
        for replica in replicas:  # each follows the other's last commit
            latest = await replica.store.latest()  # type: ignore[attr-defined]
            await replica.follow(latest.state, latest.version)
        acknowledged = sorted(
            (r.record.seq, r.record.actor, r.record.to_color)
            for r in results
            if isinstance(r, SwitchResult) and r.record is not None
        )
        for replica in replicas:
            history = [(r.seq, r.actor, r.to_color) for r in replica.state.history]
            assert acknowledged == history
        assert replicas[0].body == replicas[1].body
        assert replicas[0].state == replicas[1].state
        assert len(acknowledged) >= 1
    finally:
        for replica in replicas:
            await replica.store.close()  # type: ignore[attr-defined]


async def test_a_promotion_decided_by_two_replicas_at_once_is_done_once(
    manager: DockerDaemon, tmp_path: Path
) -> None:
    """The loser of the compare-and-swap reads the winner's switch and finds it done."""
    prefix = unique_prefix()
    replicas = [await controller_on(manager, prefix, tmp_path) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(
                r.switch("web", Color.GREEN, reason="auto-promote", actor="watcher", automatic=True)
                for r in replicas
            )
        )
        assert [True, False, False] == sorted((r.changed for r in results), reverse=True)
        latest = await replicas[0].store.latest()  # type: ignore[attr-defined]
        assert [("auto-promote", Color.GREEN)] == [
            (r.reason, r.to_color) for r in latest.state.history
        ]
    finally:
        for replica in replicas:
            await replica.store.close()  # type: ignore[attr-defined]


async def test_a_switch_through_one_replica_reaches_the_other_by_its_config_event(
    manager: DockerDaemon, tmp_path: Path
) -> None:
    """The follower wakes on the ``config`` event, long before its 60 s poll."""
    prefix = unique_prefix()
    first, second = [await controller_on(manager, prefix, tmp_path) for _ in range(2)]
    follower = StateFollower(second, second.store, poll=60.0)  # type: ignore[arg-type]
    task = asyncio.create_task(follower.run())
    try:
        await first.switch("web", Color.GREEN, actor="op")
        await eventually(
            "the second replica serves green", lambda: second.active("web") is Color.GREEN, WAIT_S
        )
        # Now the follower waits on its stream: only the event can wake it in time.
        await first.switch("web", Color.BLUE, actor="op")
        await eventually(
            "the second replica serves blue", lambda: second.active("web") is Color.BLUE, WAIT_S
        )
        assert first.body == second.body
        followed = [e.detail.get("followed") for e in second.events.recent if e.kind == "switch"]
        assert [True, True] == followed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for replica in (first, second):
            await replica.store.close()  # type: ignore[attr-defined]


async def test_a_switch_the_swarm_cannot_commit_is_refused_with_503_and_not_served(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    """The API's answer when no manager can commit (as without a quorum): 503, old color kept."""
    store = SwarmStateStore(f"unix://{tmp_path / 'no-such.sock'}", prefix="bgx")
    controller = Controller(settings(tmp_path), State(), store=store)
    await controller.replace_containers(
        [
            make_container("web", "blue", cid="b" * 64, ip="10.0.0.2"),
            make_container("web", "green", cid="g" * 64, ip="10.0.0.3"),
        ]
    )
    before = controller.body
    client = await aiohttp_client(create_app(controller))
    try:
        resp = await client.post(
            "/switch",
            json={"service": "web", "color": "green"},
            headers={"Authorization": "Bearer t"},
        )
        doc = await resp.json()
        assert (503, "state_store_unavailable") == (resp.status, doc["error"])
        assert (before, Color.BLUE) == (controller.body, controller.active("web"))
    finally:
        await store.close()


def switch_events(controller: Controller) -> list[tuple[int, bool]]:
    """(seq, followed) of each switch event this replica published."""
    return [
        (int(e.detail["seq"]), bool(e.detail.get("followed")))
        for e in controller.events.recent
        if e.kind == "switch"
    ]


def raft_indexes(manager: DockerDaemon, prefix: str) -> dict[int, int]:
    """Each state version's ``Version.Index`` as the manager lists it."""
    answer = manager.docker("config", "ls", "-q", "--filter", f"label={prefix}.state-version")
    ids = answer.stdout.split()
    inspected = json.loads(manager.docker("config", "inspect", *ids).stdout) if ids else []
    return {
        int(c["Spec"]["Labels"][f"{prefix}.state-version"]): int(c["Version"]["Index"])
        for c in inspected
    }


async def test_a_replica_behind_the_pruned_versions_cannot_re_create_one_and_lose_a_switch(
    manager: DockerDaemon, tmp_path: Path
) -> None:
    """Issue 19, defect 4: a lagging replica's create of a pruned name counts for nothing.

    The manager accepts the create (the name is free again) but its Raft index
    is above the newer versions': the replica removes it, reads the newest
    state and commits its switch on top of it; the answer's switch is in the
    history every replica reads.
    """
    prefix = unique_prefix()
    busy, lagging = [await controller_on(manager, prefix, tmp_path) for _ in range(2)]
    busy.store.keep = lagging.store.keep = 2  # type: ignore[attr-defined]
    try:
        for n, color in enumerate([Color.GREEN, Color.BLUE] * 3):
            await busy.switch("web", color, actor=f"busy{n}")
        newest = busy.store.version
        await eventually(
            "all but the newest two versions pruned",
            lambda: [newest - 1, newest] == config_versions(manager, prefix),
            WAIT_S,
        )
        assert lagging.store.version < newest - 2  # its next version's name was pruned
        result = await lagging.switch("web", Color.GREEN, actor="lagging")
        assert result.changed and result.record is not None
        latest = await lagging.store.latest()  # type: ignore[attr-defined]
        assert result.record == latest.state.history[-1]
        assert (newest + 1, latest.state) == (latest.version, lagging.state)
        indexes = raft_indexes(manager, prefix)
        assert sorted(indexes) == sorted(indexes, key=indexes.__getitem__)  # Raft order
        await busy.follow(latest.state, latest.version)
        assert (Color.GREEN, busy.body) == (busy.active("web"), lagging.body)
    finally:
        for replica in (busy, lagging):
            await replica.store.close()  # type: ignore[attr-defined]


async def lossy_controller(host: str, prefix: str, tmp_path: Path) -> Controller:
    """A controller (blue active) whose store talks to the manager through ``host``."""
    store = SwarmStateStore(host, prefix=prefix)
    controller = Controller(settings(tmp_path), State(), store=store)
    await controller.replace_containers(
        [
            make_container("web", "blue", cid="b" * 64, ip="10.0.0.2"),
            make_container("web", "green", cid="g" * 64, ip="10.0.0.3"),
        ]
    )
    return controller


async def test_a_commit_whose_answer_is_lost_is_recognized_as_landed(
    manager: DockerDaemon, tmp_path: Path
) -> None:
    """Issue 19, defect 5: the create lands, its answer is cut on the wire: still a success.

    The store creates the same config again; the manager refuses the name, and
    the commit id on the config says it is this replica's: the switch is
    answered as done, served, and announced as this replica's own.
    """
    prefix = unique_prefix()
    async with ReplyLosingProxy(manager.socket_path) as proxy:
        controller = await lossy_controller(proxy.host, prefix, tmp_path)
        try:
            proxy.lose = 1
            result = await controller.switch("web", Color.GREEN, actor="op")
            assert 1 == proxy.lost
            latest = await controller.store.latest()  # type: ignore[attr-defined]
            assert result.changed and result.record == latest.state.history[-1]
            assert (Color.GREEN, latest.version) == (controller.active("web"), 2)
            assert [(result.record.seq, False)] == switch_events(controller)
        finally:
            await controller.store.close()  # type: ignore[attr-defined]


async def test_a_commit_whose_outcome_stays_unknown_is_announced_once_it_is_followed(
    manager: DockerDaemon, tmp_path: Path
) -> None:
    """Issue 19, defect 5: every answer lost: 503 says it may have landed; once the follower
    reads it, this replica serves it and announces it as its own (its webhooks are sent)."""
    prefix = unique_prefix()
    async with ReplyLosingProxy(manager.socket_path) as proxy:
        controller = await lossy_controller(proxy.host, prefix, tmp_path)
        store = controller.store
        assert isinstance(store, SwarmStateStore)
        try:
            proxy.lose = 100  # every try's answer
            with pytest.raises(StateStoreUnavailable) as lost:
                await controller.switch("web", Color.GREEN, actor="op")
            proxy.lose = 0
            assert (503, Color.BLUE) == (lost.value.status, controller.active("web"))
            await StateFollower(controller, store, poll=60.0).read()
            assert (Color.GREEN, 2) == (controller.active("web"), store.version)
            assert [(1, False)] == switch_events(controller)
            assert "may have been committed" in lost.value.detail
        finally:
            await store.close()
