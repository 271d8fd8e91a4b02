"""What the real Swarm engine does, measured on the 3-manager cluster of tests/testbed/swarm.py.

Evidence for docs/swarm-findings.md, printed as one JSON document per section:

1. **health**: task states while a HEALTHCHECK is starting, and when a running task
   turns unhealthy (``GET /tasks`` polled every 50 ms: ``Status.State``,
   ``DesiredState``, ``Status.ContainerStatus``, ``Status.Message``);
   the shape of ``NetworksAttachments``;
2. **configs**: ``POST /configs/create`` of one name from two nodes at once; the
   size limit; ``POST /configs/{id}/update`` with a stale version; latencies;
3. **events**: what ``GET /events`` reports on each manager for config, service and
   node changes made on node 2, and how late node 1 hears of them;
4. **overlay**: task IPs on other nodes and the service VIP, from a container on node 1;
5. **quorum**: one manager SIGKILLed, then two: what the survivors answer, and how
   long a restarted manager takes to be ready again.

Figures are printed, never asserted (STYLE.md).

    python3 -m bench.swarm_probe [--sections health,configs,events,overlay,quorum]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.testbed.dockerd import _UnixHTTPConnection
from tests.testbed.swarm import SwarmCluster, SwarmNode
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

HTTPD = "mkdir -p /www && echo ok > /www/index.html && {health}exec httpd -f -p 80 -h /www"
SERVE_HOSTNAME = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"
HEALTH = "wget -q -O- http://127.0.0.1:80/health"


def emit(section: str, data: Any) -> None:
    """Print one section's figures as JSON."""
    print(json.dumps({"section": section, **data}, sort_keys=True, default=str))
    sys.stdout.flush()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tasks_of(node: SwarmNode, service: str) -> list[dict[str, Any]]:
    filters = quote(json.dumps({"service": [service]}))
    answer = node.api("GET", f"/tasks?filters={filters}")
    if answer.status != 200:
        raise RuntimeError(f"GET /tasks: {answer.status} {answer.body}")
    tasks: list[dict[str, Any]] = answer.body
    return tasks


def task_view(task: dict[str, Any]) -> tuple[str, ...]:
    status = task["Status"]
    container = status.get("ContainerStatus") or {}
    return (
        task["ID"][:8],
        f"slot={task.get('Slot')}",
        status["State"],
        f"desired={task['DesiredState']}",
        f"msg={status.get('Message', '')}",
        f"err={status.get('Err', '')}",
        f"container={container.get('ContainerID', '')[:8]}",
        f"exit={container.get('ExitCode')}",
    )


def watch_tasks(
    node: SwarmNode, service: str, seconds: float, until: Any = None
) -> list[tuple[float, tuple[str, ...]]]:
    """Poll the service's tasks; every change of any task's view, with its time."""
    seen: dict[str, tuple[str, ...]] = {}
    changes: list[tuple[float, tuple[str, ...]]] = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        tasks = tasks_of(node, service)
        for task in tasks:
            view = task_view(task)
            if seen.get(task["ID"]) != view:
                seen[task["ID"]] = view
                changes.append((round(time.monotonic() - start, 2), view))
        if until is not None and until(tasks):
            break
        time.sleep(0.05)
    return changes


def node_by_id(cluster: SwarmCluster) -> dict[str, SwarmNode]:
    return {node.node_id(): node for node in cluster.nodes}


