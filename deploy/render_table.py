"""Readable text for ``bluegreen status``, ``history`` and ``switch``.

Pure: the snapshots of ``deploy/snapshot.py`` (``/status``) and the API's
history and switch answers in, strings out. ``now`` is passed in so
the output of a given document is stable (and testable).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from deploy.snapshot import ColorSnapshot, ServiceSnapshot, StatusSnapshot, SwitchSnapshot
from provider.core import words
from provider.core.model import Color


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


def _switch(record: SwitchSnapshot | None, now: float) -> str:
    if record is None:
        return "never"
    origin = record.from_color or "(none)"
    return f"{origin} → {record.to_color} {ago(record.at, now)} ({record.reason}, {record.actor})"


def _color_summary(color: ColorSnapshot) -> str:
    if not color.containers:
        return "-"
    running = sum(1 for c in color.containers if c.state == "running")
    text = f"{color.routable}/{color.replicas} routable"
    if running < len(color.containers):
        text += f", {len(color.containers) - running} stopped"
    if color.image:
        text += f" ({color.image})"
    return text


def status_all_text(status: StatusSnapshot, now: float) -> str:
    """``bluegreen status``: one line per service, then Docker's state."""
    rows = []
    for name in sorted(status.services):
        svc = status.services[name]
        notes = []
        if svc.errors:
            notes.append(f"{len(svc.errors)} error(s)")
        if svc.pending:
            notes.append(f"promotion of {svc.pending.color}: {words.stage_text(svc.pending.stage)}")
        for marked, kind in sorted(svc.marks.items()):
            notes.append(f"{marked} {words.mark_word(kind)}")
        rows.append(
            [
                name,
                str(svc.active),
                _color_summary(svc.color(Color.BLUE)),
                _color_summary(svc.color(Color.GREEN)),
                _switch(svc.last_switch, now),
                "; ".join(notes) or "-",
            ]
        )
    lines = []
    if rows:
        lines.append(table(["SERVICE", "ACTIVE", "BLUE", "GREEN", "LAST SWITCH", "NOTES"], rows))
    else:
        lines.append("no services: no container carries a bluegreen.service label")
    extra = f" ({status.docker_error})" if status.docker_error else ""
    synced = "" if status.synced else ", first sync not done"
    lines.append(f"docker: {status.docker_status}{extra}{synced}")
    for problem in status.unassigned_errors:
        lines.append(f"label problem: {problem}")
    return "\n".join(lines)


def image_text(image: str, image_id: str) -> str:
    """``busybox:1.37 (3f57d9401f8d)``: the name as deployed and which build it was."""
    if not image:
        return "-"
    return f"{image} ({image_id})" if image_id else image


def service_text(svc: ServiceSnapshot, now: float) -> str:
    """``bluegreen status SERVICE``: colors, containers, last switch, pending, errors."""
    head = f"{svc.service}: active {svc.active}"
    if svc.previous:
        head += f" (previous {svc.previous})"
    if not svc.adopted:
        head += " (not adopted yet: no color has been routable)"
    lines = [head, f"last switch: {_switch(svc.last_switch, now)}"]
    rows = []
    for color in Color:
        view = svc.color(color)
        mark = "*" if color == svc.active else " "
        for c in view.containers:
            rows.append(
                [
                    f"{mark}{color}",
                    c.name or "-",
                    c.id[:12] or "-",
                    c.state,
                    c.health,
                    "yes" if c.routable else "no",
                    c.address or "-",
                    ago(c.created, now),
                    image_text(c.image, c.image_id),
                ]
            )
        if not view.containers:
            rows.append([f"{mark}{color}", "(no containers)", "", "", "", "", "", "", ""])
    headers = [
        "COLOR", "CONTAINER", "ID", "STATE", "HEALTH", "ROUTABLE", "ADDRESS", "CREATED", "IMAGE",
    ]  # fmt: skip
    lines.append(table(headers, rows))
    for color in Color:
        view = svc.color(color)
        readiness = "ready" if view.ready else "not ready"
        lines.append(f"{color}: {view.routable} of {view.replicas} required routable, {readiness}")
    for kind, item in (("promotion", svc.pending), ("rollback", svc.pending_rollback)):
        if item:
            stage = words.stage_text(item.stage)
            lines.append(f"pending {kind} to {item.color} ({stage}): {item.why}")
    for marked, mark_kind in sorted(svc.marks.items()):
        lines.append(words.mark_text(marked, mark_kind))
    for color in Color:
        for c in svc.color(color).containers:
            output = c.health_output.strip()
            if c.health == "unhealthy" and output:
                lines.append(f"{c.name}: last healthcheck: {output.splitlines()[-1]}")
    for error in svc.errors:
        lines.append(f"error: {error}")
    if svc.serving_last_good_config:
        lines.append("serving the last good config until the labels are fixed")
    if not svc.docker_connected:
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
            _moved_color(r.get("from"), r, "from"),
            _moved_color(r.get("to"), r, "to"),
            str(r.get("reason")),
            str(r.get("actor")),
        ]
        for r in records
    ]
    return table(["SEQ", "AT", "SERVICE", "FROM", "TO", "REASON", "ACTOR"], rows)


def _moved_color(color: object, record: Mapping[str, Any], end: str) -> str:
    """``green (busybox:1.37)``: a switch's color and the image it ran then, where recorded."""
    images = record.get("images") if isinstance(record.get("images"), Mapping) else {}
    image = images.get(end) if images else None
    text = str(color or "-")
    return f"{text} ({image})" if color and image else text


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
