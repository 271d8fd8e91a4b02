"""``docker-compose.example.yml``'s Traefik gets the provider token from a Docker secret.

Traefik takes its static configuration from one source only (flags, environment or a
file), so the example configures it entirely through the environment and its
entrypoint adds the Authorization header from ``/run/secrets``. This runs that very
entrypoint and environment (as ``docker-compose config`` resolves them) with the real
Traefik binary against a loopback server that records what Traefik sends.
"""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tests.testbed.compose import REPO_ROOT, find_compose_v1
from tests.testbed.ports import LOOPBACK, free_port
from tests.testbed.traefik import find_traefik

SECRET_IN_CONTAINER = "/run/secrets/bluegreen_provider_token"
WAIT_S = 20.0


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers an empty dynamic config and remembers each Authorization header."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def recorder() -> Iterator[tuple[int, list[str | None]]]:
    """A loopback HTTP server standing in for the provider's /traefik."""
    seen: ClassVar[list[str | None]] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="recorder", daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def example_config(tmp_path: Path, secrets_dir: Path) -> dict[str, Any]:
    """``docker-compose config`` of the example, with the secrets in ``secrets_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLUEGREEN_", "COMPOSE_"))}
    env.update(DOCKER_GID="999", BLUEGREEN_SECRETS_DIR=str(secrets_dir))
    result = subprocess.run(
        [find_compose_v1(), "-f", str(REPO_ROOT / "docker-compose.example.yml"), "config"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_example_passes_tokens_as_secrets_never_on_a_command_line(tmp_path: Path) -> None:
    """The provider gets *_FILE settings pointing at its secrets; no token is interpolated."""
    secrets_dir = tmp_path / "secrets"
    config = example_config(tmp_path, secrets_dir)

    provider = config["services"]["bluegreen"]
    traefik = config["services"]["traefik"]
    assert {
        "bluegreen_token": {"file": str(secrets_dir / "bluegreen_token")},
        "bluegreen_provider_token": {"file": str(secrets_dir / "bluegreen_provider_token")},
    } == config["secrets"]
    assert [{"source": "bluegreen_token"}, {"source": "bluegreen_provider_token"}] == provider[
        "secrets"
    ]
    assert [{"source": "bluegreen_provider_token"}] == traefik["secrets"]
    assert (
        "/run/secrets/bluegreen_token",
        "/run/secrets/bluegreen_provider_token",
    ) == (
        provider["environment"]["BLUEGREEN_TOKEN_FILE"],
        provider["environment"]["BLUEGREEN_PROVIDER_TOKEN_FILE"],
    )
    assert "command" not in traefik
    assert not any("TOKEN" in k and not k.endswith("_FILE") for k in provider["environment"])


def test_example_traefik_entrypoint_sends_the_secret_token(
    tmp_path: Path, recorder: tuple[int, list[str | None]]
) -> None:
    """The example's Traefik entrypoint, run with the real binary, polls with
    `Authorization: Bearer <secret>`; the token is not in Traefik's command line."""
    traefik_bin = find_traefik()
    assert traefik_bin is not None, "the traefik binary is part of the test environment"
    token = "ptok-" + "9e1f" * 6
    secret = tmp_path / "bluegreen_provider_token"
    secret.write_text(token + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "traefik").symlink_to(traefik_bin)
    port, seen = recorder
    traefik = example_config(tmp_path, tmp_path / "secrets")["services"]["traefik"]
    argv = [part.replace("$$", "$") for part in traefik["entrypoint"]]
    argv = [part.replace(SECRET_IN_CONTAINER, str(secret)) for part in argv]
    env = {str(k): str(v) for k, v in traefik["environment"].items()}
    env.update(
        TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=f"{LOOPBACK}:{free_port()}",
        TRAEFIK_PROVIDERS_HTTP_ENDPOINT=f"http://{LOOPBACK}:{port}/traefik",
        PATH=f"{bin_dir}:/usr/bin:/bin",
        HOME=str(tmp_path),
    )
    with open(tmp_path / "traefik.log", "wb") as log:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WAIT_S
        while len(seen) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    log_text = (tmp_path / "traefik.log").read_text(errors="replace")
    assert len(seen) >= 2, log_text[-2000:]
    assert {f"Bearer {token}"} == set(seen)
    assert token.encode() not in cmdline
    assert b"traefik" in cmdline


def test_only_the_socket_proxy_holds_the_socket(tmp_path: Path) -> None:
    """The provider has no socket and no Docker group; it reads Docker through the proxy
    on an internal network only the two share, both locked down."""
    config = example_config(tmp_path, tmp_path / "secrets")
    services = config["services"]
    with_socket = [
        name
        for name, service in services.items()
        if any("docker.sock" in str(v) for v in service.get("volumes", []))
    ]
    assert ["socket-proxy"] == with_socket
    proxy, provider = services["socket-proxy"], services["bluegreen"]
    assert ["999"] == proxy["group_add"]
    assert "group_add" not in provider
    assert "tcp://socket-proxy:2375" == provider["environment"]["BLUEGREEN_DOCKER_HOST"]
    assert {
        "context": str(REPO_ROOT),
        "dockerfile": "deploy/socket-proxy/Dockerfile",
        "args": {"BASE": "haproxy:2.6"},
    } == proxy["build"]
    for service in (proxy, provider):
        assert (True, ["ALL"], ["no-new-privileges:true"]) == (
            service["read_only"], service["cap_drop"], service["security_opt"]
        )  # fmt: skip
    assert "10001:10001" == provider["user"]
    assert [{"type": "volume", "source": "bluegreen-state", "target": "/var/lib/bluegreen"}] == [
        {k: v for k, v in m.items() if k in ("type", "source", "target")}
        for m in provider["volumes"]
    ]
    assert {"internal": True} == config["networks"]["docker-api"]
    on_api = sorted(n for n, s in services.items() if "docker-api" in s.get("networks", {}))
    assert ["bluegreen", "socket-proxy"] == on_api
