"""Capture the Swarm API's JSON from a real engine, trimmed, as test data.

Run from the repository root: ``PYTHONPATH=$PWD python3 scripts/capture_swarm_json.py``.
It starts a private single-node swarm (``tests/testbed/swarm_single.py``), creates
the services the normalization tables need, and writes
``tests/data/swarm/<moment>.json`` (``{"services", "tasks", "networks"}``, kept to
the fields the normalization reads) at three moments: ``starting`` (a task held
in ``starting`` by its HEALTHCHECK), ``settled`` and ``scaled`` (blue scaled to 0).
It prints the events the daemon emitted meanwhile (type, action, scope).
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.testbed.dockerd import _UnixHTTPConnection
from tests.testbed.swarm_single import SingleNodeSwarm
from tests.waiting import wait_until

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "swarm"
NETWORK = "app_web"
HTTPD = "mkdir -p /w; echo {color} > /w/index.html; echo ok > /w/health; exec httpd -f -p 80 -h /w"
# Healthy only once /w/health exists: a task held in `starting` until the file appears.
SLOW = (
    "mkdir -p /w; echo green > /w/index.html; (sleep {delay}; echo ok > /w/health) & "
    "exec httpd -f -p 80 -h /w"
)
HEALTH = [
    "--health-cmd", "wget -q -O- http://127.0.0.1:80/health",
    "--health-interval", "500ms", "--health-start-period", "60s", "--health-retries", "2",
]  # fmt: skip


def labels(service: str, color: str, network: str = NETWORK) -> dict[str, str]:
    return {
        "bluegreen.service": service,
        "bluegreen.color": color,
        "bluegreen.port": "80",
        "bluegreen.network": network,
        "com.example.other": "kept out",
    }


def trim_task(task: dict[str, Any]) -> dict[str, Any]:
    spec = task.get("Spec") or {}
    container = spec.get("ContainerSpec") or {}
    status = task.get("Status") or {}
    return {
        "ID": task["ID"],
        "ServiceID": task["ServiceID"],
        "NodeID": task.get("NodeID", ""),
        "Slot": task.get("Slot", 0),
        "CreatedAt": task["CreatedAt"],
        "DesiredState": task["DesiredState"],
        "Spec": {
            "ContainerSpec": {k: container[k] for k in ("Image", "Healthcheck") if k in container}
        },
        "Status": {k: status[k] for k in ("Timestamp", "State", "Message", "Err") if k in status},
        "NetworksAttachments": [
            {
                "Network": {
                    "ID": att["Network"]["ID"],
                    "Spec": {"Name": att["Network"]["Spec"]["Name"]},
                },
                "Addresses": att.get("Addresses") or [],
            }
            for att in task.get("NetworksAttachments") or []
        ],
    }


def trim_service(service: dict[str, Any]) -> dict[str, Any]:
    spec = service["Spec"]
    return {
        "ID": service["ID"],
        "Spec": {"Name": spec["Name"], "Labels": spec.get("Labels") or {}, "Mode": spec["Mode"]},
    }


def api(swarm: SingleNodeSwarm, path: str) -> Any:
    conn = _UnixHTTPConnection(swarm.daemon.socket_path, 30.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
    return json.loads(body)


def capture(swarm: SingleNodeSwarm, moment: str) -> None:
    services = [trim_service(s) for s in api(swarm, "/v1.41/services")]
    tasks = sorted(
        (trim_task(t) for t in api(swarm, "/v1.41/tasks")),
        key=lambda t: (t["ServiceID"], t["Slot"], t["CreatedAt"]),
    )
    networks = {n["Id"]: n["Name"] for n in api(swarm, "/v1.41/networks")}
    doc = {"services": services, "tasks": tasks, "networks": networks}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{moment}.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"{moment}: {len(services)} services, {len(tasks)} tasks", file=sys.stderr)


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="bg-capture-"))
    swarm = SingleNodeSwarm.start(base)
    since = api(swarm, "/v1.41/info")["SystemTime"]
    try:
        swarm.docker("network", "create", "--driver", "overlay", "--attachable", NETWORK)
        swarm.docker("network", "create", "--driver", "overlay", "--attachable", "app_other")
        sh = ["sh", "-c"]
        swarm.create_service(
            "web_blue", labels=labels("web", "blue"), replicas=2, networks=[NETWORK],
            command=[*sh, HTTPD.format(color="blue")],
        )  # fmt: skip
        swarm.create_service(
            "web_green", labels=labels("web", "green"), replicas=1, networks=[NETWORK],
            command=[*sh, SLOW.format(delay=8)], options=HEALTH,
        )  # fmt: skip
        swarm.create_service(
            "broken_blue", labels=labels("broken", "blue"), networks=[NETWORK],
            command=[*sh, "exit 3"], options=["--restart-max-attempts", "1",
                                              "--restart-delay", "100ms"],
        )  # fmt: skip
        swarm.create_service(
            "missing_blue", labels=labels("missing", "blue"), networks=[NETWORK],
            command=["true"], options=[],
        )  # fmt: skip
        swarm.docker(
            "service", "update", "--detach", "--image", "bgtest-nope:latest",
            "--no-resolve-image", "missing_blue",
        )  # fmt: skip
        swarm.create_service(
            "elsewhere_blue", labels=labels("elsewhere", "blue"), networks=["app_other"],
            command=[*sh, HTTPD.format(color="blue")],
        )  # fmt: skip
        swarm.create_service(
            "zero_blue", labels=labels("zero", "blue"), replicas=0, networks=[NETWORK],
            command=[*sh, HTTPD.format(color="blue")],
        )  # fmt: skip
        swarm.create_service(
            "plain", labels={"com.example.app": "plain"}, networks=[NETWORK],
            command=[*sh, HTTPD.format(color="plain")],
        )  # fmt: skip
        swarm.wait_tasks("web_blue", ("running", "running"), 2)
        swarm.wait_tasks("web_green", ("running", "starting"), 1)
        capture(swarm, "starting")
        swarm.wait_tasks("web_green", ("running", "running"), 1)
        swarm.wait_tasks("elsewhere_blue", ("running", "running"), 1)
        swarm.wait_tasks("broken_blue", ("shutdown", "failed"), 2)
        capture(swarm, "settled")
        swarm.scale("web_blue", 0)
        wait_until(
            "web_blue's tasks stopped",
            lambda: {c for _, c in swarm.task_states("web_blue")} == {"shutdown"},
            60.0,
        )
        capture(swarm, "scaled")
        until = api(swarm, "/v1.41/info")["SystemTime"]
        events = subprocess.run(
            [swarm.daemon.docker_cli, "events", "--since", since, "--until", until,
             "--format", "{{.Type}}|{{.Action}}|{{.Scope}}"],
            capture_output=True, text=True, env=swarm.daemon.env(), timeout=60, check=True,
        ).stdout  # fmt: skip
        counts = collections.Counter(
            " ".join((kind, action.split(":")[0], scope))
            for kind, action, scope in (line.split("|") for line in events.splitlines() if line)
        )
        for kind, count in sorted(counts.items()):
            print(f"{count:5d}  {kind}")
    finally:
        swarm.destroy()


if __name__ == "__main__":
    main()
