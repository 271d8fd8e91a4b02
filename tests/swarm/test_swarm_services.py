"""``deploy.swarm_services.SwarmServices`` against a real single-node Swarm.

The module starts its own dockerd (never the session's shared one), makes it a
Swarm manager listening on loopback only, imports busybox under two tags (no
registry exists: ``v2`` is what a deploy rolls out) and creates the blue/green
pair as ``docker stack deploy`` would name it (``app_web-blue``), with the
labels in the *service* labels, plus a decoy named ``web-green`` without them.
Assertions read the real service specs and task states; no traffic is sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.errors import ComposeError, ComposeFileProblem
from deploy.swarm_services import SwarmError, SwarmServices, SwarmSetupProblem
from provider.core.model import Color
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE
from tests.testbed.swarm_single import SingleNodeSwarm
from tests.waiting import wait_until

pytestmark = pytest.mark.docker

V2 = "bgtest-busybox:v2"
BLUE = "app_web-blue"
GREEN = "app_web-green"
DECOY = "web-green"
TASK_WAIT_S = 90.0


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A private dockerd made a one-node Swarm manager (free ports, its own gateway bridge)."""
    node = SingleNodeSwarm.start(tmp_path_factory.mktemp("swarm-dockerd"))
    try:
        node.docker("tag", DEFAULT_IMAGE, V2)
        yield node.daemon
    finally:
        node.destroy()


def create(daemon: DockerDaemon, name: str, replicas: int, *labels: str) -> None:
    """A replicated service the way a stack file's ``deploy.labels`` makes it."""
    args = ["service", "create", "--detach", "--no-resolve-image", "--name", name]
    for label in labels:
        args += ["--label", label]
    daemon.docker(
        *args, "--replicas", str(replicas), "--env", "KEEP=me", "--stop-signal", "KILL",
        DEFAULT_IMAGE, "sh", "-c", "exec sleep 100000",
    )  # fmt: skip


@pytest.fixture
def pair(swarm: DockerDaemon) -> Iterator[SwarmServices]:
    """Blue runs 2 tasks; green is scaled to 0 with 2 recorded; a decoy has no labels."""
    create(swarm, BLUE, 2, "bluegreen.service=web", "bluegreen.color=blue")
    create(swarm, GREEN, 0, "bluegreen.service=web", "bluegreen.color=green",
           "bluegreen.replicas=2")  # fmt: skip
    create(swarm, DECOY, 1)
    try:
        running(swarm, BLUE, 2)
        yield SwarmServices("web", docker_host=swarm.host)
    finally:
        swarm.docker("service", "rm", BLUE, GREEN, DECOY, check=False)


