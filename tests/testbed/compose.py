"""Compose projects of blue/green busybox apps, driven by Debian's ``docker-compose``.

``bluegreen deploy`` and ``rollback`` drive Docker Compose, so their tests need
a real compose file: services ``<service>-blue`` / ``<service>-green`` on the
host network, each a busybox ``httpd`` on its own 127.0.0.1 port with a real
HEALTHCHECK, the image taken from ``BLUEGREEN_IMAGE``. What a backend does is
decided by its image's environment, so a "new version" is a new image:

- ``APP_VERSION`` is served at ``/version`` (``/`` answers the color, as the
  harness's backends do);
- ``APP_BROKEN=1`` never creates ``/health``: the container never gets healthy.
- ``APP_FAIL=1`` gets healthy but answers ``/`` with 500 (a CGI script): a bad
  version only its traffic reveals (canary tests); ``APP_FAIL_PERCENT=20`` answers
  500 to about that share of requests on ``/`` (the bake tests).

Every project carries the container factory's owner label, so its cleanup
removes what ``down`` might miss, and :meth:`ComposeProject.down` is always
called by the fixture that made it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .containers import OWNER_LABEL
from .dockerd import DockerDaemon
from .images import BUSYBOX_HINT, find_busybox, image_exists, rootfs_tar
from .ports import free_ports
from .tools import missing_tool, which

COMPOSE_HINT = "apt-get install docker-compose"
REPO_ROOT = Path(__file__).resolve().parents[2]

#: ``$$`` is compose's escape for a literal ``$`` (expanded by the container's shell).
APP_SCRIPT = """set -e
mkdir -p /tmp/www
if [ "$${APP_FAIL:-0}" = 1 ]; then
  mkdir -p /tmp/www/cgi-bin
  cgi='printf "Status: 500 Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nfail\\n"'
  printf '#!/bin/sh\\n%s\\n' "$$cgi" > /tmp/www/cgi-bin/index.cgi
  chmod +x /tmp/www/cgi-bin/index.cgi
elif [ "$${APP_FAIL_PERCENT:-0}" != 0 ]; then
  mkdir -p /tmp/www/cgi-bin
  printf '#!/bin/sh\\nif [ $$((RANDOM %% 100)) -lt %s ]; then printf "Status: 500 Error\\r\\n\
Content-Type: text/plain\\r\\n\\r\\nfail\\n"; else printf "Content-Type: text/plain\\r\\n\
\\r\\n%s\\n"; fi\\n' "$$APP_FAIL_PERCENT" "$$COLOR" > /tmp/www/cgi-bin/index.cgi
  chmod +x /tmp/www/cgi-bin/index.cgi
else
  printf '%s\\n' "$$COLOR" > /tmp/www/index.html
