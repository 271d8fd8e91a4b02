"""deploy/Dockerfile builds with no registry and the image runs the provider for real.

The base image is made here the way an offline user would: ``debootstrap`` a
minimal Debian with Python, ``docker import`` it, then ``docker build`` with
the dependencies' wheels downloaded on the host (builds have no network).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.containers import ContainerFactory
from tests.infra.dockerd import DockerDaemon
from tests.infra.ports import free_port
from tests.infra.tools import require

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
BASE_IMAGE = "bgtest-python:bookworm"
PROVIDER_IMAGE = "bgtest-provider:local"
DEPENDENCIES = ("aiohttp", "aiodocker", "pyyaml", "structlog", "setuptools>=68")


@pytest.fixture(scope="module")
def python_base(docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python 3.11 base image made from Debian packages with debootstrap."""
    if docker_daemon.docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE
    debootstrap = require("debootstrap", "/usr/sbin", hint="apt-get install debootstrap")
    rootfs = tmp_path_factory.mktemp("rootfs")
    subprocess.run(
        [debootstrap, "--variant=minbase", "--include=python3,python3-venv", "bookworm",
         str(rootfs), "http://deb.debian.org/debian"],
        check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    rootfs.chmod(0o755)  # the tar's "." becomes the image's "/": pytest made it 0700
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        [docker_daemon.docker_cli, "import", "-", BASE_IMAGE],
        stdin=tar.stdout, env=docker_daemon.env(), capture_output=True, timeout=600,
    )  # fmt: skip
    assert tar.stdout is not None
    tar.stdout.close()
    assert (0, 0) == (tar.wait(60), imported.returncode), imported.stderr
    shutil.rmtree(rootfs, ignore_errors=True)
    return BASE_IMAGE


@pytest.fixture(scope="module")
def provider_image(
    docker_daemon: DockerDaemon, python_base: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """deploy/Dockerfile built offline from the local base and downloaded wheels."""
    context = tmp_path_factory.mktemp("context")
    for name in ("pyproject.toml", "README.md", ".dockerignore"):
        shutil.copy(ROOT / name, context / name)
    for package in ("provider", "deploy"):
        shutil.copytree(
            ROOT / package,
            context / package,
            ignore=shutil.ignore_patterns("__pycache__", "wheels"),
        )
    subprocess.run(
        ["python3", "-m", "pip", "download", "-q", "--only-binary=:all:",
         "-d", str(context / "deploy" / "wheels"), *DEPENDENCIES],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    built = subprocess.run(
        [docker_daemon.docker_cli, "build", "-q", "--build-arg", f"BASE={python_base}",
         "-f", "deploy/Dockerfile", "-t", PROVIDER_IMAGE, str(context)],
        env={**docker_daemon.env(), "DOCKER_BUILDKIT": "0"},
        cwd=context, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert 0 == built.returncode, built.stderr[-3000:]
    return PROVIDER_IMAGE


@pytest.fixture
def provider_container(
    docker_daemon: DockerDaemon, provider_image: str
) -> Iterator[tuple[str, int]]:
    """The provider image running on the host network, reading the private daemon."""
    port = free_port()
    name = f"bgtest-provider-{port}"
    docker_daemon.docker(
        "run", "-d", "--name", name, "--network", "host",
        # As compose's group_add: ["${DOCKER_GID}"]: the socket's group, not root.
        "--group-add", str(os.stat(docker_daemon.socket_path).st_gid),
        "-v", f"{docker_daemon.socket_path}:/var/run/docker.sock:ro",
        "-e", f"BLUEGREEN_LISTEN=127.0.0.1:{port}",
        "-e", "BLUEGREEN_DOCKER_HOST=unix:///var/run/docker.sock",
        "-e", "BLUEGREEN_LABEL_PREFIX=imgtest",
        "--health-interval", "1s",
        provider_image,
    )  # fmt: skip
    try:
        yield name, port
    finally:
        docker_daemon.docker("rm", "-f", name, check=False)


def _get_json(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait(check: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()  # type: ignore[operator]
            if last:
                return
        except OSError as exc:
            last = exc
        time.sleep(0.25)
    raise TimeoutError(f"{what} within {timeout}s (last: {last!r})")


def test_offline_built_image_runs_the_provider_as_non_root(
    docker_daemon: DockerDaemon,
    provider_container: tuple[str, int],
    containers: ContainerFactory,
) -> None:
    """The image starts `bluegreen serve` as uid 10001, reaches Docker through the mounted
    socket, serves a labelled container to Traefik's endpoint, and its HEALTHCHECK passes."""
    name, port = provider_container
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _get_json(f"{base}/readyz")[0] == 200, "provider ready")
    except TimeoutError as exc:
        logs = docker_daemon.docker("logs", name, check=False)
        raise TimeoutError(f"{exc}\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}") from None

    backend_port = free_port()
    containers.run(
        "img-blue",
        {"imgtest.service": "web", "imgtest.color": "blue", "imgtest.port": str(backend_port)},
        backend_port,
        "blue",
    )
    expected = {"url": f"http://127.0.0.1:{backend_port}"}

    def served() -> bool:
        status, config = _get_json(f"{base}/traefik")
        services = config.get("http", {}).get("services", {})  # type: ignore[attr-defined]
        return status == 200 and [expected] == services.get("web-blue", {}).get(
            "loadBalancer", {}
        ).get("servers")

    _wait(served, "the blue container served at /traefik")
    assert "10001" == docker_daemon.docker("exec", name, "id", "-u").stdout.strip()
    _wait(
        lambda: (
            docker_daemon.docker("inspect", "-f", "{{.State.Health.Status}}", name).stdout.strip()
            == "healthy"
        ),
        "the image's HEALTHCHECK to pass",
    )
