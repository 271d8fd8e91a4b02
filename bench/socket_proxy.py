"""What the socket proxy costs the provider: a full sync through it, next to the socket.

    python3 -m bench.socket_proxy [--containers 50] [--rounds 20]

Starts a private dockerd (tests/testbed), ``--containers`` labelled busybox containers
and Debian's haproxy with ``deploy/socket-proxy/haproxy.cfg`` in front of the socket.
Each round does what the provider's full sync does (list the labelled containers, inspect
each, 8 at a time) once straight on the socket and once through the proxy, alternating
which goes first, and prints the medians and their ratio (no assertions: the machine is
shared and noisy). Then the startup check (every needed endpoint once) through the proxy.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiodocker

from provider.docker_access import probe_all
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import build_busybox_image
from tests.testbed.socket_proxy import started_proxy

LABEL = "benchproxy.service"


async def full_sync(docker_host: str) -> float:
    """Seconds for one list + inspect-all, as DockerWatcher._full_sync does it."""
    docker = aiodocker.Docker(url=docker_host)
    limit = asyncio.Semaphore(8)

    async def inspect(cid: str) -> None:
        async with limit:
            await docker.containers.container(cid).show()

    try:
        await docker.version()  # the version check, outside the timing
        start = time.perf_counter()
        listed = await docker.containers.list(all=True, filters={"label": [LABEL]})
        await asyncio.gather(*(inspect(str(c["Id"])) for c in listed))
        return time.perf_counter() - start
    finally:
        await docker.close()


async def rounds(direct: str, proxied: str, count: int) -> tuple[list[float], list[float]]:
    straight, through = [], []
    for index in range(count):
        order = [(direct, straight), (proxied, through)]
        for host, samples in order if index % 2 == 0 else reversed(order):
            samples.append(await full_sync(host))
    return straight, through


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bg-bench-proxy-")  # destroy() removes what it can
    daemon = DockerDaemon.start(Path(tmp) / "dockerd")
    try:
        image = build_busybox_image(daemon)
        for index in range(args.containers):
            daemon.docker(
                "run", "-d", "--network", "none", "--label", f"{LABEL}=s{index}",
                image, "sleep", "3600",
            )  # fmt: skip
        for proxy in started_proxy(daemon, Path(tmp) / "proxy"):
            straight, through = asyncio.run(rounds(daemon.host, proxy.docker_host, args.rounds))
            start = time.perf_counter()
            asyncio.run(probe_all(proxy.docker_host, swarm=False, prefix="benchproxy"))
            check_ms = (time.perf_counter() - start) * 1000
        base, cost = statistics.median(straight), statistics.median(through)
        print(
            f"full sync of {args.containers} containers, median of {args.rounds}: "
            f"socket {base * 1000:.1f} ms, through the proxy {cost * 1000:.1f} ms "
            f"(x{cost / base:.2f})"
        )
        print(f"startup check through the proxy (6 endpoints, new client): {check_ms:.1f} ms")
    finally:
        ids = daemon.docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split()
        if ids:
            daemon.docker("rm", "-f", *ids, check=False)
        daemon.destroy()


if __name__ == "__main__":
    main()
