"""``bluegreen deploy --release`` for real: the release step before the new color starts.

The real Docker Engine, Debian's ``docker-compose`` (v1), a ``bluegreen serve``
subprocess and the real Traefik in front; the CLI runs as a subprocess. Load only to
127.0.0.1, bounded in count and time.
"""

from __future__ import annotations

import json
import os
import signal
import time

from tests.testbed.compose import ComposeFactory
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.stack import StackFactory, body_of
from tests.traefik.test_deploy import (
    V2_IMAGE,
    App,
    app,
    app_images,
    compose_factory,
    deploy_in_background,
    explain,
    make_app,
    read_until,
)
from tests.waiting import wait_until

__all__ = ["app", "app_images", "compose_factory"]  # fixtures shared with test_deploy.py


def one_offs(app: App) -> list[str]:
    """Names of the project's one-off (``compose run``) containers, running or not."""
    out = app.docker.docker(
        "ps", "-a", "--filter", "label=com.docker.compose.oneoff=True", "--format", "{{.Names}}"
    ).stdout
    return out.split()


def wait_until_running(app: App) -> None:
    """Until the release step's one-off container runs (bounded: 60 s)."""
    wait_until("the one-off container runs", lambda: bool(one_offs(app)), timeout=60)


def test_a_failing_release_step_stops_the_deploy_under_load(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """The step exits 3: deploy exits 1 showing the step's last lines; green is not
    recreated; through Traefik every request is answered by blue and none fails."""
    app = make_app(stack_factory, compose_factory, containers, docker_daemon, app_images["v1"])
    green_before = app.project.container_ids("web-green")
    step = "sh -c 'echo migrating to $APP_VERSION; echo boom: column exists; exit 3'"
    with app.stack.load(concurrency=8, max_duration=90.0) as load:
        load.wait_requests(50, timeout=10)
        result = app.deploy("--image", V2_IMAGE, "--release", step)
        done = time.monotonic()
        load.wait_for(
            "1 s of traffic after the deploy",
            lambda samples: bool(samples) and samples[-1].start > done + 1.0,
            timeout=15,
        )
    summary = load.result.summary()
    assert 1 == result.returncode, explain(result)
    assert f"the release step `{step}` exited 3 after" in result.stderr, explain(result)
    assert "    | migrating to v2\n    | boom: column exists\n" in result.stderr
    assert "Nothing of the new green was started (its old containers are stopped)" in result.stderr
    assert "did not record" not in result.stdout, explain(result)
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    assert {body_of("blue")} == set(load.result.bodies()), summary.format()
    assert green_before == app.project.container_ids("web-green")
    assert app_images["v1"] == app.image_of("green")
    assert "blue" == app.stack.provider.active("web")
    assert [] == one_offs(app)
    assert summary.total > 100, summary.format()


def test_the_release_label_runs_with_the_new_image_and_the_idle_colors_environment(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """The idle color's ``bluegreen.release`` label is the default step: it sees the new
    image's APP_VERSION and the color's COLOR (``set`` prints them); then the deploy
    goes on and switches."""
    app = make_app(stack_factory, compose_factory, containers, docker_daemon, app_images["v1"])
    label = f"{app.stack.prefix}.release"
    app.project.services["web-green"]["labels"][label] = "sh -c set"
    app.project.write()
    env = {"BLUEGREEN_LABEL_PREFIX": app.stack.prefix}
    result = app.project.bluegreen(
        "deploy", "web", *app.project.compose_args(), "--image", V2_IMAGE, "--drain", "0.5",
        url=app.stack.provider.url, token=app.stack.provider.token, extra_env=env,
    )  # fmt: skip

    assert 0 == result.returncode, explain(result)
    assert "release step: sh -c set (in a one-off web-green" in result.stdout
    assert "    | APP_VERSION='v2'\n" in result.stderr, explain(result)
    assert "    | COLOR='green'\n" in result.stderr, explain(result)
    assert "release step done in " in result.stdout
    started = result.stdout.index("release step done")
    assert started < result.stdout.index("compose started web-green"), result.stdout
    app.stack.wait_serving("green")
    assert "green" == app.stack.provider.active("web")
    assert [] == one_offs(app)


def test_a_release_step_past_its_timeout_is_removed(app: App) -> None:
    """--release-timeout: the step is stopped and its container removed; exit 1, blue serves."""
    result = app.deploy("--image", V2_IMAGE, "--release", "sleep 60", "--release-timeout", "2")

    assert 1 == result.returncode, explain(result)
    assert "the release step `sleep 60` did not finish within 2s" in result.stderr
    assert [] == one_offs(app)
    assert body_of("blue") == app.served()
    status = json.loads(app.cli("status", "web", "--json").stdout)
    assert "blue" == status["active"]


def test_ctrl_c_during_the_release_step_removes_its_container(app: App) -> None:
    """Ctrl-C while the step runs: exit 130, the one-off container removed, blue served."""
    with deploy_in_background(app, "--image", V2_IMAGE, "--release", "sleep 120") as proc:
        seen = read_until(proc, "release step: sleep 120", 90)
        wait_until_running(app)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert 130 == proc.returncode, "".join(seen) + out + err
    assert "interrupted" in err
    assert [] == one_offs(app)
    assert body_of("blue") == app.served()
    assert "blue" == app.stack.provider.active("web")
