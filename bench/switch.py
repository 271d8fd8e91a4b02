"""Switching under load through real Traefik: push, poll, and the file provider.

One run, one private dockerd, the same busybox backends, the same load:

1. **sweep**: a short sweep of client processes x concurrency through Traefik
   picks the highest load the machine sustains (the smallest concurrency
   within 5% of the best throughput among the runs with zero failures and a
   p99 under 500 ms), unless ``--concurrency`` is given;
2. **provider**, once per ``--modes`` item ``pollInterval:hold`` (default
   plain polling at 200ms and 1s, then ``--hold 2.5`` with pollInterval 1s
   and 200ms):
   a fresh ``bluegreen serve`` and a Traefik whose HTTP provider polls it
   (``providersThrottleDuration`` ``--throttle``, ``--promote-after 0``).
   First, with no load and no switch, Traefik's requests per second to the
   provider are counted for ``--idle-seconds``.  Then the switches alternate
   auto-promotions (the idle color's containers are replaced by a new one,
   which turns healthy) and ``POST /switch`` calls, ``--spacing`` seconds apart;
3. **file**: a Traefik with the file provider (``watch``, inotify) routed by
   ``dynamic-config.yml``, rewritten in place for each switch exactly as the
   blog posts' ``deploy.sh`` does: bash runs ``cat > file <<EOL ... EOL`` (open
   with truncate, then cat writes) and ``touch file``, with the same throttle
   as (2): Traefik's own floor for applying a change; with ``--seeds`` once
   more with Traefik's default throttle, which the posts keep.  The backends
   are the last blue and green containers of (2).

Per switch: the *switch window*, from the moment the routing source changed
(the provider's switch record; for the file method, just before bash is
spawned, which overstates its window by the few ms bash needs) to the end of
the first response from the new color and to the start of the last response
from the old color; the failed requests (anything but a 200) that started
between this switch and the next; for the provider, the *Traefik part*
(changed ``/traefik`` body, read by a poller on its own keep-alive
connection, to the first new response); and, for auto-promotions, the
*detection latency* from Docker's ``health_status: healthy`` event to the
first new-color response.  Figures are printed, never asserted (STYLE.md).

    python3 -m bench.switch --switches 20 --concurrency 4 --clients 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.load_pool import LoadPool
from bench.switch_measure import (
    ConfigPoller,
    HealthyEvents,
    Measured,
    PhaseReport,
    Timeline,
    measure,
    percentile,
    print_side_by_side,
    print_sweep,
)
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.ports import free_port
from tests.testbed.provider import ProviderProcess
from tests.testbed.stack import body_of
from tests.testbed.traefik import TraefikProcess

ROOT = Path(__file__).resolve().parents[1]

SERVICE = "web"
HOST = "web.test"
STEP_TIMEOUT_S = 30.0
MAX_REQUESTS = 5_000_000
OVERLOAD_P99_S = 0.5
DEFAULT_MODES = "200ms:0,1s:0,1s:2.5,200ms:2.5"


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


def seeds_yaml(active: str, ports: dict[str, int]) -> str:
    """The posts' dynamic-config.yml, with our service names and loopback servers."""
    return f"""http:
  routers:
    {SERVICE}:
      entryPoints:
        - "web"
      rule: "Host(`{HOST}`)"
      service: "{SERVICE}-{active}"

  services:
    {SERVICE}-blue:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{ports["blue"]}"

    {SERVICE}-green:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{ports["green"]}"
"""


#: deploy.sh's step 8 and 9, verbatim but for the variables: bash truncates the
#: file, forks cat to write the here-document, then touches the file.
DEPLOY_SH_STEP = """cat > "$1" <<EOL
$2
EOL
touch "$1"
"""


def cat_into(path: Path, text: str) -> None:
    """Rewrite ``path`` in place the way the posts' ``deploy.sh`` does, through bash."""
    subprocess.run(
        ["bash", "-c", DEPLOY_SH_STEP, "deploy.sh", str(path), text.rstrip("\n")],
        check=True,
        timeout=10,
    )


@dataclass(frozen=True)
class Mode:
    """How Traefik's HTTP provider reaches the provider: its pollInterval, the ``--hold``."""

    poll_interval: str
    hold: float

    def describe(self) -> str:
        held = f"hold {self.hold:g}s" if self.hold else "no hold"
        return f"poll {self.poll_interval}, {held}"


