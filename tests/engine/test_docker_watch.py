"""The Docker watcher against the real Docker Engine: issue 3's ten cases.

The provider runs in-process (pytest-aiohttp's test server around
``build_app``); containers are busybox ``httpd`` backends on 127.0.0.1 with a
real Docker HEALTHCHECK. Blocking ``docker`` CLI calls run in a thread so the
watcher keeps running meanwhile. Each test uses its own random label prefix,
so nothing another test left on the shared daemon can reach its provider.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient

from provider.api import CONTROLLER
from provider.controller import Controller
from provider.core.docker_normalize import normalize
from provider.core.model import State
from provider.docker_watch import DockerWatcher, event_filters
from provider.server import build_app
from provider.settings import Settings
from tests.core.test_docker_normalize import INSPECT, restored
from tests.factories import make_container
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.images import DEFAULT_IMAGE, build_busybox_image
from tests.testbed.ports import free_port
from tests.testbed.traefik import TraefikFactory
from tests.waiting import eventually

pytestmark = pytest.mark.docker

T = TypeVar("T")

HEALTH_INTERVAL = "200ms"
PROMOTE_AFTER = 0.3
WAIT_S = 20.0

Client = TestClient[Any, Any]


# -- helpers --------------------------------------------------------------------


@dataclass
class Provider:
    """A running in-process provider and its API."""

    client: Client
    settings: Settings

    async def get(self, path: str) -> tuple[int, Any]:
        response = await self.client.get(path)
        return response.status, await response.json()

    async def config(self) -> dict[str, Any]:
        status, body = await self.get("/traefik")
        assert status == 200, body
        config: dict[str, Any] = body
        return config

    async def status(self, service: str) -> dict[str, Any]:
        status, body = await self.get(f"/status/{service}")
        assert status == 200, body
        doc: dict[str, Any] = body
        return doc

    async def history(self, service: str) -> list[dict[str, Any]]:
        _, body = await self.get(f"/history?service={service}")
        records: list[dict[str, Any]] = body["history"]
        return records

    async def servers(self, service: str) -> dict[str, list[str]] | None:
        """Each color's server URLs, with the color the main service points to under "active"."""
        services = (await self.config()).get("http", {}).get("services", {})
        if service not in services:
            return None
        out = {
            "active": [services[service]["weighted"]["services"][0]["name"]],
        }
        for color in ("blue", "green"):
            lb = services.get(f"{service}-{color}")
            if lb is not None:
                out[color] = [s["url"] for s in lb["loadBalancer"]["servers"]]
        return out

    async def wait_active(self, service: str, color: str, timeout: float = WAIT_S) -> None:
        async def probe() -> bool:
            servers = await self.servers(service)
            return servers is not None and servers["active"] == [f"{service}-{color}"]

        await eventually(f"{service} served by {color}", probe, timeout)


