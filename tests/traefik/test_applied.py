"""Traefik's applied switches, known, through the real Traefik 3.7 binary.

The provider says a switch is applied once every live Traefik's health
checker probed the provider with the version of the body that switched
(``provider/core/applied.py``).  These tests check the claim against Traefik's
entrypoint: right after ``"wait": "applied"`` answers, a
request through Traefik's entrypoint reaches the new color.  And with Traefik
cut off from the provider (a stalled TCP path: Traefik keeps serving from the
config it has), ``bluegreen deploy`` keeps the old color and fails naming why.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.testbed.compose import ComposeFactory
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.provider import api_request
from tests.testbed.stack import POLL_INTERVAL, THROTTLE, Stack, StackFactory, body_of
from tests.testbed.tcp_stall import StallingTcpProxy
from tests.traefik.test_deploy import (  # noqa: F401  (fixtures)
    V2_IMAGE,
    App,
    app_images,
    compose_factory,
    explain,
    wait_stably_serving,
)
from tests.waiting import wait_until

WAIT_S = 30.0


def traefik_doc(stack: Stack) -> dict[str, Any]:
    doc: dict[str, Any] = stack.provider.status(stack.service)["traefik"]
    return doc


def wait_applied(stack: Stack, color: str, timeout: float = WAIT_S) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        doc = traefik_doc(stack)
        return doc if doc["applied"] and doc["color"] == color else None

    return wait_until(f"Traefik applied {color}", check, timeout)


def switch_and_wait(stack: Stack, color: str) -> Any:
    body = {"service": stack.service, "color": color, "wait": "applied", "timeout": WAIT_S}
    auth = {"Authorization": f"Bearer {stack.provider.token}"}
    return api_request(
        stack.provider.port, "POST", "/switch", body=body, headers=auth, timeout=WAIT_S + 10
    )


def test_applied_is_never_claimed_before_traefik_routes_there(
    stack_factory: StackFactory,
) -> None:
    """After each ``"wait": "applied"`` answer, Traefik's entrypoint serves the new color."""
    stack = stack_factory.start(service="web")
    stack.backend("blue")
    stack.provider.wait_active("web", "blue")
    stack.backend("green")
    stack.provider.wait_active("web", "green")
    wait_applied(stack, "green")
    color = "green"
    for _ in range(10):
        color = "blue" if color == "green" else "green"
        answer = switch_and_wait(stack, color)
        assert (200, True, color) == (
            answer.status,
            answer.json["traefik"]["applied"],
            answer.json["traefik"]["color"],
        ), answer.body
        served = [stack.traefik.request(host=stack.host).body for _ in range(5)]
        assert [body_of(color)] * 5 == served
        assert answer.json["traefik"]["lag_s"] is not None
    pollers = stack.provider.get("/status").json["traefik_pollers"]
    assert [True] == [p["live"] for p in pollers]
    metrics = stack.provider.get("/metrics").body
    assert 'bluegreen_traefik_applied{service="web"} 1.0' in metrics


def stalled_app(
    stack_factory: StackFactory,
    project_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    image: str,
    proxy: StallingTcpProxy,
) -> App:
    """``web`` (blue serving, green idle) behind a Traefik that polls through ``proxy``."""
    provider = stack_factory.providers.started[-1]
    traefik = stack_factory.traefiks.start(
        http_endpoint=f"{proxy.url}/traefik",
        poll_interval=POLL_INTERVAL,
        poll_timeout="5s",
        throttle=THROTTLE,
        log_level="INFO",
        access_log=False,
    )
    stack = Stack(provider, traefik, containers, service="web")
    project = project_factory.create()
    project.add_app(prefix=stack.prefix, service="web", default_image=image, owner=containers.owner)
    app = App(stack, project, docker_daemon)
    provider.wait_ready()
    project.up("web-blue")
    provider.wait_active("web", "blue")
    stack.wait_serving("blue")
    project.up("web-green")
    provider.wait_active("web", "green")
    assert 200 == provider.switch("web", "blue").status
    wait_stably_serving(stack, "blue")
    wait_applied(stack, "blue")
    return app


def test_deploy_keeps_the_old_color_while_traefik_cannot_reach_the_provider(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,  # noqa: F811
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],  # noqa: F811
) -> None:
    """Traefik cut off from the provider during a deploy: blue is never stopped, no request
    fails, the CLI exits 1 naming the cause; once Traefik polls again, green is applied."""
    provider = stack_factory.providers.start(label_prefix=f"bg{secrets.token_hex(4)}")
    with StallingTcpProxy(provider.port) as proxy:
        app = stalled_app(
            stack_factory, compose_factory, containers, docker_daemon, app_images["v1"], proxy
        )
        with app.stack.load(concurrency=8, max_duration=150.0) as load:
            load.wait_requests(50, timeout=10)
            proxy.stall()
            result = app.deploy("--image", V2_IMAGE, "--apply-timeout", "8", "--drain", "1")
            output = result.stdout + result.stderr
            assert 1 == result.returncode, explain(result)
            assert "Traefik did not apply the switch of web to green within 8s" in output, output
            assert "Traefik stopped polling the provider" in output, output
            assert "blue (web-blue) keeps running" in output, output
            assert ["running"] == app.states("blue")
            assert "green" == app.stack.provider.active("web")
            assert False is traefik_doc(app.stack)["applied"]
            proxy.resume()
            wait_applied(app.stack, "green", timeout=120)
            applied_at = time.monotonic()
            load.wait_for(
                "1 s of traffic after Traefik applied green",
                lambda samples: bool(samples) and samples[-1].start > applied_at + 1.0,
                timeout=15,
            )
    summary = load.result.summary()
    assert [] == [s.describe() for s in load.result.failures()[:20]], summary.format()
    after = [s for s in load.result.samples if s.start > applied_at]
    assert after and {body_of("green")} == {s.body for s in after}, summary.format()
