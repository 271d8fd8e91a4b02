"""``bluegreen canary`` for real: the real Docker Engine, Debian's ``docker-compose`` (v1),
a ``bluegreen serve`` subprocess reading the real Traefik's Prometheus metrics, and the
CLI as a subprocess, as a user runs it. Traffic only to 127.0.0.1, bounded in count and time.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.canary_stack import start_app, wait_children
from tests.testbed.compose import ComposeFactory, ComposeProject, build_app_image
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import Stack, body_of
from tests.testbed.traefik import TraefikFactory
from tests.traefik.test_deploy import compose_factory, explain

__all__ = ["compose_factory"]  # the fixture, shared with test_deploy.py

GOOD_IMAGE = "bgtest-app:v2"
FAILING_IMAGE = "bgtest-app:fail"
CLI_TIMEOUT_S = 150.0


@pytest.fixture(scope="session")
def canary_images(docker_daemon: DockerDaemon, busybox_image: str) -> dict[str, str]:
    """v1 (plain busybox), a good v2, and one that gets healthy but answers 500."""
    return {
        "v1": busybox_image,
        "good": build_app_image(docker_daemon, GOOD_IMAGE, {"APP_VERSION": "v2"}),
        "failing": build_app_image(
            docker_daemon, FAILING_IMAGE, {"APP_VERSION": "fail", "APP_FAIL": "1"}
        ),
    }


def _canary(stack: Stack, project: ComposeProject, image: str) -> subprocess.CompletedProcess[str]:
    return project.bluegreen(
        "canary",
        "web",
        "--image",
        image,
        "--steps",
        "20,50,100",
        "--interval",
        "2s",
        "--max-error-rate",
        "1%",
        "--min-requests",
        "20",
        "--timeout",
        "60",
        *project.compose_args(),
        url=stack.provider.url,
        token=stack.provider.token,
        timeout=CLI_TIMEOUT_S,
    )


def _states(docker: DockerDaemon, project: ComposeProject, color: str) -> list[str]:
    out = []
    for cid in project.container_ids(f"web-{color}"):
        state = json.loads(docker.docker("inspect", cid).stdout)[0]["State"]
        out.append(str(state["Status"]))
    return out


def test_canary_of_a_good_image_is_promoted_with_zero_failed_requests(
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
    containers: ContainerFactory,
    compose_factory: ComposeFactory,
    canary_images: dict[str, str],
    docker_daemon: DockerDaemon,
) -> None:
    """`bluegreen canary --image good`: 20 %, 50 %, then the switch (exit 0); no request
    of a bounded loopback load fails; green serves, blue is ``previous`` and still runs."""
    stack, project = start_app(
        provider_factory, traefik_factory, containers, compose_factory, canary_images["v1"]
    )
    with stack.load(concurrency=4, max_duration=120, max_requests=60_000) as load:
        result = _canary(stack, project, GOOD_IMAGE)
        stack.wait_serving("green")
    samples = load.stop()
    assert 0 == result.returncode, explain(result)
    assert "canary promoted web: blue → green" in result.stdout, explain(result)
    assert [] == [s.describe() for s in samples.failures()[:20]]
    assert {body_of("blue"), body_of("green")} == {s.body for s in samples.samples}
    status = stack.provider.status("web")
    assert ("green", "blue", "promoted") == (
        status["active"],
        status["previous"],
        status["canary"]["phase"],
    )
    assert [20, 50] == [r["weight"] for r in status["canary"]["results"]]
    assert ["running"] == _states(docker_daemon, project, "blue")
    reasons = [h["reason"] for h in stack.provider.history("web")]
    assert "canary" == reasons[-1]


def test_canary_of_a_failing_image_is_aborted_and_its_containers_stopped(
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
    containers: ContainerFactory,
    compose_factory: ComposeFactory,
    canary_images: dict[str, str],
    docker_daemon: DockerDaemon,
) -> None:
    """`bluegreen canary --image failing` (healthy, but 500 on /): aborted at the first
    step (exit 1), green's containers stopped, blue untouched and serving everything;
    only green's share ever failed."""
    stack, project = start_app(
        provider_factory, traefik_factory, containers, compose_factory, canary_images["v1"]
    )
    with stack.load(concurrency=4, max_duration=120, max_requests=60_000) as load:
        result = _canary(stack, project, FAILING_IMAGE)
        wait_children(stack, [("web-blue", 1)])
    samples = load.stop()
    assert 1 == result.returncode, explain(result)
    assert "aborted" in result.stderr + result.stdout, explain(result)
    status = stack.provider.status("web")
    assert ("blue", "aborted") == (status["active"], status["canary"]["phase"])
    assert [(0, "breach")] == [(r["step"], r["verdict"]) for r in status["canary"]["results"]]
    assert ["exited"] == _states(docker_daemon, project, "green")
    assert ["running"] == _states(docker_daemon, project, "blue")
    stack.wait_serving("blue")
    failed = [s for s in samples.samples if s.status != 200]
    assert {500} >= {s.status for s in failed}, [s.describe() for s in failed[:10]]
    assert {body_of("blue")} == {s.body for s in samples.samples if s.status == 200}
    assert len(failed) < len(samples.samples) // 2  # green's 20 % share, never blue's
    reasons = [h["reason"] for h in stack.provider.history("web")]
    assert "canary-abort" in reasons and "canary" not in reasons
