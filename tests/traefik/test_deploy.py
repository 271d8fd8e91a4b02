"""``bluegreen deploy`` / ``rollback`` / ``switch --force`` for real.

A ``bluegreen serve`` subprocess watches the private test ``dockerd``; real
Traefik polls it; Debian's ``docker-compose`` (v1) runs the app's
``web-blue`` / ``web-green`` services from a test compose file (host network,
127.0.0.1 ports, locally imported busybox images with a real HEALTHCHECK).
The CLI runs as a subprocess, as a user would run it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.testbed.compose import ComposeFactory, ComposeProject, build_app_image
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.stack import Stack, StackFactory, body_of
from tests.testbed.traefik import http_get

V2_IMAGE = "bgtest-app:v2"
BROKEN_IMAGE = "bgtest-app:broken"
CLI_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def app_images(docker_daemon: DockerDaemon, busybox_image: str) -> dict[str, str]:
    """The v1 image (plain busybox), a v2 and a never-healthy one."""
    return {
        "v1": busybox_image,
        "v2": build_app_image(docker_daemon, V2_IMAGE, {"APP_VERSION": "v2"}),
        "broken": build_app_image(
            docker_daemon, BROKEN_IMAGE, {"APP_VERSION": "broken", "APP_BROKEN": "1"}
        ),
    }


@pytest.fixture
def compose_factory(
    docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeFactory]:
    """Compose projects, each taken down (``docker-compose down``) at teardown."""
    factory = ComposeFactory(docker_daemon, tmp_path_factory.mktemp("compose"))
    try:
        yield factory
    finally:
        errors = factory.down_all()
        if errors:
            raise RuntimeError("\n".join(errors))


@dataclass
class App:
    """One service ``web``: provider + Traefik (``stack``) and its compose project."""

    stack: Stack
    project: ComposeProject
    docker: DockerDaemon

    def cli(
        self, *argv: str, token: str | None = "default", timeout: float = CLI_TIMEOUT_S
    ) -> subprocess.CompletedProcess[str]:
        sent = self.stack.provider.token if token == "default" else token
        return self.project.bluegreen(
            *argv, url=self.stack.provider.url, token=sent, timeout=timeout
        )

    def deploy(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli("deploy", "web", *self.project.compose_args(), *extra)

    def states(self, color: str) -> list[str]:
        """Docker's state of each of ``color``'s compose containers."""
        out = []
        for cid in self.project.container_ids(f"web-{color}"):
            state = json.loads(self.docker.docker("inspect", cid).stdout)[0]["State"]
            out.append(str(state["Status"]))
        return out

    def image_of(self, color: str) -> str:
        (cid,) = self.project.container_ids(f"web-{color}")
        return str(json.loads(self.docker.docker("inspect", cid).stdout)[0]["Config"]["Image"])

    def served(self) -> str:
        answer = self.stack.traefik.request(host=self.stack.host)
        return answer.body if answer.status == 200 else f"<{answer.status}>"

    def version(self, color: str) -> str:
        return http_get(self.project.ports[color], "/version").body


def explain(result: subprocess.CompletedProcess[str]) -> str:
    out, err = result.stdout, result.stderr
    return f"exit {result.returncode}\n--- stdout ---\n{out}\n--- stderr ---\n{err}"


def make_app(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    image: str,
    *,
    colors: tuple[str, ...] = ("blue", "green"),
    provider_args: tuple[str, ...] = (),
    **project_options: Any,
) -> App:
    """Provider + Traefik + compose project; ``colors`` are started (blue first) and served."""
    stack = stack_factory.start(service="web", extra_args=provider_args)
    project = compose_factory.create()
    project.add_app(
        prefix=stack.prefix,
        service="web",
        default_image=image,
        owner=containers.owner,
        **project_options,
    )
    app = App(stack, project, docker_daemon)
    stack.provider.wait_ready()
    if "blue" in colors:
        project.up("web-blue")
        stack.provider.wait_routable("web", "blue")
        stack.provider.wait_active("web", "blue")
        stack.wait_serving("blue")
    if "green" in colors:
        # Created after the provider saw blue, green is a new generation and gets
        # promoted; switch back so every test starts from blue serving, green idle.
        project.up("web-green")
        stack.provider.wait_active("web", "green")
        answer = stack.provider.switch("web", "blue")
        assert 200 == answer.status, answer.body
        stack.provider.wait_active("web", "blue")
        wait_stably_serving(stack, "blue")
    return app


def wait_stably_serving(stack: Stack, color: str, hold: float = 1.0, timeout: float = 15) -> None:
    """Poll through Traefik until every answer for ``hold`` seconds is ``color``.

    After a quick green-then-blue flip, Traefik may apply the green config late;
    one blue answer is not proof that it will stay blue.
    """
    deadline = time.monotonic() + timeout
    since: float | None = None
    for _ in range(int(timeout / 0.05) + 1):
        now = time.monotonic()
        answer = stack.traefik.request(host=stack.host, timeout=2.0)
        if answer.status == 200 and answer.body == body_of(color):
            since = now if since is None else since
            if now - since >= hold:
                return
        else:
            since = None
        if now > deadline:
            break
        time.sleep(0.05)
    raise TimeoutError(f"Traefik did not serve {color} steadily for {hold}s within {timeout}s")


@pytest.fixture
def app(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> App:
    """``web`` with blue serving (v1) and green running idle."""
    return make_app(stack_factory, compose_factory, containers, docker_daemon, app_images["v1"])


@contextlib.contextmanager
def deploy_in_background(app: App, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``bluegreen deploy web ARGS`` on the app's compose project, running meanwhile;
    killed by PID if the test leaves it running."""
    env = app.project.cli_env(app.stack.provider.url, app.stack.provider.token)
    argv = [*app.project.bluegreen_argv("deploy", "web", *app.project.compose_args()), *args]
    with subprocess.Popen(
        argv,
        env=env,
        cwd=app.project.work_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def read_until(proc: subprocess.Popen[str], marker: str, within_s: float) -> list[str]:
    """``proc``'s output lines up to the first holding ``marker``; stops reading after
    ``within_s`` seconds (checked as lines arrive) or at the end of the output."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + within_s
    for line in proc.stdout:
        seen.append(line)
        if marker in line or time.monotonic() > deadline:
            break
    return seen


def test_deploy_moves_traffic_to_the_new_image_and_stops_the_old_color(app: App) -> None:
    """A full deploy: green gets v2, is promoted and served; blue is stopped, not removed."""
    result = app.deploy("--image", V2_IMAGE, "--drain-timeout", "20")

    assert 0 == result.returncode, explain(result)
    summary = result.stdout.splitlines()[-1]
    assert summary.startswith(f"deployed web: blue → green, image {V2_IMAGE}, in "), summary
    # The rollback hint repeats the compose flags the deploy was given.
    rollback = " ".join(["bluegreen", "rollback", "web", *app.project.compose_args()])
    assert f"(blue stopped; `{rollback}` restarts it); drained " in summary, summary
    # Nothing was open to blue (no load here; Traefik's idle connections close after 1 s):
    # the drain ended on the evidence, long before its 20 s timeout.
    assert "(idle; 0 connection(s) open)" in summary, summary
    assert "switched web: blue → green (auto-promote by watcher)" in result.stdout
    progress = [line for line in result.stdout.splitlines() if "] green  " in line]
    assert progress and progress[-1].endswith("healthy"), explain(result)
    # Compose's own lines come indented under the progress, never bare.
    compose_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert [] == [line for line in compose_lines if not line.startswith("    | ")], result.stderr
    assert any("web-green" in line for line in compose_lines), result.stderr
    assert body_of("green") == app.served()
    assert "v2\n" == app.version("green")
    assert V2_IMAGE == app.image_of("green")
    assert ["exited"] == app.states("blue")
    assert "green" == app.stack.provider.active("web")
    history = app.stack.provider.history("web")
    assert ("blue", "green", "auto-promote", "watcher") == tuple(
        history[-1][k] for k in ("from", "to", "reason", "actor")
    )


def test_deploy_of_an_image_that_never_gets_healthy(app: App) -> None:
    """Exit 1 with the healthcheck output; blue still served; the new green containers stopped."""
    started = time.monotonic()
    result = app.deploy("--image", BROKEN_IMAGE, "--timeout", "60")
    took = time.monotonic() - started

    assert 1 == result.returncode, explain(result)
    assert "new green container(s) failed" in result.stderr
    assert "last healthcheck:" in result.stderr
    assert "blue keeps serving; the new green containers were stopped." in result.stderr
    assert "Next: look at `" in result.stderr and "logs web-green`" in result.stderr
    assert took < 45, f"a broken image should fail fast, took {took:.1f}s"
    assert body_of("blue") == app.served()
    assert "blue" == app.stack.provider.active("web")
    assert ["exited"] == app.states("green")
    assert ["running"] == app.states("blue")

    # The stopped green containers are the failed deploy's: rollback must not revive them.
    back = app.cli("rollback", "web", *app.project.compose_args())
    assert 6 == back.returncode, explain(back)
    assert "were created after the last switch, by a deploy that did not take" in back.stderr
    assert ["exited"] == app.states("green")


def test_keep_old_leaves_the_old_color_running_for_an_instant_rollback(app: App) -> None:
    """--keep-old skips the stop; rollback then switches at once, without compose."""
    result = app.deploy("--image", V2_IMAGE, "--keep-old")

    assert 0 == result.returncode, explain(result)
    assert "--keep-old: blue keeps running for an instant rollback" in result.stdout
    assert result.stdout.splitlines()[-1].endswith("(blue still running)")
    assert ["running"] == app.states("blue")
    app.stack.wait_serving("green")

    back = app.cli("rollback", "web")
    assert 0 == back.returncode, explain(back)
    assert "starting" not in back.stdout
    app.stack.wait_serving("blue")


def test_rollback_restarts_the_stopped_old_color_then_switches(app: App) -> None:
    """After a deploy stopped blue, rollback starts it, shows progress, waits, switches back."""
    deployed = app.deploy("--image", V2_IMAGE, "--drain-timeout", "0.5")
    assert 0 == deployed.returncode, explain(deployed)
    assert ["exited"] == app.states("blue")

    back = app.cli("rollback", "web", *app.project.compose_args())

    assert 0 == back.returncode, explain(back)
    assert "starting 1 stopped blue container(s) (web-blue)" in back.stdout
    assert "healthy" in back.stdout
    assert "switched web: green → blue" in back.stdout
    assert back.stdout.splitlines()[-1].startswith("rolled back web: green → blue, in ")
    app.stack.wait_serving("blue", timeout=5)
    assert ["running"] == app.states("blue")
    assert ("rollback", "api") == tuple(
        app.stack.provider.history("web")[-1][k] for k in ("reason", "actor")
    )


def test_rollback_with_a_wrong_token_starts_nothing(app: App) -> None:
    """A wrong token: rollback exits 4 before compose starts the stopped old color (issue 15)."""
    deployed = app.deploy("--image", V2_IMAGE, "--drain-timeout", "0.5")
    assert 0 == deployed.returncode, explain(deployed)

    back = app.cli("rollback", "web", *app.project.compose_args(), token="not-the-token")

    assert 4 == back.returncode, explain(back)
    assert "the provider rejected the token" in back.stderr
    assert "nothing was changed" in back.stderr
    assert "starting" not in back.stdout
    assert ["exited"] == app.states("blue")
    assert "green" == app.stack.provider.active("web")


def test_switch_force_moves_traffic_to_a_color_that_is_not_ready(app: App) -> None:
    """With green stopped, `switch` is refused (exit 6) and `switch --force` obeys."""
    app.project.run("stop", "web-green")
    app.stack.provider.wait_for(
        "green not routable", lambda: app.stack.provider.routable("web", "green") == 0, 15
    )

    refused = app.cli("switch", "web", "green")
    assert 6 == refused.returncode, explain(refused)
    assert "green has 0 routable container(s)" in refused.stderr

    forced = app.cli("switch", "web", "green", "--force")
    assert 0 == forced.returncode, explain(forced)
    assert "web: blue → green (switch #" in forced.stdout
    assert "green" == app.stack.provider.active("web")
    # Nothing can answer for green: Traefik says 503 (the watcher will roll back later).
    app.stack.traefik.wait_response(host=app.stack.host, status=503, timeout=10)


def test_status_and_history_against_the_real_provider(app: App) -> None:
    """status shows compose's containers by name; history starts empty of deploys."""
    status = app.cli("status", "web")
    assert 0 == status.returncode, explain(status)
    assert status.stdout.startswith("web: active blue")
    project = app.project.name
    assert f"{project}_web-blue_1" in status.stdout
    assert f"{project}_web-green_1" in status.stdout

    as_json = json.loads(app.cli("status", "--json").stdout)
    assert "blue" == as_json["services"]["web"]["active"]


def test_first_deploy_of_a_new_service_goes_to_blue(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """A service the provider has never seen is deployed to blue and adopted; nothing stopped."""
    app = make_app(
        stack_factory, compose_factory, containers, docker_daemon, app_images["v1"], colors=()
    )
    result = app.deploy()
    assert 0 == result.returncode, explain(result)
    assert "web: first deploy; deploying the compose file's image to blue" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("deployed web: (new) → blue")
    app.stack.wait_serving("blue")
    assert [] == app.states("green")


def test_deploy_with_a_compose_file_lacking_the_color_service(app: App) -> None:
    """A --compose-service template that matches nothing: exit 7 naming what exists."""
    result = app.deploy("--compose-service", "{service}-app-{color}")
    assert 7 == result.returncode, explain(result)
    expected = (
        "has no service web-app-green (it has: web-blue, web-green). Name the "
        "colors <service>-blue and <service>-green, or pass --compose-service, -f or -p."
    )
    assert expected in result.stderr
    assert body_of("blue") == app.served()


def test_deploy_refuses_a_compose_file_that_ignores_the_image(app: App) -> None:
    """A color whose compose image is hard-coded would ignore --image: exit 7, nothing created."""
    app.project.services["web-green"]["image"] = "bgtest-busybox:latest"
    app.project.write()
    before = app.project.container_ids("web-green")
    result = app.deploy("--image", V2_IMAGE)
    assert 7 == result.returncode, explain(result)
    expected = (
        f"service web-green would run bgtest-busybox:latest, not {V2_IMAGE}: its compose "
        "definition must say image: ${WEB_GREEN_IMAGE:-...} (or ${BLUEGREEN_IMAGE:-...}) for "
        "--image to take effect"
    )
    assert expected in result.stderr
    assert before == app.project.container_ids("web-green")


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_ctrl_c_mid_deploy_leaves_the_active_color_serving(
    signum: signal.Signals,
    code: int,
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """Ctrl-C (or SIGTERM) while green is still starting: exit 130 (143), green stopped,
    blue served."""
    app = make_app(
        stack_factory,
        compose_factory,
        containers,
        docker_daemon,
        app_images["v1"],
        start_period="60s",
    )
    with deploy_in_background(app, "--image", BROKEN_IMAGE, "--timeout", "90") as proc:
        seen = read_until(proc, "waiting until healthy and promoted", 60)
        time.sleep(1.0)
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=60)
    stdout = "".join(seen) + out
    assert code == proc.returncode, f"{stdout}\n{err}"
    assert "interrupted" in stdout
    assert "stopping the new green containers (web-green)" in stdout
    assert "deploy interrupted; blue keeps serving web and the new green containers" in err
    assert ["exited"] == app.states("green")
    assert body_of("blue") == app.served()
    assert "blue" == app.stack.provider.active("web")


def test_deploy_under_load_has_zero_failed_requests(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """Through real Traefik, a full deploy (switch, drain, stop of blue) fails no request."""
    app = make_app(stack_factory, compose_factory, containers, docker_daemon, app_images["v1"])
    with app.stack.load(concurrency=8, max_duration=90.0) as load:
        load.wait_requests(50, timeout=10)
        result = app.deploy("--image", V2_IMAGE, "--drain-timeout", "2")
        assert 0 == result.returncode, explain(result)
        stopped_at = time.monotonic()
        # Keep the load going past the stop of blue, so its aftermath is measured too.
        load.wait_for(
            "2 s of traffic after the deploy",
            lambda samples: bool(samples) and samples[-1].start > stopped_at + 2.0,
            timeout=15,
        )
    summary = load.result.summary()
    failures = load.result.failures()
    assert [] == [s.describe() for s in failures[:20]], summary.format()
    bodies = load.result.bodies()
    assert {body_of("blue"), body_of("green")} == set(bodies), summary.format()
    # Traffic moved once: no blue answer to a request started half a second after green's first.
    settled = bodies[body_of("green")].first_end + 0.5
    late_blue = [s for s in load.result.samples if s.body == body_of("blue") and s.start > settled]
    assert [] == [s.describe() for s in late_blue[:10]], summary.format()
    after = [s for s in load.result.samples if s.start > stopped_at]
    assert after and {body_of("green")} == {s.body for s in after}, summary.format()
    assert ["exited"] == app.states("blue")
    assert summary.total > 200, summary.format()


def test_a_plain_up_after_a_deploy_changes_nothing_under_load(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """deploy records WEB_GREEN_IMAGE in .env; the `docker-compose up -d` a user then runs
    recreates nothing: 0 failed requests, green still serves v2 (issue 15 item 1)."""
    app = make_app(
        stack_factory,
        compose_factory,
        containers,
        docker_daemon,
        app_images["v1"],
        per_color_image=True,
    )
    green_before_up = ""
    with app.stack.load(concurrency=8, max_duration=120.0) as load:
        load.wait_requests(50, timeout=10)
        deployed = app.deploy("--image", V2_IMAGE, "--drain-timeout", "1")
        assert 0 == deployed.returncode, explain(deployed)
        green_before_up = app.project.container_ids("web-green")[0]
        up = app.project.run("up", "-d")
        up_done = time.monotonic()
        load.wait_for(
            "3 s of traffic after up -d",
            lambda samples: bool(samples) and samples[-1].start > up_done + 3.0,
            timeout=15,
        )
    summary = load.result.summary()
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    env_file = app.project.work_dir / ".env"
    assert f"WEB_GREEN_IMAGE={V2_IMAGE}" in env_file.read_text().splitlines()
    assert f"recorded WEB_GREEN_IMAGE={V2_IMAGE} in {env_file}" in deployed.stdout
    assert "Recreating" not in up.stderr, up.stderr
    assert [green_before_up] == app.project.container_ids("web-green")
    assert (V2_IMAGE, "v2\n") == (app.image_of("green"), app.version("green"))
    assert "green" == app.stack.provider.active("web")
    after = [s for s in load.result.samples if s.start > up_done]
    assert after and {body_of("green")} == {s.body for s in after}, summary.format()


def test_an_auto_rollback_during_the_old_colors_stop_never_targets_it(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """Issue 9 defect 6, raced on the real engine: green (just deployed) dies at the start
    of the drain. Blue takes 8 s to stop (it ignores its stop signal), and the provider's
    rollback_after (4 s) elapses inside that stop, while blue still answers healthy. The
    provider must not roll back to blue (the CLI retired it first), the served color is
    never the stopped one, and the deploy exits 1 saying nothing serves."""
    app = make_app(
        stack_factory,
        compose_factory,
        containers,
        docker_daemon,
        app_images["v1"],
        provider_args=("--rollback-after", "4"),
        stop_signal="SIGWINCH",
        stop_grace_period="8s",
    )
    argv = ("--image", V2_IMAGE, "--drain-timeout", "1", "--timeout", "90")
    with deploy_in_background(app, *argv) as proc:
        seen = read_until(proc, "draining blue (web-blue)", CLI_TIMEOUT_S)
        (green,) = app.project.container_ids("web-green")
        app.docker.docker("kill", green)
        out, err = proc.communicate(timeout=CLI_TIMEOUT_S)
    stdout = "".join(seen) + out
    history = [(h["to"], h["reason"]) for h in app.stack.provider.history("web")]
    status = app.stack.provider.status("web")

    assert 1 == proc.returncode, f"{stdout}\n{err}"
    assert "blue was stopped, but green (active) has no routable container" in err
    assert ["exited"] == app.states("blue")
    assert "green" == status["active"]
    assert ("green", "auto-promote") == history[-1], history
    assert "previous_retiring" == status["pending_rollback"]["stage"]
    assert "<503>" == app.served()


def test_example_compose_file_is_valid(tmp_path: Path) -> None:
    """`docker-compose -f docker-compose.example.yml config` accepts the example."""
    from tests.testbed.compose import REPO_ROOT, find_compose_v1

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEGREEN_", "COMPOSE_"))}
    env.update(DOCKER_GID="999")
    example = REPO_ROOT / "docker-compose.example.yml"
    result = subprocess.run(
        [find_compose_v1(), "-f", str(example), "config"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 == result.returncode, result.stderr
    import yaml

    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert {"traefik", "socket-proxy", "bluegreen", "web-blue", "web-green"} == set(services)
    blue, green = services["web-blue"]["labels"], services["web-green"]["labels"]
    assert ("blue", "green") == (blue["bluegreen.color"], green["bluegreen.color"])
    assert blue["bluegreen.service"] == green["bluegreen.service"] == "web"
    traefik = services["traefik"]["environment"]
    assert "http://bluegreen:8080/traefik" == traefik["TRAEFIK_PROVIDERS_HTTP_ENDPOINT"]
    # pollInterval <= hold (2.5 s) < pollTimeout
    assert "200ms" == traefik["TRAEFIK_PROVIDERS_HTTP_POLLINTERVAL"]
    assert "5s" == traefik["TRAEFIK_PROVIDERS_HTTP_POLLTIMEOUT"]
    provider = services["bluegreen"]
    assert "/run/secrets/bluegreen_token" == provider["environment"]["BLUEGREEN_TOKEN_FILE"]
    assert any(
        v.get("target") == "/var/run/docker.sock" and v.get("read_only")
        for v in services["socket-proxy"]["volumes"]
        if isinstance(v, dict)
    )
    assert "tcp://socket-proxy:2375" == provider["environment"]["BLUEGREEN_DOCKER_HOST"]


def test_example_compose_file_demands_its_secrets(tmp_path: Path) -> None:
    """Without DOCKER_GID the example refuses to start, saying what to set."""
    from tests.testbed.compose import REPO_ROOT, find_compose_v1

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEGREEN_", "COMPOSE_"))}
    env.pop("DOCKER_GID", None)
    result = subprocess.run(
        [find_compose_v1(), "-f", str(REPO_ROOT / "docker-compose.example.yml"), "config"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert 0 != result.returncode
    assert "set DOCKER_GID" in result.stderr
