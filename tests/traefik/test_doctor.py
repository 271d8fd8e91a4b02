"""``bluegreen doctor`` against the real chain: the shipped socket proxy, a provider, Traefik.

Everything runs on 127.0.0.1: Debian's haproxy with ``deploy/socket-proxy/haproxy.cfg`` in
front of the private dockerd, a ``bluegreen serve`` process reading Docker through it, and
the real Traefik binary polling that provider. The doctor runs as the operator would, as a
subprocess of this checkout, with only the environment ``bluegreen init`` gives a shell.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.testbed.dockerd import DockerDaemon
from tests.testbed.provider import REPO_ROOT, ProviderProcess
from tests.testbed.socket_proxy import SocketProxy, started_proxy, without_rule
from tests.testbed.stack import Stack, StackFactory

pytestmark = [pytest.mark.docker, pytest.mark.traefik]

TIMEOUT_S = 60.0


@pytest.fixture
def socket_proxy(
    docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SocketProxy]:
    yield from started_proxy(docker_daemon, tmp_path_factory.mktemp("haproxy"))


@pytest.fixture
def chain(
    socket_proxy: SocketProxy, stack_factory: StackFactory, tmp_path: Path
) -> tuple[Stack, Path]:
    """A provider with a token file, reading Docker through the proxy; Traefik polling it."""
    token_file = tmp_path / "token"
    token_file.write_text("doctor-" + "5a" * 12 + "\n")
    stack = stack_factory.start(docker_host=socket_proxy.docker_host, token_file=token_file)
    stack.provider.wait_ready()
    stack.provider.wait_for("a Traefik poll", lambda: polled(stack.provider), TIMEOUT_S)
    return stack, token_file


def polled(provider: ProviderProcess) -> bool:
    traefik = provider.get("/status").json.get("traefik") or {}
    return bool(traefik.get("polls"))


def doctor(*args: str, env: Mapping[str, str]) -> tuple[int, list[str]]:
    """Run ``bluegreen doctor`` from this checkout; its exit code and stdout lines."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEGREEN_", "DOCKER_"))}
    result = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "doctor", *args],
        env={**base, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    return result.returncode, result.stdout.splitlines()


def outcomes(lines: list[str]) -> dict[str, str]:
    return {line.split()[1]: line.split()[0] for line in lines}


def test_doctor_passes_every_check_through_the_proxy(
    chain: tuple[Stack, Path], socket_proxy: SocketProxy
) -> None:
    """Docker through the proxy allows the provider's endpoints (no writes), the provider
    answers, Traefik polls it, the token works, the state directory is writable: exit 0."""
    stack, token_file = chain
    code, lines = doctor(
        env={
            "BLUEGREEN_URL": stack.provider.url,
            "BLUEGREEN_TOKEN_FILE": str(token_file),
            "BLUEGREEN_DOCKER_HOST": socket_proxy.docker_host,
            "BLUEGREEN_STATE_FILE": str(stack.provider.state_file),
        }
    )
    assert (0, {n: "ok" for n in ("docker", "provider", "traefik", "token", "state")}) == (
        code,
        outcomes(lines),
    ), lines
    assert (
        f"ok    docker    {socket_proxy.docker_host} allows the provider's 6 endpoints; "
        "no write needed"
    ) == lines[0]
    assert (
        f"ok    state     state directory {stack.provider.state_file.parent} is writable"
        == (lines[4])
    )


def test_doctor_names_each_failure_and_exits_1(
    chain: tuple[Stack, Path], docker_daemon: DockerDaemon, tmp_path: Path
) -> None:
    """A proxy without the events rule, a wrong token and a missing state directory fail
    their own lines; the provider and Traefik checks still pass."""
    stack, _ = chain
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token\n")
    config = without_rule("events", tmp_path / "haproxy.cfg")
    for proxy in started_proxy(docker_daemon, tmp_path / "proxy", config=config):
        code, lines = doctor(
            "--docker-host", proxy.docker_host,
            "--state-file", str(tmp_path / "missing" / "state.json"),
            env={"BLUEGREEN_URL": stack.provider.url, "BLUEGREEN_TOKEN_FILE": str(wrong)},
        )  # fmt: skip
        assert 1 == code, lines
        assert {
            "docker": "FAIL",
            "provider": "ok",
            "traefik": "ok",
            "token": "FAIL",
            "state": "FAIL",
        } == outcomes(lines), lines
        assert "GET /events" in lines[0] and "rule events of deploy/socket-proxy" in lines[0]
        assert "the provider rejected the token" in lines[3]
        assert f"state directory {tmp_path / 'missing'} does not exist" in lines[4]


def test_doctor_fails_when_traefik_never_polled(
    socket_proxy: SocketProxy, stack_factory: StackFactory
) -> None:
    """A provider nothing polls: the traefik line fails and says where to look."""
    provider = stack_factory.providers.start(docker_host=socket_proxy.docker_host)
    provider.wait_ready()
    code, lines = doctor(
        env={"BLUEGREEN_URL": provider.url, "BLUEGREEN_DOCKER_HOST": socket_proxy.docker_host}
    )
    assert 1 == code
    assert {"docker": "ok", "provider": "ok", "traefik": "FAIL", "token": "skip"} == {
        k: v for k, v in outcomes(lines).items() if k != "state"
    }, lines
    assert "Traefik never polled /traefik" in lines[2]
