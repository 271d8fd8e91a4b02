"""Proof that the integration infrastructure works: a private dockerd, a busybox
backend with a real HEALTHCHECK, and real Traefik routing to it on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon, ping
from tests.testbed.images import DEFAULT_IMAGE, backend_command, image_exists
from tests.testbed.ports import free_port
from tests.testbed.tools import MissingToolError, missing_tool
from tests.testbed.traefik import TraefikFactory, http_get


def test_backend_becomes_healthy_and_answers_its_color(containers: ContainerFactory) -> None:
    """A backend container turns `healthy` and serves exactly "blue\\n" on 127.0.0.1."""
    port = free_port()
    container = containers.run(
        "web-blue", {"bluegreen.service": "web", "bluegreen.color": "blue"}, port, "blue"
    )

    containers.wait_health(container, "healthy", timeout=15)

    answer = http_get(port, "/")
    expected = (200, "blue\n")
    assert expected == (answer.status, answer.body)
    color = "blue"
    assert color == containers.inspect(container)["Config"]["Labels"]["bluegreen.color"]


def test_health_flaps_with_the_health_file(containers: ContainerFactory) -> None:
    """Removing /tmp/www/health makes the container unhealthy; recreating it makes it healthy."""
    port = free_port()
    container = containers.run("flap", {}, port, "green", healthy=False, health_interval="200ms")
    containers.wait_health(container, "unhealthy", timeout=15)

    containers.set_healthy(container, True)
    containers.wait_health(container, "healthy", timeout=15)
    containers.set_healthy(container, False)
    containers.wait_health(container, "unhealthy", timeout=15)

    expected = "unhealthy"
    assert expected == containers.health_status(container)


def test_cleanup_removes_every_container(docker_daemon: DockerDaemon, busybox_image: str) -> None:
    """cleanup() removes tracked containers and ones carrying the owner label, running or not."""
    factory = ContainerFactory(docker_daemon, busybox_image)
    running = factory.run("a", {}, free_port(), "blue", healthcheck=False)
    clone = docker_daemon.docker(
        "create", "--label", f"bgtest.owner={factory.owner}", busybox_image, "true"
    ).stdout.strip()

    errors = factory.cleanup()

    no_errors: list[str] = []
    assert no_errors == errors
    gone = 1
    for container in (running, clone):
        assert gone == docker_daemon.docker("inspect", container, check=False).returncode


def test_backend_command_body_is_exact() -> None:
    """The backend script writes the color plus one newline and execs httpd on loopback."""
    argv = backend_command(8080, "blue")

    expected = ["sh", "-c"]
    assert expected == argv[:2]
    assert "printf '%s\\n' blue > /tmp/www/index.html" in argv[2]
    assert argv[2].endswith("exec httpd -f -p 127.0.0.1:8080 -h /tmp/www")


def test_traefik_file_provider_routes_to_backend(
    containers: ContainerFactory, traefik_factory: TraefikFactory, tmp_path: Path
) -> None:
    """Traefik's file provider routes Host(`web.test`) on the `web` entrypoint to the backend."""
    port = free_port()
    container = containers.run("web-blue", {}, port, "blue")
    containers.wait_health(container, "healthy", timeout=15)
    dynamic = tmp_path / "dynamic.yaml"
    dynamic.write_text(
        yaml.safe_dump(
            {
                "http": {
                    "routers": {
                        "web": {
                            "rule": "Host(`web.test`)",
                            "service": "web",
                            "entryPoints": ["web"],
                        }
                    },
                    "services": {
                        "web": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{port}"}]}}
                    },
                }
            }
        )
    )

    traefik = traefik_factory.start(file_path=dynamic)
    traefik.wait_router("web@file")
    result = traefik.wait_response(host="web.test", body="blue\n")

    expected = (200, "blue\n")
    assert expected == (result.status, result.body)
    not_found = 404
    assert not_found == traefik.request(host="other.test").status


def test_daemon_restart_keeps_images(docker_daemon: DockerDaemon, busybox_image: str) -> None:
    """restart() brings the same daemon back on the same socket with its images."""
    old_pid = docker_daemon.pid

    docker_daemon.restart()

    assert docker_daemon.pid is not None and old_pid != docker_daemon.pid
    assert ping(docker_daemon.socket_path)
    assert image_exists(docker_daemon, DEFAULT_IMAGE)


def test_missing_tool_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing binary is an error under CI=true (never a silent skip) and a skip otherwise."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(MissingToolError, match="apt-get install"):
        missing_tool("dockerd")

    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        missing_tool("dockerd")
