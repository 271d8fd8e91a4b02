"""A stack for canary tests: Traefik with its Prometheus metrics on a loopback entrypoint,
a provider that reads them, and backends that fail a share of their requests."""

from __future__ import annotations

import http.client
import secrets
import shlex
import time
from collections.abc import Callable
from typing import Any

from tests.testbed.compose import ComposeFactory, ComposeProject
from tests.testbed.containers import ContainerFactory
from tests.testbed.images import HEALTH_FILE, WWW_DIR
from tests.testbed.ports import LOOPBACK, free_port
from tests.testbed.provider import ProviderFactory
from tests.testbed.stack import Stack
from tests.testbed.traefik import TraefikFactory

BOUND_S = 90.0


def metrics_args(port: int) -> list[str]:
    """Traefik flags: Prometheus metrics on their own entrypoint on 127.0.0.1."""
    return [
        f"--entryPoints.metrics.address={LOOPBACK}:{port}",
        "--metrics.prometheus=true",
        "--metrics.prometheus.entryPoint=metrics",
    ]


def start_stack(
    providers: ProviderFactory,
    traefiks: TraefikFactory,
    containers: ContainerFactory,
    *,
    max_extensions: int = 2,
    extra_args: tuple[str, ...] = (),
) -> Stack:
    """Provider (reading Traefik's metrics) and Traefik (serving them), both on loopback."""
    port = free_port()
    provider = providers.start(
        label_prefix=f"bg{secrets.token_hex(4)}",
        extra_args=[
            "--traefik-metrics-url",
            f"http://{LOOPBACK}:{port}/metrics",
            "--canary-max-extensions",
            str(max_extensions),
            *extra_args,
        ],
    )
    traefik = traefiks.start(
        http_endpoint=provider.traefik_endpoint,
        poll_interval="200ms",
        throttle="100ms",
        log_level="INFO",
        access_log=False,
        extra_args=metrics_args(port),
    )
    return Stack(provider, traefik, containers)


def flaky_command(port: int, color: str, error_percent: int) -> list[str]:
    """A backend whose ``/`` (a CGI script) answers 500 to ``error_percent`` % of requests."""
    script = (
        "#!/bin/sh\n"
        f'if [ $((RANDOM % 100)) -lt {error_percent} ]; then printf "Status: 500 Error\\r\\n'
        f'Content-Type: text/plain\\r\\n\\r\\nfail\\n"; else printf "Content-Type: text/plain'
        f'\\r\\n\\r\\n{color}\\n"; fi\n'
    )
    lines = [
        "set -e",
        f"mkdir -p {WWW_DIR}/cgi-bin",
        f"printf '%s' {shlex.quote(script)} > {WWW_DIR}/cgi-bin/index.cgi",
        f"chmod +x {WWW_DIR}/cgi-bin/index.cgi",
        f"echo ok > {HEALTH_FILE}",
        f"exec httpd -f -p 127.0.0.1:{port} -h {WWW_DIR}",
    ]
    return ["sh", "-c", "\n".join(lines)]


def flaky_backend(stack: Stack, color: str, error_percent: int) -> str:
    """Start a failing-share backend of ``color``; wait until healthy; return its id."""
    port = free_port()
    container = stack.containers.run(
        f"{stack.service}-{color}",
        stack.labels(color, port=str(port)),
        port,
        color,
        command=flaky_command(port, color, error_percent),
    )
    stack.containers.wait_health(container, "healthy", timeout=20)
    return container


def canary(stack: Stack, **body: Any) -> dict[str, Any]:
    """POST /canary for the stack's service; the answer's ``canary`` object."""
    answer = stack.provider.post("/canary", {"service": stack.service, **body})
    assert 200 == answer.status, answer.body
    result: dict[str, Any] = answer.json["canary"]
    return result


def canary_status(stack: Stack) -> dict[str, Any]:
    doc: dict[str, Any] = stack.provider.status(stack.service)["canary"]
    return doc


def wait_canary(
    stack: Stack, check: Callable[[dict[str, Any]], bool], what: str, timeout: float = BOUND_S
) -> dict[str, Any]:
    """Poll ``/status/<service>``'s canary until ``check`` holds (bounded)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = canary_status(stack) or {}
        if check(last):
            return last
        time.sleep(0.1)
    raise TimeoutError(f"canary never reached {what}; last: {last}")


def weighted_children(stack: Stack) -> list[tuple[str, int]]:
    """What Traefik applied for the service's weighted parent: (child, weight)."""
    service = stack.traefik.service(f"{stack.service}@http") or {}
    children = service.get("weighted", {}).get("services", [])
    return [(c["name"], int(c.get("weight", 1))) for c in children]


def get_with_cookie(stack: Stack, cookie: str | None) -> tuple[int, str, str | None]:
    """One request with an optional ``Cookie`` header: status, body, Set-Cookie."""
    conn = http.client.HTTPConnection(LOOPBACK, stack.traefik.web_port, timeout=5)
    try:
        headers = {"Host": stack.host}
        if cookie:
            headers["Cookie"] = cookie
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        body = response.read().decode()
        return response.status, body, response.getheader("Set-Cookie")
    finally:
        conn.close()


def wait_children(stack: Stack, expected: list[tuple[str, int]], timeout: float = 20.0) -> None:
    """Poll Traefik's API until the weighted parent has exactly ``expected`` (bounded)."""
    deadline = time.monotonic() + timeout
    while weighted_children(stack) != expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"Traefik applied {weighted_children(stack)}, not {expected}")
        time.sleep(0.05)


def start_app(
    provider_factory: ProviderFactory,
    traefik_factory: TraefikFactory,
    containers: ContainerFactory,
    compose: ComposeFactory,
    image: str,
) -> tuple[Stack, ComposeProject]:
    """Provider + Traefik (with metrics) + compose project; blue (v1) serving, green absent."""
    stack = start_stack(provider_factory, traefik_factory, containers)
    project = compose.create()
    project.add_app(prefix=stack.prefix, service="web", default_image=image, owner=containers.owner)
    stack.provider.wait_ready()
    project.up("web-blue")
    stack.provider.wait_active("web", "blue")
    stack.wait_serving("blue")
    return stack, project
