"""When the drain of the old color ends: the pure decision, table-tested.

A deploy used to sleep a fixed ``--drain`` before stopping the old color. Now it
looks: it samples how many connections are open to the old color's containers
(``deploy/tcp_table.py``) and stops it once they have read zero for ``settle``
seconds (the old color is idle: no request in flight, no WebSocket or stream
open), or when ``timeout`` has passed, whichever comes first. A drain that cannot
see the connections (no PID to read, another host, Swarm) waits the whole timeout:
not seeing is not evidence of idleness.

Only connections are counted, not request counters: the provider scrapes
Traefik's metrics only while a canary runs, and an in-flight request holds a
connection anyway. Traefik's own idle keep-alive connections would hold the
drain open for its ``idleConnTimeout`` (90 s by default); the provider renders a
serversTransport with a short one (``provider/core/render.py``), so they close
within a second of the switch.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TIMEOUT_S = 30.0
#: How long the old color must read idle before it is stopped: two samples or more.
DEFAULT_SETTLE_S = 0.5
DEFAULT_INTERVAL_S = 0.2
#: Clock readings are sums of floats: a nanosecond short of a bound has reached it.
EPSILON_S = 1e-9


class DrainEnd(enum.Enum):
    """Why a drain ended (or that it goes on)."""

    #: Not yet: sample again at ``Step.wake``.
    WAITING = "waiting"
    #: No connection open to the old color for ``settle`` seconds.
    IDLE = "idle"
    #: ``timeout`` passed with connections still open (or none could be seen).
    TIMEOUT = "timeout"


@dataclass(frozen=True)
class DrainPolicy:
    """How long the drain may last, how long idle must hold, how often to look."""

    timeout: float = DEFAULT_TIMEOUT_S
    settle: float = DEFAULT_SETTLE_S
    interval: float = DEFAULT_INTERVAL_S


@dataclass(frozen=True)
class Sample:
    """One look at the old color, ``at`` seconds into the drain.

    ``connections`` is None when they cannot be seen (no container could be read).
    """

    at: float
    connections: int | None


@dataclass(frozen=True)
class Step:
    """The decision after a sample: go on until ``wake``, or end (and why)."""

    end: DrainEnd
    wake: float | None = None


def idle_since(samples: Sequence[Sample]) -> float | None:
    """When the trailing run of zero-connection samples began (None: the last is not zero)."""
    since: float | None = None
    for sample in samples:
        since = (since if since is not None else sample.at) if sample.connections == 0 else None
    return since


def decide(policy: DrainPolicy, samples: Sequence[Sample], now: float) -> Step:
    """End the drain when idle has held ``settle`` seconds or ``timeout`` passed.

    The next wake is one ``interval`` from ``now``, never past the timeout nor
    past the moment idle would have held long enough, so a wake is never re-armed
    in the past and the drain ends no later than it must.
    """
    since = idle_since(samples)
    if since is not None and now - since + EPSILON_S >= policy.settle:
        return Step(DrainEnd.IDLE)
    if now + EPSILON_S >= policy.timeout:
        return Step(DrainEnd.TIMEOUT)
    wake = min(now + policy.interval, policy.timeout)
    if since is not None:
        wake = min(wake, since + policy.settle)
    return Step(DrainEnd.WAITING, max(wake, now))
