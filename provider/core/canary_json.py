"""The fields of ``POST /canary``, parsed into a canary's values.

Pure, like :mod:`provider.core.canary`, whose values it builds. A canary's
document (``/status``, the state file) is :mod:`provider.core.state_json`'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from provider.core.canary import (
    DEFAULT_STEPS,
    MAX_INTERVAL,
    MAX_STEPS,
    Limits,
)
from provider.core.refusals import BadCommand

# -- the fields of POST /canary -------------------------------------------------


def parse_interval(raw: object) -> float:
    """``"60s"``, ``"2m"``, ``"500ms"`` or a number of seconds."""
    if isinstance(raw, bool):
        raise BadCommand("field 'interval' must be seconds or a duration like '60s'")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*", raw)
        if match is None:
            raise BadCommand("field 'interval' must look like '60s', '2m', '500ms' or 90")
        unit = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
        value = float(match.group(1)) * unit
    else:
        raise BadCommand("field 'interval' must be seconds or a duration like '60s'")
    if not 0.1 <= value <= MAX_INTERVAL:
        raise BadCommand("field 'interval' must be between 0.1 s and 24 h")
    return value


def parse_steps(raw: object) -> tuple[int, ...]:
    """Strictly increasing whole percentages in 1..100 that end at 100."""
    if raw is None:
        return DEFAULT_STEPS
    if isinstance(raw, str):
        raw = [s.strip() for s in raw.split(",") if s.strip()]
    if not isinstance(raw, Sequence) or not raw or len(raw) > MAX_STEPS:
        raise BadCommand(f"field 'steps' must list 1 to {MAX_STEPS} percentages, e.g. [5, 50, 100]")
    steps: list[int] = []
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise BadCommand("field 'steps' must hold whole percentages")
        try:
            value = int(item)
        except ValueError as exc:
            raise BadCommand("field 'steps' must hold whole percentages") from exc
        if not 1 <= value <= 100 or (steps and value <= steps[-1]):
            raise BadCommand("field 'steps' must increase strictly within 1..100")
        steps.append(value)
    if steps[-1] != 100:
        steps.append(100)
    return tuple(steps)


def parse_limits(max_error_rate: object, max_p99_ms: object, min_requests: object) -> Limits:
    """The limits of ``POST /canary``; ``None`` fields take the defaults."""
    limits = Limits()
    if max_error_rate is not None:
        if isinstance(max_error_rate, bool) or not isinstance(max_error_rate, int | float):
            raise BadCommand("field 'max_error_rate' must be a number in 0..1")
        if not 0.0 <= float(max_error_rate) <= 1.0:
            raise BadCommand("field 'max_error_rate' must be a number in 0..1")
        limits = replace(limits, max_error_rate=float(max_error_rate))
    if max_p99_ms is not None:
        if isinstance(max_p99_ms, bool) or not isinstance(max_p99_ms, int | float):
            raise BadCommand("field 'max_p99_ms' must be a positive number or null")
        if not 0.0 < float(max_p99_ms) <= 3_600_000.0:
            raise BadCommand("field 'max_p99_ms' must be a positive number or null")
        limits = replace(limits, max_p99_ms=float(max_p99_ms))
    if min_requests is not None:
        if isinstance(min_requests, bool) or not isinstance(min_requests, int):
            raise BadCommand("field 'min_requests' must be a whole number >= 0")
        if not 0 <= min_requests <= 10_000_000:
            raise BadCommand("field 'min_requests' must be a whole number >= 0")
        limits = replace(limits, min_requests=min_requests)
    return limits
