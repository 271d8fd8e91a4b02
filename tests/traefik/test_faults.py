"""Faults under load through real Traefik: not one request may fail.

Each test runs the whole product on loopback (a ``bluegreen serve`` process,
a real Traefik polling it every 200 ms, busybox backends on the host network)
with a bounded load generator running throughout, and breaks one thing:

- the Docker daemon is stopped for 10 s and started again;
- every Docker API call hangs (a proxy in front of the socket stalls), while
  ``/traefik`` must keep answering as fast as usual: rendering never waits on Docker;
- 100 concurrent ``/switch`` calls arrive at once.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import random
import statistics
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.docker_stall import StallingDockerProxy
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.load import LoadResult
from tests.testbed.ports import LOOPBACK
from tests.testbed.provider import ProviderFactory, ProviderProcess
from tests.testbed.stack import Stack, StackFactory, body_of
from tests.testbed.traefik import TraefikFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.traefik, pytest.mark.slow]

BLUE = body_of("blue")
GREEN = body_of("green")
CONCURRENCY = 8
LOAD_LIMIT_S = 90.0
SETTLE_REQUESTS = 200
OUTAGE_S = 10.0
STALL_S = 5.0
WAIT_S = 30.0


def failures_of(result: LoadResult) -> list[str]:
    return [s.describe() for s in result.failures()[:10]]


def health_logs(backends: ContainerFactory) -> list[object]:
    """Each owned container's health status and Docker's last probes (a failure's context)."""
    return [
        (name, (backends.inspect(name).get("State") or {}).get("Health"))
        for name in backends.list_owned()
    ]


def docker_status(provider: ProviderProcess) -> str:
    return str(json.loads(provider.get("/status").body)["docker"]["status"])


def timed_get(port: int, path: str) -> tuple[int, float]:
    """One GET on a fresh connection: (status, seconds)."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start
    finally:
        conn.close()


class LiveRestoreDaemon(DockerDaemon):
    """A private dockerd with ``--live-restore``: containers outlive a daemon stop,
    as they do on production hosts configured for daemon upgrades."""

    def _argv(self) -> list[str]:
        return [*super()._argv(), "--live-restore"]

    def destroy(self) -> None:
        """Stop, then drop the bind mount of the data root that live-restore leaves behind."""
        self.stop()
        prefix = str(self.data_root.resolve())
        with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
            points = [line.split()[4] for line in mountinfo if len(line.split()) > 4]
        for point in reversed(points):
            if point == prefix or point.startswith(prefix + "/"):
                subprocess.run(["umount", point], capture_output=True, timeout=10, check=False)
        super().destroy()


@pytest.fixture
def live_restore_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A daemon for this test alone: it gets stopped and restarted mid-test."""
    daemon = LiveRestoreDaemon.start(tmp_path_factory.mktemp("live-dockerd"))
    try:
        yield daemon
    finally:
        daemon.destroy()


def test_docker_daemon_down_for_10s_fails_no_request(
    live_restore_daemon: DockerDaemon,
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
) -> None:
    """dockerd stops for 10 s under load: every request succeeds, the provider says
    ``disconnected``, keeps its config, reconnects, resyncs, and switches nothing."""
    image = build_busybox_image(live_restore_daemon, DEFAULT_IMAGE)
    backends = ContainerFactory(live_restore_daemon, image)
    try:
        stack = StackFactory(provider_factory, traefik_factory, backends).start(
            docker_host=live_restore_daemon.host, extra_args=["--no-auto-promote"]
        )
        stack.backend("blue")
        stack.backend("green")
        stack.wait_serving("blue")
        stack.provider.wait_routable(stack.service, "green")
        served = stack.provider.get("/traefik").body

        with stack.load(concurrency=CONCURRENCY, max_duration=LOAD_LIMIT_S) as load:
            load.wait_requests(SETTLE_REQUESTS)
            stopped = time.monotonic()
            live_restore_daemon.stop()
            wait_until(
                "docker: disconnected",
                lambda: docker_status(stack.provider) == "disconnected",
                WAIT_S,
            )
            during = [stack.provider.get("/traefik") for _ in range(3)]
            time.sleep(max(0.0, stopped + OUTAGE_S - time.monotonic()))
            outage = time.monotonic() - stopped
            live_restore_daemon.restart()
            wait_until(
                "docker: connected", lambda: docker_status(stack.provider) == "connected", WAIT_S
            )
            stack.provider.wait_routable(stack.service, "green")
            load.wait_requests(SETTLE_REQUESTS)

        result = load.result
        # On a failure, what Docker recorded of each container's probes says why.
        assert [] == failures_of(result), health_logs(backends)
        assert [BLUE] == sorted(result.summary().bodies)
        assert outage >= OUTAGE_S
        assert [(200, served)] * 3 == [(a.status, a.body) for a in during]
        assert served == stack.provider.get("/traefik").body
        assert [] == stack.provider.history(stack.service)
        print(f"dockerd down {outage:.1f}s: {result.summary().format()}")
    finally:
        assert [] == backends.cleanup()


def test_hung_docker_api_never_slows_the_config(
    docker_daemon: DockerDaemon, stack_factory: StackFactory
) -> None:
    """Every Docker call hangs for 5 s: ``/traefik`` answers 200 as fast as before,
    traffic never fails, and the provider catches up once Docker answers again."""
    with StallingDockerProxy(docker_daemon.socket_path) as proxy:
        stack = stack_factory.start(
            docker_host=proxy.host, extra_args=["--no-auto-promote", "--resync-interval", "1"]
        )
        stack.backend("blue")
        stack.wait_serving("blue")
        port = stack.provider.port

        with stack.load(concurrency=CONCURRENCY, max_duration=LOAD_LIMIT_S) as load:
            load.wait_requests(SETTLE_REQUESTS)
            baseline: list[tuple[int, float]] = []  # same load, same pacing, Docker answering
            for _ in range(100):
                baseline.append(timed_get(port, "/traefik"))
                time.sleep(0.02)
            before = proxy.held + proxy.connections
            proxy.stall()
            stalled_at = time.monotonic()
            # Docker changes while the provider cannot see it: a green deploy starts.
            stack.backend("green")
            stalled: list[tuple[int, float]] = []
            while time.monotonic() - stalled_at < STALL_S:
                stalled.append(timed_get(port, "/traefik"))
                time.sleep(0.02)
            health = timed_get(port, "/healthz")
            held = proxy.held + proxy.connections - before  # calls that hung on the stall
            proxy.resume()
            stack.provider.wait_routable(stack.service, "green", timeout=WAIT_S)
            load.wait_requests(SETTLE_REQUESTS)

    result = load.result
    assert [] == failures_of(result)
    assert [BLUE] == sorted(result.summary().bodies)
    assert {200} == {status for status, _ in baseline + stalled}
    assert 200 == health[0]
    assert held > 0, "the provider should have tried Docker during the stall"
    base_p50 = statistics.median(t for _, t in baseline)
    stall_p50 = statistics.median(t for _, t in stalled)
    stall_max = max(t for _, t in stalled)
    print(
        f"/traefik p50 {base_p50 * 1000:.2f} ms before, {stall_p50 * 1000:.2f} ms during "
        f"the stall (max {stall_max * 1000:.1f} ms, {len(stalled)} requests); "
        f"{result.summary().format()}"
    )
    # Figures only: latencies are compared in bench/, never asserted (house style). The
    # assertions above pin the behaviour: every answer 200 while every Docker call hangs.


async def _burst(port: int, token: str, colors: list[str]) -> list[tuple[int, Any]]:
    async with aiohttp.ClientSession() as session:

        async def one(color: str) -> tuple[int, Any]:
            async with session.post(
                f"http://{LOOPBACK}:{port}/switch",
                json={"service": "web", "color": color},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                return response.status, await response.json()

        return await asyncio.gather(*(one(c) for c in colors))


def test_burst_of_100_concurrent_switches(stack_factory: StackFactory) -> None:
    """100 concurrent /switch calls under load: all answer 200, history is exactly the
    acknowledged changes in order, the file agrees, Traefik ends on the final color."""
    stack: Stack = stack_factory.start(extra_args=["--no-auto-promote"])
    stack.backend("blue")
    stack.backend("green")
    stack.wait_serving("blue")
    stack.provider.wait_routable(stack.service, "green")
    rng = random.Random(100)
    colors = [rng.choice(["blue", "green"]) for _ in range(100)]

    with stack.load(concurrency=CONCURRENCY, max_duration=LOAD_LIMIT_S) as load:
        load.wait_requests(SETTLE_REQUESTS)
        answers = asyncio.run(_burst(stack.provider.port, stack.provider.token, colors))
        final = stack.provider.active(stack.service)
        assert final is not None
        stack.wait_serving(final)
        load.wait_requests(SETTLE_REQUESTS)

    result = load.result
    assert [] == failures_of(result)
    assert {200} == {status for status, _ in answers}
    changes = sorted(
        (body["switch"] for _, body in answers if body["changed"]), key=lambda r: r["seq"]
    )
    history = stack.provider.history(stack.service)
    assert changes == history
    for before, after in itertools.pairwise(history):
        assert (before["to"], before["seq"] + 1) == (after["from"], after["seq"])
    assert final == (history[-1]["to"] if history else "blue")
    on_disk = json.loads(stack.provider.state_file.read_text())
    assert history == on_disk["history"]
    assert final == on_disk["services"]["web"]["active"]
    print(f"{len(history)} of 100 switches changed the color; {result.summary().format()}")
