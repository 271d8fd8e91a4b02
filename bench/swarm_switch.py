"""A switch through one Swarm replica, seen by another: latency beside one host, in one run.

The script builds a real three-manager Swarm (tests/testbed/swarm.py: three
dockerds in network namespaces), a blue/green pair of busybox services on an
overlay network, and a ``bluegreen serve --swarm`` replica on every manager,
each reached over loopback through its forwarder (tests/testbed/netns_forward.py).
Beside it, in the same process, one plain ``bluegreen serve`` with its state
file, on a private dockerd with two labelled busybox containers, reached
through the same kind of forwarder (so both paths pay the same extra hop).

Each round sends ``POST /switch`` to the other color through replica A (node 1)
and times, from just before the request:

- the ``POST /switch`` round trip (A commits the new state version to Raft
  before it answers);
- A's own ``/traefik`` body showing the new color;
- B's (node 2) and C's (node 3) ``/traefik`` body showing it: they learn of the
  commit from the config event of their own manager, then read the state;

then the same ``POST /switch`` and own-body change on the single host. Rounds
alternate Swarm and single host, ``--spacing`` apart, so the machine's load
hits both alike. Bodies are watched with the provider's held ``/traefik`` poll
(provider/long_poll.py): one keep-alive connection per provider that was sent
the current body, whose next GET the provider answers the moment the body
changes. The change is seen when its answer is read, with no polling interval
in between; a plain poll every 5 ms would add up to 5 ms (2.5 ms on average)
and 200 requests/s per watched provider.

Figures are printed, never asserted (STYLE.md). The cluster and the single
host are destroyed at the end, also on Ctrl-C or SIGTERM.

    python3 -m bench.swarm_switch --switches 50 --spacing 0.3
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.ports import free_port
from tests.testbed.process import terminate
from tests.testbed.provider import ProviderProcess
from tests.testbed.swarm import SwarmCluster, python_env
from tests.testbed.swarm_replicas import Replica
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]

TOKEN = "bench-swarm-switch"
SERVICE = "web"
NETWORK = "bgapps"
HOST = "web.test"
HTTPD = 'mkdir -p /www && echo "$COLOR" > /www/index.html && exec httpd -f -p 80 -h /www'
HEALTH = "wget -q -O /dev/null http://127.0.0.1:80/"
SETUP_TIMEOUT_S = 120.0
#: A change not seen within this long counts as missed (and is reported).
SEEN_TIMEOUT_S = 10.0
#: Longer than the provider's default hold (2.5 s): a held GET is never cut short.
WATCH_SOCKET_TIMEOUT_S = 10.0


def other(color: str) -> str:
    return "green" if color == "blue" else "blue"


def active_of(body: bytes) -> str:
    """The color the ``web`` router sends traffic to in a ``/traefik`` body."""
    services = json.loads(body).get("http", {}).get("services", {})
    weighted = services.get(SERVICE, {}).get("weighted", {}).get("services", [])
    return str(weighted[0]["name"]).removeprefix(f"{SERVICE}-") if weighted else ""


class Forwarder:
    """127.0.0.1:PORT here -> ``to`` inside ``netns``: the same hop for every provider."""

    def __init__(self, netns: str, to: str) -> None:
        self.port = free_port()
        argv = [
            sys.executable, "-m", "tests.testbed.netns_forward",
            "--listen-port", str(self.port), "--netns", netns, "--to", to,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, env=python_env(), cwd=ROOT, start_new_session=True
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            self.close()
            raise RuntimeError(f"the forwarder to {to} did not start")

    def close(self) -> None:
        terminate(self.proc, 5.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class BodyWatcher(threading.Thread):
    """Holds a ``/traefik`` GET on one keep-alive connection; timestamps each color change."""

    def __init__(self, name: str, port: int, max_seconds: float) -> None:
        super().__init__(daemon=True, name=f"watch-{name}")
        self.port = port
        self.deadline = time.monotonic() + max_seconds
        self.changes: list[tuple[float, str]] = []
        self.answers = 0
        self.errors = 0
        self.last_error = ""
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.start()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WATCH_SOCKET_TIMEOUT_S)
        # Bounded: by time, and by count (a hold answers at least every few ms when it fails).
        for _ in range(1_000_000):
            if self.stopping.is_set() or time.monotonic() > self.deadline:
                break
            try:
                conn.request("GET", "/traefik")
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.errors += 1
                self.last_error = repr(exc)
                conn.close()
                time.sleep(0.05)
                continue
            seen = time.monotonic()
            self.answers += 1
            if response.status != 200:
                continue
            active = active_of(body)
            with self.lock:
                if not self.changes or self.changes[-1][1] != active:
                    self.changes.append((seen, active))
        conn.close()

    def current(self) -> str:
        with self.lock:
            return self.changes[-1][1] if self.changes else ""

    def seen(self, color: str, after: float, timeout: float = SEEN_TIMEOUT_S) -> float | None:
        """When the body first showed ``color`` at or after ``after``; ``None`` if not in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for at, active in self.changes:
                    if at >= after and active == color:
                        return at
            time.sleep(0.002)
        return None

    def stop(self) -> None:
        self.stopping.set()


