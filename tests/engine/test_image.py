"""deploy/Dockerfile builds with no registry and the image runs the provider for real.

The base image is made here the way an offline user would: ``debootstrap`` a
minimal Debian with Python, ``docker import`` it, then ``docker build`` with
the dependencies' wheels downloaded on the host (builds have no network).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import image_exists
from tests.testbed.ports import free_port
from tests.testbed.tools import require
from tests.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "bgtest-python:bookworm"
PROVIDER_IMAGE = "bgtest-provider:local"


#: debootstrap's arguments before the target directory; the cached root file system's name
#: says which (a change of them makes a new one).
DEBOOTSTRAP_ARGS = ("--variant=minbase", "--include=python3,python3-venv", "bookworm")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: Removed from the root before it is tarred, as slim base images do: apt's package lists
#: and downloaded .debs, translations and documentation, 140 of its 272 MB. On the vfs
#: storage driver every image layer and every container is a full copy of the root, so
#: this halves the copying of each build step and each container start in the suite.
SLIMMED = ("var/cache/apt", "var/lib/apt/lists", "usr/share/locale", "usr/share/doc",
           "usr/share/man", "usr/share/info")  # fmt: skip


def base_cache() -> Path:
    """Where the debootstrapped root file system is kept between runs on one machine (a
    minute or more of downloads and dpkg saved each run); delete it to make it anew."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    variant = "-".join(arg.split("=")[-1].replace(",", "+") for arg in DEBOOTSTRAP_ARGS)
    return root / "traefik-bluegreen-tests" / f"rootfs-{variant}-slim.tar"


