"""Idle CPU of the provider in each state: a background loop must never spin.

A loop that re-arms a wake time already past wakes at once, forever: the
provider then burns a whole core while nothing happens. This bench runs the
real ``bluegreen serve`` against a private dockerd (and a one-node Swarm) and
reads the process's CPU time (``/proc/<pid>/stat`` utime + stime) over a quiet
window in each state:

- ``baseline``: one service, blue active, nothing pending (the usual idle);
- ``no services``: a provider whose label prefix matches no container;
- ``canary running``: green ready, a canary of it at 10 % (promotion would be
  due, but the canary owns the service's switches);
- ``docker disconnected``: a canary whose step deadline passes while the
  engine is gone;
- ``swarm mode``: ``serve --swarm`` on a one-node Swarm with one service.

Target: each under 2 % of a core. CPU time is what the process itself used,
so other load on the machine changes it little. Prints figures; asserts nothing.

    python3 -m bench.idle_cpu [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.ports import free_port
from tests.testbed.provider import ProviderProcess
from tests.testbed.swarm_single import SingleNodeSwarm, start_swarm_provider

ROOT = Path(__file__).resolve().parents[1]

SERVICE = "web"
SETTLE_S = 3.0
WAIT_S = 30.0
SWARM_NETWORK = "bench_idle"
HTTPD = "mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 80 -h /w"


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``'s threads so far, in nanoseconds' resolution (``schedstat``).

    ``/proc/<pid>/stat`` counts clock ticks (10 ms): too coarse for an idle process.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def measure(provider: ProviderProcess, seconds: float) -> float:
    """Percent of one core the provider used over ``seconds`` of quiet."""
    pid = provider.pid
    assert pid is not None
    time.sleep(SETTLE_S)
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    used, elapsed = cpu_seconds(pid) - before, time.monotonic() - started
    return 100.0 * used / elapsed


def wait(what: str, check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout} s")


def run_color(factory: ContainerFactory, color: str) -> str:
    port = free_port()
    labels = {"bluegreen.service": SERVICE, "bluegreen.color": color, "bluegreen.port": str(port)}
    container = factory.run(f"{SERVICE}-{color}", labels, port, color, True, "300ms")
    factory.wait_health(container, "healthy", WAIT_S)
    return container


@contextlib.contextmanager
def provider(work: Path, docker_host: str, **options: object) -> Iterator[ProviderProcess]:
    process = ProviderProcess(work, docker_host=docker_host, **options)  # type: ignore[arg-type]
    process.start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.terminate()


def canary_on_new_green(process: ProviderProcess, factory: ContainerFactory, interval: str) -> str:
    """Reserve a canary of green (as ``bluegreen canary`` does), start green, wait until it runs.

    Green's promotion comes due meanwhile: the canary owns the service's switches.
    """
    body = {
        "service": SERVICE,
        "color": "green",
        "steps": [10, 100],
        "interval": interval,
        "await_ready": True,
    }
    answer = process.post("/canary", body)
    if answer.status != 200:
        raise RuntimeError(f"POST /canary answered {answer.status}: {answer.body}")
    green = run_color(factory, "green")
    wait("canary running", lambda: process.status(SERVICE)["canary"]["phase"] == "running")
    return green


def docker_connected(process: ProviderProcess) -> bool:
    connected: bool = process.get("/status").json["docker"]["connected"]
    return connected


def single_host(work: Path, seconds: float) -> dict[str, float]:
    figures: dict[str, float] = {}
    daemon = DockerDaemon.start(work / "dockerd")
    factory = ContainerFactory(daemon, build_busybox_image(daemon, DEFAULT_IMAGE))
    try:
        run_color(factory, "blue")
        with provider(work / "baseline", daemon.host) as process:
            process.wait_active(SERVICE, "blue", WAIT_S)
            figures["baseline (one service, settled)"] = measure(process, seconds)
        with provider(work / "empty", daemon.host, label_prefix="nobody") as process:
            figures["no services"] = measure(process, seconds)
        with provider(work / "canary", daemon.host) as process:
            process.wait_active(SERVICE, "blue", WAIT_S)
            green = canary_on_new_green(process, factory, "3600s")
            figures["canary running"] = measure(process, seconds)
        factory.remove(green)
        with provider(work / "disconnected", daemon.host) as process:
            process.wait_active(SERVICE, "blue", WAIT_S)
            canary_on_new_green(process, factory, "1s")
            daemon.kill_all()  # the engine is gone; the step's deadline passes meanwhile
            wait("docker disconnected", lambda: not docker_connected(process))
            figures["docker disconnected, canary due"] = measure(process, seconds)
    finally:
        with contextlib.suppress(Exception):
            factory.cleanup()
        daemon.destroy()
    return figures


def swarm_mode(work: Path, seconds: float) -> dict[str, float]:
    swarm = SingleNodeSwarm.start(work / "swarm")
    try:
        swarm.create_overlay(SWARM_NETWORK)
        labels = {
            "bluegreen.service": SERVICE,
            "bluegreen.color": "blue",
            "bluegreen.port": "80",
            "bluegreen.network": SWARM_NETWORK,
        }
        swarm.create_service(
            "idle_web-blue", labels=labels, networks=[SWARM_NETWORK],
            command=["sh", "-c", HTTPD], options=["--stop-signal", "KILL"],
        )  # fmt: skip
        process = start_swarm_provider(work / "swarm-provider", swarm)
        try:
            process.wait_routable(SERVICE, "blue", timeout=60.0)
            process.wait_active(SERVICE, "blue", timeout=WAIT_S)
            return {"swarm mode (one service, --swarm-poll 0.2)": measure(process, seconds)}
        finally:
            process.terminate()
    finally:
        swarm.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="quiet window per state")
    parser.add_argument("--no-swarm", action="store_true", help="skip the Swarm state")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bg-bench-idle-"))
    try:
        figures = single_host(work, args.seconds)
        if not args.no_swarm:
            figures |= swarm_mode(work, args.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = next(iter(figures.values()))
    print(f"provider CPU over {args.seconds:.0f} s of quiet (% of one core; target < 2 %)")
    print(f"{'state':46} {'cpu':>9} {'vs baseline':>13}")
    for state, percent in figures.items():
        print(f"{state:46} {percent:8.3f}% {percent - base:+10.3f} pp")
    return 0


if __name__ == "__main__":
    sys.exit(main())