class Client:
    """``POST /switch`` over one keep-alive connection (a fresh one after an error)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def switch(self, color: str, reason: str) -> tuple[int, dict[str, Any]]:
        payload = json.dumps({"service": SERVICE, "color": color, "reason": reason})
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        try:
            self.conn.request("POST", "/switch", body=payload, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return 0, {}
        return response.status, json.loads(raw) if raw else {}

    def close(self) -> None:
        self.conn.close()


@dataclass
class Series:
    """Milliseconds of one measured quantity over the rounds, and the rounds it missed."""

    label: str
    ms: list[float] = field(default_factory=list)
    missed: int = 0

    def add(self, seconds: float | None) -> None:
        if seconds is None:
            self.missed += 1
        else:
            self.ms.append(seconds * 1000)

    def quarters(self) -> list[float]:
        """p50 of each quarter of the rounds, in order: does it drift as the run goes on?"""
        size = max(1, len(self.ms) // 4)
        return [statistics.median(self.ms[i * size : (i + 1) * size]) for i in range(4)]

    def pct(self, q: float) -> float:
        ordered = sorted(self.ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# -- the two setups ------------------------------------------------------------------------------


def create_color(cluster: SwarmCluster, color: str) -> None:
    """One task of one color of ``web``, labelled as a stack's ``deploy.labels`` make it."""
    cluster.nodes[0].docker(
        "service", "create", "--detach", "--no-resolve-image",
        "--name", f"{SERVICE}_{color}", "--replicas", "1",
        "--stop-grace-period", "1s", "--env", f"COLOR={color}",
        "--health-cmd", HEALTH, "--health-interval", "1s", "--health-retries", "2",
        "--network", NETWORK,
        "--label", f"bluegreen.service={SERVICE}", "--label", f"bluegreen.color={color}",
        "--label", "bluegreen.port=80", "--label", f"bluegreen.network={NETWORK}",
        "--label", f"bluegreen.rule=Host(`{HOST}`)", "--label", "bluegreen.replicas=1",
        cluster.image, "sh", "-c", HTTPD,
    )  # fmt: skip


def routable_everywhere(replicas: list[Replica]) -> bool:
    for replica in replicas:
        status, raw = replica.get(f"/status/{SERVICE}")
        if status != 200:
            return False
        colors = json.loads(raw)["colors"]
        if any(colors[c]["routable"] < 1 for c in ("blue", "green")):
            return False
    return True


@dataclass
class Swarm:
    cluster: SwarmCluster
    replicas: list[Replica]


def start_swarm(work: Path, extra: tuple[str, ...], stack: list[Callable[[], None]]) -> Swarm:
    """The cluster, the services and a replica per manager; teardown pushed on ``stack``."""
    started = time.monotonic()
    cluster = SwarmCluster.create(work / "swarm")
    stack.append(lambda: destroy_cluster(cluster))
    print(f"swarm: 3 managers formed in {cluster.formed_in_s:.1f} s", flush=True)
    cluster.create_overlay(NETWORK)
    for color in ("blue", "green"):
        create_color(cluster, color)
    replicas = [
        Replica(cluster, node, token=TOKEN, base_dir=work, extra_args=extra)
        for node in cluster.nodes
    ]
    for replica in replicas:
        stack.append(replica.close)
        replica.start()
    wait_until(
        "both colors routable on every replica",
        lambda: routable_everywhere(replicas),
        SETUP_TIMEOUT_S,
        interval=0.3,
    )
    print(f"swarm: ready in {time.monotonic() - started:.1f} s", flush=True)
    return Swarm(cluster, replicas)


def destroy_cluster(cluster: SwarmCluster) -> None:
    took = cluster.destroy()
    left = cluster.leftovers()
    print(f"swarm: destroyed in {took:.1f} s" + (f"; LEFT: {left}" if left else ""), flush=True)


