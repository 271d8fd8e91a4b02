"""docs/stateful-shared-volume.md, followed: from one data volume shared by both colors to one
per color, copied from the live color, then the first deploy.

"Before" is blog 003's Grafana layout: ``grafana-blue`` and ``grafana-green`` mount one
volume ``storage``, so both versions open one SQLite file. The guide's change: blue keeps
``storage``, green gets ``storage-green``; before each deploy the live color's data is
copied to the idle color's volume by a throwaway container while the live color keeps
serving (the guide's SQLite form is ``sqlite3 .backup``, a consistent online copy; the
test's data is a plain file, so ``cp``). Never ``docker pause`` the live color for it: the
provider takes a paused container out of its color (a first run of this test that paused
blue had 316 of 3737 requests answered 503 and the idle color promoted).
Real engine, compose (v1) and Traefik, under load: no request fails, green starts with
blue's data, and blue's volume keeps its own (what a rollback returns to).
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from tests.testbed.compose import APP_SCRIPT, ComposeFactory, ComposeProject
from tests.testbed.containers import ContainerFactory
from tests.testbed.stack import StackFactory, body_of
from tests.testbed.traefik import http_get
from tests.traefik.layouts import tolerant
from tests.traefik.test_deploy import (
    V2_IMAGE,
    app_images,
    compose_factory,
    explain,
    wait_stably_serving,
)

__all__ = ["app_images", "compose_factory"]  # fixtures, re-used

SERVE_DATA = "ln -s /data /tmp/www/data\nexec httpd"


def _write(project: ComposeProject, volumes: dict[str, str]) -> None:
    """The compose file with each color's data volume (``volumes``: color → volume)."""
    for color, volume in volumes.items():
        definition = tolerant(project.services[f"web-{color}"])
        definition["command"][-1] = APP_SCRIPT.replace("exec httpd", SERVE_DATA)
        definition["volumes"] = [f"{volume}:/data"]
    doc = {"services": project.services, "volumes": {v: {} for v in set(volumes.values())}}
    project.file.write_text(yaml.safe_dump(doc, sort_keys=True))


def _copy(project: ComposeProject, image: str, source: str, target: str) -> None:
    """The guide's copy: one throwaway container with both volumes."""
    project.daemon.docker(
        "run", "--rm", "-v", f"{project.name}_{source}:/from:ro",
        "-v", f"{project.name}_{target}:/to", image,
        "sh", "-c", "rm -rf /to/* && cp -a /from/. /to/",
    )  # fmt: skip


def test_the_stateful_guide_gives_each_color_its_data_and_deploys_under_load(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    app_images: dict[str, str],
    capsys: Any,
) -> None:
    """Shared: green sees blue's writes at once. Per color, copied while blue is paused:
    green starts with blue's data, later writes stay apart, 0 failed requests."""
    stack = stack_factory.start(service="web")
    project = compose_factory.create()
    project.add_app(prefix=stack.prefix, service="web", default_image=app_images["v1"],
                    owner=containers.owner, per_color_image=True)  # fmt: skip
    _write(project, {"blue": "storage", "green": "storage"})  # before: one shared volume
    project.up("web-blue")
    stack.provider.wait_active("web", "blue")
    project.run("exec", "-T", "web-blue", "sh", "-c", "echo dashboards-v1 > /data/state.txt")
    project.up("web-green")
    stack.provider.wait_routable("web", "green", timeout=60)
    green = project.ports["green"]
    assert "dashboards-v1\n" == http_get(green, "/data/state.txt").body  # one file, two versions

    _write(project, {"blue": "storage", "green": "storage-green"})  # the guide's change
    project.up("web-green")  # only green's definition changed: blue is not recreated
    stack.provider.wait_active("web", "green", timeout=60)  # a new generation: promoted
    assert 404 == http_get(green, "/data/state.txt").status
    assert 200 == stack.provider.switch("web", "blue").status
    wait_stably_serving(stack, "blue")

    with stack.load(concurrency=8, max_duration=120.0) as load:
        load.wait_requests(50, timeout=10)
        _copy(project, app_images["v1"], "storage", "storage-green")  # blue keeps serving
        deployed = project.bluegreen(
            "deploy", "web", *project.compose_args(), "--image", V2_IMAGE, "--drain", "2",
            url=stack.provider.url, token=stack.provider.token, timeout=180,
        )  # fmt: skip
        assert 0 == deployed.returncode, explain(deployed)
        done = time.monotonic()
        load.wait_for("2 s after the deploy",
                      lambda s: bool(s) and s[-1].start > done + 2.0, timeout=15)  # fmt: skip
    summary = load.result.summary()
    with capsys.disabled():
        print(f"\nfirst deploy after the shared-volume migration: {summary.format()}")
    failures = load.result.failures()
    assert [] == [s.describe() for s in failures[:3] + failures[-3:]], (
        f"{summary.format()}\n{explain(deployed)}"
    )
    assert {body_of("blue"), body_of("green")} == set(load.result.bodies()), summary.format()
    through_traefik = stack.traefik.request("/data/state.txt", host=stack.host)
    assert (200, "dashboards-v1\n") == (through_traefik.status, through_traefik.body)
    project.run("exec", "-T", "web-green", "sh", "-c", "echo dashboards-v2 > /data/state.txt")
    project.run("start", "web-blue")  # what a rollback starts: blue's own, older data
    assert "dashboards-v1\n" == http_get(project.ports["blue"], "/data/state.txt").body
