"""A loopback door into a test namespace: 127.0.0.1:PORT here -> HOST:PORT in a namespace.

The Swarm tests run a provider replica inside each node's network namespace,
where Traefik's container can reach it; the tests (and the benches) talk to
the replicas from the host namespace, over loopback only. This process binds
its listening socket in the host namespace first, then enters the node's
namespace (``setns``, through libc: Python 3.11 has no ``os.setns``), so every
connection it opens afterwards is made inside that namespace: the traffic
never leaves loopback and the test's own namespaces (the network rule).

    python3 -m tests.testbed.netns_forward --listen-port 41234 \
        --netns /var/run/netns/bgsw-abc-n2 --to 127.0.0.1:8080

It prints ``ready`` once it forwards; SIGTERM stops it. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Sequence

CLONE_NEWNET = 0x40000000
CHUNK = 65536


def enter_netns(path: str) -> None:
    """Move this (single-threaded) process into the network namespace at ``path``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


async def _serve(listener: socket.socket, host: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, port)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except OSError:
            writer.close()
        except asyncio.CancelledError:
            # Shutting down: drop the connection quietly (it is a test tool's exit).
            writer.close()

    server = await asyncio.start_server(handle, sock=listener)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--netns", required=True, help="namespace file, e.g. /var/run/netns/X")
    parser.add_argument("--to", required=True, help="HOST:PORT inside the namespace")
    args = parser.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    listener = socket.create_server(("127.0.0.1", args.listen_port))
    enter_netns(args.netns)
    asyncio.run(_serve(listener, host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
