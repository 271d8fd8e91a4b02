"""Swarm's services and tasks to the core's observations (pure: no Docker needed).

Pins :mod:`provider.core.swarm_normalize` on JSON captured from a real engine
(Docker 20.10, a private single-node swarm; ``scripts/capture_swarm_json.py``
re-captures it) at three moments: ``starting`` (web's green task held in
``starting`` by its HEALTHCHECK), ``settled`` and ``scaled`` (web's blue
scaled to 0). Services: ``web_blue`` (2 replicas), ``web_green`` (HEALTHCHECK),
``broken_blue`` (exits 3: failed), ``missing_blue`` (no such image: rejected),
``elsewhere_blue`` (labelled ``app_web`` but attached to ``app_other``),
``zero_blue`` (0 replicas) and ``plain`` (no labels).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from provider.core.docker_normalize import parse_time
from provider.core.labels import LabelDefaults, LabelProblem, parse
from provider.core.model import SWARM_TASK, Color, Health
from provider.core.routing import Options, observe
from provider.core.swarm_normalize import (
    labelled_services,
    normalize_task,
    normalize_tasks,
    task_image,
    task_name,
    task_networks,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "swarm"
PREFIX = "bluegreen"


@cache
def _load(moment: str) -> str:
    return (DATA / f"{moment}.json").read_text()


def captured(moment: str) -> dict[str, Any]:
    """A fresh copy of one captured moment: ``{"services", "tasks", "networks"}``."""
    doc: dict[str, Any] = json.loads(_load(moment))
    return doc


def service_id(doc: dict[str, Any], name: str) -> str:
    return next(str(s["ID"]) for s in doc["services"] if s["Spec"]["Name"] == name)


def tasks_of(doc: dict[str, Any], name: str) -> list[dict[str, Any]]:
    sid = service_id(doc, name)
    return [t for t in doc["tasks"] if t["ServiceID"] == sid]


def observed(moment: str) -> dict[str, Any]:
    doc = captured(moment)
    return normalize_tasks(doc["services"], doc["tasks"], PREFIX, doc["networks"])


def by_service(moment: str) -> dict[str, list[tuple[str, str, Health, bool]]]:
    """Each labelled service's observations as (color, state, health, routable)."""
    found: dict[str, list[tuple[str, str, Health, bool]]] = {}
    for c in observed(moment).values():
        found.setdefault(c.labels["bluegreen.service"], []).append(
            (c.labels["bluegreen.color"], c.state, c.health, c.routable)
        )
    return {name: sorted(rows) for name, rows in found.items()}


RUNNING = ("running", Health.NONE, True)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (
            "starting",
            {
                "web": [
                    ("blue", *RUNNING),
                    ("blue", *RUNNING),
                    ("green", "running", Health.STARTING, False),
                ],
                "missing": [("blue", "rejected", Health.NONE, False)],
                "elsewhere": [("blue", *RUNNING)],
                "broken": [("blue", *RUNNING)],
            },
        ),
        (
            "settled",
            {
                "web": [
                    ("blue", *RUNNING),
                    ("blue", *RUNNING),
                    ("green", "running", Health.HEALTHY, True),
                ],
                "missing": [("blue", "rejected", Health.NONE, False)],
                "elsewhere": [("blue", *RUNNING)],
            },
        ),
        (
            "scaled",
            {
                "web": [("green", "running", Health.HEALTHY, True)],
                "missing": [("blue", "rejected", Health.NONE, False)],
                "elsewhere": [("blue", *RUNNING)],
            },
        ),
    ],
)
def test_observations_per_moment(moment: str, expected: dict[str, Any]) -> None:
    """Routable exactly when desired and current state are running; a task held in
    ``starting`` by its HEALTHCHECK is running but not routable; failed tasks (desired
    shutdown), scaled-down tasks, a service of 0 replicas and an unlabelled service give
    no observation; a rejected task Swarm still means to run is reported, not routable."""
    assert expected == by_service(moment)


