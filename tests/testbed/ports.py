"""Free TCP ports on the loopback interface, outside the kernel's ephemeral range.

Test traffic must stay on 127.0.0.0/8, and tests run side by side with a dev
daemon and other test processes, so every listener gets a port that is free
right now instead of a fixed number. A port the kernel hands out for ``bind(0)``
comes from the ephemeral range, the same range it uses for the source port of
every outgoing connection: between our choice and Traefik's ``bind``, any
client socket on the machine may take it (a fresh-clone run failed once with
``bind: address already in use`` that way). So ports are drawn at random from
outside ``/proc/sys/net/ipv4/ip_local_port_range``, checked bindable, and never
handed out twice by one process. Under pytest-xdist (``bash scripts/test`` runs two
workers) each worker draws only from its own residue class (port modulo the worker
count), so two workers can never hand out the same port.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: Below this, ports are too often someone's well-known service.
LOWEST = 20000
HIGHEST = 65535
#: Random draws before falling back to the kernel's choice.
DRAWS = 200
RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")

_handed_out: set[int] = set()
_random = random.SystemRandom()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing source ports (Linux' default if unreadable)."""
    try:
        low, high = (int(part) for part in RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def worker_share() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker from the environment xdist sets (and
    subprocesses inherit); (0, 1) outside xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    try:
        count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    except ValueError:
        return 0, 1
    if count < 1 or not 0 <= index < count:
        return 0, 1
    return index, count


def _candidates() -> list[range]:
    low, high = ephemeral_range()
    index, count = worker_share()
    spans = [(LOWEST, min(low, HIGHEST + 1)), (max(high + 1, LOWEST), HIGHEST + 1)]
    stepped = [range(start + (index - start) % count, stop, count) for start, stop in spans]
    return [span for span in stepped if len(span) > 0]


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _kernel_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on ``host``, outside the ephemeral range, free a moment ago.

    The check's socket is closed before returning (the caller's server binds
    it); SO_REUSEADDR is not set, so a port in TIME_WAIT counts as taken.
    """
    spans = _candidates()
    weights = [len(span) for span in spans]
    for _ in range(DRAWS if spans else 0):
        port = _random.choice(_random.choices(spans, weights)[0])
        if port not in _handed_out and _bindable(port, host):
            _handed_out.add(port)
            return port
    port = _kernel_port(host)
    _handed_out.add(port)
    return port


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct free ports (see :func:`free_port`)."""
    return [free_port(host) for _ in range(count)]
