"""``bluegreen serve --swarm`` against a real single-node Swarm.

One private daemon for the module, made the manager of its own swarm
(``tests/testbed/swarm_single.py``); services are busybox ``httpd`` backends on an
attachable overlay network named like a stack's (``app_web``). The provider is a
real ``bluegreen serve --swarm`` process. Nothing sends traffic to task
addresses (network rule): the tests read the rendered ``/traefik`` config and
``/status``, and compare server URLs with the task IPs Swarm reports.

The tests run in order and build on each other (blue served, green promoted,
blue scaled to 0), sharing one swarm and one provider to keep the module lean.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.testbed.provider import ProviderProcess
from tests.testbed.swarm_single import SingleNodeSwarm, start_swarm_provider
from tests.waiting import wait_until

pytestmark = pytest.mark.docker

NETWORK = "app_web"
WAIT_S = 30.0
HTTPD = "mkdir -p /w; echo {color} > /w/index.html; exec httpd -f -p 80 -h /w"
READY_FILE = "/tmp/ready"
#: Healthy only once a test creates READY_FILE; the long start period keeps Swarm
#: from replacing the task meanwhile (failures inside it do not count).
HEALTH = [
    "--health-cmd", f"test -f {READY_FILE}",
    "--health-interval", "300ms", "--health-start-period", "120s", "--health-retries", "1",
]  # fmt: skip


def labels(color: str, replicas: int) -> dict[str, str]:
    return {
        "bluegreen.service": "web",
        "bluegreen.color": color,
        "bluegreen.port": "80",
        "bluegreen.network": NETWORK,
        "bluegreen.replicas": str(replicas),
    }


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleNodeSwarm]:
    """A private single-node swarm with the overlay network and web's blue (2 replicas)."""
    node = SingleNodeSwarm.start(tmp_path_factory.mktemp("swarm"))
    try:
        node.create_overlay(NETWORK)
        node.create_service(
            "web_blue", labels=labels("blue", 2), replicas=2, networks=[NETWORK],
            command=["sh", "-c", HTTPD.format(color="blue")],
        )  # fmt: skip
        node.create_service(
            "plain", labels={"com.example.app": "plain"}, networks=[NETWORK],
            command=["sh", "-c", HTTPD.format(color="plain")],
        )  # fmt: skip
        yield node
    finally:
        node.destroy()


@pytest.fixture(scope="module")
def provider(
    swarm: SingleNodeSwarm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderProcess]:
    """``bluegreen serve --swarm`` on the manager, listing tasks every 0.2 s."""
    process = start_swarm_provider(tmp_path_factory.mktemp("provider"), swarm)
    try:
        yield process
    finally:
        process.terminate()


def task_urls(swarm: SingleNodeSwarm, service: str) -> list[str]:
    """``http://<IP on app_web>:80`` of each task Swarm means to run, as Swarm reports it."""
    ids = swarm.docker(
        "service", "ps", "-q", "--no-trunc", "--filter", "desired-state=running", service
    ).stdout.split()
    if not ids:
        return []
    out = swarm.docker(
        "inspect", "--format",
        '{{range .NetworksAttachments}}{{if eq .Network.Spec.Name "' + NETWORK + '"}}'
        "{{index .Addresses 0}}{{end}}{{end}}",
        *ids,
    ).stdout  # fmt: skip
    return sorted(f"http://{line.partition('/')[0]}:80" for line in out.split())


def servers(config: dict[str, Any], name: str) -> list[str]:
    """Server URLs of one Traefik service of the rendered config (``[]`` if absent)."""
    service = ((config.get("http") or {}).get("services") or {}).get(name) or {}
    return sorted(s["url"] for s in (service.get("loadBalancer") or {}).get("servers") or [])


def config(provider: ProviderProcess) -> dict[str, Any]:
    answer = provider.get("/traefik")
    assert 200 == answer.status, answer.body
    doc: dict[str, Any] = answer.json
    return doc


def status(provider: ProviderProcess) -> dict[str, Any]:
    answer = provider.get("/status/web")
    assert 200 == answer.status, answer.body
    doc: dict[str, Any] = answer.json
    return doc


def wait_servers(provider: ProviderProcess, name: str, expected: list[str]) -> None:
    wait_until(
        f"{name} serving {expected}",
        lambda: servers(config(provider), name) == expected,
        WAIT_S,
        fail=lambda message: AssertionError(f"{message}; log: {provider.log_tail()}"),
    )


def test_blue_served_on_task_ips(swarm: SingleNodeSwarm, provider: ProviderProcess) -> None:
    """web-blue's servers are the blue tasks' IPs on app_web; the unlabelled service and
    Swarm's own services are not served."""
    swarm.wait_tasks("web_blue", ("running", "running"), 2)
    expected = task_urls(swarm, "web_blue")
    assert 2 == len(expected), expected

    wait_servers(provider, "web-blue", expected)

    everything = provider.get("/status").json
    assert (["web"], [], 2) == (
        sorted(everything["services"]),
        everything["unassigned_errors"],
        everything["docker"]["containers"],
    )
    assert "blue" == status(provider)["active"]


def test_green_served_once_healthy_then_promoted(
    swarm: SingleNodeSwarm, provider: ProviderProcess
) -> None:
    """Green's tasks are held in ``starting`` by their HEALTHCHECK and get no server; once
    healthy, Swarm runs them, they are served and the automatic promotion flips to green."""
    swarm.create_service(
        "web_green", labels=labels("green", 2), replicas=2, networks=[NETWORK],
        command=["sh", "-c", HTTPD.format(color="green")], options=HEALTH,
    )  # fmt: skip
    swarm.wait_tasks("web_green", ("running", "starting"), 2)

    def green_starting() -> list[dict[str, Any]] | None:
        members = status(provider)["colors"]["green"]["containers"]
        held = [m for m in members if (m["state"], m["health"]) == ("running", "starting")]
        return members if len(held) == 2 else None

    members = wait_until("two green tasks seen starting", green_starting, WAIT_S)
    assert [False, False] == [m["routable"] for m in members]
    # Still starting (READY_FILE does not exist yet): nothing of green is served.
    assert [] == servers(config(provider), "web-green")
    assert "blue" == status(provider)["active"]

    tasks = swarm.docker("service", "ps", "-q", "--no-trunc", "web_green").stdout.split()
    containers = swarm.docker(
        "inspect", "--format", "{{.Status.ContainerStatus.ContainerID}}", *tasks
    ).stdout.split()
    assert 2 == len(containers), containers
    for container in containers:
        swarm.docker("exec", container, "touch", READY_FILE)
    swarm.wait_tasks("web_green", ("running", "running"), 2)

    wait_servers(provider, "web-green", task_urls(swarm, "web_green"))
    wait_until("green promoted", lambda: status(provider)["active"] == "green", WAIT_S)
    last = status(provider)["last_switch"]
    assert ("blue", "green") == (last["from"], last["to"])


def test_scaled_to_zero_loses_its_servers(
    swarm: SingleNodeSwarm, provider: ProviderProcess
) -> None:
    """Scaling blue to 0 removes its servers from the config; green keeps its own."""
    green = task_urls(swarm, "web_green")
    swarm.scale("web_blue", 0)

    wait_servers(provider, "web-blue", [])
    assert green == servers(config(provider), "web-green")
    assert [] == status(provider)["colors"]["blue"]["containers"]
    # The event subscription held all along (the daemon accepted its filters).
    assert True is provider.get("/status").json["docker"]["connected"]
    assert "swarm_unavailable" not in provider.log_path.read_text()
