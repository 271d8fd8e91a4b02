"""``serve --swarm`` through the shipped socket proxy with ``BLUEGREEN_PROXY_SWARM=1``.

A private single-node Swarm manager; Debian's haproxy runs ``deploy/socket-proxy/haproxy.cfg``
in front of its socket; a real provider reads services and tasks and commits its state
(Swarm configs) through the proxy alone. Its startup probes (an invalid config creation,
the removal of a config that does not exist) leave nothing behind.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.testbed.provider import ProviderProcess
from tests.testbed.socket_proxy import started_proxy
from tests.testbed.swarm_single import SingleNodeSwarm

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NETWORK = "proxy_web"
HTTPD = "mkdir -p /w; echo {color} > /w/index.html; exec httpd -f -p 80 -h /w"
WAIT_S = 60.0


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleNodeSwarm]:
    node = SingleNodeSwarm.start(tmp_path_factory.mktemp("swarm"))
    try:
        node.create_overlay(NETWORK)
        yield node
    finally:
        node.destroy()


def configs(swarm: SingleNodeSwarm) -> list[str]:
    return swarm.docker("config", "ls", "--format", "{{.Name}}").stdout.split()


def test_the_swarm_provider_adopts_and_commits_through_the_proxy(
    swarm: SingleNodeSwarm, tmp_path: Path
) -> None:
    """The provider logs the Swarm reads and its two config writes, adopts a labelled
    service and commits the adoption as a config through the proxy; nothing else appears."""
    before = configs(swarm)
    prefix = f"bg{secrets.token_hex(3)}"
    for proxy in started_proxy(swarm.daemon, tmp_path / "proxy", swarm=True):
        provider = ProviderProcess(
            tmp_path / "provider",
            docker_host=proxy.docker_host,
            label_prefix=prefix,
            extra_args=["--swarm", "--swarm-poll", "0.2"],
        )
        provider.start()
        try:
            provider.wait_ready(WAIT_S)
            labels = {
                f"{prefix}.service": "web",
                f"{prefix}.color": "blue",
                f"{prefix}.port": "80",
                f"{prefix}.network": NETWORK,
            }
            swarm.create_service(
                f"{prefix}_blue", labels=labels, networks=[NETWORK],
                command=["sh", "-c", HTTPD.format(color="blue")],
            )  # fmt: skip
            provider.wait_active("web", "blue", timeout=WAIT_S)
            # The adoption is committed as the state's first version, through the proxy.
            provider.wait_for(
                "the adoption committed",
                lambda: f"{prefix}-state-1" in configs(swarm),
                WAIT_S,
            )
            log = provider.log_text()
        finally:
            provider.terminate()
    access = [e for e in _events(log) if e.get("event") == "docker_access"]
    assert 1 == len(access), log[-3000:]
    assert ["POST /configs/create", "DELETE /configs/{name}"] == access[0]["writes"]
    assert {"GET /services", "GET /tasks", "GET /networks", "GET /configs"} <= set(
        access[0]["reads"]
    )
    assert [f"{prefix}-state-1"] == sorted(set(configs(swarm)) - set(before))


def _events(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found