@dataclass
class Backends:
    """Starts labelled backends for one test's prefix; the factory removes them."""

    factory: ContainerFactory
    prefix: str

    async def run(
        self,
        service: str,
        color: str,
        *,
        healthy: bool = True,
        labels: Mapping[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        wait: str | None = "healthy",
    ) -> tuple[str, int]:
        """Start one backend; wait for its health unless ``wait`` is ``None``."""
        port = free_port()
        all_labels = {
            f"{self.prefix}.service": service,
            f"{self.prefix}.color": color,
            f"{self.prefix}.port": str(port),
            **(labels or {}),
        }
        container = await asyncio.to_thread(
            self.factory.run,
            f"{service}-{color}",
            all_labels,
            port,
            color,
            healthy,
            HEALTH_INTERVAL,
            extra_args=extra_args,
        )
        if wait is not None:
            await asyncio.to_thread(self.factory.wait_health, container, wait, WAIT_S)
        return container, port

    async def docker(self, *args: str) -> None:
        await asyncio.to_thread(self.factory.daemon.docker, *args)


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def prefix() -> str:
    return f"bg{secrets.token_hex(3)}"


@pytest.fixture
def backends(containers: ContainerFactory, prefix: str) -> Backends:
    return Backends(containers, prefix)


StartProvider = Callable[..., Awaitable[Provider]]


@pytest.fixture
async def start_provider(
    aiohttp_client: Callable[..., Awaitable[Client]],
    docker_daemon: DockerDaemon,
    prefix: str,
    tmp_path: Path,
) -> AsyncIterator[StartProvider]:
    """Start the provider on the shared daemon (or ``docker_host``) with fast timings."""

    async def start(**overrides: Any) -> Provider:
        settings = Settings(
            docker_host=docker_daemon.host,
            state_file=tmp_path / "state.json",
            label_prefix=prefix,
            promote_after=PROMOTE_AFTER,
            rollback_after=1.0,
            resync_interval=5.0,
            token="test-token",
        )
        settings = replace(settings, **overrides)
        client = await aiohttp_client(build_app(settings))
        return Provider(client, settings)

    yield start


async def synced(provider: Provider) -> None:
    async def probe() -> bool:
        status, _ = await provider.get("/traefik")
        return status == 200

    await eventually("first sync", probe, WAIT_S)


# -- 1. initial sync ------------------------------------------------------------


async def test_initial_sync_serves_running_blue_and_answers_503_before(
    docker_daemon: DockerDaemon,
    backends: Backends,
    start_provider: StartProvider,
    tmp_path: Path,
) -> None:
    """Before the first sync /traefik is 503; the sync picks up the running blue containers."""
    _, port1 = await backends.run("web", "blue")
    _, port2 = await backends.run("web", "blue")
    link = tmp_path / "docker.sock"  # Docker is "not there yet" until the link exists
    provider = await start_provider(docker_host=f"unix://{link}")

    answers = []
    for _ in range(5):
        answers.append((await provider.get("/traefik"))[0])
        await asyncio.sleep(0.1)
    _, status = await provider.get("/status")
    ready, _ = await provider.get("/readyz")
    assert [503] * 5 == answers
    assert 503 == ready
    assert "disconnected" == status["docker"]["status"]

    link.symlink_to(docker_daemon.socket_path)
    await synced(provider)

    assert {
        "active": ["web-blue"],
        "blue": sorted([url(port1), url(port2)]),
    } == await provider.servers("web")
    doc = await provider.status("web")
    assert ("blue", True) == (doc["active"], doc["docker_connected"])


# -- 2. automatic promotion -----------------------------------------------------


async def test_healthy_green_is_promoted_and_traefik_follows(
    backends: Backends, start_provider: StartProvider, traefik_factory: TraefikFactory
) -> None:
    """A new green generation that turns healthy takes traffic; history says auto-promote."""
    _, blue_port = await backends.run("web", "blue")
    provider = await start_provider()
    await synced(provider)
    endpoint = f"http://127.0.0.1:{provider.client.port}/traefik"
    traefik = await asyncio.to_thread(traefik_factory.start, http_endpoint=endpoint)
    await asyncio.to_thread(traefik.wait_response, host="web", body="blue\n")
    before = await provider.config()

    _, green_port = await backends.run("web", "green", wait=None)
    await provider.wait_active("web", "green")

    assert before != await provider.config()
    assert {
        "active": ["web-green"],
        "blue": [url(blue_port)],
        "green": [url(green_port)],
    } == await provider.servers("web")
    history = await provider.history("web")
    assert [("blue", "green", "auto-promote", "watcher")] == [
        (r["from"], r["to"], r["reason"], r["actor"]) for r in history
    ]
    await asyncio.to_thread(traefik.wait_response, host="web", body="green\n")


# -- 3. never healthy -----------------------------------------------------------


async def test_unhealthy_green_is_never_promoted_and_status_says_why(
    backends: Backends, start_provider: StartProvider
) -> None:
    """A green whose healthcheck fails stays idle; /status names it, its health and output."""
    await backends.run("web", "blue")
    provider = await start_provider()
    await synced(provider)

    green, _ = await backends.run("web", "green", healthy=False, wait="unhealthy")

    async def not_routable() -> dict[str, Any] | None:
        doc = await provider.status("web")
        pending = doc["pending_promotion"] or {}
        members = pending.get("containers") or [{}]
        seen = pending.get("stage") == "not_routable" and members[0].get("health") == "unhealthy"
        return doc if seen else None

    # The provider's own verdict, not a pause: an unhealthy generation is never due
    # (the fake-clock tables in test_promotion.py pin that nothing follows).
    doc = await eventually("green reported not routable", not_routable, WAIT_S)
    pending = doc["pending_promotion"]
    assert "blue" == doc["active"]
    assert [] == await provider.history("web")
    assert ("green", "not_routable") == (pending["color"], pending["stage"])
    [member] = pending["containers"]
    assert (green[:12], "unhealthy", False) == (member["id"], member["health"], member["routable"])
    assert "404" in member["health_output"]
    assert "not routable" in pending["waiting_for"]


# -- 4. flapping ----------------------------------------------------------------


async def test_flapping_green_waits_for_promote_after(
    backends: Backends, containers: ContainerFactory, start_provider: StartProvider
) -> None:
    """Healthy spells shorter than --promote-after never promote; a long enough one does."""
    promote_after = 2.5
    await backends.run("web", "blue")
    provider = await start_provider(promote_after=promote_after)
    await synced(provider)
    green, _ = await backends.run("web", "green", healthy=False, wait="unhealthy")

    spells = []
    for _ in range(3):
        spell_start = time.monotonic()
        await asyncio.to_thread(containers.set_healthy, green, True)
        await asyncio.to_thread(containers.wait_health, green, "healthy", WAIT_S)
        await asyncio.sleep(0.3)
        await asyncio.to_thread(containers.set_healthy, green, False)
        await asyncio.to_thread(containers.wait_health, green, "unhealthy", WAIT_S)
        spells.append(time.monotonic() - spell_start)
    assert max(spells) < promote_after, f"the machine is too slow for this test: {spells}"
    assert [] == await provider.history("web")

    healthy_from = time.time()
    await asyncio.to_thread(containers.set_healthy, green, True)
    await provider.wait_active("web", "green")

    [record] = await provider.history("web")
    assert "auto-promote" == record["reason"]
    assert record["at"] - healthy_from >= promote_after


# -- 5. replicas ----------------------------------------------------------------


async def test_replicas_two_needs_two_healthy_green_containers(
    backends: Backends, prefix: str, start_provider: StartProvider
) -> None:
    """With replicas=2 one healthy green container is not enough; the second one promotes."""
    replicas = {f"{prefix}.replicas": "2"}
    await backends.run("web", "blue")
    provider = await start_provider()
    await synced(provider)

    await backends.run("web", "green", labels=replicas)

    async def too_few() -> dict[str, Any] | None:
        doc = await provider.status("web")
        stage = (doc["pending_promotion"] or {}).get("stage")
        return doc if stage == "too_few_replicas" else None

    doc = await eventually("green reported too few", too_few, WAIT_S)
    pending = doc["pending_promotion"]
    assert ("blue", "too_few_replicas") == (doc["active"], pending["stage"])
    assert (1, 2) == (pending["routable"], pending["replicas"])

    await backends.run("web", "green", labels=replicas)
    await provider.wait_active("web", "green")
    assert ["auto-promote"] == [r["reason"] for r in await provider.history("web")]


# -- 6. old color restarted -----------------------------------------------------


async def test_restarting_the_old_color_does_not_flip_back(
    backends: Backends, containers: ContainerFactory, start_provider: StartProvider
) -> None:
    """After a promotion, the old color's restarted containers are not a new generation."""
    blue, _ = await backends.run("web", "blue")
    provider = await start_provider()
    await synced(provider)
    await backends.run("web", "green")
    await provider.wait_active("web", "green")

    created = (await provider.status("web"))["colors"]["blue"]["containers"][0]["created"]
    await backends.docker("restart", "-t", "1", blue)
    await asyncio.to_thread(containers.wait_health, blue, "healthy", WAIT_S)

    async def blue_back() -> dict[str, Any] | None:
        doc = await provider.status("web")
        return doc if doc["colors"]["blue"]["routable"] == 1 else None

    # What Docker must give the core: a restart keeps ``Created``, so the restarted
    # containers predate the switch; the fake-clock tables in test_promotion.py pin
    # that such containers are never a generation, at any later time.
    doc = await eventually("blue routable again", blue_back, WAIT_S)
    assert created == doc["colors"]["blue"]["containers"][0]["created"]
    assert "green" == (await provider.status("web"))["active"]
    assert ["auto-promote"] == [r["reason"] for r in await provider.history("web")]
    assert None is (await provider.status("web"))["pending_promotion"]


# -- 7. automatic rollback ------------------------------------------------------


@pytest.mark.parametrize("auto_rollback", [True, False], ids=["auto", "no-auto-rollback"])
async def test_killing_the_active_color_rolls_back_unless_disabled(
    auto_rollback: bool, backends: Backends, start_provider: StartProvider
) -> None:
    """Active green dead for --rollback-after with blue healthy: auto-rollback (unless off)."""
    rollback_after = 1.0
    await backends.run("web", "blue")
    provider = await start_provider(rollback_after=rollback_after, auto_rollback=auto_rollback)
    await synced(provider)
    green, _ = await backends.run("web", "green")
    await provider.wait_active("web", "green")

    killed_at = time.time()
    await backends.docker("kill", green)

    if auto_rollback:
        await provider.wait_active("web", "blue")
        history = await provider.history("web")
        assert [("auto-promote", "watcher"), ("auto-rollback", "watcher")] == [
            (r["reason"], r["actor"]) for r in history
        ]
        assert history[-1]["at"] - killed_at >= rollback_after
    else:

        async def disabled() -> dict[str, Any] | None:
            doc = await provider.status("web")
            stage = (doc["pending_rollback"] or {}).get("stage")
            return doc if stage == "disabled" else None

        # The provider says it will not roll back (auto-rollback is off), rather than a pause.
        doc = await eventually("rollback reported disabled", disabled, WAIT_S)
        assert ("green", ["auto-promote"]) == (
            doc["active"],
            [r["reason"] for r in await provider.history("web")],
        )


# -- 8. Docker restarted --------------------------------------------------------


@pytest.fixture
def own_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A daemon for this test alone: it gets stopped and restarted mid-test."""
    daemon = DockerDaemon.start(tmp_path_factory.mktemp("own-dockerd"))
    try:
        yield daemon
    finally:
        daemon.destroy()


async def test_docker_restart_keeps_serving_and_switches_nothing(
    own_daemon: DockerDaemon, prefix: str, start_provider: StartProvider
) -> None:
    """dockerd stops and starts: /traefik keeps answering, /status and /metrics say
    disconnected, the provider reconnects and resyncs, and makes no spurious switch."""
    image = await asyncio.to_thread(build_busybox_image, own_daemon, DEFAULT_IMAGE)
    factory = ContainerFactory(own_daemon, image)
    restart = ("--restart", "always")
    try:
        own = Backends(factory, prefix)
        _, blue_port = await own.run("web", "blue", extra_args=restart)
        provider = await start_provider(docker_host=own_daemon.host, rollback_after=5.0)
        await synced(provider)
        _, green_port = await own.run("web", "green", extra_args=restart)
        await provider.wait_active("web", "green")
        served = await provider.config()

        await asyncio.to_thread(own_daemon.stop)

        async def disconnected() -> bool:
            _, doc = await provider.get("/status")
            return doc["docker"]["status"] == "disconnected"

        await eventually("docker disconnected", disconnected, WAIT_S)
        outage = [await provider.get("/traefik") for _ in range(3)]
        metrics = await (await provider.client.get("/metrics")).text()
        ready_status, ready = await provider.get("/readyz")
        assert [200, 200, 200] == [status for status, _ in outage]
        assert "bluegreen_docker_connected 0.0" in metrics.splitlines()
        assert (200, "disconnected") == (ready_status, ready["docker"]["status"])

        await asyncio.to_thread(own_daemon.restart)

        async def reconnected_and_serving() -> bool:
            _, doc = await provider.get("/status")
            servers = await provider.servers("web")
            return doc["docker"]["connected"] and servers == {
                "active": ["web-green"],
                "blue": [url(blue_port)],
                "green": [url(green_port)],
            }

        await eventually("reconnect and resync", reconnected_and_serving, WAIT_S)
        # Timers restart after a reconnect (pinned with a fake clock in test_auto_switch.py).
        assert served == await provider.config()
        assert ["auto-promote"] == [r["reason"] for r in await provider.history("web")]
    finally:
        errors = await asyncio.to_thread(factory.cleanup)
        assert [] == errors


# -- 9. bad labels --------------------------------------------------------------


async def test_bad_labels_are_an_error_of_their_service_only(
    backends: Backends, prefix: str, start_provider: StartProvider
) -> None:
    """A container with a bad color breaks only its service, which keeps its last good config."""
    _, alpha_port = await backends.run("alpha", "blue")
    _, beta_port = await backends.run("beta", "blue")
    provider = await start_provider()
    await synced(provider)
    assert {"active": ["beta-blue"], "blue": [url(beta_port)]} == await provider.servers("beta")

    await backends.run("beta", "purple")

    async def beta_broken() -> list[str]:
        errors: list[str] = (await provider.status("beta"))["errors"]
        return errors

    errors = await eventually("beta label error", beta_broken, WAIT_S)
    assert "purple" in errors[0]
    assert True is (await provider.status("beta"))["serving_last_good_config"]
    assert [] == (await provider.status("alpha"))["errors"]
    assert {"active": ["alpha-blue"], "blue": [url(alpha_port)]} == await provider.servers("alpha")
    assert {"active": ["beta-blue"], "blue": [url(beta_port)]} == await provider.servers("beta")


async def test_frozen_service_drops_dead_servers_and_stopped_bad_labels_freeze_nothing(
    backends: Backends, containers: ContainerFactory, start_provider: StartProvider
) -> None:
    """A running bad-label container freezes beta's shape, not its servers: its dead blue
    leaves and a healthy replacement joins. Once the bad container stops it is a warning
    and freezes nothing."""
    old, old_port = await backends.run("beta", "blue")
    provider = await start_provider()
    await synced(provider)
    routers = (await provider.config())["http"]["routers"]
    purple, _ = await backends.run("beta", "purple")

    async def beta_broken() -> list[str]:
        errors: list[str] = (await provider.status("beta"))["errors"]
        return errors

    await eventually("beta label error", beta_broken, WAIT_S)
    _, new_port = await backends.run("beta", "blue")
    await asyncio.to_thread(containers.stop, old)

    async def replaced() -> bool:
        return await provider.servers("beta") == {"active": ["beta-blue"], "blue": [url(new_port)]}

    await eventually(f"{url(old_port)} replaced by {url(new_port)}", replaced, WAIT_S)
    assert routers == (await provider.config())["http"]["routers"]
    assert True is (await provider.status("beta"))["serving_last_good_config"]

    await asyncio.to_thread(containers.stop, purple)

    async def only_warned() -> bool:
        doc = await provider.status("beta")
        return doc["errors"] == [] and len(doc["warnings"]) == 1

    await eventually("the stopped bad container only warns", only_warned, WAIT_S)
    assert False is (await provider.status("beta"))["serving_last_good_config"]


async def test_unwritable_state_file_still_syncs_and_follows_docker(
    docker_daemon: DockerDaemon,
    backends: Backends,
    containers: ContainerFactory,
    start_provider: StartProvider,
    tmp_path: Path,
) -> None:
    """The state file's path is a directory when the first sync adopts web (the rename
    fails for real, EISDIR): /traefik still answers 200 and follows Docker, /readyz says
    why it is 503, and once the path is clear the provider adopts web on its own."""
    first, first_port = await backends.run("web", "blue")
    link = tmp_path / "docker.sock"
    provider = await start_provider(docker_host=f"unix://{link}")
    provider.client.app[CONTROLLER].state_retry_delays = (0.05, 0.2)
    obstacle = provider.settings.state_file
    obstacle.mkdir()
    (obstacle / "keep").write_text("x")
    link.symlink_to(docker_daemon.socket_path)
    await synced(provider)
    assert {"active": ["web-blue"], "blue": [url(first_port)]} == await provider.servers("web")
    ready, doc = await provider.get("/readyz")
    assert (503, False) == (ready, doc["state_file"]["ok"])
    assert "directory" in doc["state_file"]["error"].lower()

    _, second_port = await backends.run("web", "blue")
    await asyncio.to_thread(containers.stop, first)

    async def followed() -> bool:
        return await provider.servers("web") == {"active": ["web-blue"], "blue": [url(second_port)]}

    await eventually("the body follows Docker", followed, WAIT_S)
    assert False is (await provider.status("web"))["adopted"]

    (obstacle / "keep").unlink()
    obstacle.rmdir()

    async def adopted() -> bool:
        ready, _ = await provider.get("/readyz")
        return ready == 200 and bool((await provider.status("web"))["adopted"])

    await eventually("web adopted after the path is clear", adopted, WAIT_S)
    assert "blue" == json.loads(obstacle.read_text())["services"]["web"]["active"]


# -- 10. removing a color -------------------------------------------------------


async def test_removing_all_containers_of_a_color_removes_its_servers(
    backends: Backends, containers: ContainerFactory, start_provider: StartProvider
) -> None:
    """Removing green's containers drops web-green; stopping blue's empties web-blue (503,
    the router stays); removing the last container takes the service out of the body."""
    blue, blue_port = await backends.run("web", "blue")
    green, green_port = await backends.run("web", "green")
    provider = await start_provider()
    await synced(provider)
    assert {
        "active": ["web-blue"],
        "blue": [url(blue_port)],
        "green": [url(green_port)],
    } == await provider.servers("web")

    await asyncio.to_thread(containers.remove, green)

    async def green_gone() -> bool:
        return await provider.servers("web") == {"active": ["web-blue"], "blue": [url(blue_port)]}

    await eventually("green removed", green_gone, WAIT_S)
    assert "web-preview-green" not in (await provider.config())["http"]["routers"]

    await asyncio.to_thread(containers.stop, blue)

    async def blue_empty() -> bool:
        return await provider.servers("web") == {"active": ["web-blue"], "blue": []}

    await eventually("blue emptied", blue_empty, WAIT_S)
    assert "web" in (await provider.config())["http"]["routers"]

    await asyncio.to_thread(containers.remove, blue)

    async def service_gone() -> bool:
        return await provider.servers("web") is None

    await eventually("web gone", service_gone, WAIT_S)
    assert [] == await provider.history("web")


# -- 11. live restore (no Docker needed) ----------------------------------------


async def test_live_restore_on_docker_25_leaves_the_served_body_alone(tmp_path: Path) -> None:
    """The full resync after a daemon restart sees the active color ``starting`` (its
    monitor was reset): the body keeps its servers, as it must until a probe fails."""
    labels = {"bluegreen.service": "web", "bluegreen.color": "blue", "bluegreen.port": "8080"}
    config = {**INSPECT["Config"], "Labels": labels}
    nets = {"Networks": {"bridge": {"IPAddress": "172.17.0.2"}}}
    controller = Controller(Settings(state_file=tmp_path / "s.json"), State())
    before = normalize({**INSPECT, "Config": config, "NetworkSettings": nets}, "bluegreen")
    await controller.replace_containers([before])
    served = controller.body

    doc = {**restored(), "Config": config, "NetworkSettings": nets}
    after = normalize(doc, "bluegreen", controller.containers[before.id])
    await controller.replace_containers([after])

    assert b"172.17.0.2:8080" in served
    assert served == controller.body


# -- 12. network changes -------------------------------------------------------


@pytest.fixture
def user_networks(
    docker_daemon: DockerDaemon, containers: ContainerFactory
) -> Iterator[Callable[[], str]]:
    """Creates user networks (the private daemon has no default bridge); removes them after,
    and the test's containers first, since a network in use cannot be removed."""
    created: list[str] = []

    def create() -> str:
        name = f"bgtest-net-{secrets.token_hex(3)}"
        docker_daemon.docker("network", "create", name)
        created.append(name)
        return name

    yield create
    errors = containers.cleanup()
    for name in created:
        result = docker_daemon.docker("network", "rm", name, check=False)
        if result.returncode != 0:
            errors.append(result.stderr.strip())
    assert [] == errors


