"""The two-file layout of the bash scripts, migrated: one compose file and project per color.

The "before" is the layout of a blog-style ``deploy.sh``: ``docker-compose.blue.yaml``
and ``docker-compose.green.yaml`` each define the same service ``api``, started as
projects ``app-blue`` / ``app-green``. The migration adds the ``bluegreen.*`` labels and
runs ``bluegreen init -f 'docker-compose.{color}.yaml' -p 'app-{color}' --compose-service
api`` once; from then on a bare ``bluegreen deploy web`` (no flags: ``.env`` holds the
templates) drives the two projects. Real engine, real compose (v1), real Traefik, under
load: the first deploy after the migration fails no request.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from deploy import envfile
from tests.testbed.compose import ComposeFactory, ComposeProject, app_service
from tests.testbed.containers import ContainerFactory
from tests.testbed.ports import free_ports
from tests.testbed.stack import Stack, StackFactory, body_of
from tests.testbed.traefik import http_get
from tests.traefik.layouts import tolerant
from tests.traefik.test_deploy import V2_IMAGE, app_images, compose_factory, explain

__all__ = ["app_images", "compose_factory"]  # fixtures, re-used


class TwoFiles:
    """``docker-compose.{color}.yaml`` with service ``api``, as projects ``<name>-{color}``."""

    def __init__(self, project: ComposeProject, stack: Stack, image: str, owner: str) -> None:
        self.project = project  # for its directory, environment and the CLI runner
        self.stack = stack
        self.dir = project.work_dir
        self.name = project.name  # a unique prefix: projects are <name>-blue / <name>-green
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ports = dict(zip(("blue", "green"), free_ports(2), strict=True))
        for color, port in self.ports.items():
            definition = app_service(
                prefix=stack.prefix, service="web", color=color, port=port,
                default_image=image, owner=owner, rule="Host(`web.test`)",
            )  # fmt: skip
            definition["image"] = f"${{API_{color.upper()}_IMAGE:-{image}}}"
            tolerant(definition)
            (self.dir / f"docker-compose.{color}.yaml").write_text(
                yaml.safe_dump({"services": {"api": definition}}, sort_keys=True)
            )

    def compose(self, color: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``docker-compose -p NAME-COLOR -f docker-compose.COLOR.yaml ARGS``, as deploy.sh."""
        argv = [self.project.compose, "-f", f"docker-compose.{color}.yaml"]
        argv += ["-p", f"{self.name}-{color}", *args]
        result = subprocess.run(
            argv, env=self.project.env(), cwd=self.dir, capture_output=True, text=True,
            timeout=180, check=False,
        )  # fmt: skip
        assert 0 == result.returncode, f"{argv}: {result.stderr}"
        return result

    def states(self, color: str) -> list[str]:
        ids = self.compose(color, "ps", "-a", "-q", "api").stdout.split()
        docker = self.project.daemon.docker
        return [docker("inspect", "-f", "{{.State.Status}}", i).stdout.strip() for i in ids]

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        provider = self.stack.provider
        return self.project.bluegreen(*argv, url=provider.url, token=provider.token, timeout=180)

    def down(self) -> None:
        for color in ("blue", "green"):
            self.compose(color, "down", "-v", "-t", "1")


def test_first_deploy_and_rollback_of_the_two_file_layout_under_load(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    app_images: dict[str, str],
    capsys: Any,
) -> None:
    """init records the templates; a bare `deploy web` starts green's project with v2 and
    stops blue's, 0 failed requests through Traefik; `rollback web` starts blue's again."""
    stack = stack_factory.start(service="web")
    layout = TwoFiles(compose_factory.create(), stack, app_images["v1"], containers.owner)
    try:
        _run_migration(layout, stack, capsys)
    finally:
        layout.down()


def _run_migration(layout: TwoFiles, stack: Stack, capsys: Any) -> None:
    # Before: deploy.sh had started blue's project; the provider adopts it.
    layout.compose("blue", "up", "-d")
    stack.provider.wait_ready()
    stack.provider.wait_active("web", "blue")
    stack.wait_serving("blue")
    init = layout.cli(
        "init", "-f", "docker-compose.{color}.yaml", "-p", f"{layout.name}-{{color}}",
        "--compose-service", "api",
    )  # fmt: skip
    assert 0 == init.returncode, explain(init)
    env = envfile.read(layout.dir / ".env")
    assert {
        "BLUEGREEN_COMPOSE_FILE": "docker-compose.{color}.yaml",
        "BLUEGREEN_PROJECT": f"{layout.name}-{{color}}",
        "BLUEGREEN_COMPOSE_SERVICE": "api",
    } == {k: v for k, v in env.items() if k.startswith("BLUEGREEN_C") or k.endswith("PROJECT")}
    assert "COMPOSE_FILE" not in env, env

    with stack.load(concurrency=8, max_duration=120.0) as load:
        load.wait_requests(50, timeout=10)
        deployed = layout.cli("deploy", "web", "--image", V2_IMAGE, "--drain", "2")
        assert 0 == deployed.returncode, explain(deployed)
        stopped_at = time.monotonic()
        load.wait_for(
            "2 s of traffic after the deploy",
            lambda samples: bool(samples) and samples[-1].start > stopped_at + 2.0,
            timeout=15,
        )
    summary = load.result.summary()
    with capsys.disabled():
        print(f"\nfirst deploy after the two-file migration: {summary.format()}")
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    assert {body_of("blue"), body_of("green")} == set(load.result.bodies()), summary.format()
    assert summary.total > 200, summary.format()
    assert f"compose started {layout.name}-green/api" in deployed.stdout, deployed.stdout
    assert f"recorded API_GREEN_IMAGE={V2_IMAGE}" in deployed.stdout, deployed.stdout
    assert f"API_GREEN_IMAGE={V2_IMAGE}" in (layout.dir / ".env").read_text()
    assert "v2\n" == http_get(layout.ports["green"], "/version").body
    assert ["exited"] == layout.states("blue")
    assert "(blue stopped; `bluegreen rollback web` restarts it)" in deployed.stdout

    back = layout.cli("rollback", "web")
    assert 0 == back.returncode, explain(back)
    assert f"({layout.name}-blue/api)" in back.stdout, back.stdout
    stack.wait_serving("blue")
    assert "blue" == stack.provider.active("web")
    assert "v1\n" == http_get(layout.ports["blue"], "/version").body
    # A plain `up -d` of blue's project, as deploy.sh would run it, recreates nothing.
    assert "Recreating" not in layout.compose("blue", "up", "-d").stderr


def test_a_template_without_color_distinction_is_refused_before_compose(
    stack_factory: StackFactory, compose_factory: ComposeFactory, tmp_path: Path
) -> None:
    """Both colors as service `api` of one default project: exit 2 saying what to add."""
    stack = stack_factory.start(service="web")
    project = compose_factory.create()
    project.work_dir.mkdir(parents=True, exist_ok=True)
    result = project.bluegreen(
        "deploy", "web", "-f", "docker-compose.{color}.yaml", "--compose-service", "api",
        url=stack.provider.url, token=stack.provider.token,
    )  # fmt: skip
    assert 2 == result.returncode, explain(result)
    assert (
        "bluegreen deploy: both colors would be compose service 'api' of one project "
        f"({project.work_dir.name}): give each color its own project, e.g. --project "
        "'web-{color}', or its own service with --compose-service\n"
    ) == result.stderr
