"""Issue 14's scenarios on a real three-manager Swarm, under load through the real Traefik.

The cluster (tests/testbed/swarm.py) is three dockerds in their own network
namespaces. A provider replica (``bluegreen serve --swarm``) runs on every
manager; Traefik runs in a container on node 1's overlay network and polls
node 1's replica; the load runs inside Traefik's namespace against its own
loopback. The app is a blue/green pair of busybox httpd services answering
their color, two tasks each on nodes 1 and 2 (node 3 runs none, so killing it
touches only the Raft store and a replica). The tests run in file order; the
last one takes the quorum away.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.testbed.swarm import REPO_ROOT, SwarmCluster, TraefikContainer, ns_argv, python_env
from tests.testbed.swarm_replicas import Replica
from tests.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TOKEN = "swarm-e2e-token"
NETWORK = "bgapps"
HOST = "web.test"
V2 = "bgtest/web:v2"
WAIT_S = 90.0
HTTPD = 'mkdir -p /www && echo "$COLOR" > /www/index.html && exec httpd -f -p 80 -h /www'
HEALTH = "wget -q -O /dev/null http://127.0.0.1:80/"


@dataclass
class Stack:
    cluster: SwarmCluster
    replicas: list[Replica]
    traefik: TraefikContainer

    def load(self, seconds: float, requests: int = 100_000) -> Any:
        """Bounded load through Traefik, from inside its container's namespace."""
        return self.cluster.start_load(
            self.traefik.netns_path,
            self.traefik.web_url,
            host=HOST,
            max_requests=requests,
            max_seconds=seconds,
            concurrency=4,
        )

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.proc is not None and r.proc.poll() is None]


def create_color(cluster: SwarmCluster, color: str, replicas: int) -> None:
    """One color of ``web`` as a stack's ``deploy.labels`` make it, kept off node 3."""
    n3 = f"{cluster.prefix}-{cluster.nodes[2].name}"
    cluster.nodes[0].docker(
        "service", "create", "--detach", "--no-resolve-image",
        "--name", f"web_{color}", "--replicas", str(replicas),
        "--replicas-max-per-node", "1", "--constraint", f"node.hostname!={n3}",
        "--stop-grace-period", "1s", "--env", f"COLOR={color}",
        "--health-cmd", HEALTH, "--health-interval", "1s", "--health-retries", "2",
        "--network", NETWORK,
        "--label", "bluegreen.service=web", "--label", f"bluegreen.color={color}",
        "--label", "bluegreen.port=80", "--label", f"bluegreen.network={NETWORK}",
        "--label", f"bluegreen.rule=Host(`{HOST}`)", "--label", f"bluegreen.replicas={replicas}",
        cluster.image, "sh", "-c", HTTPD,
    )  # fmt: skip


def routable(replica: Replica, color: str) -> int:
    """How many routable ``color`` tasks the replica sees (0 before it knows ``web``)."""
    status, raw = replica.get("/status/web")
    return int(json.loads(raw)["colors"][color]["routable"]) if status == 200 else 0


def state_version(replica: Replica) -> int:
    return int(replica.json("/status")["state_file"]["version"])


def converged(replicas: list[Replica]) -> bool:
    """Every replica serves the same body for the same state version."""
    bodies = {r.body() for r in replicas}
    versions = {state_version(r) for r in replicas}
    return len(bodies) == 1 and len(versions) == 1


def history(replica: Replica) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = replica.json("/history?service=web")["history"]
    return records


@pytest.fixture(scope="module")
def stack(swarm_cluster: SwarmCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    cluster = swarm_cluster
    cluster.create_overlay(NETWORK)
    for node in cluster.nodes:
        node.docker("tag", cluster.image, V2)
    create_color(cluster, "blue", 2)
    create_color(cluster, "green", 2)
    base = tmp_path_factory.mktemp("replicas")
    extra = ("--promote-after", "0.5", "--swarm-poll", "0.2")
    replicas = [Replica(cluster, node, token=TOKEN, base_dir=base, extra_args=extra)
                for node in cluster.nodes]  # fmt: skip
    try:
        for replica in replicas:
            replica.start()
        wait_until(
            "both colors routable on every replica",
            lambda: all(routable(r, c) == 2 for r in replicas for c in ("blue", "green")),
            WAIT_S,
            interval=0.3,
        )
        traefik = cluster.run_traefik(NETWORK, http_endpoint=replicas[0].traefik_endpoint)
        # The first replica to adopt ``web`` picked the color routable first: either.
        active = replicas[0].json("/status/web")["active"]
        traefik.wait_response(host=HOST, body=f"{active}\n")
        yield Stack(cluster, replicas, traefik)
    finally:
        for replica in replicas:
            replica.close()


def test_replicas_serve_identical_bodies_and_one_history_after_50_concurrent_switches(
    stack: Stack,
) -> None:
    """50 switches split over the three replicas at once, under load: every replica ends on
    the same body and one history, exactly the switches they acknowledged; 0 failed."""
    replicas = stack.replicas
    wait_until("replicas converge", lambda: converged(replicas), WAIT_S, interval=0.2)
    assert 1 == len({r.body() for r in replicas})
    before = len(history(replicas[0]))
    load = stack.load(seconds=8)  # the switches take about a second; Traefik applies after
    rng = random.Random(1414)
    plan = [(replicas[n % 3], rng.choice(["blue", "green"]), f"sw{n}") for n in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda p: p[0].switch("web", p[1], actor=p[2]), plan))
    wait_until("replicas converge", lambda: converged(replicas), WAIT_S, interval=0.2)
    final = replicas[0].json("/status/web")["active"]
    stack.traefik.wait_response(host=HOST, body=f"{final}\n")
    result = load.wait()

    assert [200] * 50 == [status for status, _ in answers], answers
    acknowledged = sorted(
        (doc["switch"]["seq"], doc["switch"]["reason"], doc["switch"]["to"])
        for _, doc in answers
        if doc["changed"]
    )
    for replica in replicas:
        records = history(replica)[before:]
        assert acknowledged == [(r["seq"], r["reason"], r["to"]) for r in records]
    assert acknowledged, "at least one switch changed the color"
    assert 0 == result.failed, result
    assert {"blue\n", "green\n"} >= set(result.bodies)