async def test_network_connect_and_disconnect_reach_the_served_url_without_a_resync(
    backends: Backends,
    containers: ContainerFactory,
    prefix: str,
    start_provider: StartProvider,
    user_networks: Callable[[], str],
) -> None:
    """`docker network disconnect/connect` re-inspect the container at once: the served URL
    follows the event, not the periodic resync (disabled here by a one-hour interval)."""
    first, second = user_networks(), user_networks()
    port = free_port()
    labels = {
        f"{prefix}.service": "web",
        f"{prefix}.color": "blue",
        f"{prefix}.port": str(port),
    }
    blue = await asyncio.to_thread(
        lambda: containers.run(
            "web-blue", labels, port, "blue", True, HEALTH_INTERVAL, network=first
        )
    )
    await asyncio.to_thread(containers.wait_health, blue, "healthy", WAIT_S)
    provider = await start_provider(resync_interval=3600.0)
    await synced(provider)
    controller = provider.client.app[CONTROLLER]

    def address(network: str) -> str:
        doc = containers.inspect(blue)
        return str(doc["NetworkSettings"]["Networks"][network]["IPAddress"])

    first_ip = await asyncio.to_thread(address, first)
    assert {"active": ["web-blue"], "blue": [f"http://{first_ip}:{port}"]} == (
        await provider.servers("web")
    )

    await backends.docker("network", "disconnect", first, blue)

    async def no_network() -> bool:
        return dict(controller.containers[blue].networks) == {}

    await eventually("the disconnect observed", no_network, WAIT_S)

    await backends.docker("network", "connect", second, blue)
    second_ip = await asyncio.to_thread(address, second)

    async def served_on_second() -> bool:
        servers = await provider.servers("web")
        return servers == {"active": ["web-blue"], "blue": [f"http://{second_ip}:{port}"]}

    await eventually("the new address served", served_on_second, WAIT_S)
    assert {second: second_ip} == dict(controller.containers[blue].networks)


