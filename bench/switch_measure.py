"""What ``bench/switch.py`` measures, and how it prints it.

Times are on the monotonic clock.  Wall-clock instants (Docker's ``timeNano``,
the provider's switch record ``at``) are converted with one offset taken at
the start; both clocks are the same machine's.
"""

from __future__ import annotations

import bisect
import http.client
import json
import math
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.testbed.dockerd import DockerDaemon
from tests.testbed.load import LoadResult, Sample


class HealthyEvents(threading.Thread):
    """Reads ``docker events`` and keeps each container's first ``healthy`` ``timeNano``."""

    def __init__(self, daemon: DockerDaemon, label: str) -> None:
        super().__init__(daemon=True, name="docker-events")
        argv = [
            daemon.docker_cli, "events",
            "--filter", "type=container",
            "--filter", "event=health_status",
            "--filter", f"label={label}",
            "--format", "{{json .}}",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=daemon.env(), text=True
        )
        self.healthy_at: dict[str, float] = {}
        self.lock = threading.Lock()
        self.start()

    def run(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            event = json.loads(line)
            if event.get("Action") == "health_status: healthy":
                with self.lock:
                    self.healthy_at.setdefault(event["Actor"]["ID"], event["timeNano"] / 1e9)

    def wait_for(self, container: str, timeout: float) -> float:
        """Wall-clock time of ``container``'s first healthy event."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if container in self.healthy_at:
                    return self.healthy_at[container]
            time.sleep(0.005)
        raise TimeoutError(f"no healthy event for {container[:12]} within {timeout}s")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.join(timeout=10)


class ConfigPoller(threading.Thread):
    """Polls the provider's ``/traefik`` on one keep-alive connection; timestamps color changes.

    Splits each switch window into the provider's part (switch record to the
    changed body) and Traefik's (changed body to the first new response).
    Its resolution is its round trip plus ``interval``.
    """

    def __init__(self, port: int, service: str, interval: float = 0.01) -> None:
        super().__init__(daemon=True, name="config-poller")
        self.port = port
        self.service = service
        self.interval = interval
        self.changes: list[tuple[float, str]] = []
        self.stopping = threading.Event()
        self.start()

    def _active(self, body: bytes) -> str:
        services = json.loads(body).get("http", {}).get("services", {})
        weighted = services.get(self.service, {}).get("weighted", {}).get("services", [])
        return str(weighted[0]["name"]).removeprefix(f"{self.service}-") if weighted else ""

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        last = b""
        while not self.stopping.wait(self.interval):
            try:
                conn.request("GET", "/traefik")
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                continue
            seen = time.monotonic()
            if response.status == 200 and body != last:
                last = body
                active = self._active(body)
                if not self.changes or self.changes[-1][1] != active:
                    self.changes.append((seen, active))
        conn.close()

    def served(self, color: str, after: float) -> float | None:
        """First time at/after ``after`` that ``/traefik`` showed ``color`` active."""
        for at, active in list(self.changes):
            if at >= after and active == color:
                return at
        return None

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)


@dataclass
class Measured:
    """One switch: what moved where, when the routing source changed (and the health event)."""

    kind: str
    old: str
    new: str
    changed: float
    healthy: float | None
    served: float | None = None
    first_new: float | None = None
    last_old: float | None = None
    failures: int = 0
    failure_span: float = 0.0

    @property
    def to_first_new(self) -> float | None:
        return None if self.first_new is None else self.first_new - self.changed

    @property
    def to_last_old(self) -> float:
        return 0.0 if self.last_old is None else max(0.0, self.last_old - self.changed)

    @property
    def detection(self) -> float | None:
        if self.healthy is None or self.first_new is None:
            return None
        return self.first_new - self.healthy


@dataclass
class Timeline:
    """The switches of one phase and the wall-to-monotonic offset."""

    offset: float = field(default_factory=lambda: time.monotonic() - time.time())
    switches: list[Measured] = field(default_factory=list)

    def mono(self, wall: float) -> float:
        return wall + self.offset

    def add(self, measured: Measured) -> None:
        self.switches.append(measured)


@dataclass
class PhaseReport:
    """Figures of one method (seconds; failures are counts)."""

    title: str
    load: str
    requests: int
    rps: float
    failures: int
    failures_before_first_switch: int
    switches: list[dict[str, Any]]
    statuses: dict[str, int]
    #: Traefik's requests per second to the provider with no switch and no load.
    idle_polls_per_s: float | None = None


def _body(color: str) -> str:
    return f"{color}\n"


def measure(title: str, load: str, result: LoadResult, timeline: Timeline) -> PhaseReport:
    """Attribute every sample to the switch it followed and compute each switch's figures."""
    samples = sorted(result.samples, key=lambda s: s.start)
    starts = [s.start for s in samples]
    switches = timeline.switches
    for index, sw in enumerate(switches):
        end = switches[index + 1].changed if index + 1 < len(switches) else float("inf")
        lo, hi = bisect.bisect_left(starts, sw.changed), bisect.bisect_left(starts, end)
        segment: list[Sample] = samples[lo:hi]
        failed = [s for s in segment if not s.ok]
        sw.failures = len(failed)
        if failed:
            sw.failure_span = max(s.end for s in failed) - min(s.start for s in failed)
        old = [s.start for s in segment if s.ok and s.body == _body(sw.old)]
        sw.last_old = max(old) if old else None
        # A request that started just before the change cannot be routed by it,
        # but look back a little anyway so a slow in-flight request is not missed.
        back = bisect.bisect_left(starts, sw.changed - 1.0)
        new = [s.end for s in samples[back:hi] if s.ok and s.body == _body(sw.new)]
        new = [t for t in new if t >= sw.changed]
        sw.first_new = min(new) if new else None
    first_change = switches[0].changed if switches else float("inf")
    summary = result.summary()
    rows = [
        {
            "kind": sw.kind,
            "from": sw.old,
            "to": sw.new,
            "to_first_new": sw.to_first_new,
            "to_last_old": sw.to_last_old,
            "failures": sw.failures,
            "failure_span": sw.failure_span,
            "detection": sw.detection,
            "decision": None if sw.healthy is None else sw.changed - sw.healthy,
            "provider_part": None if sw.served is None else sw.served - sw.changed,
            "traefik_part": (
                None if sw.served is None or sw.first_new is None else sw.first_new - sw.served
            ),
        }
        for sw in switches
    ]
    return PhaseReport(
        title=title,
        load=load,
        requests=summary.total,
        rps=summary.rps,
        failures=summary.failures,
        failures_before_first_switch=sum(1 for s in samples if s.start < first_change and not s.ok),
        switches=rows,
        statuses=dict(summary.statuses),
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0 for no values. The one definition every bench uses."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _values(report: PhaseReport, key: str, kind: str | None = None) -> list[float]:
    return [
        float(row[key])
        for row in report.switches
        if row[key] is not None and (kind is None or row["kind"] == kind)
    ]


def figures(report: PhaseReport) -> dict[str, float | None]:
    """The rows of the side-by-side table for one phase."""
    first = _values(report, "to_first_new")
    last = _values(report, "to_last_old")
    failures = _values(report, "failures")
    detection = _values(report, "detection")
    provider_part = _values(report, "provider_part")
    traefik_part = _values(report, "traefik_part")
    decision = _values(report, "decision")
    out: dict[str, float | None] = {
        "switches": len(report.switches),
        "req/s": report.rps,
        "requests": report.requests,
        "failed requests": report.failures,
        "switches with failures": sum(1 for f in failures if f > 0),
        "failed per switch, mean": statistics.fmean(failures) if failures else 0.0,
        "failed per switch, max": max(failures, default=0.0),
        "failing time per switch, ms max": max(_values(report, "failure_span"), default=0.0) * 1000,
    }
    for name, values in (("-> first new, ms", first), ("-> last old, ms", last)):
        out[f"window {name} p50"] = percentile(values, 0.5) * 1000
        out[f"window {name} p95"] = percentile(values, 0.95) * 1000
        out[f"window {name} p99"] = percentile(values, 0.99) * 1000
        out[f"window {name} max"] = max(values, default=0.0) * 1000
    if provider_part:
        out["  switch -> /traefik body changed, ms p50"] = percentile(provider_part, 0.5) * 1000
        out["  switch -> /traefik body changed, ms p95"] = percentile(provider_part, 0.95) * 1000
        out["  body changed -> first new, ms p50"] = percentile(traefik_part, 0.5) * 1000
        out["  body changed -> first new, ms p95"] = percentile(traefik_part, 0.95) * 1000
        out["  body changed -> first new, ms p99"] = percentile(traefik_part, 0.99) * 1000
    if report.idle_polls_per_s is not None:
        out["Traefik -> provider req/s, idle"] = report.idle_polls_per_s
    if detection:
        out["detection (healthy -> first new), ms p50"] = percentile(detection, 0.5) * 1000
        out["detection (healthy -> first new), ms p95"] = percentile(detection, 0.95) * 1000
        out["detection (healthy -> first new), ms p99"] = percentile(detection, 0.99) * 1000
        out["  of which healthy -> provider switched, ms p50"] = percentile(decision, 0.5) * 1000
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}" if abs(value) < 10 else f"{value:,.1f}"


