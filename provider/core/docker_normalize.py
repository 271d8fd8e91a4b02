"""Docker's JSON to the core's observations: the watcher's pure normalization step.

Pure: no asyncio, aiohttp or aiodocker. :func:`normalize` turns one
``GET /containers/{id}/json`` answer into a frozen :class:`Container`, so the
rest of the core never sees Docker's dicts; :func:`list_signature` tells the
watcher when a listing entry is worth a re-inspect; :func:`parse_time` reads
Docker's timestamps (the daemon's clock).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from provider.core.model import Container, Health

#: Longest health-check output kept per container.
MAX_HEALTH_OUTPUT = 500
_HEALTH = {h.value: h for h in Health}


def parse_time(raw: object) -> float | None:
    """Docker's RFC 3339 timestamps (nanoseconds, ``Z``) as POSIX seconds; unset is ``None``."""
    if not isinstance(raw, str) or not raw or raw.startswith("0001-01-01"):
        return None
    text = raw.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{main}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _healthy_since(state: Mapping[str, Any], health: Health) -> float | None:
    """When the container last became routable, from Docker's own records.

    For a healthcheck: the end of the first check of the current run of
    passing checks (Docker keeps the last five), never before the start.
    Without a healthcheck: when it started.
    """
    if state.get("Status") != "running":
        return None
    started = parse_time(state.get("StartedAt"))
    if health is Health.NONE:
        return started
    if health is not Health.HEALTHY:
        return None
    streak: float | None = None
    for entry in reversed((state.get("Health") or {}).get("Log") or []):
        if not isinstance(entry, Mapping) or entry.get("ExitCode") != 0:
            break
        streak = parse_time(entry.get("End")) or streak
    if streak is None:
        return None
    return max(streak, started) if started is not None else streak


#: What a probe says when the daemon could not reach containerd: the check never ran.
DAEMON_FAULTS = ("containerd.sock",)
#: What a probe in flight says when the daemon's gRPC connection to containerd closed under
#: it (grpc-go's words): the check's verdict never came back.
CONNECTION_LOST = (
    "grpc: the client connection is closing",
    "transport is closing",
    "error reading from server: EOF",
)


def _daemon_fault(entry: object) -> bool:
    """A failed probe that never reached the container, or whose answer never came back
    (the daemon was going down): Docker records both as exit code -1 with its own error."""
    if not isinstance(entry, Mapping) or entry.get("ExitCode") != -1:
        return False
    output = str(entry.get("Output") or "")
    if any(lost in output for lost in CONNECTION_LOST):
        return True
    return "Error while dialing" in output and any(f in output for f in DAEMON_FAULTS)


def monitor_reset(state: Mapping[str, Any], previous: Container | None) -> bool:
    """Docker says ``starting`` because its health monitor restarted, not the container.

    Since Docker 25 (moby 0e62dba, "reinit health monitor on live-restore") a
    daemon restart resets every live-restored container's health to
    ``starting`` until its next probe, a whole interval later: taken at its
    word, that empties the active color after every daemon upgrade. It is a
    reset, not news, when all of these hold: the container runs; the last
    observation of it was healthy; it has not started since (``StartedAt``
    not after that healthy streak began: same run); and its newest probe
    result, of this run, passed. A truly restarted container has a newer
    ``StartedAt``; a probe that fails after the reset is the newest entry;
    a container first seen now has no previous observation: none of them is
    kept routable. Likewise ``unhealthy`` whose newest probe never ran
    because the daemon could not reach containerd (what Docker 20.10 records
    for a probe in flight while it shuts down, then keeps: it probes no
    live-restored container before 23) is judged on the probes before it.
    """
    health_doc: Mapping[str, Any] = state.get("Health") or {}
    log = health_doc.get("Log") or []
    status = health_doc.get("Status")
    if status == Health.UNHEALTHY.value and log and _daemon_fault(log[-1]):
        # The daemon's own shutdown broke the newest probe (containerd gone): no verdict.
        log = log[:-1]
    elif status != Health.STARTING.value:
        return False
    if state.get("Status") != "running":
        return False
    if previous is None or not previous.routable or previous.health is not Health.HEALTHY:
        return False
    started = parse_time(state.get("StartedAt"))
    since = previous.healthy_since
    if started is None or since is None or started > since:
        return False
    newest = log[-1] if log else None
    if not isinstance(newest, Mapping) or newest.get("ExitCode") != 0:
        return False
    probed = parse_time(newest.get("Start")) or parse_time(newest.get("End"))
    return probed is not None and probed >= started