def parse_modes(raw: str) -> list[Mode]:
    """``200ms:0,1s:0,1s:2.5`` -> one :class:`Mode` per comma item (pollInterval:hold)."""
    modes = []
    for item in raw.split(","):
        interval, _, hold = item.partition(":")
        modes.append(Mode(interval.strip(), float(hold or 0)))
    return modes


def polls_of(provider: ProviderProcess) -> float:
    """``bluegreen_traefik_polls_total`` from the provider's ``/metrics``."""
    for line in provider.get("/metrics").body.splitlines():
        if line.startswith("bluegreen_traefik_polls_total "):
            return float(line.split()[1])
    raise RuntimeError("no bluegreen_traefik_polls_total in /metrics")


@dataclass(frozen=True)
class Shape:
    """How the load is made: client processes and total concurrency."""

    clients: int
    concurrency: int

    def describe(self) -> str:
        return f"{self.concurrency} ({self.clients} client process(es))"


class Bench:
    """Owns the daemon, the containers and the processes of one run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="bg-switch-"))
        self.daemon = DockerDaemon.start(self.work / "dockerd")
        self.factory = ContainerFactory(
            self.daemon, build_busybox_image(self.daemon, DEFAULT_IMAGE)
        )
        self.events = HealthyEvents(self.daemon, "bluegreen.service")
        self.traefiks: list[TraefikProcess] = []
        self.providers: list[ProviderProcess] = []
        self.provider: ProviderProcess | None = None
        self.shape = Shape(1, 0)
        self.backends: dict[str, list[tuple[str, int]]] = {"blue": [], "green": []}

    # -- pieces ---------------------------------------------------------------

    def deploy(self, color: str) -> str:
        port = free_port()
        labels = {
            "bluegreen.service": SERVICE,
            "bluegreen.color": color,
            "bluegreen.port": str(port),
            "bluegreen.rule": f"Host(`{HOST}`)",
        }
        container = self.factory.run(
            f"{SERVICE}-{color}", labels, port, color, health_interval=self.args.health_interval
        )
        self.backends[color].append((container, port))
        return container

    def retire(self, color: str) -> None:
        """Remove every container of ``color`` (only ever the idle color)."""
        for container, _port in self.backends[color]:
            self.factory.remove(container)
        self.backends[color].clear()

    def traefik(self, name: str, throttle: str, **options: Any) -> TraefikProcess:
        process = TraefikProcess(self.work / name)
        self.traefiks.append(process)
        process.start(throttle=throttle, log_level="ERROR", access_log=False, **options)
        process.wait_ready()
        return process

    def load(self, traefik: TraefikProcess, shape: Shape, seconds: float) -> LoadPool:
        return LoadPool(
            traefik.web_url + "/",
            processes=shape.clients,
            concurrency=shape.concurrency,
            host=HOST,
            max_duration=seconds,
            max_requests=MAX_REQUESTS,
        )

    # -- phases ---------------------------------------------------------------

    def sweep(self, traefik: TraefikProcess) -> tuple[Shape, list[dict[str, float]]]:
        """Every (clients, concurrency) pair for a few seconds; pick the cheapest near the best."""
        rows: list[dict[str, float]] = []
        for clients in self.args.clients:
            for level in self.args.sweep:
                shape = Shape(clients, level)
                with self.load(traefik, shape, self.args.sweep_seconds + 5) as load:
                    time.sleep(self.args.sweep_seconds)
                summary = load.result.summary()
                lat = [s.end - s.start for s in load.result.samples]
                rows.append(
                    {
                        "clients": clients,
                        "concurrency": load.concurrency,
                        "rps": summary.rps,
                        "failures": summary.failures,
                        "p99": percentile(lat, 0.99),
                    }
                )
        # "Sustained": no failed request and p99 under OVERLOAD_P99_S (past that,
        # busybox httpd's accept queue overflows and SYN retransmits add ~1 s).
        clean = [r for r in rows if r["failures"] == 0 and r["p99"] < OVERLOAD_P99_S] or rows
        best = max(r["rps"] for r in clean)
        near = [r for r in clean if r["rps"] >= 0.95 * best]
        pick = min(near, key=lambda r: (r["concurrency"], r["clients"]))
        return Shape(int(pick["clients"]), int(pick["concurrency"])), rows

    def provider_phase(
        self, shape: Shape, mode: Mode, index: int
    ) -> tuple[PhaseReport, list[dict[str, float]]]:
        args = self.args
        if not self.backends["blue"]:
            self.deploy("blue")
        provider = ProviderProcess(
            self.work / f"provider-{index}",
            docker_host=self.daemon.host,
            promote_after=args.promote_after,
            extra_args=["--log-level", "warning", "--hold", str(mode.hold)],
        )
        self.providers.append(provider)
        self.provider = provider
        provider.start()
        provider.wait_ready()
        provider.wait_for("service adopted", lambda: provider.active(SERVICE) is not None, 30)
        active = provider.active(SERVICE) or "blue"
        traefik = self.traefik(
            f"traefik-http-{index}",
            args.throttle,
            http_endpoint=provider.traefik_endpoint,
            poll_interval=mode.poll_interval,
        )
        traefik.wait_response(host=HOST, body=body_of(active), timeout=STEP_TIMEOUT_S)
        idle = self.idle_rate(provider, args.idle_seconds)
        sweep_rows: list[dict[str, float]] = []
        if shape.concurrency == 0:
            shape, sweep_rows = self.sweep(traefik)
        self.shape = shape
        timeline = Timeline()
        poller = ConfigPoller(provider.port, SERVICE)
        with self.load(traefik, shape, args.max_seconds) as load:
            load.wait_body(body_of(active), timeout=STEP_TIMEOUT_S)
            for number in range(args.switches):
                new = other(active)
                healthy: float | None = None
                if number % 2 == 0:
                    self.retire(new)
                    container = self.deploy(new)
                    healthy = timeline.mono(self.events.wait_for(container, STEP_TIMEOUT_S))
                    record = self.wait_switch_record(number + 1)
                    kind = "auto-promote"
                else:
                    answer = provider.switch(SERVICE, new)
                    if answer.status != 200:
                        raise RuntimeError(f"/switch answered {answer.status}: {answer.body}")
                    record = answer.json["switch"]
                    kind = "POST /switch"
                changed = timeline.mono(float(record["at"]))
                timeline.add(Measured(kind, active, new, changed, healthy))
                load.wait_body(body_of(new), timeout=STEP_TIMEOUT_S, after=changed)
                self.settle(changed, args.spacing)
                active = new
            self.settle(time.monotonic(), args.spacing)
        poller.stop()
        traefik.stop()
        provider.terminate()
        for measured in timeline.switches:
            measured.served = poller.served(measured.new, measured.changed)
        report = measure(
            f"bluegreen provider, {mode.describe()} (throttle {args.throttle})",
            shape.describe(),
            load.result,
            timeline,
        )
        report.idle_polls_per_s = idle
        return report, sweep_rows

    @staticmethod
    def idle_rate(provider: ProviderProcess, seconds: float) -> float:
        """Traefik's requests per second to the provider while nothing changes.

        Counted from one answered poll to ``seconds`` later, so a hold that was
        still running at the start does not count as a missing poll.
        """
        first = polls_of(provider)
        provider.wait_for("an idle poll", lambda: polls_of(provider) > first, STEP_TIMEOUT_S)
        before = polls_of(provider)
        time.sleep(seconds)
        return (polls_of(provider) - before) / seconds

    def wait_switch_record(self, seq: int) -> dict[str, Any]:
        assert self.provider is not None
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline:
            history = self.provider.history(SERVICE)
            if len(history) >= seq:
                record: dict[str, Any] = history[seq - 1]
                if record["reason"] != "auto-promote":
                    raise RuntimeError(f"unexpected switch {record}")
                return record
            time.sleep(0.01)
        raise TimeoutError(f"no switch #{seq} within {STEP_TIMEOUT_S}s")

    def file_phase(self, shape: Shape, throttle: str, switches: int) -> PhaseReport:
        ports = {color: self.backends[color][-1][1] for color in ("blue", "green")}
        directory = self.work / f"file-{throttle}"
        directory.mkdir()
        config = directory / "dynamic-config.yml"
        active = "blue"
        cat_into(config, seeds_yaml(active, ports))
        traefik = self.traefik(f"traefik-file-{throttle}", throttle, file_path=config)
        traefik.wait_response(host=HOST, body=body_of(active), timeout=STEP_TIMEOUT_S)
        spacing = max(self.args.spacing, _seconds(throttle) + 1.0)
        timeline = Timeline()
        with self.load(traefik, shape, self.args.max_seconds) as load:
            load.wait_body(body_of(active), timeout=STEP_TIMEOUT_S)
            for _ in range(switches):
                new = other(active)
                changed = time.monotonic()
                cat_into(config, seeds_yaml(new, ports))
                timeline.add(Measured("cat > file", active, new, changed, None))
                load.wait_body(body_of(new), timeout=STEP_TIMEOUT_S, after=changed)
                self.settle(changed, spacing)
                active = new
            self.settle(time.monotonic(), spacing)
        traefik.stop()
        return measure(
            f"seeds' file method (throttle {throttle})", shape.describe(), load.result, timeline
        )

    @staticmethod
    def settle(since: float, seconds: float) -> None:
        remaining = since + seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def close(self) -> None:
        for process in self.traefiks:
            process.stop()
        for provider in self.providers:
            provider.terminate()
        self.events.stop()
        errors = self.factory.cleanup()
        self.daemon.destroy()
        shutil.rmtree(self.work, ignore_errors=True)
        for error in errors:
            print(f"cleanup: {error}", file=sys.stderr)


def _seconds(duration: str) -> float:
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    return float(duration.removesuffix("s"))


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    traefik = subprocess.run(["traefik", "version"], capture_output=True, text=True, check=False)
    version = next((ln.split()[-1] for ln in traefik.stdout.splitlines() if "Version" in ln), "?")
    docker = subprocess.run(
        ["dockerd", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "traefik": version,
        "docker": docker,
        "python": platform.python_version(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--switches", type=int, default=50, help="switches per method")
    parser.add_argument("--file-switches", type=int, default=None, help="default: --switches")
    parser.add_argument("--concurrency", type=int, default=0, help="0: pick by sweep")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2], help="client processes to sweep (or use)")  # fmt: skip
    parser.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",")],
                        default=[4, 8, 16, 32, 64], help="concurrency levels to sweep")  # fmt: skip
    parser.add_argument("--sweep-seconds", type=float, default=4.0)
    parser.add_argument("--modes", type=parse_modes, default=parse_modes(DEFAULT_MODES),
                        help="provider phases, pollInterval:hold each")  # fmt: skip
    parser.add_argument("--idle-seconds", type=float, default=10.0,
                        help="seconds to count Traefik's idle polls")  # fmt: skip
    parser.add_argument("--seeds", action="store_true",
                        help="also the file method, throttle 2s")  # fmt: skip
    parser.add_argument("--throttle", default="100ms", help="providersThrottleDuration")
    parser.add_argument("--seed-throttle", default="2s", help="Traefik's default, as the posts")
    parser.add_argument("--promote-after", type=float, default=0.0)
    parser.add_argument("--health-interval", default="200ms")
    parser.add_argument("--spacing", type=float, default=1.0, help="seconds between switches")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="bound per phase")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    bench = Bench(args)
    reports: list[PhaseReport] = []
    try:
        sweep_rows: list[dict[str, float]] = []
        for index, mode in enumerate(args.modes):
            shape = Shape(args.clients[0], args.concurrency) if index == 0 else bench.shape
            report, rows = bench.provider_phase(shape, mode, index)
            reports.append(report)
            sweep_rows = sweep_rows or rows
        if sweep_rows:
            print_sweep(sweep_rows)
        shape = bench.shape
        file_switches = args.file_switches or args.switches
        reports.append(bench.file_phase(shape, args.throttle, file_switches))
        if args.seeds:
            reports.append(bench.file_phase(shape, args.seed_throttle, file_switches))
    finally:
        bench.close()
    print_side_by_side(reports)
    if args.json is not None:
        doc = {"machine": info, "argv": sys.argv, "sweep": sweep_rows}
        doc["phases"] = [asdict(report) for report in reports]
        args.json.write_text(json.dumps(doc, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
