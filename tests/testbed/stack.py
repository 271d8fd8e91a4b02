"""The whole product on loopback: Traefik polling a provider that watches Docker.

A :class:`Stack` is one provider process (its own label prefix, so it only
sees this stack's containers), one Traefik whose HTTP provider polls it, and
the container factory that starts blue/green busybox backends carrying the
prefix's labels.  Traffic goes to ``Host: <service>.test`` on Traefik's
``web`` entrypoint on 127.0.0.1; backends listen on 127.0.0.1 ports (host
network).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Unpack

from tests.testbed.containers import ContainerFactory
from tests.testbed.ports import free_port
from tests.testbed.traefik import TraefikFactory, TraefikProcess

from .load import BackgroundLoad, LoadOptions
from .provider import ProviderFactory, ProviderProcess

POLL_INTERVAL = "200ms"
THROTTLE = "100ms"


def body_of(color: str) -> str:
    """What a backend of ``color`` answers on ``/``."""
    return f"{color}\n"


@dataclass(frozen=True)
class Backend:
    """One running backend container."""

    id: str
    color: str
    port: int


@dataclass
class Stack:
    """Provider + Traefik + backends for one service."""

    provider: ProviderProcess
    traefik: TraefikProcess
    containers: ContainerFactory
    service: str = "web"
    backends: list[Backend] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return self.provider.label_prefix

    @property
    def host(self) -> str:
        """The ``Host`` header the service's router matches."""
        return f"{self.service}.test"

    def labels(self, color: str, **extra: str) -> dict[str, str]:
        """The product labels for one of this service's containers (``extra`` keys unprefixed)."""
        labels = {
            f"{self.prefix}.service": self.service,
            f"{self.prefix}.color": color,
            f"{self.prefix}.rule": f"Host(`{self.host}`)",
        }
        for key, value in extra.items():
            labels[f"{self.prefix}.{key}"] = value
        return labels

    def backend(
        self,
        color: str,
        *,
        healthy: bool = True,
        wait: str | None = "healthy",
        health_interval: str = "300ms",
        labels: Mapping[str, str] | None = None,
        timeout: float = 20.0,
    ) -> Backend:
        """Start a backend of ``color`` on a free port; wait for its health status ``wait``."""
        port = free_port()
        all_labels = self.labels(color, port=str(port), **dict(labels or {}))
        container = self.containers.run(
            f"{self.service}-{color}",
            all_labels,
            port,
            color,
            healthy=healthy,
            health_interval=health_interval,
        )
        backend = Backend(container, color, port)
        self.backends.append(backend)
        if wait is not None:
            self.containers.wait_health(container, wait, timeout=timeout)
        return backend

    def load(self, **options: Unpack[LoadOptions]) -> BackgroundLoad:
        """Background load through Traefik to this service (not started)."""
        options.setdefault("host", self.host)
        return BackgroundLoad(self.traefik.web_url + "/", **options)

    def wait_serving(self, color: str, timeout: float = 15.0) -> None:
        """Poll through Traefik until the service answers ``color``."""
        self.traefik.wait_response(host=self.host, body=body_of(color), timeout=timeout)

    def preview(self, color: str) -> str:
        """One request through Traefik with the preview header for ``color``; the body."""
        answer = self.traefik.request(host=self.host, headers={"X-Bluegreen-Color": color})
        return answer.body if answer.status == 200 else f"<{answer.status}>"


class StackFactory:
    """Builds stacks from the per-test factories; their fixtures clean everything up."""

    def __init__(
        self,
        providers: ProviderFactory,
        traefiks: TraefikFactory,
        containers: ContainerFactory,
    ) -> None:
        self.providers = providers
        self.traefiks = traefiks
        self.containers = containers

    def start(
        self,
        *,
        service: str = "web",
        provider_token: str | None = None,
        traefik_token: str | None = None,
        poll_interval: str = POLL_INTERVAL,
        poll_timeout: str = "5s",
        throttle: str = THROTTLE,
        access_log: bool = True,
        **provider_options: Any,
    ) -> Stack:
        """Start a provider (unique label prefix) and a Traefik polling it.

        ``traefik_token`` is what Traefik sends as ``Authorization: Bearer``
        (default: ``provider_token``, i.e. the right one).
        """
        provider_options.setdefault("label_prefix", f"bg{secrets.token_hex(4)}")
        provider = self.providers.start(provider_token=provider_token, **provider_options)
        sent = traefik_token if traefik_token is not None else provider_token
        headers = {"Authorization": f"Bearer {sent}"} if sent else None
        traefik = self.traefiks.start(
            http_endpoint=provider.traefik_endpoint,
            poll_interval=poll_interval,
            poll_timeout=poll_timeout,
            throttle=throttle,
            http_headers=headers,
            log_level="INFO",
            access_log=access_log,
        )
        return Stack(provider, traefik, self.containers, service=service)
