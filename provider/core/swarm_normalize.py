"""Swarm's JSON to the core's observations: one :class:`Container` per task.

Pure: no asyncio, aiohttp or aiodocker. The Swarm watcher lists services
(``GET /services``), tasks (``GET /tasks``) and networks (``GET /networks``);
:func:`normalize_tasks` turns them into the same frozen :class:`Container`
observations the single-host watcher makes of containers, so labels, routing,
promotion and render do not know Swarm exists.

What the real engine (20.10) does, and how it maps:

- ``bluegreen.*`` are *service* labels (``deploy.labels`` in a stack file, as
  Traefik's Swarm provider reads them); a task carries its service's.
- Swarm holds a task in ``starting`` until its HEALTHCHECK passes, then moves it
  to ``running``; an unhealthy task is shut down and replaced by a new one. So a
  task is routable exactly when its desired and current state are both
  ``running`` (state ``running``, health ``healthy`` if its spec has a
  healthcheck, else ``none``); a ``starting`` task is state ``running`` with
  health ``starting`` (its container runs, its checks have not passed yet);
  any other current state (``preparing``, ``failed``, ``rejected``...) is the
  state as Swarm says it, never routable.
- A task whose desired state is past ``running`` (``shutdown``, ``remove``...)
  is going or gone (scaled down, replaced, failed): it is not an observation. A
  task Swarm still means to run (desired ``ready`` or ``running``) is one, even
  when it failed or was rejected, so ``/status`` shows why a color has no servers.
- Addresses come from the task's ``NetworksAttachments``: network name to IP
  (without the ``/prefix``). ``docker stack deploy`` prefixes a stack's
  networks with the stack's name, so ``bluegreen.network`` takes the full name
  (``app_web``).
- A task does not show the ports its image exposes (the image may not even be on
  the manager), so ``bluegreen.port`` is required (``labels.py`` says so).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from provider.core.docker_normalize import parse_time
from provider.core.model import SWARM_TASK, Container, Health

#: Swarm's task states, in its order (swarmkit ``api.TaskState``).
TASK_STATES = (
    "new", "allocated", "pending", "assigned", "accepted", "preparing", "ready",
    "starting", "running", "complete", "shutdown", "failed", "rejected", "remove",
    "orphaned",
)  # fmt: skip
_PAST_RUNNING = frozenset(TASK_STATES[TASK_STATES.index("running") + 1 :])
#: Longest task error kept per observation.
MAX_ERROR = 500


def labelled_services(
    services: Iterable[Mapping[str, Any]], prefix: str
) -> dict[str, Mapping[str, Any]]:
    """The services carrying ``<prefix>.service``, by ID."""
    return {
        str(s["ID"]): s
        for s in services
        if "ID" in s and f"{prefix}.service" in ((s.get("Spec") or {}).get("Labels") or {})
    }


def task_image(raw: object) -> str:
    """``ContainerSpec.Image`` without the ``@sha256:...`` digest Swarm pins on create."""
    return str(raw or "").partition("@")[0]


def task_name(service_name: str, task: Mapping[str, Any]) -> str:
    """Docker's name for a task's container, ``<service>.<slot or node id>.<task id>``."""
    slot = task.get("Slot") or 0
    where = str(slot) if slot else str(task.get("NodeID") or "")
    return f"{service_name}.{where}.{task['ID']}"


def _has_healthcheck(task: Mapping[str, Any]) -> bool:
    spec = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Healthcheck") or {}
    test = spec.get("Test") or []
    return bool(test) and test[0] != "NONE"


def task_networks(
    task: Mapping[str, Any], network_names: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``{network name: IP}`` of a task's attachments; the name from the attachment,
    else from ``network_names`` (network ID to name, from ``GET /networks``)."""
    networks: dict[str, str] = {}
    for attachment in task.get("NetworksAttachments") or []:
        network: Mapping[str, Any] = attachment.get("Network") or {}
        name = (network.get("Spec") or {}).get("Name") or (network_names or {}).get(
            str(network.get("ID") or "")
        )
        if not name:
            continue
        addresses = attachment.get("Addresses") or []
        networks[str(name)] = str(addresses[0]).partition("/")[0] if addresses else ""
    return networks


def normalize_task(
    task: Mapping[str, Any],
    service: Mapping[str, Any],
    prefix: str,
    network_names: Mapping[str, str] | None = None,
) -> Container | None:
    """One task of a labelled service as a :class:`Container`; ``None`` if it is going."""
    desired = str(task.get("DesiredState") or "")
    if desired in _PAST_RUNNING:
        return None
    status: Mapping[str, Any] = task.get("Status") or {}
    current = str(status.get("State") or "unknown")
    healthy_since: float | None = None
    if current == "running" and desired == "running":
        health = Health.HEALTHY if _has_healthcheck(task) else Health.NONE
        state = "running"
        healthy_since = parse_time(status.get("Timestamp"))
    elif current in ("starting", "running"):
        state, health = "running", Health.STARTING
    else:
        state, health = current, Health.NONE
    spec: Mapping[str, Any] = service.get("Spec") or {}
    labels = {
        str(k): str(v)
        for k, v in (spec.get("Labels") or {}).items()
        if str(k).startswith(f"{prefix}.")
    }
    container_spec: Mapping[str, Any] = (task.get("Spec") or {}).get("ContainerSpec") or {}
    return Container(
        id=str(task["ID"]),
        name=task_name(str(spec.get("Name") or service.get("ID") or ""), task),
        state=state,
        health=health,
        labels=labels,
        created=parse_time(task.get("CreatedAt")) or 0.0,
        networks=task_networks(task, network_names),
        network_mode=SWARM_TASK,
        health_output=str(status.get("Err") or "").strip()[-MAX_ERROR:],
        healthy_since=healthy_since,
        image=task_image(container_spec.get("Image")),
    )


def normalize_tasks(
    services: Iterable[Mapping[str, Any]],
    tasks: Iterable[Mapping[str, Any]],
    prefix: str,
    network_names: Mapping[str, str] | None = None,
) -> dict[str, Container]:
    """Every observation of the labelled services' tasks, by task ID.

    ``services`` may hold unlabelled services (they are left out), ``tasks``
    those of any service; ``network_names`` (network ID to name) names an
    attachment that does not carry its network's name.
    """
    labelled = labelled_services(services, prefix)
    found: dict[str, Container] = {}
    for task in tasks:
        service = labelled.get(str(task.get("ServiceID") or ""))
        if service is None or "ID" not in task:
            continue
        container = normalize_task(task, service, prefix, network_names)
        if container is not None:
            found[container.id] = container
    return found