async def test_only_events_of_our_containers_wake_the_watcher() -> None:
    """Container events need the service label; network events count for known containers
    only, and name the container in Actor.Attributes.container (Actor.ID is the network)."""
    known = make_container()
    controller = Controller(Settings(), State())
    await controller.replace_containers([known])
    watcher = DockerWatcher(controller, Settings())
    ours = {"bluegreen.service": "web", "name": "web-blue-1"}

    def event(kind: str, actor_id: str, attributes: dict[str, str]) -> dict[str, Any]:
        return {"Type": kind, "Action": "x", "Actor": {"ID": actor_id, "Attributes": attributes}}

    assert [known.id, None, known.id, None, None] == [
        watcher._relevant(event("container", known.id, ours)),
        watcher._relevant(event("container", "f" * 64, {"name": "unrelated"})),
        watcher._relevant(event("network", "n" * 64, {"container": known.id, "name": "app"})),
        watcher._relevant(event("network", "n" * 64, {"container": "f" * 64, "name": "app"})),
        watcher._relevant(event("network", "n" * 64, {"name": "app", "type": "bridge"})),
    ]
    assert {"connect", "disconnect", "start", "die"} <= set(event_filters()["event"])
    assert ["container", "network"] == event_filters()["type"]


async def test_a_known_containers_event_without_labels_still_wakes_the_watcher() -> None:
    """An engine that leaves the labels out of a container event (podman's ``died``; the
    Docker-API shims) must not hide a known container's die or destroy: without the
    daemon-side label filter the watcher's own check decides, and the id it knows is enough
    (else the container would be served until the next resync)."""
    known = make_container()
    controller = Controller(Settings(), State())
    await controller.replace_containers([known])
    watcher = DockerWatcher(controller, Settings())

    def event(action: str, actor_id: str) -> dict[str, Any]:
        attributes = {"name": "web-blue-1", "image": "app:1"}
        return {
            "Type": "container",
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": attributes},
        }

    assert [known.id, known.id, None] == [
        watcher._relevant(event("die", known.id)),
        watcher._relevant(event("destroy", known.id)),
        watcher._relevant(event("destroy", "f" * 64)),
    ]


async def test_a_compose_one_off_container_is_never_a_member(
    backends: Backends, prefix: str, start_provider: StartProvider
) -> None:
    """A healthy ``compose run`` container (a deploy's release step: it carries the color's
    labels and compose's one-off mark) is never listed, served or promoted."""
    _, blue_port = await backends.run("web", "blue")
    provider = await start_provider()
    await synced(provider)
    await backends.run("web", "green", labels={"com.docker.compose.oneoff": "True"})
    # Docker's events are ordered: once a later container is seen, the one-off's were read.
    await backends.run("marker", "blue")

    async def marker_seen() -> bool:
        return (await provider.servers("marker")) is not None

    await eventually("marker seen", marker_seen, WAIT_S)
    status = await provider.status("web")
    assert "blue" == status["active"]
    assert [] == status["colors"]["green"]["containers"]
    assert {"active": ["web-blue"], "blue": [url(blue_port)]} == await provider.servers("web")
