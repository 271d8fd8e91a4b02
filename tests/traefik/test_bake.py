"""``bluegreen deploy --bake`` for real: a bake after the flip, judged by Traefik's metrics.

The real Docker Engine, Debian's ``docker-compose`` (v1), a ``bluegreen serve``
subprocess reading the real Traefik's Prometheus metrics, and the CLI as a
subprocess. A release whose ``/`` answers 500 to about 20 % of requests is switched
back to the warm old color by the provider and the deploy fails; a good release
bakes, then the old color is drained and stopped. Load only to 127.0.0.1, bounded.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.canary_stack import start_app, start_stack
from tests.testbed.compose import ComposeFactory, ComposeProject, build_app_image
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import Stack, body_of
from tests.testbed.traefik import TraefikFactory
from tests.traefik.test_deploy import compose_factory, explain

__all__ = ["compose_factory"]  # the fixture, shared with test_deploy.py

GOOD_IMAGE = "bgtest-app:v2"
FLAKY_IMAGE = "bgtest-app:fail20"
CLI_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def bake_images(docker_daemon: DockerDaemon, busybox_image: str) -> dict[str, str]:
    """v1 (plain busybox), a good v2, and one that answers 500 to ~20 % of ``/``."""
    return {
        "v1": busybox_image,
        "good": build_app_image(docker_daemon, GOOD_IMAGE, {"APP_VERSION": "v2"}),
        "flaky": build_app_image(
            docker_daemon, FLAKY_IMAGE, {"APP_VERSION": "fail20", "APP_FAIL_PERCENT": "20"}
        ),
    }


def deploy_with_bake(
    stack: Stack, project: ComposeProject, image: str, bake: str
) -> subprocess.CompletedProcess[str]:
    return project.bluegreen(
        "deploy",
        "web",
        "--image",
        image,
        "--bake",
        bake,
        "--bake-interval",
        "2s",
        "--bake-min-requests",
        "20",
        "--drain-timeout",
        "5",
        *project.compose_args(),
        url=stack.provider.url,
        token=stack.provider.token,
        timeout=CLI_TIMEOUT_S,
    )


def states(docker: DockerDaemon, project: ComposeProject, color: str) -> list[str]:
    out = []
    for cid in project.container_ids(f"web-{color}"):
        state = json.loads(docker.docker("inspect", cid).stdout)[0]["State"]
        out.append(str(state["Status"]))
    return out


def test_a_bad_release_is_switched_back_by_its_bake(
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
    containers: ContainerFactory,
    compose_factory: ComposeFactory,
    bake_images: dict[str, str],
    docker_daemon: DockerDaemon,
) -> None:
    """Green answers 500 to ~20 %: within its first windows the provider switches back to
    the warm blue (reason bake-revert), green is marked rejected, the deploy exits 1 with
    the figures, blue never stopped and serves again through Traefik."""
    stack, project = start_app(
        provider_factory, traefik_factory, containers, compose_factory, bake_images["v1"]
    )
    with stack.load(concurrency=4, max_duration=100, max_requests=50_000) as load:
        result = deploy_with_bake(stack, project, FLAKY_IMAGE, "40s")
        stack.wait_serving("blue")
    samples = load.stop()
    assert 1 == result.returncode, explain(result)
    assert "the bake reverted the release: error rate" in result.stderr, explain(result)
    assert "blue serves again; green is marked rejected" in result.stderr, explain(result)
    status = stack.provider.status("web")
    assert ("blue", "rejected", "reverted") == (
        status["active"],
        status["marks"]["green"]["kind"],
        status["bake"]["phase"],
    )
    assert status["bake"]["figures"]["errors"] > 0
    assert "bake-revert" == stack.provider.history("web")[-1]["reason"]
    assert ["running"] == states(docker_daemon, project, "blue")
    failed = samples.failures()
    assert failed, "the flaky release never answered 500 through Traefik"
    assert {500} == {s.status for s in failed}
    assert {body_of("blue"), body_of("green")} >= {s.body for s in samples.samples if s.ok}


def test_a_good_release_bakes_then_the_old_color_drains(
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
    containers: ContainerFactory,
    compose_factory: ComposeFactory,
    bake_images: dict[str, str],
    docker_daemon: DockerDaemon,
) -> None:
    """A good release bakes 6 s under load (blue kept running meanwhile), the bake passes,
    then blue is drained and stopped; no request fails."""
    stack, project = start_app(
        provider_factory, traefik_factory, containers, compose_factory, bake_images["v1"]
    )
    with stack.load(concurrency=4, max_duration=100, max_requests=50_000) as load:
        result = deploy_with_bake(stack, project, GOOD_IMAGE, "6s")
    samples = load.stop()
    assert 0 == result.returncode, explain(result)
    out = result.stdout
    assert "baking green for 6s (blue kept warm" in out, explain(result)
    assert out.index("bake passed") < out.index("draining blue"), explain(result)
    status = stack.provider.status("web")
    assert ("green", "passed") == (status["active"], status["bake"]["phase"])
    assert status["bake"]["judged"] >= 1
    assert ["exited"] == states(docker_daemon, project, "blue")
    assert [] == [s.describe() for s in samples.failures()[:20]]


def test_the_bake_label_reverts_an_automatic_promotion(
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
    containers: ContainerFactory,
    compose_factory: ComposeFactory,
    bake_images: dict[str, str],
    docker_daemon: DockerDaemon,
) -> None:
    """The colors carry ``bluegreen.bake=30s`` (interval 2 s): a plain ``deploy`` of the
    flaky release is promoted by the provider, which bakes it itself; the CLI follows the
    bake instead of draining blue, and exits 1 once the provider switched back."""
    stack = start_stack(provider_factory, traefik_factory, containers)
    project = compose_factory.create()
    labels = {f"{stack.prefix}.bake": "30s", f"{stack.prefix}.bake-interval": "2s"}
    project.add_app(
        prefix=stack.prefix,
        service="web",
        default_image=bake_images["v1"],
        owner=containers.owner,
        extra_labels=labels,
    )
    stack.provider.wait_ready()
    project.up("web-blue")
    stack.provider.wait_active("web", "blue")
    stack.wait_serving("blue")
    with stack.load(concurrency=4, max_duration=100, max_requests=50_000):
        result = project.bluegreen(
            "deploy",
            "web",
            "--image",
            FLAKY_IMAGE,
            *project.compose_args(),
            url=stack.provider.url,
            token=stack.provider.token,
            timeout=CLI_TIMEOUT_S,
        )
        stack.wait_serving("blue")
    assert 1 == result.returncode, explain(result)
    # The CLI follows the label's bake; under load the revert can come before Traefik
    # applied the promotion, and the CLI says that instead (deploy/old_color.py).
    followed = "baking green for 30s (blue kept warm" in result.stdout
    assert followed or "before Traefik applied it" in result.stderr, explain(result)
    assert "the bake reverted the release" in result.stderr, explain(result)
    status = stack.provider.status("web")
    assert ("blue", "reverted", "watcher") == (
        status["active"],
        status["bake"]["phase"],
        status["bake"]["actor"],
    )
    assert ["running"] == states(docker_daemon, project, "blue")