def test_a_deploy_through_the_second_replica_is_promoted_once_with_0_failed(
    stack: Stack, tmp_path: Path
) -> None:
    """``bluegreen deploy --swarm`` on node 2, talking to node 2's replica and dockerd:
    one promotion in the one history, the old color scaled to 0, no request lost."""
    replicas, n2 = stack.replicas, stack.cluster.nodes[1]
    active = replicas[0].json("/status/web")["active"]
    idle = "green" if active == "blue" else "blue"
    before = len(history(replicas[0]))
    load = stack.load(seconds=120)
    env = {
        **python_env(),
        "DOCKER_HOST": n2.host,
        "BLUEGREEN_URL": "http://127.0.0.1:8080",
        "BLUEGREEN_TOKEN": TOKEN,
        "HOME": str(tmp_path),
    }
    deploy = subprocess.run(
        ns_argv(
            n2.netns_path,
            [
                sys.executable,
                "-m",
                "deploy.cli",
                "deploy",
                "web",
                "--swarm",
                "--image",
                V2,
                "--drain-timeout",
                "2",
                "--timeout",
                "90",
            ],
        ),
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=REPO_ROOT,
    )
    stack.traefik.wait_response(host=HOST, body=f"{idle}\n")
    wait_until("replicas converge", lambda: converged(replicas), WAIT_S, interval=0.2)
    result = load.stop()

    assert 0 == deploy.returncode, deploy.stdout + deploy.stderr
    for replica in replicas:
        records = history(replica)[before:]
        assert [(active, idle, "auto-promote")] == [
            (r["from"], r["to"], r["reason"]) for r in records
        ]
    spec = json.loads(stack.cluster.nodes[0].docker("service", "inspect", f"web_{idle}").stdout)[0]
    assert V2 == spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]
    old = json.loads(stack.cluster.nodes[0].docker("service", "inspect", f"web_{active}").stdout)
    assert 0 == old[0]["Spec"]["Mode"]["Replicated"]["Replicas"]
    assert 0 == result.failed, result
    # Scale the old color back up for the next scenarios (both colors ready).
    stack.cluster.nodes[0].docker("service", "scale", "--detach", f"web_{active}=2")
    wait_until(
        "both colors routable again",
        lambda: all(routable(r, active) == 2 for r in replicas),
        WAIT_S,
        interval=0.3,
    )


def test_a_killed_manager_and_its_replica_lose_no_request_and_rejoin(stack: Stack) -> None:
    """SIGKILL node 3's dockerd and replica under load: switches go on through the
    survivors; restarted, node 3's replica converges on the same state and body."""
    replicas, n3 = stack.replicas, stack.cluster.nodes[2]
    load = stack.load(seconds=120)
    n3.kill()
    replicas[2].kill()
    survivors = replicas[:2]
    targets = []
    for n in range(4):
        current = survivors[0].json("/status/web")["active"]
        target = "green" if current == "blue" else "blue"
        # A Raft leader lost with node 3 is re-elected within seconds: retry a 503 meanwhile.
        answer = wait_until(
            f"switch {n} through a survivor",
            lambda n=n, target=target: (
                a
                if (a := survivors[n % 2].switch("web", target, actor=f"during-kill{n}"))[0] != 503
                else None
            ),
            WAIT_S,
            interval=0.5,
        )
        assert (200, True) == (answer[0], answer[1]["changed"]), answer
        targets.append(target)
        stack.traefik.wait_response(host=HOST, body=f"{target}\n")
    n3.start()
    stack.cluster.wait_managers_ready(seen_from=stack.cluster.nodes[0])
    replicas[2].start()
    wait_until("node 3's replica converges", lambda: converged(replicas), WAIT_S, interval=0.3)
    result = load.stop()

    assert 0 == result.failed, result
    assert targets == [r["to"] for r in history(replicas[2])[-4:]]
    assert replicas[0].body() == replicas[2].body()


def test_without_quorum_the_survivor_keeps_serving_and_refuses_switches_with_503(
    stack: Stack,
) -> None:
    """Two of three managers gone: node 1's replica keeps its last config (0 failed through
    Traefik) and answers a switch with 503; nothing changes. The code is
    ``state_store_unavailable`` when the manager already knows it has no leader, or
    ``state_commit_unknown`` when the create hung until the client gave up (it may land)."""
    replicas, (n2, n3) = stack.replicas, stack.cluster.nodes[1:]
    active = replicas[0].json("/status/web")["active"]
    target = "green" if active == "blue" else "blue"
    body = replicas[0].body()
    load = stack.load(seconds=60, requests=20_000)
    for node, replica in ((n2, replicas[1]), (n3, replicas[2])):
        node.kill()
        replica.kill()
    status, doc = replicas[0].switch("web", target, actor="no-quorum")
    served = replicas[0].body()
    result = load.stop()

    assert 503 == status, doc
    assert doc["error"] in ("state_store_unavailable", "state_commit_unknown"), doc
    assert body == served
    assert active == replicas[0].json("/status/web")["active"]
    assert 0 == result.failed, result
    assert {f"{active}\n"} == set(result.bodies)
