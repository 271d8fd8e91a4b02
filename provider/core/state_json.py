"""The state's JSON codec, in one place: the state file, the Swarm store's configs,
and the parts of it ``/status`` and the command answers show.

Pure. ``provider/store.py`` (the file) and ``provider/swarm_state.py`` (Raft) only
move the bytes this module makes and reads. The documents are the types of
:mod:`provider.core.wire`; the file's own ones (the top level, one service's
persisted state) are here. The bytes are a compatibility promise: a file written
by an older provider loads unchanged and is written back byte for byte
(``tests/core/test_state_json.py`` holds golden files), and a file without the
keys added later (``marks``, ``anchor``, ``canaries``, ``maintenance``, ``bakes``) still
loads. (No
``from __future__ import annotations``: :class:`StateDoc`'s ``NotRequired`` is
read at runtime.)
"""

import json
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from provider.core.bake_json import bakes_doc, bakes_from_doc, limits_from_doc
from provider.core.canary_analysis import Window
from provider.core.model import (
    Canary,
    Color,
    ColorMark,
    Maintenance,
    MarkKind,
    Phase,
    ServiceState,
    State,
    StepResult,
    SwitchRecord,
    Verdict,
)
from provider.core.wire import (
    BakeDoc,
    CanaryStepDoc,
    ColorMarkDoc,
    FiguresDoc,
    MaintenanceDoc,
    MarksDoc,
    StoredCanaryDoc,
    SwitchRecordDoc,
)

FORMAT_VERSION = 1


class ServiceStateDoc(TypedDict):
    """What the file keeps of one service."""

    active: str
    previous: str | None
    first_seen: float
    last_switch: SwitchRecordDoc | None
    anchor: float | None
    marks: MarksDoc


class StateDoc(TypedDict):
    """The whole file. A state without canaries (or maintenance) has no ``canaries``
    (``maintenance``) key: the old shape, byte for byte."""

    version: int
    seq: int
    services: dict[str, ServiceStateDoc]
    history: list[SwitchRecordDoc]
    canaries: NotRequired[dict[str, StoredCanaryDoc]]
    maintenance: NotRequired[dict[str, MaintenanceDoc]]
    bakes: NotRequired[dict[str, BakeDoc]]


class StateShapeError(ValueError):
    """A document that is no state; the store names the file and stops the server."""


# -- the values, out -------------------------------------------------------------------


def record_doc(record: SwitchRecord) -> SwitchRecordDoc:
    """One switch, as the file, ``/history``, ``last_switch`` and ``/switch`` show it."""
    out: SwitchRecordDoc = {
        "service": record.service,
        "from": record.from_color.value if record.from_color else None,
        "to": record.to_color.value,
        "reason": record.reason,
        "actor": record.actor,
        "at": record.at,
        "seq": record.seq,
    }
    if record.detail is not None:
        out["detail"] = dict(record.detail)
    if record.images:
        out["images"] = dict(record.images)
    return out


def marks_doc(marks: Mapping[Color, ColorMark]) -> MarksDoc:
    """A service's color marks, sorted by color (the file, ``/status``, ``/retire``)."""
    return {
        color.value: ColorMarkDoc(kind=mark.kind.value, since=mark.since, reason=mark.reason)
        for color, mark in sorted(marks.items())
    }


def figures_doc(window: Window) -> FiguresDoc:
    """A canary step's measured window (a result's ``figures``, a record's ``detail``)."""
    return {
        "requests": window.requests,
        "errors": window.errors,
        "error_rate": round(window.error_rate, 6),
        "p99_ms": None if window.p99_ms is None else round(window.p99_ms, 3),
    }


def step_doc(result: StepResult) -> CanaryStepDoc:
    """One judged canary step."""
    return {
        "step": result.step,
        "weight": result.weight,
        "verdict": str(result.verdict),
        "detail": result.detail,
        "at": result.at,
        "figures": figures_doc(result.window) if result.window is not None else None,
        "extensions": result.extensions,
    }


def canary_doc(canary: Canary, *, next_decision_at: float | None = None) -> StoredCanaryDoc:
    """The canary as the file stores it (no decision time), and ``/status`` shows it
    (with its ``analysis``: :class:`provider.core.wire.CanaryDoc`)."""
    return {
        "color": str(canary.color),
        "base": str(canary.base),
        "phase": str(canary.phase),
        "steps": list(canary.steps),
        "step": canary.step,
        "weight": canary.weight,
        "interval": canary.interval,
        "max_error_rate": canary.limits.max_error_rate,
        "max_p99_ms": canary.limits.max_p99_ms,
        "min_requests": canary.limits.min_requests,
        "started": canary.started,
        "step_started": canary.step_started,
        "extensions": canary.extensions,
        "next_decision_at": next_decision_at,
        "results": [step_doc(r) for r in canary.results],
        "warnings": list(canary.warnings),
        "ended": canary.ended,
        "reason": canary.reason,
        "created_after": canary.created_after,
    }


def maintenance_doc(window: Maintenance) -> MaintenanceDoc:
    """A service in maintenance, as the file, ``/status`` and ``POST /maintenance`` show it."""
    return {
        "message": window.message,
        "retry_after": window.retry_after,
        "since": window.since,
        "actor": window.actor,
        "reason": window.reason,
    }


