"""Proof that the multi-node Swarm of tests/testbed/swarm.py is real: three managers
in their own namespaces, overlay traffic between nodes through the real Traefik,
and a crashed manager that rejoins."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.testbed.swarm import SwarmCluster, SwarmNode
from tests.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CONFIG_PORT = 8081
WEB_HOST = "web.test"
# Each task serves its own hostname, set from the task slot, so bodies tell replicas apart.
HTTPD = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"


def running_tasks(node: SwarmNode, service: str) -> list[dict[str, Any]]:
    """The service's tasks that are desired and actually ``running`` (``GET /tasks``)."""
    filters = quote(json.dumps({"service": [service], "desired-state": ["running"]}))
    answer = node.api("GET", f"/tasks?filters={filters}")
    assert 200 == answer.status, answer.body
    return [task for task in answer.body if task["Status"]["State"] == "running"]


def task_address(task: dict[str, Any], network_id: str) -> str:
    """The task's IP on ``network_id``, without its prefix length."""
    for attachment in task.get("NetworksAttachments", []):
        if attachment["Network"]["ID"] == network_id:
            address: str = attachment["Addresses"][0]
            return address.split("/")[0]
    raise AssertionError(f"task {task['ID']} has no address on {network_id}")


def test_cluster_forms_with_three_ready_managers(swarm_cluster: SwarmCluster) -> None:
    """Every node is a ready, reachable manager, and exactly one of them leads."""
    expected = {
        f"{swarm_cluster.prefix}-{node.name}": ("ready", "reachable")
        for node in swarm_cluster.nodes
    }
    assert expected == swarm_cluster.manager_states(swarm_cluster.nodes[2])

    leaders = [
        item["Description"]["Hostname"]
        for item in swarm_cluster.nodes[0].api("GET", "/nodes").body
        if item["ManagerStatus"].get("Leader")
    ]
    assert 1 == len(leaders)


def test_tasks_on_two_nodes_serve_through_traefik_on_the_overlay(
    swarm_cluster: SwarmCluster, tmp_path: Path
) -> None:
    """A 2-replica service spread over two nodes answers through Traefik (in a container on
    node 1) by task IP, with config from node 1's address: a bounded load sees 0 failures
    and both replicas."""
    n1 = swarm_cluster.nodes[0]
    network_id = swarm_cluster.create_overlay("bgtest-web-net")
    n1.docker(
        "service", "create", "--detach", "--no-resolve-image",
        "--name", "web", "--replicas", "2", "--replicas-max-per-node", "1",
        "--stop-grace-period", "1s",
        "--network", "bgtest-web-net", "--hostname", "web-{{.Task.Slot}}",
        swarm_cluster.image, "sh", "-c", HTTPD,
    )  # fmt: skip
    tasks = wait_until(
        "2 running web tasks", lambda: (t := running_tasks(n1, "web")) and len(t) == 2 and t, 60
    )
    assert 2 == len({task["NodeID"] for task in tasks})

    servers = [{"url": f"http://{task_address(task, network_id)}:80"} for task in tasks]
    config = {
        "http": {
            "routers": {
                "web": {"rule": f"Host(`{WEB_HOST}`)", "service": "web", "entryPoints": ["web"]}
            },
            "services": {"web": {"loadBalancer": {"servers": servers}}},
        }
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    swarm_cluster.spawn(
        n1.netns_path,
        [
            sys.executable,
            "-m",
            "http.server",
            str(CONFIG_PORT),
            "--bind",
            n1.address,
            "--directory",
            str(tmp_path),
        ],
        log_name="config-server",
    )
    traefik = swarm_cluster.run_traefik(
        "bgtest-web-net", http_endpoint=f"http://{n1.address}:{CONFIG_PORT}/config.json"
    )
    traefik.wait_response(host=WEB_HOST)
    applied = traefik.api("http/services/web@http")
    assert {server["url"] for server in servers} == set(applied["serverStatus"])

    result = swarm_cluster.start_load(
        traefik.netns_path, traefik.web_url, host=WEB_HOST, max_requests=300, max_seconds=30
    ).wait()

    assert (300, 0) == (result.total, result.failed), result
    assert {"web-1\n", "web-2\n"} == set(result.bodies)
    traefik.stop()
    n1.docker("service", "rm", "web")


def test_killed_manager_rejoins_as_a_ready_manager(swarm_cluster: SwarmCluster) -> None:
    """SIGKILL of one manager's dockerd: the others see it unreachable, keep answering;
    started again, it is a ready, reachable manager once more."""
    n1, victim = swarm_cluster.nodes[0], swarm_cluster.nodes[2]
    hostname = f"{swarm_cluster.prefix}-{victim.name}"
    old_pid = victim.pid

    victim.kill()
    wait_until(
        "the killed manager unreachable",
        lambda: swarm_cluster.manager_states(n1)[hostname][1] == "unreachable",
        60,
        interval=0.2,
    )
    created = n1.api("POST", "/configs/create", {"Name": "after-kill", "Data": "eA=="})
    assert 201 == created.status, created.body

    victim.start()
    swarm_cluster.wait_managers_ready(seen_from=n1)

    assert old_pid != victim.pid
    assert ("ready", "reachable") == swarm_cluster.manager_states(victim)[hostname]