fi
printf '%s\\n' "$${APP_VERSION:-v1}" > /tmp/www/version
if [ "$${APP_BROKEN:-0}" != 1 ]; then echo ok > /tmp/www/health; fi
exec httpd -f -p 127.0.0.1:$$APP_PORT -h /tmp/www
"""


def find_compose_v1() -> str:
    """Path of ``docker-compose`` (v1), or fail (CI) / skip with the install hint."""
    found = which("docker-compose", "/usr/bin", "/usr/local/bin")
    if found is None:
        missing_tool("docker-compose", COMPOSE_HINT)
    return found


def build_app_image(daemon: DockerDaemon, name: str, env: Mapping[str, str]) -> str:
    """Import the busybox root file system as ``name`` with ``env`` baked in (idempotent)."""
    if image_exists(daemon, name):
        return name
    busybox = find_busybox()
    if busybox is None:
        missing_tool("busybox", BUSYBOX_HINT)
    changes = ["--change", 'CMD ["sh"]', "--change", "ENV PATH=/bin"]
    for key, value in sorted(env.items()):
        changes += ["--change", f"ENV {key}={value}"]
    daemon.docker("import", *changes, "-", name, input=rootfs_tar(busybox))
    return name


def app_service(
    *,
    prefix: str,
    service: str,
    color: str,
    port: int,
    default_image: str,
    owner: str,
    rule: str,
    health_interval: str = "300ms",
    health_retries: int = 1,
    start_period: str | None = None,
    extra_labels: Mapping[str, str] | None = None,
    per_color_image: bool = False,
    stop_signal: str | None = None,
    stop_grace_period: str = "2s",
) -> dict[str, Any]:
    """One color's compose service definition; the image from ``BLUEGREEN_IMAGE``, or with
    ``per_color_image`` from the color's own ``<SERVICE>_<COLOR>_IMAGE`` (as in the example).
    ``stop_signal``: e.g. one the app ignores, so that ``compose stop`` waits
    ``stop_grace_period`` while the app keeps serving."""
    healthcheck: dict[str, Any] = {
        "test": ["CMD-SHELL", "wget -q -O- http://127.0.0.1:$$APP_PORT/health"],
        "interval": health_interval,
        "timeout": "2s",
        "retries": health_retries,
    }
    if start_period is not None:
        healthcheck["start_period"] = start_period
    labels = {
        f"{prefix}.service": service,
        f"{prefix}.color": color,
        f"{prefix}.port": str(port),
        f"{prefix}.rule": rule,
        OWNER_LABEL: owner,
    }
    labels.update(extra_labels or {})
    variable = f"{service}_{color}_IMAGE".upper() if per_color_image else "BLUEGREEN_IMAGE"
    extra = {"stop_signal": stop_signal} if stop_signal else {}
    return {
        **extra,
        "image": f"${{{variable}:-{default_image}}}",
        "network_mode": "host",
        "init": True,
        "stop_grace_period": stop_grace_period,
        "environment": {"COLOR": color, "APP_PORT": str(port)},
        "command": ["sh", "-c", APP_SCRIPT],
        "healthcheck": healthcheck,
        "labels": labels,
    }


class ComposeProject:
    """One compose file and project name on the private daemon."""

    def __init__(self, daemon: DockerDaemon, work_dir: Path, *, name: str | None = None) -> None:
        self.daemon = daemon
        self.work_dir = work_dir
        self.name = name or f"bgt{secrets.token_hex(4)}"
        self.file = work_dir / "docker-compose.yml"
        self.compose = find_compose_v1()
        self.ports: dict[str, int] = {}
        self.services: dict[str, dict[str, Any]] = {}

    def add_app(
        self,
        *,
        prefix: str,
        service: str,
        default_image: str,
        owner: str,
        rule: str | None = None,
        **options: Any,
    ) -> None:
        """Add ``<service>-blue`` and ``<service>-green`` on two free loopback ports."""
        blue, green = free_ports(2)
        for color, port in (("blue", blue), ("green", green)):
            self.ports[color] = port
            self.services[f"{service}-{color}"] = app_service(
                prefix=prefix,
                service=service,
                color=color,
                port=port,
                default_image=default_image,
                owner=owner,
                rule=rule or f"Host(`{service}.test`)",
                **options,
            )
        self.write()

    def write(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.file.write_text(yaml.safe_dump({"services": self.services}, sort_keys=True))

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of compose and of the CLI: only the private daemon, no BLUEGREEN_*."""
        env = {k: v for k, v in self.daemon.env().items() if not k.startswith("BLUEGREEN_")}
        env.pop("COMPOSE_FILE", None)
        env.pop("COMPOSE_PROJECT_NAME", None)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra or {})
        return env

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``docker-compose -f FILE -p NAME ARGS``."""
        cmd = [self.compose, "-f", str(self.file), "-p", self.name, *args]
        result = subprocess.run(
            cmd,
            env=self.env(env),
            cwd=self.work_dir,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"`{' '.join(cmd)}` exited {result.returncode}: {result.stderr}")
        return result

    def up(self, *services: str, image: str | None = None) -> None:
        """``up -d`` the given services (with ``BLUEGREEN_IMAGE`` if ``image``)."""
        self.run("up", "-d", *services, env={"BLUEGREEN_IMAGE": image} if image else None)

    def container_ids(self, service: str) -> list[str]:
        return self.run("ps", "-a", "-q", service).stdout.split()

    def compose_args(self) -> list[str]:
        """The CLI's compose flags for this project."""
        return ["-f", str(self.file), "-p", self.name]

    def bluegreen_argv(self, *argv: str) -> list[str]:
        """argv of the ``bluegreen`` console script, run from this checkout."""
        return [sys.executable, "-m", "deploy.cli", *argv]

    def bluegreen(
        self,
        *argv: str,
        url: str,
        token: str | None = None,
        timeout: float = 120.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``bluegreen ARGV`` as the user would, against ``url``; never raises on exit code."""
        env = self.cli_env(url, token, extra_env)
        return subprocess.run(
            self.bluegreen_argv(*argv),
            env=env,
            cwd=self.work_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cli_env(
        self, url: str, token: str | None, extra_env: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        env = self.env(extra_env)
        env["BLUEGREEN_URL"] = url
        if token is not None:
            env["BLUEGREEN_TOKEN"] = token
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        return env

    def down(self) -> str | None:
        """``down`` with a short stop timeout; returns an error message instead of raising."""
        if not self.file.exists():
            return None
        result = self.run("down", "-v", "--remove-orphans", "-t", "1", check=False)
        if result.returncode != 0:
            return f"compose down {self.name}: {result.stderr.strip()}"
        return None


class ComposeFactory:
    """Makes compose projects; :meth:`down_all` takes every one down (errors returned)."""

    def __init__(self, daemon: DockerDaemon, base_dir: Path) -> None:
        self.daemon = daemon
        self.base_dir = base_dir
        self.projects: list[ComposeProject] = []

    def create(self) -> ComposeProject:
        project = ComposeProject(self.daemon, self.base_dir / f"project-{len(self.projects)}")
        self.projects.append(project)
        return project

    def down_all(self) -> Sequence[str]:
        errors = [e for e in (p.down() for p in self.projects) if e]
        self.projects.clear()
        return errors