def test_task_fields() -> None:
    """ID, Docker's container name, service labels under the prefix only, the image
    without its digest, CreatedAt and the running timestamp in the daemon's clock."""
    doc = captured("settled")
    task = tasks_of(doc, "web_blue")[0]
    c = observed("settled")[task["ID"]]

    assert f"web_blue.{task['Slot']}.{task['ID']}" == c.name
    assert {
        "bluegreen.service": "web",
        "bluegreen.color": "blue",
        "bluegreen.port": "80",
        "bluegreen.network": "app_web",
    } == dict(c.labels)
    assert ("bgtest-busybox:latest", SWARM_TASK, ()) == (c.image, c.network_mode, c.exposed_ports)
    assert parse_time(task["CreatedAt"]) == c.created
    assert parse_time(task["Status"]["Timestamp"]) == c.healthy_since
    ip = task["NetworksAttachments"][0]["Addresses"][0].partition("/")[0]
    assert {"app_web": ip} == dict(c.networks)


def test_rejected_task_says_why() -> None:
    """A rejected task keeps Swarm's error (shown as the container's output in /status)."""
    (c,) = [c for c in observed("settled").values() if c.labels["bluegreen.service"] == "missing"]
    assert ("rejected", "No such image: bgtest-nope:latest") == (c.state, c.health_output)


def test_servers_are_task_ips_on_the_named_network() -> None:
    """Through the unchanged core: web's members are reached on their app_web IPs, port 80;
    the task attached only to app_other is an error of its own service."""
    doc = captured("settled")
    view = observe(observed("settled").values(), Options()).services
    ips = sorted(
        a["Addresses"][0].partition("/")[0]
        for t in tasks_of(doc, "web_blue")
        for a in t["NetworksAttachments"]
    )
    urls = sorted(m.url or "" for m in view["web"].color(Color.BLUE).members)
    assert [f"http://{ip}:80" for ip in ips] == urls
    assert () == view["web"].errors
    (problem,) = view["elsewhere"].errors
    assert problem.startswith("container elsewhere_blue.1.") and problem.endswith(
        "is not on network app_web"
    ), problem


def test_port_label_is_required() -> None:
    """A Swarm task shows no exposed ports: without bluegreen.port its service gets a label
    error that says the label is required in Swarm mode."""
    doc = captured("settled")
    service = copy.deepcopy(labelled_services(doc["services"], PREFIX)[service_id(doc, "web_blue")])
    del service["Spec"]["Labels"]["bluegreen.port"]
    c = normalize_task(tasks_of(doc, "web_blue")[0], service, PREFIX)
    assert c is not None
    problem = parse(c, LabelDefaults())
    assert isinstance(problem, LabelProblem)
    assert (
        f"container {c.name}: label bluegreen.port is missing; Swarm services must set it "
        "(the manager cannot see which ports a task's image exposes)"
    ) == problem.message


def test_only_labelled_services() -> None:
    """Services without ``<prefix>.service`` are left out; another prefix sees none."""
    doc = captured("settled")
    names = {s["Spec"]["Name"] for s in labelled_services(doc["services"], PREFIX).values()}
    assert {"web_blue", "web_green", "broken_blue", "missing_blue", "elsewhere_blue"} | {
        "zero_blue"
    } == names
    assert {} == normalize_tasks(doc["services"], doc["tasks"], "other")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("bgtest-busybox:latest", "bgtest-busybox:latest"),
        ("nginx:1.27@sha256:" + "ab" * 32, "nginx:1.27"),
        ("registry:5000/app@sha256:" + "cd" * 32, "registry:5000/app"),
        (None, ""),
    ],
)
def test_task_image(raw: object, expected: str) -> None:
    """The digest Swarm pins when it resolves an image is not part of the image's name."""
    assert expected == task_image(raw)


def test_global_task_name_uses_the_node() -> None:
    """A global service's tasks have no slot: Docker names them by node."""
    assert "agent.node1.t1" == task_name("agent", {"ID": "t1", "Slot": 0, "NodeID": "node1"})


def test_attachment_without_a_name_uses_the_network_list() -> None:
    """An attachment that does not carry its network's name is named from GET /networks."""
    doc = captured("settled")
    task = copy.deepcopy(tasks_of(doc, "web_blue")[0])
    attachment = task["NetworksAttachments"][0]
    del attachment["Network"]["Spec"]
    ip = attachment["Addresses"][0].partition("/")[0]
    assert {"app_web": ip} == task_networks(task, doc["networks"])
    assert {} == task_networks(task, {})