def probe_health(cluster: SwarmCluster) -> None:
    n1 = cluster.nodes[0]
    cluster.create_overlay("probe-hc-net")
    created = time.monotonic()
    n1.docker(
        "service", "create", "--detach", "--no-resolve-image", "--name", "hc",
        "--network", "probe-hc-net",
        "--health-cmd", HEALTH, "--health-interval", "500ms", "--health-retries", "2",
        "--health-start-period", "30s", "--health-timeout", "2s",
        cluster.image, "sh", "-c",
        HTTPD.format(health="(sleep 4; echo ok > /www/health) & "),
    )  # fmt: skip

    def running(tasks: list[dict[str, Any]]) -> bool:
        return any(t["Status"]["State"] == "running" for t in tasks)

    starting = watch_tasks(n1, "hc", 40, running)
    task = next(t for t in tasks_of(n1, "hc") if t["Status"]["State"] == "running")
    owners = node_by_id(cluster)
    owner = owners[task["NodeID"]]
    container = task["Status"]["ContainerStatus"]["ContainerID"]
    health_in_docker = owner.docker(
        "inspect", "--format", "{{json .State.Health.Status}}", container
    ).stdout.strip()
    emit(
        "health-starting",
        {
            "service_create_to_running_s": round(time.monotonic() - created, 2),
            "changes": starting,
            "container_health_when_running": health_in_docker,
            "networks_attachments": task["NetworksAttachments"],
            "task_keys": sorted(task),
        },
    )
    # Turn it unhealthy: the health file goes.
    owner.docker("exec", container, "rm", "/www/health")
    t0 = time.monotonic()
    turned: list[float] = []

    def watch_health() -> None:
        for _ in range(600):
            state = owner.docker(
                "inspect", "--format", "{{.State.Health.Status}}", container, check=False
            ).stdout.strip()
            if state == "unhealthy":
                turned.append(round(time.monotonic() - t0, 2))
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_health, daemon=True)
    watcher.start()

    def replaced(tasks: list[dict[str, Any]]) -> bool:
        return any(
            t["Status"]["State"] == "running" and t["ID"] != task["ID"] for t in tasks
        ) and any(t["ID"] == task["ID"] and t["Status"]["State"] != "running" for t in tasks)

    unhealthy = watch_tasks(n1, "hc", 60, replaced)
    watcher.join(5)
    emit(
        "health-unhealthy",
        {
            "container_unhealthy_after_s": turned[0] if turned else None,
            "replacement_running_after_s": round(time.monotonic() - t0, 2),
            "changes": unhealthy,
        },
    )
    n1.docker("service", "rm", "hc")


