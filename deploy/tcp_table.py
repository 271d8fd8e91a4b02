"""Linux's TCP tables (``/proc/<pid>/net/tcp`` and ``tcp6``) read as connections.

The drain asks one question of a container: how many connections are open *to*
it from outside, that is ESTABLISHED sockets whose local port is one the
container listens on and whose peer is not the container itself (a healthcheck
over loopback is not a user). Docker gives every container its own network
namespace, and ``/proc/<pid>/net/tcp`` shows the namespace of that process, so
the host's root reads a container's table through its main process's PID without
entering it. Pure text in, numbers out: table-tested with real samples.

The format (``net/ipv4/tcp_ipv4.c``, ``get_tcp4_sock``): one socket per line,
``sl local rem st ...``; addresses are the kernel's 32-bit words printed in hex
in host byte order (little-endian here), ports big-endian hex; ``st`` is the
state, ``01`` ESTABLISHED and ``0A`` LISTEN.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
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


def _is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def inbound_established(sockets: Iterable[Socket]) -> int:
    """Connections open to a listening port of this namespace, from another host.

    Outbound connections (the app calling its database) have an ephemeral local
    port nobody listens on, so they do not count; loopback peers (a healthcheck
    inside the container) do not either.
    """
    every = list(sockets)
    listening = {s.local_port for s in every if s.state == LISTEN}
    return sum(
        1
        for s in every
        if s.state == ESTABLISHED and s.local_port in listening and not _is_loopback(s.remote)
    )
