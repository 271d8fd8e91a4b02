"""Detection latency: Docker's ``health_status: healthy`` event to the changed ``/traefik`` body.

Runs a private dockerd (the test infrastructure's), the provider as a real
``bluegreen serve`` subprocess with ``--promote-after 0``, and a loop of
deploys: each round starts a new container of the idle color and waits for
``/traefik`` to point the service at it. The start of each measurement is the
``timeNano`` of that container's ``health_status: healthy`` event (read from
``docker events``), the end the moment a poller first sees the new body.

The poller's own round trip is printed next to the figures: it is the
resolution of the measurement. Prints figures; asserts nothing.

    python3 -m bench.detection_latency [--rounds 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.switch_measure import HealthyEvents, percentile
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.ports import LOOPBACK, free_port

ROOT = Path(__file__).resolve().parents[1]

SERVICE = "web"
ROUND_TIMEOUT_S = 20.0
POLL_PAUSE_S = 0.001


class BodyPoller(threading.Thread):
    """Polls ``/traefik`` on one keep-alive connection and timestamps each new active color."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.changes: list[tuple[float, str]] = []
        self.round_trips: list[float] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=5)
        last = None
        while not self.stopping.is_set():
            sent = time.time()
            try:
                conn.request("GET", "/traefik")
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                time.sleep(0.05)
                continue
            seen = time.time()
            self.round_trips.append(seen - sent)
            if response.status == 200 and body != last:
                last = body
                active = _active(json.loads(body))
                with self.lock:
                    if not self.changes or self.changes[-1][1] != active:
                        self.changes.append((seen, active))
            time.sleep(POLL_PAUSE_S)
        conn.close()

    def wait_active(self, color: str, after: float, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for at, active in reversed(self.changes):
                    if at >= after and active == color:
                        return at
            time.sleep(0.005)
        raise TimeoutError(f"/traefik did not switch to {color} within {timeout}s")


def _active(config: dict[str, Any]) -> str:
    services = config.get("http", {}).get("services", {})
    weighted = services.get(SERVICE, {}).get("weighted", {}).get("services", [])
    return str(weighted[0]["name"]).removeprefix(f"{SERVICE}-") if weighted else ""


def _ms(value: float) -> str:
    return f"{value * 1000:7.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=60, help="promotions to measure (>= 50)")
    parser.add_argument("--keep", action="store_true", help="keep the provider's log and state")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bg-bench-"))
    daemon = DockerDaemon.start(work / "dockerd")
    factory = ContainerFactory(daemon, build_busybox_image(daemon, DEFAULT_IMAGE))
    provider_log = open(work / "provider.log", "wb")  # noqa: SIM115 - closed in finally
    provider: subprocess.Popen[bytes] | None = None
    events: HealthyEvents | None = None
    poller: BodyPoller | None = None
    try:
        port = free_port()
        argv = [
            sys.executable, "-m", "deploy.cli", "serve",
            "--listen", f"{LOOPBACK}:{port}",
            "--docker-host", daemon.host,
            "--state-file", str(work / "state.json"),
            "--promote-after", "0",
            "--log-format", "json",
            "--log-level", os.environ.get("BENCH_LOG_LEVEL", "warning"),
        ]  # fmt: skip
        provider = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=provider_log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        events = HealthyEvents(daemon, "bluegreen.service")

        def deploy(color: str) -> str:
            backend_port = free_port()
            labels = {
                "bluegreen.service": SERVICE,
                "bluegreen.color": color,
                "bluegreen.port": str(backend_port),
            }
            return factory.run(f"{SERVICE}-{color}", labels, backend_port, color, True, "200ms")

        current = deploy("blue")
        factory.wait_health(current, "healthy", ROUND_TIMEOUT_S)
        poller = BodyPoller(port)
        poller.start()
        poller.wait_active("blue", 0.0, ROUND_TIMEOUT_S)

        latencies: list[float] = []
        color = "blue"
        for _ in range(args.rounds):
            color = "green" if color == "blue" else "blue"
            started = time.time()
            new = deploy(color)
            changed_at = poller.wait_active(color, started, ROUND_TIMEOUT_S)
            healthy_at = events.wait_for(new, ROUND_TIMEOUT_S)
            latencies.append(changed_at - healthy_at)
            factory.remove(current)
            current = new

        trips = poller.round_trips
        print(f"detection latency over {len(latencies)} promotions (--promote-after 0)")
        print("  health_status: healthy event -> changed /traefik body")
        print(f"    p50  {_ms(statistics.median(latencies))}")
        print(f"    p90  {_ms(percentile(latencies, 0.90))}")
        print(f"    p99  {_ms(percentile(latencies, 0.99))}")
        print(f"    max  {_ms(max(latencies))}")
        print(f"    mean {_ms(statistics.fmean(latencies))}")
        print(
            "  measurement resolution: /traefik poll round trip"
            f" p50 {_ms(statistics.median(trips))}, p99 {_ms(percentile(trips, 0.99))}"
            f" ({len(trips)} polls)"
        )
        return 0
    finally:
        if poller is not None:
            poller.stopping.set()
            poller.join(timeout=10)
        if events is not None:
            events.stop()
        if provider is not None:
            provider.terminate()
            provider.wait(timeout=15)
        provider_log.close()
        factory.cleanup()
        daemon.destroy()
        if args.keep:
            print(f"provider log: {work / 'provider.log'}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