def race_create(first: SwarmNode, second: SwarmNode, name: str) -> list[tuple[int, str]]:
    """``POST /configs/create`` of ``name`` on both nodes at the same instant (a barrier)."""
    answers: list[tuple[int, str]] = [(0, "")] * 2
    barrier = threading.Barrier(2)

    def create(index: int, node: SwarmNode) -> None:
        barrier.wait()
        answer = node.api("POST", "/configs/create", {"Name": name, "Data": b64(b"x")})
        answers[index] = (answer.status, answer.message)

    threads = [threading.Thread(target=create, args=(i, n)) for i, n in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def probe_configs(cluster: SwarmCluster) -> None:
    n1, n2 = cluster.nodes[0], cluster.nodes[1]
    races = [race_create(n1, n2, f"race-{round_}") for round_ in range(10)]
    winners = [sum(1 for s, _ in r if s == 201) for r in races]
    again = n1.api("POST", "/configs/create", {"Name": "race-0", "Data": b64(b"x")})

    sizes: dict[str, tuple[int, str]] = {}
    for label, size in (
        ("500KiB", 500 * 1024),
        ("1000KiB_minus_1", 1000 * 1024 - 1),
        ("1000KiB", 1000 * 1024),
        ("1000KiB_plus_1", 1000 * 1024 + 1),
    ):
        answer = n1.api(
            "POST", "/configs/create", {"Name": f"size-{label}", "Data": b64(b"a" * size)}
        )
        sizes[label] = (answer.status, answer.message[:160])

    created = n1.api(
        "POST", "/configs/create", {"Name": "cas", "Data": b64(b"v"), "Labels": {"seq": "0"}}
    )
    config_id = created.body["ID"]
    info = n1.api("GET", f"/configs/{config_id}").body
    version = info["Version"]["Index"]
    spec = info["Spec"]
    first = n1.api(
        "POST", f"/configs/{config_id}/update?version={version}", {**spec, "Labels": {"seq": "1"}}
    )
    stale = n2.api(
        "POST", f"/configs/{config_id}/update?version={version}", {**spec, "Labels": {"seq": "2"}}
    )
    version = n1.api("GET", f"/configs/{config_id}").body["Version"]["Index"]
    data_change = n1.api(
        "POST", f"/configs/{config_id}/update?version={version}", {**spec, "Data": b64(b"other")}
    )
    after = n2.api("GET", f"/configs/{config_id}").body

    create_s, update_s, remove_s, get_s = [], [], [], []
    for index in range(30):
        answer = n2.api(
            "POST", "/configs/create", {"Name": f"lat-{index}", "Data": b64(b"y" * 2000)}
        )
        create_s.append(answer.seconds)
        get_s.append(n1.api("GET", f"/configs/{answer.body['ID']}").seconds)
    current = n1.api("GET", f"/configs/{config_id}").body
    for index in range(30):
        answer = n1.api(
            "POST",
            f"/configs/{config_id}/update?version={current['Version']['Index']}",
            {**current["Spec"], "Labels": {"seq": str(index + 10)}},
        )
        update_s.append(answer.seconds)
        current = n1.api("GET", f"/configs/{config_id}").body
    for index in range(30):
        remove_s.append(n2.api("DELETE", f"/configs/lat-{index}").seconds)

    def pct(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
        }

    listing = n1.api("GET", "/configs")
    emit(
        "configs",
        {
            "race_answers_first_round": races[0],
            "race_winners_per_round": winners,
            "race_distinct_answers": sorted({a for r in races for a in r}),
            "create_existing_name": (again.status, again.message),
            "sizes": sizes,
            "update_labels_current_version": (first.status, first.message),
            "update_labels_stale_version": (stale.status, stale.message),
            "update_data": (data_change.status, data_change.message),
            "labels_after": after["Spec"].get("Labels"),
            "version_after": after["Version"]["Index"],
            "create": pct(create_s),
            "get": pct(get_s),
            "update": pct(update_s),
            "remove": pct(remove_s),
            "list_configs_count": len(listing.body),
            "list_configs_s": round(listing.seconds, 4),
        },
    )


class EventStream(threading.Thread):
    """``GET /events?since=…&until=…`` on one node, collected with receive times."""

    def __init__(self, node: SwarmNode, seconds: float) -> None:
        super().__init__(daemon=True)
        self.node = node
        now = time.time()
        self.path = f"/events?since={now:.3f}&until={now + seconds:.3f}"
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.timeout = seconds + 10

    def run(self) -> None:
        conn = _UnixHTTPConnection(self.node.socket_path, self.timeout)
        try:
            conn.request("GET", self.path)
            response = conn.getresponse()
            while True:
                line = response.readline()
                if not line:
                    break
                if line.strip():
                    self.events.append((time.monotonic(), json.loads(line)))
        except (OSError, http.client.HTTPException) as exc:
            self.events.append((time.monotonic(), {"error": repr(exc)}))
        finally:
            conn.close()


def probe_events(cluster: SwarmCluster) -> None:
    n1, n2 = cluster.nodes[0], cluster.nodes[1]
    streams = [EventStream(node, 25.0) for node in cluster.nodes]
    for stream in streams:
        stream.start()
    time.sleep(1.0)
    marks: dict[str, float] = {}
    marks["config_create"] = time.monotonic()
    created = n2.api("POST", "/configs/create", {"Name": "ev-config", "Data": b64(b"e")})
    config_id = created.body["ID"]
    marks["service_create"] = time.monotonic()
    n2.docker(
        "service", "create", "--detach", "--no-resolve-image", "--name", "ev-svc",
        "--replicas", "1", "--constraint", f"node.hostname=={cluster.prefix}-n3",
        cluster.image, "sleep", "600",
    )  # fmt: skip
    wait_until(
        "ev-svc running",
        lambda: any(t["Status"]["State"] == "running" for t in tasks_of(n1, "ev-svc")),
        30,
    )
    node_id = n2.node_id()
    marks["service_update"] = time.monotonic()
    n2.docker("service", "update", "--detach", "--label-add", "bluegreen.x=1", "ev-svc")
    marks["node_update"] = time.monotonic()
    n2.docker("node", "update", "--label-add", "probe=1", node_id)
    marks["service_remove"] = time.monotonic()
    n2.docker("service", "rm", "ev-svc")
    marks["config_remove"] = time.monotonic()
    n2.api("DELETE", f"/configs/{config_id}")
    for stream in streams:
        stream.join(40)
    report: dict[str, Any] = {}
    for stream in streams:
        kinds: dict[str, int] = {}
        for _, event in stream.events:
            key = f"{event.get('Type')}/{event.get('Action')}"
            kinds[key] = kinds.get(key, 0) + 1
        report[stream.node.name] = kinds
    latency: dict[str, float | None] = {}
    first_of = {
        "config_create": ("config", "create"),
        "service_create": ("service", "create"),
        "service_update": ("service", "update"),
        "node_update": ("node", "update"),
        "service_remove": ("service", "remove"),
        "config_remove": ("config", "remove"),
    }
    for mark, (kind, action) in first_of.items():
        hits = [
            at for at, e in streams[0].events if e.get("Type") == kind and e.get("Action") == action
        ]
        latency[mark] = round((hits[0] - marks[mark]) * 1000, 1) if hits else None
    sample = next((e for _, e in streams[0].events if e.get("Type") == "service"), None)
    emit(
        "events",
        {
            "by_node": report,
            "n2_call_start_to_n1_event_ms": latency,
            "service_event_sample": sample,
        },
    )


def probe_overlay(cluster: SwarmCluster) -> None:
    n1 = cluster.nodes[0]
    network_id = cluster.create_overlay("probe-ov-net")
    n1.docker(
        "service", "create", "--detach", "--no-resolve-image", "--name", "ov",
        "--replicas", "3", "--replicas-max-per-node", "1", "--network", "probe-ov-net",
        "--hostname", "ov-{{.Task.Slot}}",
        cluster.image, "sh", "-c", SERVE_HOSTNAME,
    )  # fmt: skip
    tasks = wait_until(
        "3 ov tasks running",
        lambda: (
            (t := [x for x in tasks_of(n1, "ov") if x["Status"]["State"] == "running"])
            and len(t) == 3
            and t
        ),
        60,
    )
    owners = node_by_id(cluster)
    vip = n1.api("GET", "/services/ov").body["Endpoint"]["VirtualIPs"]
    n1.docker(
        "run",
        "-d",
        "--name",
        "ov-probe",
        "--network",
        "probe-ov-net",
        cluster.image,
        "sleep",
        "600",
    )
    results: dict[str, Any] = {}
    for task in tasks:
        address = next(
            a["Addresses"][0]
            for a in task["NetworksAttachments"]
            if a["Network"]["ID"] == network_id
        ).split("/")[0]
        done = n1.docker(
            "exec",
            "ov-probe",
            "timeout",
            "3",
            "wget",
            "-q",
            "-O-",
            f"http://{address}/",
            check=False,
        )
        results[f"task on {owners[task['NodeID']].name} {address}"] = (
            done.returncode,
            done.stdout.strip(),
        )
    vip_address = next(v["Addr"] for v in vip if v["NetworkID"] == network_id).split("/")[0]
    done = n1.docker(
        "exec",
        "ov-probe",
        "timeout",
        "3",
        "wget",
        "-q",
        "-O-",
        f"http://{vip_address}/",
        check=False,
    )
    results[f"VIP {vip_address}"] = (done.returncode, done.stdout.strip())
    other = cluster.nodes[1].address
    done = n1.docker(
        "exec", "ov-probe", "timeout", "3", "wget", "-q", "-O-", f"http://{other}:9/", check=False
    )
    results[f"node 2 address {other}"] = (done.returncode, done.stderr.strip()[:120])
    routes = n1.docker("exec", "ov-probe", "ip", "route").stdout.strip().splitlines()
    emit("overlay", {"wget_from_container_on_n1": results, "container_routes": routes, "vips": vip})
    n1.docker("rm", "-f", "ov-probe")
    n1.docker("service", "rm", "ov")


def timed(node: SwarmNode, method: str, path: str, body: Any = None) -> dict[str, Any]:
    try:
        answer = node.api(method, path, body, timeout=60.0)
    except OSError as exc:
        return {"error": repr(exc)}
    shown = (
        answer.message
        if answer.status >= 400
        else f"{len(answer.body) if isinstance(answer.body, list) else 'ok'}"
    )
    return {"status": answer.status, "answer": shown[:200], "s": round(answer.seconds, 3)}


def probe_quorum(cluster: SwarmCluster) -> None:
    n1, n2, n3 = cluster.nodes
    n1.docker(
        "service", "create", "--detach", "--no-resolve-image", "--name", "q",
        "--replicas", "3", "--replicas-max-per-node", "1",
        cluster.image, "sleep", "3600",
    )  # fmt: skip
    wait_until(
        "3 q tasks running",
        lambda: len([t for t in tasks_of(n1, "q") if t["Status"]["State"] == "running"]) == 3,
        60,
    )
    out: dict[str, Any] = {}
    killed_at = time.monotonic()
    n3.kill()
    out["one_down"] = {
        node.name: {
            "GET /configs": timed(node, "GET", "/configs"),
            "POST /configs/create": timed(
                node, "POST", "/configs/create", {"Name": f"q1-{node.name}", "Data": b64(b"q")}
            ),
            "GET /services": timed(node, "GET", "/services"),
        }
        for node in (n1, n2)
    }
    unreachable = wait_until(
        "n3 unreachable",
        lambda: cluster.manager_states(n1)[f"{cluster.prefix}-n3"][1] == "unreachable",
        60,
        interval=0.1,
    )
    out["one_down"]["seen_unreachable_after_s"] = (
        round(time.monotonic() - killed_at, 2) if unreachable else None
    )
    started = time.monotonic()
    n3.start()
    out["restart_dockerd_ping_s"] = round(time.monotonic() - started, 2)
    cluster.wait_managers_ready(seen_from=n1)
    out["restart_to_ready_reachable_manager_s"] = round(time.monotonic() - started, 2)
    wait_until(
        "3 q tasks running",
        lambda: len([t for t in tasks_of(n1, "q") if t["Status"]["State"] == "running"]) == 3,
        60,
    )
    out["restart_to_3_tasks_running_s"] = round(time.monotonic() - started, 2)

    local = n1.docker(
        "ps", "--filter", "label=com.docker.swarm.service.name=q", "-q"
    ).stdout.split()
    n2.kill()
    n3.kill()
    lost_at = time.monotonic()
    polls: list[tuple[float, str, Any, Any]] = []

    def poll_after_loss() -> None:
        for _ in range(40):
            if time.monotonic() - lost_at > 20:
                return
            for path in ("/configs", "/tasks"):
                answer = timed(n1, "GET", path)
                polls.append(
                    (
                        round(time.monotonic() - lost_at, 2),
                        path,
                        answer.get("status"),
                        answer.get("s"),
                    )
                )
            time.sleep(0.5)

    poller = threading.Thread(target=poll_after_loss, daemon=True)
    poller.start()
    out["two_down_on_n1"] = {
        "GET /configs": timed(n1, "GET", "/configs"),
        "POST /configs/create": timed(
            n1, "POST", "/configs/create", {"Name": "q2", "Data": b64(b"q")}
        ),
        "GET /tasks": timed(n1, "GET", "/tasks"),
        "GET /services": timed(n1, "GET", "/services"),
        "GET /nodes": timed(n1, "GET", "/nodes"),
        "GET /info Swarm": n1.api("GET", "/info").body["Swarm"].get("ControlAvailable"),
        "GET /containers/json (local)": timed(n1, "GET", "/containers/json"),
    }
    time.sleep(10)
    states = [
        n1.docker("inspect", "--format", "{{.State.Status}}", c, check=False).stdout.strip()
        for c in local
    ]
    out["two_down_on_n1"]["again_after_10s"] = {
        "GET /configs": timed(n1, "GET", "/configs"),
        "POST /configs/create": timed(
            n1, "POST", "/configs/create", {"Name": "q3", "Data": b64(b"q")}
        ),
    }
    poller.join(30)
    out["two_down_on_n1"]["polls_t_path_status_s"] = polls
    out["two_down_on_n1"]["local_task_containers_after_s"] = (
        round(time.monotonic() - lost_at, 1),
        states,
    )
    started = time.monotonic()
    n2.daemon.spawn()
    n3.daemon.spawn()
    wait_until(
        "quorum back", lambda: timed(n1, "GET", "/configs").get("status") == 200, 120, interval=0.2
    )
    out["restart_two_to_quorum_s"] = round(time.monotonic() - started, 2)
    cluster.wait_managers_ready(seen_from=n1)
    out["restart_two_to_all_ready_s"] = round(time.monotonic() - started, 2)
    emit("quorum", out)
    n1.docker("service", "rm", "q")


SECTIONS = {
    "health": probe_health,
    "configs": probe_configs,
    "events": probe_events,
    "overlay": probe_overlay,
    "quorum": probe_quorum,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sections", default=",".join(SECTIONS))
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="swarm-probe-"))
    started = time.monotonic()
    cluster = SwarmCluster.create(base)
    version = cluster.nodes[0].api("GET", "/version").body
    emit(
        "cluster",
        {
            "formed_s": round(cluster.formed_in_s, 2),
            "engine": version.get("Version"),
            "api": version.get("ApiVersion"),
            "subnet": cluster.subnet,
            "create_total_s": round(time.monotonic() - started, 2),
        },
    )
    try:
        for name in args.sections.split(","):
            SECTIONS[name](cluster)
    finally:
        emit(
            "teardown", {"destroy_s": round(cluster.destroy(), 2), "leftovers": cluster.leftovers()}
        )
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