def start_single(work: Path, extra: tuple[str, ...], stack: list[Callable[[], None]]) -> int:
    """dockerd, two labelled containers, ``bluegreen serve`` and its forwarder; its port."""
    daemon = DockerDaemon.start(work / "dockerd")
    stack.append(daemon.destroy)
    factory = ContainerFactory(daemon, build_busybox_image(daemon, DEFAULT_IMAGE))
    stack.append(lambda: report_errors(factory.cleanup()))
    for color in ("blue", "green"):
        port = free_port()
        labels = {
            "bluegreen.service": SERVICE,
            "bluegreen.color": color,
            "bluegreen.port": str(port),
            "bluegreen.rule": f"Host(`{HOST}`)",
        }
        factory.run(f"{SERVICE}-{color}", labels, port, color, health_interval="1s")
    provider = ProviderProcess(
        work / "single", docker_host=daemon.host, token=TOKEN, extra_args=extra
    )

    def stop_provider() -> None:
        provider.terminate()

    stack.append(stop_provider)
    provider.start()
    for color in ("blue", "green"):
        provider.wait_routable(SERVICE, color, timeout=SETUP_TIMEOUT_S)
    # The host's own namespace: the forwarder's setns is a no-op, its hop is the same.
    forwarder = Forwarder("/proc/self/ns/net", f"127.0.0.1:{provider.port}")
    stack.append(forwarder.close)
    return forwarder.port


def report_errors(errors: list[str]) -> None:
    for error in errors:
        print(f"cleanup: {error}", file=sys.stderr)


# -- measuring -----------------------------------------------------------------------------------


def wait_watchers(watchers: list[BodyWatcher], color: str) -> None:
    wait_until(
        f"every watcher sees {color}",
        lambda: all(w.current() == color for w in watchers),
        SEEN_TIMEOUT_S,
        interval=0.01,
    )


def measure(
    swarm: Swarm, single_port: int, switches: int, spacing: float, warmup: int
) -> tuple[dict[str, Series], dict[str, BodyWatcher]]:
    a, b, c = swarm.replicas
    budget = (switches + warmup) * (spacing + 3 * SEEN_TIMEOUT_S) + 60
    watchers = {
        "A": BodyWatcher("A", a.forward_port, budget),
        "B": BodyWatcher("B", b.forward_port, budget),
        "C": BodyWatcher("C", c.forward_port, budget),
        "single": BodyWatcher("single", single_port, budget),
    }
    series = {
        key: Series(label)
        for key, label in (
            ("swarm_post", "Swarm: POST /switch through A, round trip"),
            ("swarm_a", "Swarm: A's own body changed"),
            ("swarm_b", "Swarm: B's body changed (another node)"),
            ("swarm_c", "Swarm: C's body changed (third node)"),
            ("swarm_b_lag", "Swarm: B's change after A's (same switch)"),
            ("single_post", "one host: POST /switch, round trip"),
            ("single_own", "one host: own body changed"),
        )
    }
    swarm_client, single_client = Client(a.forward_port), Client(single_port)
    failures: list[str] = []
    swarm_w = [watchers["A"], watchers["B"], watchers["C"]]
    try:
        wait_until("watchers see a body", lambda: all(w.current() for w in watchers.values()), 30)
        wait_watchers(swarm_w, watchers["A"].current())
        for n in range(warmup + switches):
            keep = n >= warmup
            round_start = time.monotonic()
            # Swarm: through A, seen by A, B and C.
            target = other(watchers["A"].current())
            t0 = time.monotonic()
            status, doc = swarm_client.switch(target, f"bench-{n}")
            t1 = time.monotonic()
            if status != 200 or not doc.get("changed"):
                failures.append(f"swarm round {n}: {status} {doc}")
            seen = {k: watchers[k].seen(target, t0) for k in ("A", "B", "C")}
            if keep:
                series["swarm_post"].add(t1 - t0)
                for key in ("A", "B", "C"):
                    at = seen[key]
                    series[f"swarm_{key.lower()}"].add(None if at is None else at - t0)
                a_at, b_at = seen["A"], seen["B"]
                lag = None if a_at is None or b_at is None else b_at - a_at
                series["swarm_b_lag"].add(lag)
            wait_watchers(swarm_w, target)
            # One host: the same switch, the same watch.
            target = other(watchers["single"].current())
            t0 = time.monotonic()
            status, doc = single_client.switch(target, f"bench-{n}")
            t1 = time.monotonic()
            if status != 200 or not doc.get("changed"):
                failures.append(f"single round {n}: {status} {doc}")
            at = watchers["single"].seen(target, t0)
            if keep:
                series["single_post"].add(t1 - t0)
                series["single_own"].add(None if at is None else at - t0)
            remaining = round_start + spacing - time.monotonic()
            if remaining > 0:
                time.sleep(remaining)
    finally:
        swarm_client.close()
        single_client.close()
        for watcher in watchers.values():
            watcher.stop()
        # Each ends after its held GET is answered (within the hold) and closes its
        # connection: none is left open when the forwarders stop.
        for watcher in watchers.values():
            watcher.join(timeout=WATCH_SOCKET_TIMEOUT_S)
    for failure in failures:
        print(f"  not a clean switch: {failure}")
    return series, watchers


