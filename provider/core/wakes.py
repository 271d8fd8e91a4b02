"""When a background loop looks again: the automatic switcher's and the canary driver's.

Pure. Both loops evaluate under the controller's lock, on every change and at
the wake time their evaluation asks for. A wake time that has passed is a
promise nothing keeps: whatever was due then is due now, and if it was not
acted on (a running canary holds the promotion, Docker is disconnected), it
will not be acted on by evaluating again at once. Re-arming it spins a core
(issue 19, defect 1); these functions make sure no loop does.
"""

from __future__ import annotations

from collections.abc import Iterable


def next_wake(wakes: Iterable[float | None], now: float) -> float | None:
    """The earliest of ``wakes`` still ahead of ``now``; ``None``: wait for a change."""
    ahead = [w for w in wakes if w is not None and w > now]
    return min(ahead) if ahead else None


def wake_timeout(wake_at: float | None, began: float, now: float) -> float | None:
    """How long a loop waits for a change before it evaluates again; ``None``: no limit.

    ``began``: the clock when the evaluation that asked for ``wake_at`` began.
    A wake at or before it had passed already, so it is never re-armed.
    """
    if wake_at is None or wake_at <= began:
        return None
    return max(0.0, wake_at - now)
