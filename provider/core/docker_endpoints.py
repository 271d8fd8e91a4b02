"""The Docker API endpoints the provider uses: one table, read by the startup check and docs.

Pure: no asyncio, aiohttp or aiodocker. The provider only reads Docker on one
host; in Swarm mode its state commits also create and remove configs. A socket
proxy in front of the Docker socket (``deploy/socket-proxy/haproxy.cfg``, or
Tecnativa's docker-socket-proxy) should allow exactly these, so a taken-over
provider cannot start a container as root on the host. Each row names the rule
of the shipped HAProxy configuration that allows it and the setting of
tecnativa/docker-socket-proxy that does, so a refusal says what to change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The configuration the example ships; a refusal names its rule.
PROXY_CONFIG = "deploy/socket-proxy/haproxy.cfg"


@dataclass(frozen=True)
class Endpoint:
    """One method and path of the Docker API the provider sends."""

    method: str
    #: As Docker's API reference writes it, without the ``/v1.xx`` prefix.
    path: str
    #: The ``# rule NAME`` comment above its line in :data:`PROXY_CONFIG`.
    rule: str
    #: The environment setting(s) of tecnativa/docker-socket-proxy that allow it.
    tecnativa: str
    #: Why the provider sends it (docs/security.md, the refusal message).
    purpose: str
    #: Sent only by ``bluegreen serve --swarm``.
    swarm: bool = False

    @property
    def name(self) -> str:
        """``GET /containers/json``: how logs and messages name it."""
        return f"{self.method} {self.path}"

    @property
    def writes(self) -> bool:
        """Whether it changes anything in Docker (any method but GET and HEAD)."""
        return self.method not in ("GET", "HEAD")


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/version", "version", "VERSION=1", "read the API version (asked first)"),
    Endpoint("GET", "/_ping", "ping", "PING=1", "check that the daemon answers (doctor)"),
    Endpoint("GET", "/info", "info", "INFO=1", "read the daemon's clock and Swarm role"),
    Endpoint("GET", "/events", "events", "EVENTS=1", "follow container events"),
    Endpoint("GET", "/containers/json", "containers_list", "CONTAINERS=1", "list containers"),
    Endpoint(
        "GET", "/containers/{id}/json", "containers_inspect", "CONTAINERS=1",
        "inspect a container's state, health and addresses",
    ),
    Endpoint("GET", "/services", "services_list", "SERVICES=1", "list services", swarm=True),
    Endpoint("GET", "/tasks", "tasks_list", "TASKS=1", "list the services' tasks", swarm=True),
    Endpoint(
        "GET", "/networks", "networks_list", "NETWORKS=1", "name the tasks' networks", swarm=True
    ),
    Endpoint(
        "GET", "/configs", "configs_list", "CONFIGS=1", "read the state versions", swarm=True
    ),
    Endpoint(
        "POST", "/configs/create", "configs_create", "CONFIGS=1 and POST=1",
        "commit a state version", swarm=True,
    ),
    Endpoint(
        "DELETE", "/configs/{name}", "configs_remove", "CONFIGS=1 and POST=1",
        "prune old state versions", swarm=True,
    ),
)  # fmt: skip


def needed(swarm: bool) -> tuple[Endpoint, ...]:
    """The endpoints ``bluegreen serve`` (with ``--swarm`` if ``swarm``) sends."""
    return tuple(e for e in ENDPOINTS if swarm or not e.swarm)


def refusal_message(docker_host: str, refused: Iterable[tuple[Endpoint, str]]) -> str:
    """One line: which needed endpoints the daemon (a proxy) refused, and what allows them.

    ``refused`` pairs each endpoint with the answer's message.
    """
    parts = []
    for endpoint, answer in refused:
        parts.append(
            f"{endpoint.name} ({endpoint.purpose}; answer: 403 {answer.strip()[:120]}); "
            f"allow it in the proxy: rule {endpoint.rule} of {PROXY_CONFIG}"
            f"{' with BLUEGREEN_PROXY_SWARM=1' if endpoint.swarm else ''}, "
            f"or {endpoint.tecnativa} for tecnativa/docker-socket-proxy"
        )
    return (
        f"the Docker API at {docker_host} (--docker-host / BLUEGREEN_DOCKER_HOST) refused "
        f"what the provider needs: {' | '.join(parts)}"
    )
