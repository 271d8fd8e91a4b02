"""A private single-node Swarm: one private ``dockerd`` made a manager of its own swarm.

For the Swarm watcher's tests and for capturing the engine's JSON
(``scripts/capture_swarm_json.py``). Several engineers' daemons share this
machine's network namespace, so nothing here may take a fixed name or port:
the Swarm control port (``--listen-addr``) and the VXLAN port
(``--data-path-port``) are free ones, and ``docker_gwbridge`` (the bridge a
node creates in the host namespace for its tasks' outside access) is
pre-created under a unique Linux name, as Docker documents for customizing it.
Nothing sends traffic to task addresses: tests read the provider's rendered
configuration instead.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.testbed.provider import ProviderProcess
from tests.waiting import wait_until

from .dockerd import DockerDaemon
from .images import DEFAULT_IMAGE, build_busybox_image
from .ports import LOOPBACK, free_port

#: VXLAN ports are picked below the ephemeral range (Swarm accepts 1024-49151).
DATA_PORTS = range(21000, 32000)
WAIT_S = 60.0


def _free_udp_port() -> int:
    """A UDP port in :data:`DATA_PORTS` that was free a moment ago."""
    for _ in range(50):
        port = DATA_PORTS[secrets.randbelow(len(DATA_PORTS))]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port for the Swarm data path")


class SingleNodeSwarm:
    """One private daemon, Swarm manager of a one-node swarm, with the busybox image."""

    def __init__(self, daemon: DockerDaemon, gw_bridge: str) -> None:
        self.daemon = daemon
        self.gw_bridge = gw_bridge
        self.image = DEFAULT_IMAGE

    @classmethod
    def start(cls, base_dir: Path) -> SingleNodeSwarm:
        """Start the daemon, give it its own gateway bridge, ``swarm init`` on loopback."""
        daemon = DockerDaemon.start(base_dir)
        gw_bridge = f"bgw{secrets.token_hex(4)}"
        swarm = cls(daemon, gw_bridge)
        try:
            daemon.docker(
                "network", "create", "--driver", "bridge",
                "--opt", f"com.docker.network.bridge.name={gw_bridge}",
                "--opt", "com.docker.network.bridge.enable_icc=false",
                "--opt", "com.docker.network.bridge.enable_ip_masquerade=false",
                "docker_gwbridge",
            )  # fmt: skip
            daemon.docker(
                "swarm", "init",
                "--advertise-addr", LOOPBACK,
                "--listen-addr", f"{LOOPBACK}:{free_port()}",
                "--data-path-port", str(_free_udp_port()),
            )  # fmt: skip
            build_busybox_image(daemon, swarm.image)
        except BaseException:
            swarm.destroy()
            raise
        return swarm

    @property
    def host(self) -> str:
        """``unix://`` URL of the manager's API socket."""
        return self.daemon.host

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``docker ARGS`` against the manager."""
        return self.daemon.docker(*args, check=check)

    def create_overlay(self, name: str) -> str:
        """Create an attachable overlay network ``name`` (as ``SwarmCluster.create_overlay``)."""
        return self.docker(
            "network", "create", "--driver", "overlay", "--attachable", name
        ).stdout.strip()

    def create_service(
        self,
        name: str,
        *,
        labels: dict[str, str],
        command: Sequence[str],
        replicas: int = 1,
        networks: Sequence[str] = (),
        options: Sequence[str] = (),
    ) -> str:
        """``docker service create --detach --no-resolve-image``; the service's ID."""
        args = ["service", "create", "--detach", "--no-resolve-image", "--name", name]
        # busybox httpd ignores SIGTERM: without this each stop waits out the default 10 s.
        args += ["--replicas", str(replicas), "--stop-grace-period", "1s"]
        for key, value in labels.items():
            args += ["--label", f"{key}={value}"]
        for network in networks:
            args += ["--network", network]
        args += [*options, self.image, *command]
        return self.docker(*args).stdout.strip()

    def scale(self, name: str, replicas: int) -> None:
        """Set a replicated service's replica count (returns at once)."""
        self.docker("service", "scale", "--detach", f"{name}={replicas}")

    def task_states(self, service: str) -> list[tuple[str, str]]:
        """(desired state, current state) of each of ``service``'s tasks."""
        out = self.docker(
            "service", "ps", "--no-trunc", "--format", "{{.DesiredState}}|{{.CurrentState}}",
            service,
        ).stdout  # fmt: skip
        states = []
        for line in out.splitlines():
            desired, _, current = line.partition("|")
            states.append((desired.lower(), current.split(" ")[0].lower()))
        return states

    def wait_tasks(self, service: str, wanted: tuple[str, str], count: int) -> None:
        """Wait until ``count`` tasks of ``service`` are in ``wanted`` (desired, current)."""
        wait_until(
            f"{count} tasks of {service} {wanted}",
            lambda: self.task_states(service).count(wanted) == count,
            WAIT_S,
            interval=0.2,
        )

    def destroy(self) -> None:
        """Stop the daemon by PID, remove its gateway bridge and its directories."""
        self.daemon.stop()
        subprocess.run(
            ["ip", "link", "delete", self.gw_bridge], capture_output=True, timeout=10, check=False
        )
        self.daemon.destroy()


def start_swarm_provider(base_dir: Path, swarm: SingleNodeSwarm) -> ProviderProcess:
    """A real ``bluegreen serve --swarm`` on the manager, listing tasks every 0.2 s, ready.

    Promotes after 0.3 s of readiness; the caller terminates it.
    """
    process = ProviderProcess(
        base_dir,
        docker_host=swarm.host,
        promote_after=0.3,
        extra_args=["--swarm", "--swarm-poll", "0.2"],
    )
    process.start()
    try:
        process.wait_ready()
    except BaseException:
        process.terminate()
        raise
    return process
