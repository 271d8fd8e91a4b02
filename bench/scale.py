"""The real provider against the real engine at 500 and 5,000 labelled containers.

    python3 -m bench.scale [--small 500] [--large 5000]
                          [--idle-seconds 60] [--switches 20] [--pool 4]
                          [--provider-arg=--resync-interval=300 ...]

One private dockerd (vfs, as the other benches) and the real ``bluegreen serve``
subprocess.  Two phases on the same daemon, in the same run, each with a fresh
provider (new state file):

- ``small``: ``--small`` containers, all running (``--small / 2`` services,
  a blue and a green each);
- ``large``: ``--large`` containers (``--large / 2`` services): the small
  phase's running ones plus ``--large - --small`` created but not started.

Per phase: cold start (process spawn) to the first 200 ``/traefik`` body that
names every service and has servers for every running one; its size; the
provider's RSS (``VmRSS``) after it settled; its CPU over ``--idle-seconds`` of
quiet (``/proc/<pid>/task/*/schedstat``, as bench/idle_cpu.py); and
switch-to-body latency: ``POST /switch`` to the other color of a running
service, then fresh-connection ``GET /traefik`` until the body routes to it
(p50/p95 over ``--switches``; each GET of the large body is part of the figure).
``--promote-after 3600``, so no automatic promotion mixes into the switches.

Why not 5,000 *running* containers (feasibility, measured on this machine:
2 cores, 24 GiB, shared).  With 50 first: a running ``sleep`` container with
``--network host`` took 135 ms to start (4 parallel CLI calls), 3.9 MiB of disk
(vfs copies the whole busybox rootfs) and about 10.7 MiB of MemAvailable.  At
500 running, summed PSS was 2.56 MiB per containerd shim plus 1.40 MiB per
``sleep`` (each container runs its own vfs copy of busybox, so no page is
shared), ~4 MiB each before kernel memory (slab grew ~0.6 GiB more).  5,000
running would take 20-50 GiB: over the 12 GiB budget on a machine shared
with other work.  A created container costs no process (0.14 MiB in dockerd),
3.9 MiB of disk and 63-100 ms.  The provider lists every labelled container
with ``all=True``, inspects each one (at start and at every full resync,
default 30 s), and renders a router and two load balancers for every service
whether or not its containers run; so 4,500 created + 500 running costs it the
whole 5,000-container list + inspect and a 2,500-service body.  What it does
not cost: events and ``servers`` entries for the 4,500 (their lists are empty,
~30 bytes per missing server), and Docker health checks (none here).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.testbed.dockerd import DockerDaemon, unmount_all
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.provider import ProviderProcess

ROOT = Path(__file__).resolve().parents[1]

BASE_PORT = 20000
SETTLE_S = 5.0
COLD_START_TIMEOUT_S = 300.0
SWITCH_TIMEOUT_S = 30.0
POLL_S = 0.02
COLORS = ("blue", "green")


def service_name(index: int) -> str:
    return f"s{index:04d}"


def create_containers(
    daemon: DockerDaemon, image: str, first: int, last: int, *, start: bool, pool: int
) -> float:
    """Containers ``first..last-1`` (2 per service: even blue, odd green); seconds taken."""

    def one(index: int) -> None:
        verb = ["run", "-d"] if start else ["create"]
        daemon.docker(
            *verb, "--network", "host",
            "--label", f"bluegreen.service={service_name(index // 2)}",
            "--label", f"bluegreen.color={COLORS[index % 2]}",
            "--label", f"bluegreen.port={BASE_PORT + index}",
            image, "sleep", "86400",
        )  # fmt: skip

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(pool) as executor:
        for _ in executor.map(one, range(first, last)):
            pass
    return time.monotonic() - started


def fetch_body(process: ProviderProcess) -> tuple[int, str]:
    answer = process.get("/traefik", timeout=10.0)
    return answer.status, answer.body


def complete(body: str, services: int, running: int) -> bool:
    """Every service has a router; every running service has servers in both colors."""
    http = json.loads(body).get("http", {})
    routers, lbs = http.get("routers", {}), http.get("services", {})
    if any(service_name(s) not in routers for s in range(services)):
        return False
    return all(
        lbs.get(f"{service_name(s)}-{color}", {}).get("loadBalancer", {}).get("servers")
        for s in range(running)
        for color in COLORS
    )


def active_in_body(body: str, service: str) -> str | None:
    weighted = json.loads(body)["http"]["services"][service]["weighted"]["services"]
    names = [entry["name"] for entry in weighted if entry.get("weight", 1) > 0]
    return names[0].rsplit("-", 1)[1] if len(names) == 1 else None


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``check()``; bounded in time (and so in count, by POLL_S)."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if check():
                return time.monotonic() - started
        time.sleep(POLL_S)
    raise TimeoutError(f"{what} within {timeout} s")


def cpu_seconds(pid: int) -> float:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Figures:
    containers: int
    services: int
    running: int
    cold_start_s: float
    body_kib: float
    rss_mib: float
    idle_cpu_pct: float
    switch_p50_ms: float
    switch_p95_ms: float


@contextlib.contextmanager
def provider(work: Path, docker_host: str, extra: list[str]) -> Iterator[ProviderProcess]:
    process = ProviderProcess(work, docker_host=docker_host, promote_after=3600.0, extra_args=extra)
    try:
        yield process
    finally:
        process.terminate()


def switch_latencies(process: ProviderProcess, running: int, count: int) -> list[float]:
    """Seconds from ``POST /switch`` to a ``/traefik`` body routing to the new color."""
    latencies: list[float] = []
    for n in range(count):
        service = service_name(n % running)
        _, body = fetch_body(process)
        current = active_in_body(body, service)
        target = "green" if current == "blue" else "blue"
        started = time.monotonic()
        answer = process.switch(service, target)
        if answer.status != 200:
            raise RuntimeError(f"switch {service} {target}: {answer.status} {answer.body[:200]}")

        def shows(service: str = service, target: str = target) -> bool:
            status, body = fetch_body(process)
            return status == 200 and active_in_body(body, service) == target

        wait_for(f"{service} {target} in /traefik", shows, SWITCH_TIMEOUT_S)
        latencies.append(time.monotonic() - started)
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def phase(
    work: Path, daemon: DockerDaemon, containers: int, running: int, args: argparse.Namespace
) -> Figures:
    services = containers // 2
    running_services = running // 2
    with provider(work, daemon.host, args.provider_arg) as process:
        spawned = time.monotonic()
        process.start(wait=False)
        body = ""

        def ready() -> bool:
            nonlocal body
            status, body = fetch_body(process)
            return status == 200 and complete(body, services, running_services)

        wait_for("first complete /traefik body", ready, COLD_START_TIMEOUT_S)
        cold = time.monotonic() - spawned
        pid = process.pid
        assert pid is not None
        time.sleep(SETTLE_S)
        rss = rss_mib(pid)
        before, quiet_from = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle = 100.0 * (cpu_seconds(pid) - before) / (time.monotonic() - quiet_from)
        latencies = switch_latencies(process, running_services, args.switches)
    return Figures(
        containers=containers,
        services=services,
        running=running,
        cold_start_s=cold,
        body_kib=len(body.encode()) / 1024,
        rss_mib=rss,
        idle_cpu_pct=idle,
        switch_p50_ms=statistics.median(latencies) * 1000,
        switch_p95_ms=percentile(latencies, 0.95) * 1000,
    )


def print_table(small: Figures, large: Figures) -> None:
    rows: list[tuple[str, float, float, str]] = [
        ("containers (labelled)", small.containers, large.containers, "{:.0f}"),
        ("  of which running", small.running, large.running, "{:.0f}"),
        ("services", small.services, large.services, "{:.0f}"),
        ("cold start to first full body (s)", small.cold_start_s, large.cold_start_s, "{:.2f}"),
        ("body size (KiB)", small.body_kib, large.body_kib, "{:.0f}"),
        ("provider RSS after settle (MiB)", small.rss_mib, large.rss_mib, "{:.1f}"),
        ("idle CPU (% of a core)", small.idle_cpu_pct, large.idle_cpu_pct, "{:.3f}"),
        ("  = CPU seconds per minute", small.idle_cpu_pct * 0.6, large.idle_cpu_pct * 0.6,
         "{:.3f}"),
        ("switch to body p50 (ms)", small.switch_p50_ms, large.switch_p50_ms, "{:.1f}"),
        ("switch to body p95 (ms)", small.switch_p95_ms, large.switch_p95_ms, "{:.1f}"),
    ]  # fmt: skip
    print(f"{'figure':38} {'small':>10} {'large':>10} {'ratio':>8}")
    for label, a, b, fmt in rows:
        ratio = f"{b / a:7.1f}x" if a else f"{'-':>8}"
        print(f"{label:38} {fmt.format(a):>10} {fmt.format(b):>10} {ratio}")


def run(work: Path, args: argparse.Namespace) -> tuple[Figures, Figures]:
    daemon = DockerDaemon.start(work / "dockerd")
    try:
        image = build_busybox_image(daemon, DEFAULT_IMAGE)
        took = create_containers(daemon, image, 0, args.small, start=True, pool=args.pool)
        print(f"started {args.small} containers in {took:.0f} s", flush=True)
        small = phase(work / "small", daemon, args.small, args.small, args)
        print(f"small phase done: {small}", flush=True)
        took = create_containers(daemon, image, args.small, args.large, start=False, pool=args.pool)
        print(f"created {args.large - args.small} more (not started) in {took:.0f} s", flush=True)
        large = phase(work / "large", daemon, args.large, args.small, args)
        return small, large
    finally:
        daemon.kill_all()  # SIGKILL by PID: a graceful stop waits on every container
        unmount_all(daemon.short_dir)
        unmount_all(daemon.base_dir)
        daemon.destroy()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--small", type=int, default=500, help="containers, all running")
    parser.add_argument("--large", type=int, default=5000, help="containers in all")
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="quiet window")
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--pool", type=int, default=4, help="parallel docker CLI calls")
    parser.add_argument(
        "--provider-arg", action="append", default=[],
        help="argument for bluegreen serve (repeat): --provider-arg=--resync-interval=300",
    )  # fmt: skip
    args = parser.parse_args()
    if args.small % 2 or args.large % 2 or args.large < args.small:
        parser.error("--small and --large must be even, and --large >= --small")
    work = Path(tempfile.mkdtemp(prefix="bg-bench-scale-"))
    try:
        small, large = run(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    extra = " ".join(args.provider_arg) or "none"
    print(f"\nprovider at scale (idle window {args.idle_seconds:.0f} s, {args.switches} switches,")
    print(f"extra serve arguments: {extra})")
    print_table(small, large)
    return 0


if __name__ == "__main__":
    sys.exit(main())
