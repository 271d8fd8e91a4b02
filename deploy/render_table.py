"""Readable text for ``bluegreen status``, ``history`` and ``switch``.

Pure: JSON documents from the API in, strings out. ``now`` is passed in so
the output of a given document is stable (and testable).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from deploy.snapshot import COLORS


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; no trailing blanks."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def ago(at: float | None, now: float) -> str:
    """``"3m ago"``-style age of a POSIX timestamp."""
    if at is None:
        return "-"
    seconds = max(0, int(now - at))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def when(at: float | None) -> str:
    """Local date and time of a POSIX timestamp."""
    if at is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _switch(record: Mapping[str, Any] | None, now: float) -> str:
    if not record:
        return "never"
    origin = record.get("from") or "(none)"
    return (
        f"{origin} → {record.get('to')} {ago(record.get('at'), now)} "
        f"({record.get('reason')}, {record.get('actor')})"
    )


def _pending(svc: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """``pending_promotion`` / ``pending_rollback`` (or the older nested shape)."""
    item = svc.get(f"pending_{kind}")
    if isinstance(item, dict) and "stage" not in item:
        item = item.get(kind)
    nested = svc.get("pending_promotion")
    if item is None and isinstance(nested, dict) and "stage" not in nested:
        item = nested.get(kind)
    return item if isinstance(item, dict) else None


def _color_summary(color: Mapping[str, Any]) -> str:
    containers = color.get("containers") or []
    if not containers:
        return "-"
    running = sum(1 for c in containers if c.get("state") == "running")
    text = f"{color.get('routable', 0)}/{color.get('replicas', 1)} routable"
    if running < len(containers):
        text += f", {len(containers) - running} stopped"
    return text


def status_all_text(doc: Mapping[str, Any], now: float) -> str:
    """``bluegreen status``: one line per service, then Docker's state."""
    services: Mapping[str, Any] = doc.get("services") or {}
    docker = doc.get("docker") or {}
    rows = []
    for name in sorted(services):
        svc = services[name]
        colors = svc.get("colors") or {}
        notes = []
        if svc.get("errors"):
            notes.append(f"{len(svc['errors'])} error(s)")
        pending = _pending(svc, "promotion")
        if pending:
            notes.append(f"promotion of {pending.get('color')}: {pending.get('stage')}")
        rows.append(
            [
                name,
                str(svc.get("active")),
                _color_summary(colors.get("blue") or {}),
                _color_summary(colors.get("green") or {}),
                _switch(svc.get("last_switch"), now),
                "; ".join(notes) or "-",
            ]
        )
    lines = []
    if rows:
        lines.append(table(["SERVICE", "ACTIVE", "BLUE", "GREEN", "LAST SWITCH", "NOTES"], rows))
    else:
        lines.append("no services: no container carries a bluegreen.service label")
    state = docker.get("status", "unknown")
    extra = f" ({docker['error']})" if docker.get("error") else ""
    synced = "" if doc.get("synced", True) else ", first sync not done"
    lines.append(f"docker: {state}{extra}{synced}")
    for problem in doc.get("unassigned_errors") or []:
        lines.append(f"label problem: {problem}")
    return "\n".join(lines)