def releases(port: int) -> dict[str, int]:
    """The provider's held-poll release counters (``change`` is what this bench expects)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("bluegreen_traefik_releases_total{"):
            cause = line.split('cause="', 1)[1].split('"', 1)[0]
            value = int(float(line.rsplit(" ", 1)[1]))
            if value:
                counts[cause] = value
    return counts


def print_table(series: dict[str, Series], base_key: str) -> None:
    base = statistics.median(series[base_key].ms) if series[base_key].ms else float("nan")
    print(f"\n{'':<44} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  p50 ratio")
    for s in series.values():
        n = f"{len(s.ms)}" + (f" ({s.missed} missed)" if s.missed else "")
        p50 = statistics.median(s.ms) if s.ms else float("nan")
        print(
            f"{s.label:<44} {n:>3} {p50:8.1f} {s.pct(0.95):8.1f} {s.pct(0.99):8.1f}"
            f" {max(s.ms, default=float('nan')):8.1f}  {p50 / base:5.2f}x"
        )
    print(
        f"(ratios: p50 over '{series[base_key].label}'; a negative lag: B's answer was read first)"
    )
    print("\np50 per quarter of the run, in order (drift):")
    for s in series.values():
        if len(s.ms) >= 4:
            print(f"  {s.label:<44} " + "  ".join(f"{q:6.1f}" for q in s.quarters()))


def state_sizes(cluster: SwarmCluster) -> tuple[int, int]:
    """How many state versions the Swarm holds, and the newest one's bytes."""
    answer = cluster.nodes[0].api("GET", "/configs")
    versions = {
        int(c["Spec"]["Labels"]["bluegreen.state-version"]): c["Spec"].get("Data", "")
        for c in answer.body or []
        if "bluegreen.state-version" in c["Spec"].get("Labels", {})
    }
    if not versions:
        return 0, 0
    return len(versions), len(base64.b64decode(versions[max(versions)]))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGINT raise KeyboardInterrupt, so the teardown runs for both (SIGINT
    too when the shell started us with it ignored, as a background job)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=50, help="measured rounds")
    parser.add_argument("--warmup", type=int, default=3, help="rounds before measuring")
    parser.add_argument("--spacing", type=float, default=0.3, help="seconds between rounds")
    parser.add_argument(
        "--swarm-keep", type=int, default=0, help="replicas' --swarm-keep (0: their default)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, private dockerds)", file=sys.stderr)
        return 2
    print(f"start: {uptime()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bg-swarm-switch-"))
    teardown: list[Callable[[], None]] = []
    extra = ("--promote-after", "0.5")
    try:
        with sigterm_as_interrupt():
            keep = ("--swarm-keep", str(args.swarm_keep)) if args.swarm_keep else ()
            swarm = start_swarm(work, extra + keep, teardown)
            single_port = start_single(work, extra, teardown)
            series, watchers = measure(swarm, single_port, args.switches, args.spacing, args.warmup)
            held = {
                "A": releases(swarm.replicas[0].forward_port),
                "B": releases(swarm.replicas[1].forward_port),
                "C": releases(swarm.replicas[2].forward_port),
                "single": releases(single_port),
            }
            kept, state_bytes = state_sizes(swarm.cluster)
    except KeyboardInterrupt:
        print("interrupted: tearing down", file=sys.stderr)
        return 130
    finally:
        for step in reversed(teardown):
            try:
                step()
            except Exception as exc:  # keep tearing down the rest
                print(f"teardown: {exc!r}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
    print(f"end: {uptime()}")
    print(
        f"\n{args.switches} switches (after {args.warmup} warm-up), {args.spacing} s apart, "
        "alternating Swarm and one host; each through a loopback forwarder; bodies watched "
        "with a held /traefik GET"
    )
    print_table(series, "single_own")
    print(f"\nSwarm state at the end: {kept} versions kept, the newest {state_bytes:,} bytes")
    print("held-poll releases per provider (cause: count):")
    for name, counts in held.items():
        watcher = watchers[name]
        print(
            f"  {name}: {counts}; watcher answers {watcher.answers},"
            f" errors {watcher.errors} {watcher.last_error}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
