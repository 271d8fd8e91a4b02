"""Labelled test containers that are always removed.

Tests run busybox backends with the product's labels and a real HEALTHCHECK.
Every container gets a random name with a fixed prefix and an owner label, so
``cleanup()`` also removes containers that product code cloned from ours
(e.g. a deploy that copies labels), even after a failed test.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.waiting import wait_until

from .dockerd import DockerCommandError, DockerDaemon
from .images import HEALTH_FILE, backend_command, health_command

NAME_PREFIX = "bgtest-"
OWNER_LABEL = "bgtest.owner"
POLL_INTERVAL_S = 0.1


class ContainerFactory:
    """Runs test containers on one daemon and remembers them for :meth:`cleanup`."""

    def __init__(self, daemon: DockerDaemon, image: str, *, prefix: str = NAME_PREFIX) -> None:
        self.daemon = daemon
        self.image = image
        self.prefix = prefix
        self.owner = secrets.token_hex(4)
        self.created: list[str] = []
        self.names: dict[str, str] = {}

    def unique_name(self, name_suffix: str) -> str:
        """``<prefix><suffix>-<random>``: unique across tests sharing one daemon."""
        return f"{self.prefix}{name_suffix}-{secrets.token_hex(3)}"

    def track(self, container: str) -> None:
        """Remove ``container`` at cleanup too (for containers made by product code)."""
        if container not in self.created:
            self.created.append(container)

    def run(
        self,
        name_suffix: str,
        labels: Mapping[str, str],
        port: int,
        color: str,
        healthy: bool = True,
        health_interval: str = "300ms",
        network_host: bool = True,
        extra_args: Sequence[str] = (),
        *,
        network: str | None = None,
        health_retries: int = 1,
        healthcheck: bool = True,
        command: Sequence[str] | None = None,
    ) -> str:
        """Start a busybox backend answering ``color`` on ``127.0.0.1:port``; return its id.

        ``--init`` gives the container a PID 1 that forwards SIGTERM, so
        ``docker stop`` is quick instead of waiting for the SIGKILL timeout.
        ``health_retries=1`` makes health flips visible within one interval.
        ``network`` (a user network's name) overrides ``network_host``.
        ``command`` replaces the backend's ``sh -c`` argv (it must serve ``/health``).
        """
        name = self.unique_name(name_suffix)
        args = ["run", "-d", "--init", "--name", name, "--label", f"{OWNER_LABEL}={self.owner}"]
        for key, value in sorted(labels.items()):
            args += ["--label", f"{key}={value}"]
        if healthcheck:
            args += [
                "--health-cmd", health_command(port),
                "--health-interval", health_interval,
                "--health-timeout", "2s",
                "--health-retries", str(health_retries),
            ]  # fmt: skip
        args += ["--network", network or ("host" if network_host else "none")]
        argv = (
            list(command) if command is not None else backend_command(port, color, healthy=healthy)
        )
        args += [*extra_args, self.image, *argv]
        try:
            container = self.daemon.docker(*args).stdout.strip()
        except DockerCommandError:
            # A failed run can leave a created-but-not-started container behind.
            self.daemon.docker("rm", "-f", name, check=False)
            raise
        self.track(container)
        self.names[container] = name
        return container

    def exec(
        self, container: str, *cmd: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``docker exec container cmd...``."""
        return self.daemon.docker("exec", container, *cmd, check=check)

    def set_healthy(self, container: str, healthy: bool) -> None:
        """Create or remove the health file, so the HEALTHCHECK passes or fails from now on."""
        if healthy:
            self.exec(container, "sh", "-c", f"echo ok > {HEALTH_FILE}")
        else:
            self.exec(container, "rm", "-f", HEALTH_FILE)

    def stop(self, container: str, timeout: int = 2) -> None:
        """``docker stop -t timeout``."""
        self.daemon.docker("stop", "-t", str(timeout), container)

    def start(self, container: str) -> None:
        """``docker start``."""
        self.daemon.docker("start", container)

    def kill(self, container: str, signal: str = "KILL") -> None:
        """``docker kill -s signal``."""
        self.daemon.docker("kill", "-s", signal, container)

    def remove(self, container: str) -> None:
        """``docker rm -f -v``; no error if it is already gone."""
        result = self.daemon.docker("rm", "-f", "-v", container, check=False)
        if result.returncode != 0 and "No such container" not in result.stderr:
            raise DockerCommandError(result.returncode, result.args, result.stdout, result.stderr)

    def inspect(self, container: str) -> dict[str, Any]:
        """``docker inspect`` as a dict."""
        data: list[dict[str, Any]] = json.loads(self.daemon.docker("inspect", container).stdout)
        return data[0]

    def health_status(self, container: str) -> str:
        """``starting``/``healthy``/``unhealthy``, or ``none`` without a HEALTHCHECK."""
        health = self.inspect(container)["State"].get("Health")
        return str(health["Status"]) if health else "none"

    def wait_health(self, container: str, status: str, timeout: float = 15.0) -> None:
        """Poll until the health status is ``status``; bounded in time and count."""
        last: dict[str, Any] = {}

        def reached() -> bool:
            nonlocal last
            last = self.inspect(container)["State"]
            return bool((last.get("Health") or {}).get("Status") == status)

        def fail(_: str) -> TimeoutError:
            health = last.get("Health") or {}
            log = (health.get("Log") or [{}])[-1]
            return TimeoutError(
                f"{self.names.get(container, container)}: health {health.get('Status')!r} "
                f"(running={last.get('Running')}), wanted {status!r} within {timeout}s; "
                f"last check: {log}"
            )

        wait_until(f"health {status}", reached, timeout, interval=POLL_INTERVAL_S, fail=fail)

    def list_owned(self) -> list[str]:
        """Ids of every container carrying this factory's owner label, running or not."""
        result = self.daemon.docker(
            "ps", "-aq", "--no-trunc", "--filter", f"label={OWNER_LABEL}={self.owner}", check=False
        )
        return result.stdout.split() if result.returncode == 0 else []

    def cleanup(self) -> list[str]:
        """Remove every container we created or tracked; return the errors (never raises).

        Errors are returned, not raised, so a teardown never hides the test's own failure.
        """
        errors: list[str] = []
        targets: Iterable[str] = dict.fromkeys([*self.created, *self.list_owned()])
        for container in targets:
            try:
                self.remove(container)
            except (DockerCommandError, subprocess.SubprocessError, OSError) as exc:
                errors.append(str(exc))
        self.created.clear()
        self.names.clear()
        return errors