def to_doc(state: State) -> StateDoc:
    """The file's JSON document for ``state``."""
    doc: StateDoc = {
        "version": FORMAT_VERSION,
        "seq": state.seq,
        "services": {
            name: {
                "active": svc.active.value,
                "previous": svc.previous.value if svc.previous else None,
                "first_seen": svc.first_seen,
                "last_switch": record_doc(svc.last_switch) if svc.last_switch else None,
                "anchor": svc.anchor,
                "marks": marks_doc(svc.marks),
            }
            for name, svc in sorted(state.services.items())
        },
        "history": [record_doc(r) for r in state.history],
    }
    if state.canaries:
        doc["canaries"] = {n: canary_doc(c) for n, c in sorted(state.canaries.items())}
    if state.maintenance:
        doc["maintenance"] = {n: maintenance_doc(m) for n, m in sorted(state.maintenance.items())}
    if state.bakes:
        doc["bakes"] = bakes_doc(dict(state.bakes))
    return doc


def encode(state: State) -> bytes:
    """The state file's bytes: sorted keys, one space of indent (readable, diffable)."""
    return json.dumps(to_doc(state), sort_keys=True, indent=1).encode()


def encode_compact(state: State) -> bytes:
    """The same document without whitespace: a Swarm config's data (size-limited)."""
    return json.dumps(to_doc(state), sort_keys=True, separators=(",", ":")).encode()


# -- the values, back in (from untrusted JSON: every shape error is a StateShapeError) --


def _record(raw: Any) -> SwitchRecord:
    if not isinstance(raw, dict):
        raise TypeError("switch record is not an object")
    from_raw = raw["from"]
    return SwitchRecord(
        service=str(raw["service"]),
        from_color=Color(from_raw) if from_raw is not None else None,
        to_color=Color(raw["to"]),
        reason=str(raw["reason"]),
        actor=str(raw["actor"]),
        at=float(raw["at"]),
        seq=int(raw["seq"]),
        detail=dict(raw["detail"]) if raw.get("detail") is not None else None,
        images={str(k): str(v) for k, v in raw["images"].items()}
        if isinstance(raw.get("images"), dict)
        else None,
    )


def _marks(raw: Any) -> dict[Color, ColorMark]:
    """Files written before marks existed have none: an absent key is no mark."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError("marks is not an object")
    return {
        Color(color): ColorMark(MarkKind(m["kind"]), float(m["since"]), str(m["reason"]))
        for color, m in raw.items()
    }


def _window(raw: Any) -> Window | None:
    if raw is None:
        return None
    p99 = raw.get("p99_ms")
    return Window(int(raw["requests"]), int(raw["errors"]), None if p99 is None else float(p99))


def _step(raw: Any) -> StepResult:
    return StepResult(
        step=int(raw["step"]),
        weight=int(raw["weight"]),
        verdict=Verdict(raw["verdict"]),
        detail=str(raw["detail"]),
        at=float(raw["at"]),
        window=_window(raw.get("figures")),
        extensions=int(raw.get("extensions", 0)),
    )


def _optional_float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


def canary_from_doc(service: str, raw: Any) -> Canary:
    """Parse a stored canary; raises ``TypeError``/``ValueError``/``KeyError`` on a bad one."""
    if not isinstance(raw, dict):
        raise TypeError("canary is not an object")
    steps = tuple(int(s) for s in raw["steps"])
    step = int(raw["step"])
    if not steps or not 0 <= step < len(steps):
        raise ValueError("canary step out of range")
    return Canary(
        service=service,
        color=Color(raw["color"]),
        base=Color(raw["base"]),
        steps=steps,
        interval=float(raw["interval"]),
        limits=limits_from_doc(raw),
        started=float(raw["started"]),
        step_started=float(raw["step_started"]),
        phase=Phase(raw["phase"]),
        step=step,
        extensions=int(raw.get("extensions", 0)),
        results=tuple(_step(r) for r in raw.get("results", [])),
        warnings=tuple(str(w) for w in raw.get("warnings", [])),
        ended=_optional_float(raw.get("ended")),
        reason=None if raw.get("reason") is None else str(raw["reason"]),
        created_after=_optional_float(raw.get("created_after")),
    )


def _canaries(raw: Any) -> dict[str, Canary]:
    """Files written before canaries existed have none."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError("canaries is not an object")
    return {str(name): canary_from_doc(str(name), c) for name, c in raw.items()}


def _maintenance(raw: Any) -> dict[str, Maintenance]:
    """Files written before maintenance existed have none."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError("maintenance is not an object")
    return {
        str(name): Maintenance(
            message=str(m["message"]),
            retry_after=int(m["retry_after"]),
            since=float(m["since"]),
            actor=str(m["actor"]),
            reason=str(m.get("reason", "")),
        )
        for name, m in raw.items()
    }


def _service(raw: Any) -> ServiceState:
    last = raw.get("last_switch")
    return ServiceState(
        active=Color(raw["active"]),
        previous=Color(raw["previous"]) if raw.get("previous") else None,
        last_switch=_record(last) if last else None,
        first_seen=float(raw.get("first_seen", 0.0)),
        anchor=_optional_float(raw.get("anchor")),
        marks=_marks(raw.get("marks")),
    )


def from_doc(doc: Any) -> State:
    """Parse a state document; raises :class:`StateShapeError` on anything unexpected."""
    try:
        if not isinstance(doc, dict):
            raise TypeError("top level is not an object")
        if doc.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported version {doc.get('version')!r}")
        services = {str(name): _service(raw) for name, raw in doc["services"].items()}
        history = tuple(_record(r) for r in doc["history"])
        canaries = _canaries(doc.get("canaries"))
        windows = _maintenance(doc.get("maintenance"))
        return State(
            services=services,
            history=history,
            seq=int(doc["seq"]),
            canaries=canaries,
            maintenance=windows,
            bakes=bakes_from_doc(doc.get("bakes")),
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        # OverflowError: JSON allows 1e999, which parses as inf and has no int.
        raise StateShapeError(f"state file has an unexpected shape: {exc}") from exc
