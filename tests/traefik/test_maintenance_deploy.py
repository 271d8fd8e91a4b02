"""``bluegreen deploy --maintenance`` for real: the real engine, docker-compose, the provider
process and the real Traefik; the CLI as a subprocess; load only to 127.0.0.1, bounded.

Maintenance goes on before the release step and off right after the switch, so the public
meets neither the old code after the migration began nor the new one before it is live;
a failed release step leaves it on and says how to end it.
"""

from __future__ import annotations

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
    explain,
    make_app,
)

__all__ = ["app", "app_images", "compose_factory"]  # fixtures shared with test_deploy.py


def test_deploy_with_maintenance_keeps_the_public_out_from_the_release_step_to_the_switch(
    stack_factory: StackFactory,
    compose_factory: ComposeFactory,
    containers: ContainerFactory,
    docker_daemon: DockerDaemon,
    app_images: dict[str, str],
) -> None:
    """Under load: blue, then only 503s (the release step runs meanwhile), then only green;
    no request fails otherwise; the history says on, switch, off in that order."""
    # A loaded machine may miss one healthcheck: three misses, one a second, say it is down.
    app = make_app(
        stack_factory, compose_factory, containers, docker_daemon, app_images["v1"],
        health_interval="1s", health_retries=3,
    )  # fmt: skip
    step = "sh -c 'sleep 2; echo migrated'"
    with app.stack.load(concurrency=4, max_duration=120.0, max_requests=100_000) as load:
        load.wait_requests(30, timeout=10)
        result = app.deploy("--image", V2_IMAGE, "--drain", "1", "--release", step,
                            "--maintenance", "--maintenance-retry-after", "11")  # fmt: skip
        done = time.monotonic()
        load.wait_for(
            "1 s of traffic after the deploy",
            lambda samples: bool(samples) and samples[-1].start > done + 1.0,
            timeout=15,
        )
    assert 0 == result.returncode, explain(result)
    out = result.stdout
    assert (
        out.index("maintenance of web is on")
        < out.index("release step: ")
        < out.index("switched web: blue → green")
        < out.index("maintenance of web is off")
    ), out
    samples = load.result.samples
    summary = load.result.summary().format()
    assert [] == [s.describe() for s in samples if s.status not in (200, 503)][:10], summary
    first_503 = min((s for s in samples if s.status == 503), key=lambda s: s.end)
    first_green = min((s for s in samples if s.body == body_of("green")), key=lambda s: s.end)
    green_from = min(s.start for s in samples if s.body == body_of("green"))
    after_503 = [s for s in samples if first_503.end < s.start < green_from]
    assert after_503 and {503} == {s.status for s in after_503}, summary
    after_green = [s for s in samples if s.start > first_green.end]
    assert after_green and {(200, body_of("green"))} == {(s.status, s.body) for s in after_green}
    assert [] == [s.describe() for s in samples if s.start > first_503.end and s.body == "blue\n"]
    reasons = [r["reason"] for r in app.stack.provider.history("web")][-3:]
    assert ["maintenance-on", "auto-promote", "maintenance-off"] == reasons
    assert app.stack.provider.status("web")["maintenance"] is None


def test_a_failed_release_step_leaves_maintenance_on_and_says_so(app: App) -> None:
    """Exit 1; the output says maintenance is still on and how to end it; the public still
    gets the page; ``bluegreen maintenance web off`` brings blue back."""
    result = app.deploy("--image", V2_IMAGE, "--release", "sh -c 'exit 3'", "--maintenance")
    assert 1 == result.returncode, explain(result)
    assert "maintenance of web is still ON" in result.stdout, explain(result)
    assert "bluegreen maintenance web off" in result.stdout
    assert "blue" == app.stack.provider.status("web")["active"]
    assert app.stack.provider.status("web")["maintenance"] is not None
    page = app.stack.traefik.wait_response(status=503, host=app.stack.host, timeout=20)
    assert "30" == page.headers.get("retry-after")
    off = app.cli("maintenance", "web", "off")
    assert 0 == off.returncode, explain(off)
    assert "maintenance of web is off" in off.stdout
    app.stack.wait_serving("blue", timeout=20)