def service_text(svc: Mapping[str, Any], now: float) -> str:
    """``bluegreen status SERVICE``: colors, containers, last switch, pending, errors."""
    colors = svc.get("colors") or {}
    active = svc.get("active")
    head = f"{svc.get('service')}: active {active}"
    if svc.get("previous"):
        head += f" (previous {svc['previous']})"
    if not svc.get("adopted", True):
        head += " (not adopted yet: no color has been routable)"
    lines = [head, f"last switch: {_switch(svc.get('last_switch'), now)}"]
    rows = []
    for color in COLORS:
        view = colors.get(color) or {}
        mark = "*" if color == active else " "
        for c in view.get("containers") or []:
            rows.append(
                [
                    f"{mark}{color}",
                    str(c.get("name") or "-"),
                    str(c.get("id") or "-")[:12],
                    str(c.get("state")),
                    str(c.get("health")),
                    "yes" if c.get("routable") else "no",
                    str(c.get("address") or "-"),
                    ago(c.get("created"), now),
                ]
            )
        if not view.get("containers"):
            rows.append([f"{mark}{color}", "(no containers)", "", "", "", "", "", ""])
    headers = ["COLOR", "CONTAINER", "ID", "STATE", "HEALTH", "ROUTABLE", "ADDRESS", "CREATED"]
    lines.append(table(headers, rows))
    for color in COLORS:
        view = colors.get(color) or {}
        readiness = "ready" if view.get("ready") else "not ready"
        lines.append(
            f"{color}: {view.get('routable', 0)} of {view.get('replicas', 1)} required "
            f"routable, {readiness}"
        )
    for kind in ("promotion", "rollback"):
        item = _pending(svc, kind)
        if item:
            why = item.get("waiting_for") or item.get("detail") or item.get("stage")
            lines.append(f"pending {kind} to {item.get('color')}: {why}")
    for color in COLORS:
        for c in (colors.get(color) or {}).get("containers") or []:
            output = str(c.get("health_output") or "").strip()
            if c.get("health") == "unhealthy" and output:
                lines.append(f"{c.get('name')}: last healthcheck: {output.splitlines()[-1]}")
    for error in svc.get("errors") or []:
        lines.append(f"error: {error}")
    if svc.get("serving_last_good_config"):
        lines.append("serving the last good config until the labels are fixed")
    if not svc.get("docker_connected", True):
        lines.append("docker: disconnected (serving the last known containers)")
    return "\n".join(lines)


def history_text(records: Sequence[Mapping[str, Any]]) -> str:
    """``bluegreen history``: one row per switch, oldest first."""
    if not records:
        return "no switches recorded"
    rows = [
        [
            str(r.get("seq")),
            when(r.get("at")),
            str(r.get("service")),
            str(r.get("from") or "-"),
            str(r.get("to")),
            str(r.get("reason")),
            str(r.get("actor")),
        ]
        for r in records
    ]
    return table(["SEQ", "AT", "SERVICE", "FROM", "TO", "REASON", "ACTOR"], rows)


def switch_text(doc: Mapping[str, Any]) -> str:
    """``bluegreen switch`` / the API's switch answer, in one line."""
    service = doc.get("service")
    if not doc.get("changed"):
        return f"{service}: already {doc.get('active')}, nothing changed"
    record = doc.get("switch") or {}
    return (
        f"{service}: {record.get('from') or doc.get('previous')} → {doc.get('active')} "
        f"(switch #{record.get('seq')}, reason {record.get('reason')})"
    )


def canary_text(service: str, canary: Any) -> str:
    """One line about a service's canary (``bluegreen status``, ``canary-abort``/``-promote``)."""
    if not isinstance(canary, dict):
        return f"{service}: no canary"
    phase = canary.get("phase")
    color, base = canary.get("color"), canary.get("base")
    if phase == "running":
        weight = int(canary.get("weight", 0))
        steps = canary.get("steps") or []
        return (
            f"canary {service}: {base} {100 - weight} % / {color} {weight} % "
            f"(step {int(canary.get('step', 0)) + 1} of {max(len(steps) - 1, 1)}, "
            f"analysis {canary.get('analysis')})"
        )
    if phase == "waiting":
        return f"canary {service}: waiting for {color} to be ready (weight 0 %)"
    return f"canary {service}: {phase} ({canary.get('reason')})"


def canary_lines(doc: Any) -> list[str]:
    """The weights of running canaries in a ``/status`` or ``/status/<service>`` document."""
    if not isinstance(doc, dict):
        return []
    services = doc.get("services")
    docs = services if isinstance(services, dict) else {str(doc.get("service")): doc}
    lines = []
    for name, svc in sorted(docs.items()):
        canary = svc.get("canary") if isinstance(svc, dict) else None
        if isinstance(canary, dict) and canary.get("phase") in ("running", "waiting"):
            lines.append(canary_text(name, canary))
    return lines
