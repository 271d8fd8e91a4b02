"""The numbers ``bluegreen serve`` takes: seconds, periods and counts, each bounded.

A loop whose period is 0 spins (``--swarm-poll 0`` listed tasks as fast as
the daemon answered); a timeout of 0 is no timeout at all in aiohttp; a count
of 10^20 does not fit a buffer. Each parser refuses what the setting cannot
mean, NaN and infinity included, and says what it takes (never Python's
"invalid literal for int()").
"""

from __future__ import annotations

import math

#: The longest duration a setting takes: a day.
MAX_SECONDS = 86400
#: The shortest period of a loop or a timeout: a loop waking more often is a busy loop.
MIN_PERIOD_S = 0.01
#: The largest count a setting takes (a buffer, a queue, a body size): beyond it is a typo.
MAX_COUNT = 1_000_000_000


def parse_seconds(raw: str) -> float:
    """``5``, ``2.5``, ``5s`` or ``200ms``, between 0 and a day (settings and the CLI's flags).

    ``nan`` and ``inf`` are refused too (no comparison holds for NaN).  ``ms``
    so that Traefik's own durations (``providersThrottleDuration=100ms``) copy over.
    """
    text = raw.strip()
    try:
        if text.endswith("ms"):
            value = float(text.removesuffix("ms")) / 1000
        else:
            value = float(text.removesuffix("s"))
    except ValueError:
        value = math.nan
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"expected seconds between 0 and {MAX_SECONDS}")
    return value


def period(raw: str) -> float:
    """Seconds of a loop's period or a timeout: 0 would spin (or never time out)."""
    try:
        value = parse_seconds(raw)
    except ValueError:
        value = math.nan
    if not MIN_PERIOD_S <= value <= MAX_SECONDS:
        raise ValueError(
            f"expected seconds between {MIN_PERIOD_S} and {MAX_SECONDS} (0 is not allowed)"
        )
    return value


def positive_int(raw: str) -> int:
    """A count from 1 to :data:`MAX_COUNT`."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_COUNT:
        raise ValueError(f"expected a whole number above 0, at most {MAX_COUNT}")
    return value


def count(raw: str) -> int:
    """A small count from 0 to 100 (canary extensions)."""
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 100:
        raise ValueError("expected a whole number between 0 and 100")
    return value
