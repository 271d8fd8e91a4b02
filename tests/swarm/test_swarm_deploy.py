"""``bluegreen deploy|rollback --swarm`` end to end on a real single-node Swarm.

One private daemon for the module, manager of its own swarm
(``tests/testbed/swarm_single.py``), one real ``bluegreen serve --swarm``, and the
CLI as a subprocess (``DOCKER_HOST`` = the manager, ``BLUEGREEN_URL`` = the
provider on 127.0.0.1). The colors are busybox ``httpd`` services on an
overlay network; their images carry the HEALTHCHECK (the service specs have
none), so a deploy changes nothing but the image: ``v1`` and ``v2`` turn
healthy, ``broken`` never does (its start period keeps Swarm from replacing
it). Nothing sends traffic to task addresses (network rule): the tests read
``/traefik``, ``/status``, ``/history`` and the service specs.

The tests run in order and build on each other: a failed deploy to the idle
green, a deploy of ``v2`` to green, a rollback to blue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.swarm.test_swarm_watch import config, servers, task_urls
from tests.testbed.images import find_busybox, rootfs_tar
from tests.testbed.provider import REPO_ROOT, ProviderProcess
from tests.testbed.swarm_single import SingleNodeSwarm, start_swarm_provider
from tests.waiting import wait_until

pytestmark = pytest.mark.docker

NETWORK = "app_web"
V1, V2, BROKEN = "bgdeploy:v1", "bgdeploy:v2", "bgdeploy:broken"
HTTPD = "mkdir -p /w; echo ok > /w/index.html; exec httpd -f -p 80 -h /w"
HEALTHY = "HEALTHCHECK --interval=300ms --timeout=2s --retries=1 CMD test -f /w/index.html"
NEVER = "HEALTHCHECK --interval=300ms --start-period=120s --retries=1 CMD false"
CLI_TIMEOUT_S = 120.0
WAIT_S = 60.0


def build_image(swarm: SingleNodeSwarm, name: str, healthcheck: str) -> None:
    """The busybox root file system as ``name``, with ``healthcheck`` baked in."""
    busybox = find_busybox()
    assert busybox is not None, "busybox-static is installed on these machines"
    swarm.daemon.docker(
        "import", "--change", 'CMD ["sh"]', "--change", "ENV PATH=/bin",
        "--change", healthcheck, "-", name, input=rootfs_tar(busybox),
    )  # fmt: skip


def labels(color: str) -> dict[str, str]:
    return {
        "bluegreen.service": "web",
        "bluegreen.color": color,
        "bluegreen.port": "80",
        "bluegreen.network": NETWORK,
    }


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleNodeSwarm]:
    """The swarm, the three images, blue running v1, green scaled to 0 on v1 (as a stack
    leaves an idle color: ``bluegreen.replicas`` says how many it runs)."""
    node = SingleNodeSwarm.start(tmp_path_factory.mktemp("swarm"))
    try:
        build_image(node, V1, HEALTHY)
        build_image(node, V2, HEALTHY)
        build_image(node, BROKEN, NEVER)
        node.image = V1
        node.create_overlay(NETWORK)
        for color, replicas in (("blue", 1), ("green", 0)):
            node.create_service(
                f"app_web-{color}", labels={**labels(color), "bluegreen.replicas": "1"},
                replicas=replicas, networks=[NETWORK], command=["sh", "-c", HTTPD],
                options=["--stop-signal", "KILL"],
            )  # fmt: skip
        yield node
    finally:
        node.destroy()


@pytest.fixture(scope="module")
def provider(
    swarm: SingleNodeSwarm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderProcess]:
    """``bluegreen serve --swarm`` on the manager, blue adopted as the active color."""
    process = start_swarm_provider(tmp_path_factory.mktemp("provider"), swarm)
    try:
        process.wait_routable("web", "blue", timeout=WAIT_S)
        process.wait_active("web", "blue", timeout=WAIT_S)
        yield process
    finally:
        process.terminate()


def bluegreen(
    swarm: SingleNodeSwarm, provider: ProviderProcess, *args: str
) -> subprocess.CompletedProcess[str]:
    """``bluegreen ARGS --swarm`` against the manager and the provider."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEGREEN_", "DOCKER_"))}
    env.update(DOCKER_HOST=swarm.host, BLUEGREEN_URL=provider.url, BLUEGREEN_TOKEN=provider.token)
    return subprocess.run(
        [sys.executable, "-m", "deploy.cli", *args, "--swarm"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        check=False,
    )  # fmt: skip


def service(swarm: SingleNodeSwarm, color: str) -> dict[str, Any]:
    """``docker service inspect app_web-<color>``."""
    found: dict[str, Any] = json.loads(
        swarm.docker("service", "inspect", f"app_web-{color}").stdout
    )[0]
    return found


def image_and_replicas(swarm: SingleNodeSwarm, color: str) -> tuple[str, int, str | None]:
    spec = service(swarm, color)["Spec"]
    return (
        spec["TaskTemplate"]["ContainerSpec"]["Image"],
        spec["Mode"]["Replicated"]["Replicas"],
        spec["Labels"].get("bluegreen.replicas"),
    )


def served(provider: ProviderProcess) -> list[str]:
    """Every server URL the ``web`` router reaches: its weighted children's servers."""
    doc = config(provider)
    children = doc["http"]["services"]["web"]["weighted"]["services"]
    return sorted(url for c in children if c["weight"] > 0 for url in servers(doc, c["name"]))


def expect_serving(swarm: SingleNodeSwarm, provider: ProviderProcess, color: str) -> None:
    """``web`` reaches exactly ``color``'s running task IP."""
    swarm.wait_tasks(f"app_web-{color}", ("running", "running"), 1)
    expected = task_urls(swarm, f"app_web-{color}")
    assert 1 == len(expected), expected
    wait_until(
        f"web serving {color} {expected}",
        lambda: served(provider) == expected,
        WAIT_S,
        fail=lambda message: AssertionError(f"{message}; log: {provider.log_tail()}"),
    )


def test_failed_deploy_restores_the_idle_colors_spec(
    swarm: SingleNodeSwarm, provider: ProviderProcess
) -> None:
    """A deploy whose image never turns healthy exits 1; blue keeps serving and green's
    spec is written back as it was before the deploy (image v1, 0 replicas), so a later
    rollback to green cannot start the broken image. A missing image exits 7 and
    changes nothing."""
    before = service(swarm, "green")["Spec"]
    history = provider.history("web")

    missing = bluegreen(swarm, provider, "deploy", "web", "--image", "bgdeploy:missing")
    assert 7 == missing.returncode, missing.stderr
    assert "not on this node" in missing.stderr
    assert before == service(swarm, "green")["Spec"]

    failed = bluegreen(
        swarm,
        provider,
        "deploy",
        "web",
        "--image",
        BROKEN,
        "--timeout",
        "8",
        "--drain-timeout",
        "0",
    )
    assert 1 == failed.returncode, failed.stdout + failed.stderr
    assert "green was not promoted within 8s" in failed.stderr
    assert before == service(swarm, "green")["Spec"]
    swarm.wait_tasks("app_web-green", ("running", "running"), 0)
    assert "blue" == provider.active("web")
    assert history == provider.history("web")
    expect_serving(swarm, provider, "blue")


def test_deploy_promotes_once_and_scales_the_old_color_to_zero(
    swarm: SingleNodeSwarm, provider: ProviderProcess
) -> None:
    """``deploy --image v2`` exits 0 after one promotion to green; blue is scaled to 0
    with its spec (image v1) kept and its count recorded; only green's task is served."""
    history = provider.history("web")
    done = bluegreen(swarm, provider, "deploy", "web", "--image", V2, "--drain-timeout", "0")
    assert 0 == done.returncode, done.stdout + done.stderr

    new = provider.history("web")[len(history) :]
    assert [("blue", "green")] == [(r["from"], r["to"]) for r in new]
    assert "green" == provider.active("web")
    assert (V2, 1, "1") == image_and_replicas(swarm, "green")
    assert (V1, 0, "1") == image_and_replicas(swarm, "blue")
    swarm.wait_tasks("app_web-blue", ("running", "running"), 0)
    expect_serving(swarm, provider, "green")
    wait_until("no blue server", lambda: [] == servers(config(provider), "web-blue"), WAIT_S)


def test_rollback_scales_the_old_color_back_up_then_switches(
    swarm: SingleNodeSwarm, provider: ProviderProcess
) -> None:
    """``rollback`` scales blue back to 1 task of v1, waits until it is routable, switches
    to it (exit 0); green keeps running v2."""
    history = provider.history("web")
    done = bluegreen(swarm, provider, "rollback", "web")
    assert 0 == done.returncode, done.stdout + done.stderr

    new = provider.history("web")[len(history) :]
    assert [("green", "blue")] == [(r["from"], r["to"]) for r in new]
    assert "blue" == provider.active("web")
    assert (V1, 1, "1") == image_and_replicas(swarm, "blue")
    assert (V2, 1, "1") == image_and_replicas(swarm, "green")
    expect_serving(swarm, provider, "blue")


def test_deploy_smoke_gates_the_swarm_service_and_a_failed_gate_fails_the_deploy(
    swarm: SingleNodeSwarm, provider: ProviderProcess
) -> None:
    """``deploy --smoke --swarm``: the checks go on green's service spec, the Swarm provider
    reads them from its tasks and gates the new generation. This provider has no
    ``--smoke-url``, so the gate fails, named: exit 1, no switch, green's spec put back as
    it was (without the label), blue keeps serving."""
    before = service(swarm, "green")["Spec"]
    history = provider.history("web")
    failed = bluegreen(
        swarm, provider, "deploy", "web", "--image", V1, "--smoke", "/healthz",
        "--drain-timeout", "0",
    )  # fmt: skip
    assert 1 == failed.returncode, failed.stdout + failed.stderr
    named = "the gate before the flip failed: smoke check failed: bluegreen.smoke is set but "
    assert named + "the provider has no --smoke-url" in failed.stderr, failed.stderr
    assert history == provider.history("web")
    assert "blue" == provider.active("web")
    restored = service(swarm, "green")["Spec"]
    assert "bluegreen.smoke" not in restored["Labels"]
    assert before["TaskTemplate"]["ContainerSpec"] == restored["TaskTemplate"]["ContainerSpec"]
    expect_serving(swarm, provider, "blue")
