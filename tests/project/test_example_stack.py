"""``docker-stack.example.yml`` keeps the Swarm contract, as ``docker stack config`` reads it.

``docker stack config`` (docker CLI 28) validates the file against the stack schema and
interpolates it without a daemon; the assertions read its output: the provider global on
managers with the socket and the tokens as secrets, Traefik polling it with the short
pollInterval, and the blue/green pair's *service* labels on an attachable overlay.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.testbed.compose import REPO_ROOT
from tests.testbed.dockerd import find_docker_cli

STACK = REPO_ROOT / "docker-stack.example.yml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example as ``docker stack config`` resolves it (DOCKER_GID and secrets set)."""
    docker = find_docker_cli()
    assert docker is not None, "the docker CLI is part of the test environment"
    tmp = tmp_path_factory.mktemp("stack")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEGREEN_", "DOCKER_"))}
    env.update(DOCKER_GID="998", BLUEGREEN_SECRETS_DIR=str(tmp / "secrets"), HOME=str(tmp))
    result = subprocess.run(
        [docker, "stack", "config", "-c", str(STACK)],
        env=env, cwd=tmp, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    config["secrets_dir"] = str(tmp / "secrets")
    return config


def test_provider_is_global_on_managers_locked_down_with_secret_tokens(
    stack: dict[str, Any],
) -> None:
    """One provider per manager, in Swarm mode, with no socket, reading its tokens from files;
    reached by DNS round robin (bench/verify_stack.py: the VIP gave "no route to host")."""
    provider = stack["services"]["bluegreen"]
    assert {
        "mode": "global",
        "endpoint_mode": "dnsrr",
        "placement": {"constraints": ["node.role == manager"]},
    } == provider["deploy"]
    assert ["serve", "--swarm"] == provider["command"]
    assert "10001:10001" == provider["user"]
    assert (True, ["ALL"]) == (provider["read_only"], provider["cap_drop"])
    assert "volumes" not in provider  # no socket: Docker only through the proxy
    assert "tcp://socket-proxy:2375" == provider["environment"]["BLUEGREEN_DOCKER_HOST"]
    assert [{"source": "bluegreen_token"}, {"source": "bluegreen_provider_token"}] == provider[
        "secrets"
    ]
    env = provider["environment"]
    assert "/run/secrets/bluegreen_token" == env["BLUEGREEN_TOKEN_FILE"]
    assert "/run/secrets/bluegreen_provider_token" == env["BLUEGREEN_PROVIDER_TOKEN_FILE"]
    assert not any("TOKEN" in k and not k.endswith("_FILE") for k in env)
    secrets_dir = Path(stack["secrets_dir"])
    assert {
        "bluegreen_token": {"file": str(secrets_dir / "bluegreen_token")},
        "bluegreen_provider_token": {"file": str(secrets_dir / "bluegreen_provider_token")},
    } == stack["secrets"]
    # Swarm replaces unhealthy tasks: a replica without quorum must live on (liveness only).
    assert "/healthz" in provider["healthcheck"]["test"][-1]


def test_traefik_polls_the_provider_with_the_secret_token(stack: dict[str, Any]) -> None:
    """Traefik v3.7 polls bluegreen:8080/traefik every 200ms; the token comes from a secret."""
    traefik = stack["services"]["traefik"]
    env = traefik["environment"]
    assert "traefik:v3.7" == traefik["image"]
    assert "http://bluegreen:8080/traefik" == env["TRAEFIK_PROVIDERS_HTTP_ENDPOINT"]
    assert "200ms" == env["TRAEFIK_PROVIDERS_HTTP_POLLINTERVAL"]
    assert [{"source": "bluegreen_provider_token"}] == traefik["secrets"]
    assert "cat /run/secrets/bluegreen_provider_token" in traefik["entrypoint"][-1]
    assert "command" not in traefik


def test_colors_are_labelled_services_on_an_attachable_overlay(stack: dict[str, Any]) -> None:
    """Service labels name the pair, port, network and rule; green idles at 0 replicas."""
    network = stack["networks"]["apps"]
    assert ("overlay", True) == (network["driver"], network["attachable"])
    for color, replicas in (("blue", 2), ("green", 0)):
        service = stack["services"][f"web-{color}"]
        assert replicas == service["deploy"]["replicas"]
        assert {
            "bluegreen.service": "web",
            "bluegreen.color": color,
            "bluegreen.port": "8000",
            "bluegreen.network": network["name"],
            "bluegreen.rule": "Host(`web.localhost`)",
            "bluegreen.replicas": "2",
        } == service["deploy"]["labels"]
        assert "labels" not in service  # container labels are not what Swarm mode reads
        assert {"apps": None} == service["networks"]
    assert {"apps": None} == stack["services"]["traefik"]["networks"]
    assert {"apps": None, "docker-api": None} == stack["services"]["bluegreen"]["networks"]


def test_only_the_socket_proxy_holds_the_socket_in_swarm_mode(stack: dict[str, Any]) -> None:
    """The proxy (global on managers, the socket's group, the Swarm rules on) is the one
    service with the socket; it shares an internal overlay with the providers alone."""
    proxy = stack["services"]["socket-proxy"]
    assert "traefik-bluegreen-socket-proxy:local" == proxy["image"]
    assert "65534:998" == proxy["user"]
    assert {
        "BLUEGREEN_PROXY_LISTEN": ":2375",
        "BLUEGREEN_PROXY_SOCKET": "/var/run/docker.sock",
        "BLUEGREEN_PROXY_SWARM": "1",
    } == proxy["environment"]
    assert {
        "mode": "global",
        "endpoint_mode": "dnsrr",
        "placement": {"constraints": ["node.role == manager"]},
    } == proxy["deploy"]
    assert (True, ["ALL"]) == (proxy["read_only"], proxy["cap_drop"])
    with_socket = [
        name
        for name, service in stack["services"].items()
        if any("docker.sock" in str(v) for v in service.get("volumes", []))
    ]
    assert ["socket-proxy"] == with_socket
    assert ("overlay", True) == (
        stack["networks"]["docker-api"]["driver"],
        stack["networks"]["docker-api"]["internal"],
    )
    on_api = sorted(n for n, s in stack["services"].items() if "docker-api" in s["networks"])
    assert ["bluegreen", "socket-proxy"] == on_api
