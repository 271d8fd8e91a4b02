"""docs/migrate-traefik-file.md, followed: from a script's ``dynamic-config.yml`` to the provider.

"Before" is blog 000's layout: one compose file with ``web-blue`` and ``web-green``
(no bluegreen labels) and Traefik's file provider reading a ``dynamic-config.yml``
whose router the script points at ``web-blue``. The guide's steps, in order:

1. ``bluegreen import traefik-file dynamic-config.yml --format compose-override``
   into ``docker-compose.override.yml`` (compose reads it beside the file by itself);
2. ``docker-compose up -d``: both colors get their labels;
3. start the provider, then Traefik with the printed ``--providers.http`` flags
   instead of ``--providers.file``;
4. the first ``bluegreen deploy``, under load: it fails no request.

Real engine, real compose (v1), real Traefik for both "before" and "after".
"""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from tests.testbed.compose import ComposeFactory, ComposeProject
from tests.testbed.containers import OWNER_LABEL, ContainerFactory
from tests.testbed.load import BackgroundLoad, LoadResult
from tests.testbed.stack import StackFactory, body_of
from tests.testbed.traefik import TraefikFactory, TraefikProcess, http_get
from tests.traefik.layouts import tolerant
from tests.traefik.test_deploy import (
    V2_IMAGE,
    app_images,
    compose_factory,
    explain,
    wait_stably_serving,
)

__all__ = ["app_images", "compose_factory"]  # fixtures, re-used

#: The script's file, as its heredoc writes it after a deploy to blue.
DYNAMIC_CONFIG = """\
http:
  routers:
    web:
      entryPoints:
        - "web"
      rule: "Host(`web.test`)"
      service: "web-blue"

  services:
    web-blue:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{blue}"

    web-green:
      loadBalancer:
        servers:
          - url: "http://127.0.0.1:{green}"
"""


def _before(project: ComposeProject, prefix: str, image: str, owner: str) -> None:
    """The script's compose file: both colors, no bluegreen labels (only the test's owner)."""
    project.add_app(prefix=prefix, service="web", default_image=image, owner=owner,
                    per_color_image=True)  # fmt: skip
    for definition in map(tolerant, project.services.values()):
        definition["labels"] = {OWNER_LABEL: owner}
    project.write()


def _compose(project: ComposeProject, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose -p NAME ARGS`` in the project's directory: compose's own lookup,
    so ``docker-compose.override.yml`` is read beside ``docker-compose.yml``."""
    result = subprocess.run(
        [project.compose, "-p", project.name, *args], env=project.env(), cwd=project.work_dir,
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert 0 == result.returncode, result.stderr
    return result


def test_the_traefik_file_guide_from_script_to_first_deploy_under_load(
    stack_factory: StackFactory,
    traefik_factory: TraefikFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    app_images: dict[str, str],
    capsys: Any,
) -> None:
    """The imported labels reproduce the file's routing through the provider, and the first
    deploy after the migration moves web to v2 with 0 failed requests through Traefik."""
    prefix = f"bg{secrets.token_hex(4)}"
    project = compose_factory.create()
    _before(project, prefix, app_images["v1"], containers.owner)
    config = project.work_dir / "dynamic-config.yml"
    config.write_text(DYNAMIC_CONFIG.format(**project.ports))
    _compose(project, "up", "-d")
    before = traefik_factory.start(file_path=config, log_level="INFO")
    before.wait_response(host="web.test", body=body_of("blue"), timeout=30)
    baseline = _script_switch(before, config, project.ports)

    # 1. Import (the guide's command; --compose-service since the URLs are addresses).
    imported = project.bluegreen(
        "import", "traefik-file", "dynamic-config.yml", "--format", "compose-override",
        "--compose-service", "{service}-{color}", "--label-prefix", prefix, url="unused",
    )  # fmt: skip
    assert 0 == imported.returncode, explain(imported)
    (project.work_dir / "docker-compose.override.yml").write_text(imported.stdout)
    assert "#   remove  --providers.file.filename and --providers.file.watch" in imported.stdout
    assert "note: web: green is live now (router web)" in imported.stderr.splitlines()
    # 2. Labels on both colors; 3. the provider (after: it adopts blue, both being ready),
    # the guide's `bluegreen switch web green` (the file had green live), Traefik.
    _compose(project, "up", "-d")
    _wait_labelled_and_healthy(project, prefix, containers)
    stack = stack_factory.start(service="web", label_prefix=prefix)
    stack.provider.wait_active("web", "blue")
    switched = project.bluegreen("switch", "web", "green", url=stack.provider.url,
                                 token=stack.provider.token)  # fmt: skip
    assert 0 == switched.returncode, explain(switched)
    wait_stably_serving(stack, "green")
    before.stop()
    router = stack.traefik.wait_router("web@http")
    assert ("Host(`web.test`)", ["web"]) == (router["rule"], router["entryPoints"])

    # 4. The first deploy, under load (compose's own lookup: -p only).
    with stack.load(concurrency=8, max_duration=120.0) as load:
        load.wait_requests(50, timeout=10)
        deployed = project.bluegreen(
            "deploy", "web", "-p", project.name, "--image", V2_IMAGE, "--drain", "2",
            url=stack.provider.url, token=stack.provider.token, timeout=180,
        )  # fmt: skip
        assert 0 == deployed.returncode, explain(deployed)
        done = time.monotonic()
        load.wait_for(
            "2 s of traffic after the deploy",
            lambda samples: bool(samples) and samples[-1].start > done + 2.0,
            timeout=15,
        )
    summary = load.result.summary()
    with capsys.disabled():
        print(f"\nbaseline, the script's switch (file rewritten): {baseline.summary().format()}")
        print(f"first deploy after the traefik-file migration: {summary.format()}")
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    assert {body_of("blue"), body_of("green")} == set(load.result.bodies()), summary.format()
    assert summary.total > 200, summary.format()
    assert "v2\n" == http_get(project.ports["blue"], "/version").body
    assert "blue" == stack.provider.active("web")


def _script_switch(before: TraefikProcess, config: Path, ports: dict[str, int]) -> LoadResult:
    """The baseline: the script's switch to green under load, as its heredoc does it
    (``cat > dynamic-config.yml``: truncate, then write), through the file provider."""
    green = DYNAMIC_CONFIG.replace('service: "web-blue"', 'service: "web-green"')
    with BackgroundLoad(before.web_url + "/", host="web.test", concurrency=8,
                        max_duration=60.0) as load:  # fmt: skip
        load.wait_requests(50, timeout=10)
        with open(config, "w") as handle:
            handle.write(green.format(**ports))
        changed = time.monotonic()
        load.wait_for("3 s after the rewrite",
                      lambda s: bool(s) and s[-1].start > changed + 3.0, timeout=20)  # fmt: skip
    assert body_of("green") in load.result.bodies()  # the switch happened
    return load.result


def _wait_labelled_and_healthy(
    project: ComposeProject, prefix: str, containers: ContainerFactory
) -> None:
    """Both colors recreated with the override's labels, and healthy."""
    for color in ("blue", "green"):
        (cid,) = _compose(project, "ps", "-q", f"web-{color}").stdout.split()
        inspect = project.daemon.docker("inspect", "-f", "{{json .Config.Labels}}", cid).stdout
        labels = yaml.safe_load(inspect)
        assert ("web", color) == (labels[f"{prefix}.service"], labels[f"{prefix}.color"])
        containers.wait_health(cid, "healthy", timeout=30)
