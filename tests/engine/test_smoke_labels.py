"""``deploy --smoke``'s labels on real containers, in both compose layouts: the private
Docker Engine and Debian's ``docker-compose`` (v1), no provider. The new color's container
carries the label; the user's files are untouched; the other color is not recreated.
(Through Traefik, with the provider gating: tests/traefik/test_gates.py.)"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from deploy.color_layout import Layout
from deploy.compose import Compose, ComposeCommand
from deploy.errors import ComposeFileProblem
from deploy.per_color_compose import PerColorCompose
from provider.core.model import Color
from tests.testbed.dockerd import DockerDaemon

pytestmark = pytest.mark.docker

LABELS = {"bg.smoke": "/healthz,/api/ping=204", "bg.smoke-host": "app.test"}


def _service(busybox_image: str, color: str) -> dict[str, object]:
    return {
        "image": busybox_image,
        "command": ["sleep", "600"],
        "network_mode": "none",
        "labels": {"bg.service": "app", "bg.color": color, "bg.smoke": "/old"},
    }


def _labels(daemon: DockerDaemon, project: str, service: str) -> list[dict[str, str]]:
    env = daemon.env()
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}",
         "--filter", f"label=com.docker.compose.service={service}"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return [
        json.loads(
            subprocess.run(
                ["docker", "inspect", cid], env=env, capture_output=True, text=True, check=True
            ).stdout
        )[0]["Config"]["Labels"]
        for cid in ids
    ]


@pytest.fixture
def down(docker_daemon: DockerDaemon) -> Iterator[list[list[str]]]:
    """Compose commands that take each project down at the end (always)."""
    commands: list[list[str]] = []
    yield commands
    for argv in commands:
        subprocess.run(argv, env=docker_daemon.env(), capture_output=True, check=False)


def test_one_file_found_by_default_gets_the_labels_on_the_new_color_only(
    docker_daemon: DockerDaemon,
    busybox_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    down: list[list[str]],
) -> None:
    """No ``-f``: the override goes over the docker-compose.yml compose itself finds (from a
    subdirectory, upwards); blue keeps its label, the file is unchanged."""
    project = f"smk{secrets.token_hex(3)}"
    (tmp_path / "docker-compose.yml").write_text(
        yaml.safe_dump(
            {"services": {f"app-{c}": _service(busybox_image, c) for c in ("blue", "green")}}
        )
    )
    before = (tmp_path / "docker-compose.yml").read_text()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    env = {k: v for k, v in docker_daemon.env().items() if k != "COMPOSE_FILE"}
    down.append(["docker-compose", "-f", str(tmp_path / "docker-compose.yml"), "-p", project,
                 "down", "-t", "0"])  # fmt: skip
    compose = Compose(ComposeCommand(("docker-compose",), "v1"), (), project, env)
    compose.up("app-blue", None)
    compose.up("app-green", None, LABELS)

    [green] = _labels(docker_daemon, project, "app-green")
    [blue] = _labels(docker_daemon, project, "app-blue")
    assert LABELS == {k: green[k] for k in LABELS}
    assert ("green", "/old") == (green["bg.color"], blue["bg.smoke"])
    assert before == (tmp_path / "docker-compose.yml").read_text()


def test_per_color_files_get_the_labels_on_the_new_colors_project(
    docker_daemon: DockerDaemon, busybox_image: str, tmp_path: Path, down: list[list[str]]
) -> None:
    """One compose file and project per color, the service called ``api`` in both."""
    name = f"smk{secrets.token_hex(3)}"
    for color in Color:
        doc = {"services": {"api": _service(busybox_image, str(color))}}
        (tmp_path / f"compose.{color}.yml").write_text(yaml.safe_dump(doc))
        down.append(["docker-compose", "-f", str(tmp_path / f"compose.{color}.yml"), "-p",
                     f"{name}-{color}", "down", "-t", "0"])  # fmt: skip
    layout = Layout(
        files=(str(tmp_path / "compose.{color}.yml"),),
        project=name + "-{color}",
        compose_service="api",
    )
    api = PerColorCompose(
        ComposeCommand(("docker-compose",), "v1"), layout, "app", docker_daemon.env()
    )
    key = layout.key_template().format(service="app", color="green")
    api.up(key, None, LABELS)

    [green] = _labels(docker_daemon, f"{name}-green", "api")
    assert LABELS == {k: green[k] for k in LABELS}
    assert [] == _labels(docker_daemon, f"{name}-blue", "api")


def test_a_prefix_the_service_does_not_use_starts_nothing(
    docker_daemon: DockerDaemon, busybox_image: str, tmp_path: Path
) -> None:
    """``BLUEGREEN_LABEL_PREFIX`` is not the provider's: refused before ``up``."""
    file = tmp_path / "docker-compose.yml"
    file.write_text(yaml.safe_dump({"services": {"app-green": _service(busybox_image, "green")}}))
    project = f"smk{secrets.token_hex(3)}"
    compose = Compose(
        ComposeCommand(("docker-compose",), "v1"), (str(file),), project, docker_daemon.env()
    )
    with pytest.raises(ComposeFileProblem, match=r"no bluegreen\.\* label"):
        compose.up("app-green", None, {"bluegreen.smoke": "/"})
    assert [] == _labels(docker_daemon, project, "app-green")
