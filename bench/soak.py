"""Soak: 1,000 switches under load through real Traefik; does anything fail or leak?

One private dockerd with a blue and a green busybox backend (host network,
127.0.0.1), one ``bluegreen serve`` process watching them, one Traefik polling
it every 200 ms, and a bounded load generator sending GETs through Traefik the
whole time. The script alternates ``POST /switch`` between the colors
``--switches`` times and reports:

- requests sent and failed (anything but a 200) through Traefik;
- the provider's resident memory (VmRSS) and open file descriptors, read from
  ``/proc/<pid>`` after warm-up, every ``--sample-every`` switches, and at the end;
- ``/switch`` latency (p50, p99) and the history length (bounded by the provider).

Figures are printed, never asserted (STYLE.md). Everything it starts is stopped
and removed at the end, pass or fail. Traffic goes to 127.0.0.1 only.

    python3 -m bench.soak --switches 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.switch_measure import percentile  # the benches' one definition
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.load import BackgroundLoad
from tests.testbed.ports import free_port
from tests.testbed.provider import ProviderProcess
from tests.testbed.stack import body_of
from tests.testbed.traefik import TraefikFactory

ROOT = Path(__file__).resolve().parents[1]

PREFIX = "bgsoak"
HOST = "web.test"


def proc_sample(pid: int) -> tuple[int, int]:
    """(VmRSS in KiB, open file descriptors) of ``pid``."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds


def run(args: argparse.Namespace, work: Path) -> None:
    daemon = DockerDaemon.start(work / "dockerd")
    backends: ContainerFactory | None = None
    traefiks = TraefikFactory(work / "traefik")
    provider: ProviderProcess | None = None
    try:
        image = build_busybox_image(daemon, DEFAULT_IMAGE)
        backends = ContainerFactory(daemon, image)
        for color in ("blue", "green"):
            port = free_port()
            labels = {
                f"{PREFIX}.service": "web",
                f"{PREFIX}.color": color,
                f"{PREFIX}.port": str(port),
                f"{PREFIX}.rule": f"Host(`{HOST}`)",
            }
            container = backends.run(f"soak-{color}", labels, port, color)
            backends.wait_health(container, "healthy", timeout=30)
        provider = ProviderProcess(
            work / "provider",
            docker_host=daemon.host,
            label_prefix=PREFIX,
            extra_args=["--no-auto-promote", "--no-auto-rollback", "--log-level", "warning"],
        )
        provider.start()
        provider.wait_ready()
        provider.wait_routable("web", "green", timeout=30)
        traefik = traefiks.start(
            http_endpoint=provider.traefik_endpoint,
            poll_interval="200ms",
            throttle="100ms",
            log_level="WARN",
            access_log=False,
        )
        traefik.wait_response(host=HOST, body=body_of("blue"), timeout=30)
        pid = provider.pid
        assert pid is not None

        budget = args.switches * (args.spacing + 0.5) + 120
        load = BackgroundLoad(
            traefik.web_url + "/", host=HOST, concurrency=args.concurrency, max_duration=budget
        )
        latencies: list[float] = []
        switch_errors: dict[int, int] = {}
        with load:
            load.wait_requests(500)
            start_rss, start_fds = proc_sample(pid)
            samples = [(0, start_rss, start_fds)]
            color = "blue"
            started = time.monotonic()
            for n in range(1, args.switches + 1):
                color = "green" if color == "blue" else "blue"
                t0 = time.perf_counter()
                answer = provider.switch("web", color)
                latencies.append(time.perf_counter() - t0)
                if answer.status != 200:
                    switch_errors[answer.status] = switch_errors.get(answer.status, 0) + 1
                if n % args.sample_every == 0:
                    samples.append((n, *proc_sample(pid)))
                time.sleep(args.spacing)
            elapsed = time.monotonic() - started
            traefik.wait_response(host=HOST, body=body_of(color), timeout=30)
            load.wait_requests(500)
        end_rss, end_fds = proc_sample(pid)
        summary = load.result.summary()
        history = provider.history("web")

        machine = f"{platform.machine()}, {os.cpu_count()} cpus"
        print(f"# soak: {args.switches} switches under load ({machine})")
        print(
            f"switches: {args.switches} in {elapsed:.1f}s, non-200 answers {switch_errors or 0}; "
            f"/switch p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms"
        )
        print(f"traffic: {summary.format()}")
        print(f"failed requests: {summary.failures} of {summary.total}")
        print(f"history kept: {len(history)} records (bounded by --history-limit)")
        print(
            f"provider RSS: {start_rss / 1024:.1f} MiB at start, {end_rss / 1024:.1f} MiB at end "
            f"({(end_rss - start_rss) / 1024:+.1f} MiB)"
        )
        print(f"provider open fds: {start_fds} at start, {end_fds} at end")
        print("samples (switches, RSS MiB, fds):")
        for n, rss, fds in samples:
            print(f"  {n:5d}  {rss / 1024:6.1f}  {fds:3d}")
    finally:
        if provider is not None:
            provider.terminate()
        traefiks.stop_all()
        if backends is not None:
            errors = backends.cleanup()
            if errors:
                print("cleanup errors:", errors, file=sys.stderr)
        daemon.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="load workers")
    parser.add_argument("--spacing", type=float, default=0.05, help="seconds between switches")
    parser.add_argument("--sample-every", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bgsoak-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