def _ratio(theirs: float | None, ours: float | None) -> str:
    if theirs is None or ours is None:
        return ""
    if ours == 0:
        return "-" if theirs == 0 else "inf"
    return f"x{theirs / ours:,.1f}"


def print_side_by_side(reports: list[PhaseReport]) -> None:
    """Ours first, then each other method with its ratio to ours."""
    table = [figures(r) for r in reports]
    keys = list(dict.fromkeys(k for t in table for k in t))
    ours = table[0]
    letters = [chr(65 + index) for index in range(len(reports))]
    short = ["metric", "A"]
    for letter in letters[1:]:
        short += [letter, f"{letter}/A"]
    rows = [short]
    for key in keys:
        row = [key, _fmt(ours.get(key))]
        for other in table[1:]:
            row += [_fmt(other.get(key)), _ratio(other.get(key), ours.get(key))]
        rows.append(row)
    print()
    for letter, report in zip(letters, reports, strict=True):
        print(f"{letter}: {report.title}; load: concurrency {report.load}")
    print()
    widths = [max(len(row[i]) for row in rows) for i in range(len(short))]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
    for report in reports:
        print(f"\n{report.title}: statuses {report.statuses}")


def print_sweep(rows: list[dict[str, float]]) -> None:
    print("\nload sweep through Traefik (provider config, blue active):")
    print("  clients  concurrency      req/s  failures  p99 latency")
    for row in rows:
        print(
            f"  {int(row['clients']):>7}  {int(row['concurrency']):>11}  {row['rps']:>9.0f}"
            f"  {int(row['failures']):>8}  {row['p99'] * 1000:>8.1f} ms"
        )