def test_attachment_names_its_own_network() -> None:
    """The engine's attachments carry their network's name: no network list is needed;
    an attachment without an address still names its network (no server URL from it)."""
    doc = captured("settled")
    task = copy.deepcopy(tasks_of(doc, "web_blue")[0])
    ip = task["NetworksAttachments"][0]["Addresses"][0].partition("/")[0]
    assert {"app_web": ip} == task_networks(task)
    task["NetworksAttachments"][0]["Addresses"] = []
    assert {"app_web": ""} == task_networks(task)


def test_fields_a_document_may_lack() -> None:
    """Pinned by mutation testing: a service without a name is named by its ID, a task
    without CreatedAt is from the epoch, one without a state says ``unknown``, and a
    HEALTHCHECK of ``NONE`` is no healthcheck."""
    doc = captured("settled")
    task = copy.deepcopy(tasks_of(doc, "web_blue")[0])
    service = copy.deepcopy(labelled_services(doc["services"], PREFIX)[task["ServiceID"]])
    del service["Spec"]["Name"]
    del task["CreatedAt"]
    spec = task["Spec"]["ContainerSpec"]
    spec["Healthcheck"] = {"Test": ["NONE"]}
    c = normalize_task(task, service, PREFIX)
    assert c is not None
    assert (task_name(service["ID"], task), 0.0, Health.NONE) == (c.name, c.created, c.health)
    spec["Healthcheck"] = {"Test": ["CMD", "true"]}
    assert Health.HEALTHY == (normalize_task(task, service, PREFIX) or c).health
    del task["Status"]["State"]
    assert "unknown" == (normalize_task(task, service, PREFIX) or c).state


@pytest.mark.parametrize(
    ("desired", "current", "expected"),
    [
        ("running", "running", ("running", Health.NONE, True)),
        ("running", "starting", ("running", Health.STARTING, False)),
        ("running", "preparing", ("preparing", Health.NONE, False)),
        ("ready", "running", ("running", Health.STARTING, False)),
        ("running", "failed", ("failed", Health.NONE, False)),
        ("shutdown", "running", None),
        ("remove", "shutdown", None),
        ("orphaned", "running", None),
    ],
)
def test_state_table(desired: str, current: str, expected: tuple[str, Health, bool] | None) -> None:
    """Every (desired, current) pair maps so that ``routable`` is exactly both running."""
    doc = captured("settled")
    task = copy.deepcopy(tasks_of(doc, "web_blue")[0])
    task["DesiredState"], task["Status"]["State"] = desired, current
    service = labelled_services(doc["services"], PREFIX)[task["ServiceID"]]
    c = normalize_task(task, service, PREFIX)
    assert expected == (None if c is None else (c.state, c.health, c.routable))


# -- the watcher's pure helpers (no Docker needed) --------------------------------


@pytest.mark.parametrize(
    ("swarm", "expected"),
    [
        ({"LocalNodeState": "active", "ControlAvailable": True}, None),
        ({"LocalNodeState": "active", "ControlAvailable": False}, "is a Swarm worker,"),
        ({"LocalNodeState": "inactive"}, "is not in a Swarm (inactive),"),
        ({"LocalNodeState": "pending"}, "is not in a Swarm (pending),"),
        (None, "is not in a Swarm (inactive),"),
    ],
)
def test_manager_problem(swarm: dict[str, Any] | None, expected: str | None) -> None:
    """Only an active manager serves --swarm; a worker or a node outside a swarm is named."""
    from provider.swarm_watch import manager_problem

    problem = manager_problem({"Swarm": swarm}, "unix:///d.sock")
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert problem.startswith(
            f"--swarm (BLUEGREEN_SWARM): the Docker daemon at unix:///d.sock {expected}"
        )


def test_swarm_event_subscription() -> None:
    """Service and node events (the manager's, for the whole swarm) and local containers'."""
    from provider.swarm_watch import event_filters

    filters = event_filters()
    assert ["service", "node", "container"] == filters["type"]
    assert {"create", "update", "remove", "health_status", "die"} <= set(filters["event"])
