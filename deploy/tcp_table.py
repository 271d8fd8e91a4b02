"""Linux's TCP tables (``/proc/<pid>/net/tcp`` and ``tcp6``) read as connections.

The drain asks one question of a container: how many connections are open *to*
it, that is ESTABLISHED sockets whose local port is the port Traefik reaches it
on (``bluegreen.port``, the port of the server URL) and on which it listens.
Loopback peers count: a container on the host's network is reached by Traefik
over 127.0.0.1 (an in-container healthcheck's connection lives milliseconds).
Docker gives every container its own network namespace (or the host's), and
``/proc/<pid>/net/tcp`` shows the namespace of that process, so
the host's root reads a container's table through its main process's PID without
entering it. Pure text in, numbers out: table-tested with real samples.

The format (``net/ipv4/tcp_ipv4.c``, ``get_tcp4_sock``): one socket per line,
``sl local rem st ...``; addresses are the kernel's 32-bit words printed in hex
in host byte order (little-endian here), ports big-endian hex; ``st`` is the
state, ``01`` ESTABLISHED and ``0A`` LISTEN.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable
from dataclasses import dataclass

ESTABLISHED = "01"
LISTEN = "0A"


@dataclass(frozen=True)
class Socket:
    """One line of a TCP table: local and remote address and port, and the state."""

    local: ipaddress.IPv4Address | ipaddress.IPv6Address
    local_port: int
    remote: ipaddress.IPv4Address | ipaddress.IPv6Address
    remote_port: int
    state: str


def _address(field: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``0100007F:B799`` -> (127.0.0.1, 47001); 32 hex digits are IPv6, word by word."""
    raw, port = field.split(":")
    words = [bytes.fromhex(raw[i : i + 8])[::-1] for i in range(0, len(raw), 8)]
    packed = b"".join(words)
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    address = ipaddress.IPv4Address(packed) if len(packed) == 4 else ipaddress.IPv6Address(packed)
    return address, int(port, 16)


def parse(text: str) -> list[Socket]:
    """Every socket of one table (tcp or tcp6); the header and malformed lines are skipped."""
    sockets: list[Socket] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or not fields[0].endswith(":"):
            continue
        try:
            local, local_port = _address(fields[1])
            remote, remote_port = _address(fields[2])
        except ValueError:
            continue
        sockets.append(Socket(local, local_port, remote, remote_port, fields[3].upper()))
    return sockets


#: One inbound connection, told apart from the others: the peer's address and port, and
#: the local port it reached.
Peer = tuple[str, int, int]


def inbound_peers(sockets: Iterable[Socket], ports: Collection[int]) -> frozenset[Peer]:
    """Connections open to one of ``ports`` that this namespace listens on.

    Outbound connections (the app calling its database, or, in the host's
    namespace, Traefik's own side of a connection) have an ephemeral local port,
    so they do not count.
    """
    every = list(sockets)
    listening = {s.local_port for s in every if s.state == LISTEN} & set(ports)
    return frozenset(
        (str(s.remote), s.remote_port, s.local_port)
        for s in every
        if s.state == ESTABLISHED and s.local_port in listening
    )
