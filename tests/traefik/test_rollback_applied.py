"""``bluegreen rollback`` waits for Traefik's apply, through the real Traefik 3.7 binary.

The switch back is made in the provider at once; Traefik routes there only once it
polled and applied it.  With Traefik cut off from the provider (a stalled TCP path,
as in ``test_applied.py``), the rollback must not exit 0: it exits 1 naming the cause,
both colors keep running, and once Traefik polls again it applies the switch.
"""

from __future__ import annotations

import secrets

from tests.testbed.compose import ComposeFactory
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.stack import StackFactory, body_of
from tests.testbed.tcp_stall import StallingTcpProxy
from tests.traefik.test_applied import stalled_app, traefik_doc, wait_applied
from tests.traefik.test_deploy import (  # noqa: F401  (fixtures)
    app_images,
    compose_factory,
    explain,
)


def test_rollback_fails_while_traefik_cannot_apply_it_then_succeeds_once_it_can(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,  # noqa: F811
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],  # noqa: F811
) -> None:
    """Stalled: exit 1 naming the cause, the provider switched, both colors running.
    Reachable again: Traefik applies the switch and serves the color rolled back to."""
    provider = stack_factory.providers.start(label_prefix=f"bg{secrets.token_hex(4)}")
    with StallingTcpProxy(provider.port) as proxy:
        app = stalled_app(
            stack_factory, compose_factory, containers, docker_daemon, app_images["v1"], proxy
        )
        proxy.stall()
        back = app.cli("rollback", "web", *app.project.compose_args(), "--apply-timeout", "8")
        output = back.stdout + back.stderr
        assert 1 == back.returncode, explain(back)
        assert "switched web: blue → green" in output, output
        assert "Traefik did not apply the switch of web to green within 8s" in output, output
        assert "Traefik stopped polling the provider" in output, output
        assert "The switch back is made in the provider: it serves green" in output, output
        assert (["running"], ["running"]) == (app.states("blue"), app.states("green"))
        assert "green" == app.stack.provider.active("web")
        assert False is traefik_doc(app.stack)["applied"]
        # Traefik still serves from the config it has: blue, not a failure.
        assert body_of("blue") == app.stack.traefik.request(host=app.stack.host).body
        proxy.resume()
        wait_applied(app.stack, "green", timeout=120)
        app.stack.wait_serving("green")