def normalize(doc: Mapping[str, Any], prefix: str, previous: Container | None = None) -> Container:
    """One ``GET /containers/{id}/json`` answer as a :class:`Container`.

    ``previous`` is the last observation of the same container, if any (the
    watcher passes the controller's): it tells a health-monitor reset from
    news (:func:`monitor_reset`).
    """
    state: Mapping[str, Any] = doc.get("State") or {}
    config: Mapping[str, Any] = doc.get("Config") or {}
    health_doc: Mapping[str, Any] = state.get("Health") or {}
    health = _HEALTH.get(str(health_doc.get("Status") or "none"), Health.STARTING)
    healthy_since = _healthy_since(state, health)
    if monitor_reset(state, previous) and previous is not None:
        health, healthy_since = Health.HEALTHY, previous.healthy_since
    output = ""
    health_log = health_doc.get("Log") or []
    if health_log and isinstance(health_log[-1], Mapping):
        output = str(health_log[-1].get("Output") or "").strip()[-MAX_HEALTH_OUTPUT:]
    labels = {
        str(k): str(v)
        for k, v in (config.get("Labels") or {}).items()
        if str(k).startswith(f"{prefix}.")
    }
    networks: dict[str, str] = {}
    for name, net in ((doc.get("NetworkSettings") or {}).get("Networks") or {}).items():
        net = net or {}
        networks[str(name)] = str(net.get("IPAddress") or net.get("GlobalIPv6Address") or "")
    ports: set[int] = set()
    for spec in config.get("ExposedPorts") or {}:
        number, _, proto = str(spec).partition("/")
        if number.isdigit() and proto in ("", "tcp"):
            ports.add(int(number))
    return Container(
        id=str(doc["Id"]),
        name=str(doc.get("Name") or "").lstrip("/"),
        state=str(state.get("Status") or "unknown"),
        health=health,
        labels=labels,
        created=parse_time(doc.get("Created")) or 0.0,
        networks=networks,
        network_mode=str((doc.get("HostConfig") or {}).get("NetworkMode") or "default"),
        exposed_ports=tuple(sorted(ports)),
        health_output=output,
        healthy_since=healthy_since,
        image=str(config.get("Image") or ""),
        image_id=str(doc.get("Image") or ""),
    )


def list_signature(summary: Mapping[str, Any]) -> tuple[str, str]:
    """What ``GET /containers/json`` says of a container that inspect would refine.

    ``Status`` reads like ``Up 3 seconds (healthy)``: only the state and the
    parenthesised health are kept, so the signature changes exactly when a
    re-inspect is worth it.
    """
    status = str(summary.get("Status") or "")
    health = status[status.rfind("(") :] if status.endswith(")") else ""
    return str(summary.get("State") or ""), health


#: Compose's mark of a ``compose run`` container (``True`` in v1 and v2).
ONE_OFF_LABEL = "com.docker.compose.oneoff"


def one_off(labels: Mapping[str, Any] | None) -> bool:
    """Whether a container is a one-off ``compose run`` (a deploy's release step).

    It carries its color's labels (compose copies them), but it is a task, never a
    backend: the watcher leaves it out, so it is neither served nor promoted.
    """
    return str((labels or {}).get(ONE_OFF_LABEL, "")).lower() == "true"
