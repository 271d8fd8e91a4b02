"""A bake's JSON: the state file's ``bakes`` and ``/status``'s ``bake``.

Pure, beside :mod:`provider.core.state_json` (which stores the file's
``bakes`` through it). A file written before bakes existed has no ``bakes``
key and loads unchanged.
"""

from __future__ import annotations

from typing import Any

from provider.core.canary_analysis import Window
from provider.core.model import Bake, BakePhase, Color, Limits
from provider.core.wire import BakeDoc, FiguresDoc


def _figures(window: Window) -> FiguresDoc:
    return {
        "requests": window.requests,
        "errors": window.errors,
        "error_rate": round(window.error_rate, 6),
        "p99_ms": None if window.p99_ms is None else round(window.p99_ms, 3),
    }


def bake_doc(bake: Bake, *, next_decision_at: float | None = None) -> BakeDoc:
    """The bake as the file stores it (no decision time) and ``/status`` shows it."""
    return {
        "color": str(bake.color),
        "old": str(bake.old),
        "phase": str(bake.phase),
        "duration": bake.duration,
        "interval": bake.interval,
        "max_error_rate": bake.limits.max_error_rate,
        "max_p99_ms": bake.limits.max_p99_ms,
        "min_requests": bake.limits.min_requests,
        "started": bake.started,
        "ends": bake.ends,
        "switch_seq": bake.switch_seq,
        "judged": bake.judged,
        "figures": None if bake.window is None else _figures(bake.window),
        "ended": bake.ended,
        "reason": bake.reason,
        "actor": bake.actor,
        "next_decision_at": next_decision_at if bake.running else None,
    }


def bakes_doc(bakes: dict[str, Bake]) -> dict[str, BakeDoc]:
    return {name: bake_doc(b) for name, b in sorted(bakes.items())}


def _optional_float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


def limits_from_doc(raw: Any) -> Limits:
    """The analysis limits a canary's or a bake's JSON keeps beside its other fields."""
    return Limits(
        float(raw["max_error_rate"]),
        _optional_float(raw.get("max_p99_ms")),
        int(raw["min_requests"]),
    )


def bake_from_doc(service: str, raw: Any) -> Bake:
    """Parse a stored bake; raises ``TypeError``/``ValueError``/``KeyError`` on a bad one."""
    if not isinstance(raw, dict):
        raise TypeError("bake is not an object")
    figures = raw.get("figures")
    window = None
    if figures is not None:
        p99 = figures.get("p99_ms")
        window = Window(int(figures["requests"]), int(figures["errors"]), _optional_float(p99))
    return Bake(
        service=service,
        color=Color(raw["color"]),
        old=Color(raw["old"]),
        duration=float(raw["duration"]),
        interval=float(raw["interval"]),
        limits=limits_from_doc(raw),
        started=float(raw["started"]),
        switch_seq=int(raw["switch_seq"]),
        phase=BakePhase(raw["phase"]),
        ended=_optional_float(raw.get("ended")),
        reason=None if raw.get("reason") is None else str(raw["reason"]),
        window=window,
        judged=int(raw.get("judged", 0)),
        actor=str(raw.get("actor", "api")),
    )


def bakes_from_doc(raw: Any) -> dict[str, Bake]:
    """Files written before bakes existed have none."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TypeError("bakes is not an object")
    return {str(name): bake_from_doc(str(name), b) for name, b in raw.items()}