def spec(daemon: DockerDaemon, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(daemon.docker("service", "inspect", name).stdout)[0]
    return found


def tasks(daemon: DockerDaemon, name: str) -> list[dict[str, Any]]:
    """The service's tasks as the engine reports them (``docker service ps``)."""
    out = daemon.docker("service", "ps", name, "--no-trunc", "--format", "{{json .}}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def running(daemon: DockerDaemon, name: str, count: int, image: str = DEFAULT_IMAGE) -> list[str]:
    """Wait until exactly ``count`` tasks of ``name`` run ``image`` and nothing else runs."""

    def check() -> list[str] | None:
        listed = [t for t in tasks(daemon, name) if t["DesiredState"] == "Running"]
        ids = [t["ID"] for t in listed if t["CurrentState"].startswith("Running")]
        on_image = all(t["Image"].startswith(image) for t in listed)
        if len(listed) == count and len(ids) == count and on_image:
            return ids or ["none"]
        return None

    return wait_until(f"{count} running tasks of {name} on {image}", check, TASK_WAIT_S)


def test_up_sets_image_and_recorded_replicas_keeping_the_rest(
    swarm: DockerDaemon, pair: SwarmServices
) -> None:
    """``up`` on the idle green: image v2, the 2 recorded replicas, env and labels kept."""
    decoy = spec(swarm, DECOY)["Version"]["Index"]
    pair.up("web-green", V2)
    after = spec(swarm, GREEN)["Spec"]
    assert V2 == after["TaskTemplate"]["ContainerSpec"]["Image"]
    assert 2 == after["Mode"]["Replicated"]["Replicas"]
    assert ["KEEP=me"] == after["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "green" == after["Labels"]["bluegreen.color"]
    assert 2 == len(running(swarm, GREEN, 2, V2))
    assert decoy == spec(swarm, DECOY)["Version"]["Index"]
    assert {Color.BLUE: BLUE, Color.GREEN: GREEN} == pair.seen


def test_up_with_the_same_image_starts_new_tasks(swarm: DockerDaemon, pair: SwarmServices) -> None:
    """Like compose's ``--force-recreate``: a redeploy of what runs still makes new tasks."""
    before = set(running(swarm, BLUE, 2))
    pair.up("web-blue", DEFAULT_IMAGE)

    def replaced() -> list[str] | None:
        now = set(running(swarm, BLUE, 2))
        return sorted(now) if not now & before else None

    assert 2 == len(wait_until("new blue tasks", replaced, TASK_WAIT_S))


def test_stop_scales_to_zero_and_start_restores_the_count(
    swarm: DockerDaemon, pair: SwarmServices
) -> None:
    """``stop`` keeps the spec and records 2; ``start`` brings 2 new tasks of the same image."""
    before = set(running(swarm, BLUE, 2))
    pair.stop("web-blue")
    stopped = spec(swarm, BLUE)["Spec"]
    assert 0 == stopped["Mode"]["Replicated"]["Replicas"]
    assert "2" == stopped["Labels"]["bluegreen.replicas"]
    assert DEFAULT_IMAGE == stopped["TaskTemplate"]["ContainerSpec"]["Image"]
    running(swarm, BLUE, 0)
    pair.start("web-blue")
    assert 2 == spec(swarm, BLUE)["Spec"]["Mode"]["Replicated"]["Replicas"]
    after = set(running(swarm, BLUE, 2))
    assert set() == after & before


def test_start_without_a_recorded_count_runs_one(swarm: DockerDaemon, pair: SwarmServices) -> None:
    """A service scaled to 0 by hand (no label) comes back with 1 replica."""
    swarm.docker("service", "scale", "--detach", f"{BLUE}=0")
    pair.start("web-blue")
    assert 1 == spec(swarm, BLUE)["Spec"]["Mode"]["Replicated"]["Replicas"]
    assert 1 == len(running(swarm, BLUE, 1))


def test_update_out_of_sequence_is_reread_and_retried(
    swarm: DockerDaemon, pair: SwarmServices
) -> None:
    """Another writer updates green between our read and our write: both changes survive."""

    class Raced(SwarmServices):
        raced = False

        async def _read(self, color: Color) -> dict[str, Any]:
            current = await super()._read(color)
            if not self.raced:
                self.raced = True  # the version we hold is now stale
                swarm.docker("service", "update", "--detach", "--label-add", "owner=ops", GREEN)
            return current

    raced = Raced("web", docker_host=swarm.host)
    raced.up("web-green", V2)
    after = spec(swarm, GREEN)["Spec"]
    assert 2 == raced.attempts
    assert "ops" == after["Labels"]["owner"]
    assert V2 == after["TaskTemplate"]["ContainerSpec"]["Image"]
    assert 2 == after["Mode"]["Replicated"]["Replicas"]


def test_check_image_needs_the_image_on_this_node(pair: SwarmServices) -> None:
    """A present image pins nothing (False); a missing one is refused before any change."""
    assert False is pair.check_image("web-green", V2)
    with pytest.raises(SwarmSetupProblem, match=r"bgtest-busybox:nope is not on this node"):
        pair.check_image("web-green", "bgtest-busybox:nope")
    expected = "nothing: the Swarm service spec of web-green is the record of x:1"
    assert expected == pair.record_image("web-green", "x:1")


def test_missing_color_is_a_setup_problem(swarm: DockerDaemon, pair: SwarmServices) -> None:
    """Without a green-labelled service the pair is refused (exit 7), naming the labels."""
    swarm.docker("service", "update", "--detach", "--label-rm", "bluegreen.color", GREEN)
    with pytest.raises(SwarmSetupProblem, match=r"none has bluegreen\.color=green") as caught:
        pair.up("web-green", V2)
    assert 7 == caught.value.exit_code
    assert isinstance(caught.value, ComposeFileProblem)
    assert DEFAULT_IMAGE == spec(swarm, GREEN)["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]


def test_daemon_not_in_a_swarm_is_refused(docker_daemon: DockerDaemon) -> None:
    """A plain engine (the session's, never swarm-inited) is refused with what to do (exit 7)."""
    with pytest.raises(SwarmSetupProblem, match="not part of a Swarm") as caught:
        SwarmServices.open("web", {"DOCKER_HOST": docker_daemon.host})
    assert 7 == caught.value.exit_code


def test_unreachable_daemon_is_a_docker_error(tmp_path: Path) -> None:
    """No daemon behind DOCKER_HOST: a clean SwarmError naming it (exit 7)."""
    host = f"unix://{tmp_path}/no.sock"
    with pytest.raises(SwarmError, match="cannot reach the Docker daemon") as caught:
        SwarmServices.open("web", {"DOCKER_HOST": host})
    assert 7 == caught.value.exit_code
    assert isinstance(caught.value, ComposeError)


def test_up_with_smoke_labels_sets_them_and_stop_after_it_restores_the_spec(
    swarm: DockerDaemon, pair: SwarmServices
) -> None:
    """``deploy --smoke`` on Swarm: the labels go on the color's service spec (where the
    provider reads them) in the same update as the image; a failed deploy's ``stop`` puts
    the spec back as it was, labels included."""
    labels = {"bluegreen.smoke": "/healthz,/api/ping=204", "bluegreen.smoke-host": "web.test"}
    pair.up("web-green", V2, labels)
    after = spec(swarm, GREEN)["Spec"]
    assert labels == {k: after["Labels"][k] for k in labels}
    assert V2 == after["TaskTemplate"]["ContainerSpec"]["Image"]
    assert "green" == after["Labels"]["bluegreen.color"]
    pair.stop("web-green")
    restored = spec(swarm, GREEN)["Spec"]
    assert set() == set(labels) & set(restored["Labels"])
    assert DEFAULT_IMAGE == restored["TaskTemplate"]["ContainerSpec"]["Image"]
