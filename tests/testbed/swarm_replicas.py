"""Provider replicas on the nodes of a :class:`~tests.testbed.swarm.SwarmCluster`.

Each replica is a real ``bluegreen serve --swarm`` inside its node's network
namespace, talking to that node's dockerd over its unix socket, as the stack
example runs one per manager. Traefik (a container on node 1) polls node 1's
replica at node 1's address; the tests reach every replica from the host
namespace through a loopback forwarder (:mod:`tests.testbed.netns_forward`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.waiting import wait_until

from .ports import free_port
from .process import terminate
from .swarm import REPO_ROOT, SwarmCluster, SwarmNode, python_env

#: The replica's port inside its node's namespace (Traefik polls node 1's).
PROVIDER_PORT = 8080
START_TIMEOUT_S = 60.0


class Replica:
    """One provider replica on one node, and the loopback door to it."""

    def __init__(
        self,
        cluster: SwarmCluster,
        node: SwarmNode,
        *,
        token: str,
        base_dir: Path,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.cluster = cluster
        self.node = node
        self.token = token
        self.base_dir = base_dir
        self.extra_args = extra_args
        self.forward_port = free_port()
        self.url = f"http://127.0.0.1:{self.forward_port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.forwarder: subprocess.Popen[bytes] | None = None

    @property
    def traefik_endpoint(self) -> str:
        """Where a Traefik container on this replica's node polls it."""
        return f"http://{self.node.address}:{PROVIDER_PORT}/traefik"

    @property
    def log_path(self) -> Path:
        return self.cluster.base_dir / f"provider-{self.node.name}.log"

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "deploy.cli", "serve", "--swarm",
            "--listen", f"0.0.0.0:{PROVIDER_PORT}",
            "--docker-host", self.node.host,
            "--state-file", str(self.base_dir / f"unused-{self.node.name}.json"),
            "--token", self.token,
            "--log-format", "json",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, *, wait: bool = True) -> None:
        """Start the replica (and the forwarder, once); wait until it serves ``/traefik``."""
        self.proc = self.cluster.spawn(
            self.node.netns_path, self.argv(), log_name=f"provider-{self.node.name}"
        )
        if self.forwarder is None:
            forward = [
                sys.executable, "-m", "tests.testbed.netns_forward",
                "--listen-port", str(self.forward_port),
                "--netns", self.node.netns_path,
                "--to", f"127.0.0.1:{PROVIDER_PORT}",
            ]  # fmt: skip
            self.forwarder = subprocess.Popen(
                forward,
                stdout=subprocess.PIPE,
                env=python_env(),
                cwd=REPO_ROOT,
                start_new_session=True,
            )
            assert self.forwarder.stdout is not None
            if self.forwarder.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"the forwarder to {self.node.name} did not start")
        if wait:
            self.wait_serving()

    def wait_serving(self, timeout: float = START_TIMEOUT_S) -> None:
        wait_until(
            f"the replica on {self.node.name} serves /traefik",
            lambda: self.get("/traefik")[0] == 200,
            timeout,
            interval=0.2,
        )

    def kill(self) -> None:
        """SIGKILL the provider process, by PID."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc is not None:
            terminate(self.proc, 5.0)
        if self.forwarder is not None:
            terminate(self.forwarder, 5.0)
            if self.forwarder.stdout is not None:
                self.forwarder.stdout.close()

    # -- HTTP --------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, *, timeout: float = 20.0
    ) -> tuple[int, bytes]:
        """(status, raw body); status 0 when the replica does not answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError):
            return 0, b""

    def get(self, path: str) -> tuple[int, bytes]:
        return self.request("GET", path)

    def json(self, path: str) -> Any:
        status, raw = self.get(path)
        if status != 200:
            raise AssertionError(f"GET {path} on {self.node.name}: {status} {raw[:300]!r}")
        return json.loads(raw)

    def switch(self, service: str, color: str, *, actor: str = "test") -> tuple[int, Any]:
        status, raw = self.request(
            "POST", "/switch", {"service": service, "color": color, "reason": actor}
        )
        return status, json.loads(raw) if raw else None

    def body(self) -> bytes:
        """The ``/traefik`` body this replica serves now."""
        status, raw = self.get("/traefik")
        if status != 200:
            raise AssertionError(f"/traefik on {self.node.name}: {status}")
        return raw
