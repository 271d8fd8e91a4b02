"""Gates before the flip for real: ``bluegreen.smoke`` checks sent through Traefik's preview route.

The real Docker Engine, Debian's ``docker-compose`` (v1), a ``bluegreen serve``
subprocess with ``--smoke-url`` pointing at the real Traefik's entrypoint; the CLI runs as
a subprocess. Green's label is ``/=200:green``: only green answers ``green``, so a check
that passes went through Traefik's preview router to the candidate, not to live blue.
Load only to 127.0.0.1, bounded in count and time.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from tests.testbed.compose import ComposeFactory, build_app_image
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.stack import POLL_INTERVAL, THROTTLE, Stack, StackFactory, body_of
from tests.traefik.test_deploy import V2_IMAGE, App, app_images, compose_factory, explain

__all__ = ["app_images", "compose_factory"]  # fixtures shared with test_deploy.py

FAILING_IMAGE = "bgtest-app:fail"
SMOKE = "/=200:green"


def gated_app(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    image: str,
    *,
    smoke: str | None = SMOKE,
    provider_args: tuple[str, ...] = (),
    **project_options: Any,
) -> App:
    """Blue serving; green carries ``bluegreen.smoke`` (unless ``smoke`` is None); the
    provider sends checks to Traefik.

    Traefik starts first, so that the provider can be told its entrypoint's address.
    """
    prefix = f"bg{secrets.token_hex(4)}"
    provider = stack_factory.providers.create(label_prefix=prefix)
    traefik = stack_factory.traefiks.start(
        http_endpoint=provider.traefik_endpoint,
        poll_interval=POLL_INTERVAL,
        throttle=THROTTLE,
        log_level="INFO",
    )
    provider.extra_args += ["--smoke-url", traefik.web_url, "--smoke-timeout", "30"]
    provider.extra_args += list(provider_args)
    provider.start()
    stack = Stack(provider, traefik, containers, service="web")
    project = compose_factory.create()
    project.add_app(
        prefix=prefix,
        service="web",
        default_image=image,
        owner=containers.owner,
        **project_options,
    )
    if smoke is not None:
        project.services["web-green"]["labels"][f"{prefix}.smoke"] = smoke
        project.write()
    provider.wait_ready()
    project.up("web-blue")
    provider.wait_routable("web", "blue")
    provider.wait_active("web", "blue")
    stack.wait_serving("blue")
    return App(stack, project, docker_daemon)


def smoke_gate_lines(app: App) -> list[dict[str, object]]:
    """The provider's ``smoke_gate`` log lines (one per generation checked)."""
    lines = app.stack.provider.log_path.read_text().splitlines()
    docs = [json.loads(line) for line in lines if line.startswith("{")]
    return [doc for doc in docs if doc.get("event") == "smoke_gate"]


def test_a_release_whose_smoke_path_answers_500_never_gets_public_traffic(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """The new image is healthy but answers ``/`` with 500: the gate fails, the deploy exits
    1 naming the check with its status and first bytes, the new green is stopped, and
    through Traefik every request under load is answered by blue; none fails."""
    failing = build_app_image(
        docker_daemon, FAILING_IMAGE, {"APP_VERSION": "fail", "APP_FAIL": "1"}
    )
    app = gated_app(stack_factory, compose_factory, containers, docker_daemon, app_images["v1"])
    with app.stack.load(concurrency=8, max_duration=120.0) as load:
        load.wait_requests(50, timeout=10)
        result = app.deploy("--image", failing, "--drain", "0.5")
        done = time.monotonic()
        load.wait_for(
            "1 s of traffic after the deploy",
            lambda samples: bool(samples) and samples[-1].start > done + 1.0,
            timeout=15,
        )
    summary = load.result.summary()
    assert 1 == result.returncode, explain(result)
    named = "the gate before the flip failed: smoke check failed: GET / (expected 200 containing "
    assert named + "'green') answered 500: 'fail" in result.stderr, explain(result)
    assert "blue keeps serving; the new green containers were stopped" in result.stderr
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    assert {body_of("blue")} == set(load.result.bodies()), summary.format()
    assert summary.total > 100, summary.format()
    status = app.stack.provider.status("web")
    assert "blue" == status["active"]
    assert status["last_switch"] is None, status["last_switch"]
    assert ["exited"] == app.states("green")
    gates = smoke_gate_lines(app)
    assert [(False, "green")] == [(g["passed"], g["color"]) for g in gates], gates


def test_a_release_whose_smoke_checks_pass_is_promoted(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """A good image: the check reaches green through Traefik's preview route (only green
    answers ``green``), the gate passes, the provider promotes, the deploy exits 0."""
    app = gated_app(stack_factory, compose_factory, containers, docker_daemon, app_images["v1"])
    result = app.deploy("--image", V2_IMAGE, "--drain", "0.5")

    assert 0 == result.returncode, explain(result)
    assert "switched web: blue → green (auto-promote by watcher)" in result.stdout, explain(result)
    app.stack.wait_serving("green")
    assert "green" == app.stack.provider.active("web")
    gates = smoke_gate_lines(app)
    assert [(True, "green")] == [(g["passed"], g["color"]) for g in gates], gates


def test_deploy_smoke_whose_path_answers_500_never_gets_public_traffic(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """No label in the compose file: ``deploy --smoke`` gives the new green its checks (a
    compose override, the file untouched). The new image answers ``/`` with 500: the deploy
    exits 1 naming the check, and under load no public request is answered by green."""
    failing = build_app_image(
        docker_daemon, FAILING_IMAGE, {"APP_VERSION": "fail", "APP_FAIL": "1"}
    )
    app = gated_app(
        stack_factory, compose_factory, containers, docker_daemon, app_images["v1"], smoke=None
    )
    before = app.project.file.read_text()
    with app.stack.load(concurrency=8, max_duration=120.0) as load:
        load.wait_requests(50, timeout=10)
        result = app.project.bluegreen(
            "deploy", "web", *app.project.compose_args(), "--image", failing,
            "--smoke", SMOKE, "--drain", "0.5", url=app.stack.provider.url,
            token=app.stack.provider.token, extra_env={"BLUEGREEN_LABEL_PREFIX": app.stack.prefix},
        )  # fmt: skip
        done = time.monotonic()
        load.wait_for(
            "1 s of traffic after the deploy",
            lambda samples: bool(samples) and samples[-1].start > done + 1.0,
            timeout=15,
        )
    summary = load.result.summary()
    assert 1 == result.returncode, explain(result)
    named = "the gate before the flip failed: smoke check failed: GET / (expected 200 containing "
    assert named + "'green') answered 500: 'fail" in result.stderr, explain(result)
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    assert {body_of("blue")} == set(load.result.bodies()), summary.format()
    assert summary.total > 100, summary.format()
    assert "blue" == app.stack.provider.active("web")
    assert ["exited"] == app.states("green")
    (cid,) = app.project.container_ids("web-green")
    labels = json.loads(app.docker.docker("inspect", cid).stdout)[0]["Config"]["Labels"]
    assert [SMOKE] == [v for k, v in labels.items() if k.endswith(".smoke")], labels
    assert before == app.project.file.read_text()
    gates = smoke_gate_lines(app)
    assert [(False, "green")] == [(g["passed"], g["color"]) for g in gates], gates
