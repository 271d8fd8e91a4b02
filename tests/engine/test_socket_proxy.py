"""The provider works through the shipped socket proxy, and the proxy refuses everything else.

Debian's ``haproxy`` runs ``deploy/socket-proxy/haproxy.cfg`` (the very file the compose
and stack examples mount) on 127.0.0.1 in front of the private dockerd:

- every endpoint of the provider's table passes (Docker answers it, even if with 404), and
  what a taken-over provider would want (create, start, exec, images, secrets...) gets 403;
- a real ``bluegreen serve`` reads Docker only through it: it adopts, promotes and rolls
  back, and its startup line lists what it reads and that it needs no write;
- with one rule removed, startup stops with one line naming the endpoint and the rule.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.core.docker_endpoints import ENDPOINTS, needed
from provider.docker_access import probe_for
from tests.engine.test_startup_errors import one_line
from tests.testbed.containers import ContainerFactory
from tests.testbed.dockerd import DockerDaemon
from tests.testbed.ports import free_ports
from tests.testbed.provider import ProviderFactory
from tests.testbed.socket_proxy import SocketProxy, started_proxy, without_rule

pytestmark = [pytest.mark.docker]

#: What the provider never needs and an attacker would want; each must get 403.
FORBIDDEN = (
    ("POST", "/containers/create"),
    ("POST", "/v1.41/containers/create?name=x"),
    ("POST", "/containers/abc/start"),
    ("POST", "/containers/abc/exec"),
    ("POST", "/containers/abc/kill"),
    ("DELETE", "/containers/abc"),
    ("GET", "/containers/abc/logs"),
    ("GET", "/containers/abc/archive"),
    ("GET", "/containers/abc/export"),
    ("POST", "/containers/json"),
    ("GET", "/containers/%2e%2e/json"),
    ("GET", "/containers/../json"),
    ("GET", "/images/json"),
    ("POST", "/images/create"),
    ("POST", "/build"),
    ("GET", "/secrets"),
    ("GET", "/volumes"),
    ("POST", "/volumes/create"),
    ("POST", "/networks/create"),
    ("GET", "/system/df"),
    ("POST", "/swarm/init"),
    ("POST", "/services/create"),
    ("POST", "/services/abc/update"),
    ("GET", "/plugins"),
    ("POST", "/exec/abc/start"),
)
#: Swarm mode adds exactly the config writes; still none of these.
FORBIDDEN_IN_SWARM_MODE = (
    ("POST", "/services/create"),
    ("POST", "/services/abc/update"),
    ("DELETE", "/services/abc"),
    ("GET", "/secrets"),
    ("POST", "/secrets/create"),
    ("POST", "/configs/abc/update"),
    ("GET", "/nodes"),
    ("POST", "/containers/create"),
)


@pytest.fixture
def socket_proxy(
    docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SocketProxy]:
    """The shipped configuration (one host) in front of the private dockerd."""
    yield from started_proxy(docker_daemon, tmp_path_factory.mktemp("haproxy"))


def through(proxy: SocketProxy, method: str, path: str, prefix: str = "") -> tuple[int, str]:
    """Send ``method path`` (the table's probe for it) through the proxy."""
    endpoint = next(e for e in ENDPOINTS if (e.method, e.path) == (method, path))
    probe = probe_for(endpoint, "bgtest")
    query = urllib.parse.urlencode(probe.params or {})
    target = f"{prefix}/{probe.path}" + (f"?{query}" if query else "")
    return proxy.request(method, target, probe.body)


def test_the_shipped_rules_pass_the_one_host_endpoints_and_refuse_the_rest(
    socket_proxy: SocketProxy, docker_daemon: DockerDaemon
) -> None:
    """Each one-host endpoint reaches Docker (with and without an API version prefix); the
    Swarm endpoints and everything in FORBIDDEN get 403; the refused create created nothing."""
    for endpoint in ENDPOINTS:
        for prefix in ("", "/v1.41"):
            status, text = through(socket_proxy, endpoint.method, endpoint.path, prefix)
            if endpoint.swarm:
                assert 403 == status, (endpoint.name, prefix, text)
            else:
                assert 403 != status, (endpoint.name, prefix, text)
                assert status < 500, (endpoint.name, prefix, text)
    refused = {f"{m} {p}": socket_proxy.request(m, p, "{}")[0] for m, p in FORBIDDEN}
    assert {name: 403 for name in refused} == refused
    name = f"bgtest-refused-{secrets.token_hex(3)}"
    status, text = socket_proxy.request(
        "POST", f"/containers/create?name={name}", json.dumps({"Image": "bgtest-busybox"})
    )
    assert 403 == status
    assert "refused by the bluegreen socket proxy" in json.loads(text)["message"]
    assert 0 != docker_daemon.docker("inspect", name, check=False).returncode


def test_swarm_mode_adds_the_swarm_reads_and_config_writes_only(
    docker_daemon: DockerDaemon, tmp_path: Path
) -> None:
    """BLUEGREEN_PROXY_SWARM=1 lets every endpoint of the table through, and no other write."""
    for proxy in started_proxy(docker_daemon, tmp_path, swarm=True):
        answers = {e.name: through(proxy, e.method, e.path)[0] for e in ENDPOINTS}
        assert [] == [name for name, status in answers.items() if status == 403], answers
        refused = {f"{m} {p}": proxy.request(m, p, "{}")[0] for m, p in FORBIDDEN_IN_SWARM_MODE}
        assert {name: 403 for name in refused} == refused


def _labels(prefix: str, service: str, color: str, port: int) -> dict[str, str]:
    return {
        f"{prefix}.service": service,
        f"{prefix}.color": color,
        f"{prefix}.port": str(port),
    }


def _log_events(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def test_the_provider_adopts_promotes_and_rolls_back_through_the_proxy(
    socket_proxy: SocketProxy, provider_factory: ProviderFactory, containers: ContainerFactory
) -> None:
    """The provider's only Docker is the proxy: it logs what it reads (no writes), adopts
    blue, promotes green when healthy, rolls back to blue; Docker stays connected."""
    prefix, service = f"bg{secrets.token_hex(3)}", "web"
    provider = provider_factory.start(docker_host=socket_proxy.docker_host, label_prefix=prefix)
    provider.wait_ready()
    blue_port, green_port = free_ports(2)
    containers.run("blue", _labels(prefix, service, "blue", blue_port), blue_port, "blue")
    provider.wait_active(service, "blue", timeout=60)
    containers.run("green", _labels(prefix, service, "green", green_port), green_port, "green")
    provider.wait_active(service, "green", timeout=60)
    assert 200 == provider.rollback(service).status
    provider.wait_active(service, "blue", timeout=60)

    status = provider.get("/status").json
    assert "connected" == status["docker"]["status"]
    assert ["auto-promote", "rollback"] == [r["reason"] for r in provider.history(service)]
    access = [e for e in _log_events(provider.log_text()) if e.get("event") == "docker_access"]
    assert 1 == len(access), provider.log_text()[-3000:]
    assert [e.name for e in needed(swarm=False)] == access[0]["reads"]
    assert [] == access[0]["writes"]
    assert "none needed (reads only)" == access[0]["write_permission"]
    assert socket_proxy.docker_host == access[0]["docker_host"]


@pytest.mark.parametrize(
    ("rule", "endpoint", "setting"),
    [
        ("version", "GET /version", "VERSION=1"),
        ("events", "GET /events", "EVENTS=1"),
        ("containers_inspect", "GET /containers/{id}/json", "CONTAINERS=1"),
    ],
)
def test_a_refused_endpoint_stops_startup_with_one_line_naming_it_and_its_rule(
    docker_daemon: DockerDaemon, tmp_path: Path, rule: str, endpoint: str, setting: str
) -> None:
    """A proxy missing one rule: exit 2 at once (no retrying), one stderr line naming the
    refused endpoint, the rule of the shipped config and the Tecnativa setting."""
    config = without_rule(rule, tmp_path / "haproxy.cfg")
    for proxy in started_proxy(docker_daemon, tmp_path / "proxy", config=config):
        line = one_line(tmp_path, "--docker-host", proxy.docker_host)
        assert line.startswith(
            f"the Docker API at {proxy.docker_host} (--docker-host / BLUEGREEN_DOCKER_HOST) "
            f"refused what the provider needs: {endpoint} ("
        ), line
        assert f"rule {rule} of deploy/socket-proxy/haproxy.cfg" in line
        assert f"or {setting} for tecnativa/docker-socket-proxy" in line
        assert 1 == line.count("allow it in the proxy"), line