def _rootfs_tar(workdir: Path) -> Path:
    """The cached tar of the debootstrapped root, made under an exclusive lock if missing, so
    two processes (xdist workers, two runs) never both make it nor read a half-written one."""
    cached = base_cache()
    cached.parent.mkdir(parents=True, exist_ok=True)
    with open(cached.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached.exists():
            return cached
        debootstrap = require("debootstrap", "/usr/sbin", hint="apt-get install debootstrap")
        rootfs = workdir / "rootfs"
        rootfs.mkdir(parents=True)
        subprocess.run(
            [debootstrap, *DEBOOTSTRAP_ARGS, str(rootfs), DEBIAN_MIRROR],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
        rootfs.chmod(0o755)  # the tar's "." becomes the image's "/": pytest made it 0700
        for path in SLIMMED:
            shutil.rmtree(rootfs / path, ignore_errors=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        subprocess.run(
            ["tar", "-C", str(rootfs), "-cf", str(partial), "."],
            check=True, capture_output=True, timeout=600,
        )  # fmt: skip
        partial.replace(cached)
        shutil.rmtree(rootfs, ignore_errors=True)
        return cached


def build_python_base(daemon: DockerDaemon, workdir: Path) -> str:
    """Import a Python 3.11 base made from Debian packages with debootstrap, unless present.

    A function besides the fixture: ``bench/verify_stack.py`` builds on a Swarm node with it.
    """
    if daemon.docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return BASE_IMAGE
    tar = _rootfs_tar(workdir)
    with open(tar, "rb") as source:
        imported = subprocess.run(
            [daemon.docker_cli, "import", "-", BASE_IMAGE],
            stdin=source, env=daemon.env(), capture_output=True, timeout=600,
        )  # fmt: skip
    assert 0 == imported.returncode, imported.stderr
    return BASE_IMAGE


def build_provider_image(daemon: DockerDaemon, base: str, workdir: Path) -> str:
    """deploy/Dockerfile built offline from ``base`` and downloaded wheels; the image's name."""
    context = workdir / "context"
    context.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", ".dockerignore"):
        shutil.copy(ROOT / name, context / name)
    for package in ("provider", "deploy"):
        shutil.copytree(
            ROOT / package,
            context / package,
            ignore=shutil.ignore_patterns("__pycache__", "wheels"),
        )
    # The locked versions, hashes checked (the Dockerfile checks them again).
    subprocess.run(
        ["python3", "-m", "pip", "download", "-q", "--only-binary=:all:",
         "-d", str(context / "deploy" / "wheels"),
         "-r", str(ROOT / "deploy" / "requirements.lock")],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    built = subprocess.run(
        [daemon.docker_cli, "build", "-q", "--build-arg", f"BASE={base}",
         "-f", "deploy/Dockerfile", "-t", PROVIDER_IMAGE, str(context)],
        env={**daemon.env(), "DOCKER_BUILDKIT": "0"},
        # The legacy builder on vfs copies the whole root file system per step: on the
        # shared 2-core machine one build took over 15 minutes.
        cwd=context, capture_output=True, text=True, timeout=2400,
    )  # fmt: skip
    assert 0 == built.returncode, built.stderr[-3000:]
    return PROVIDER_IMAGE


#: The provider image built in this process, by daemon socket: each module that imports
#: the fixtures below gets fixtures of its own, and must not build again (minutes on vfs).
_BUILT: dict[str, str] = {}


@pytest.fixture(scope="session")
def python_base(docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Python 3.11 base image made from Debian packages with debootstrap."""
    return build_python_base(docker_daemon, tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="session")
def provider_image(
    docker_daemon: DockerDaemon, python_base: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """deploy/Dockerfile built offline from the local base and downloaded wheels, once per
    session and daemon (the quickstart modules import this fixture too)."""
    built = _BUILT.get(docker_daemon.socket_path)
    if built is not None and image_exists(docker_daemon, built):
        return built
    built = build_provider_image(docker_daemon, python_base, tmp_path_factory.mktemp("image"))
    _BUILT[docker_daemon.socket_path] = built
    return built


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


def _wait(check: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    wait_until(what, check, timeout, interval=0.25, tolerate=(OSError,))


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


def _build_dockerfile(daemon: DockerDaemon, context: Path, base: str) -> str:
    """``docker build`` deploy/Dockerfile FROM ``base``; its output (the build must fail)."""
    (context / "deploy").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy" / "Dockerfile", context / "deploy" / "Dockerfile")
    built = subprocess.run(
        [daemon.docker_cli, "build", "--build-arg", f"BASE={base}",
         "-f", "deploy/Dockerfile", "-t", "bgtest-provider:must-fail", str(context)],
        env={**daemon.env(), "DOCKER_BUILDKIT": "0"},
        cwd=context, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert 0 != built.returncode, built.stdout[-2000:]
    return built.stdout + built.stderr


def test_a_base_without_python_fails_the_build_with_what_to_use(
    docker_daemon: DockerDaemon, busybox_image: str, tmp_path: Path
) -> None:
    """FROM an image with no python3: the build stops at once, saying which base to use."""
    output = _build_dockerfile(docker_daemon, tmp_path, busybox_image)

    assert (
        f"deploy/Dockerfile: the base image {busybox_image} has no python3; build FROM an image "
        "with Python 3.11+ and its venv module" in output
    ), output[-2000:]


def test_a_base_without_venv_fails_the_build_naming_python3_venv(
    docker_daemon: DockerDaemon, python_base: str, tmp_path: Path
) -> None:
    """FROM a Python without ensurepip (Debian without python3-venv): the build names the
    package instead of ending in an ensurepip traceback (issue 15 item 6)."""
    no_venv = "bgtest-python:no-venv"
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Dockerfile").write_text(
        f"FROM {python_base}\nRUN rm -rf /usr/lib/python3.11/ensurepip\n"
    )
    base = subprocess.run(
        [docker_daemon.docker_cli, "build", "-q", "-t", no_venv, str(tmp_path / "base")],
        env={**docker_daemon.env(), "DOCKER_BUILDKIT": "0"},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert 0 == base.returncode, base.stderr[-2000:]

    output = _build_dockerfile(docker_daemon, tmp_path / "context", no_venv)

    assert (
        f"deploy/Dockerfile: the base image {no_venv} lacks Python's venv/ensurepip; install "
        "python3-venv in it (Debian/Ubuntu: apt-get install python3-venv)" in output
    ), output[-2000:]
