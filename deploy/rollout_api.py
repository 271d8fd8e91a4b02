"""The two things a rollout drives, as Protocols: the provider's API and compose (or Swarm).

``deploy.client.ProviderClient`` and ``deploy.compose.Compose`` (or
``deploy.swarm_services.SwarmServices``) in production, fakes in the tests; apart
from ``deploy/rollout.py`` so that the interfaces read on one page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class ProviderApi(Protocol):
    """The provider's HTTP API as the rollouts use it (``deploy.client.ProviderClient``)."""

    token: str | None

    def status(self, service: str | None = None) -> dict[str, Any]: ...

    def switch(
        self,
        service: str,
        color: str | None = None,
        *,
        force: bool = False,
        reason: str | None = None,
    ) -> dict[str, Any]: ...

    def rollback(
        self, service: str, *, force: bool = False, color: str | None = None
    ) -> dict[str, Any]: ...

    def retire(self, service: str, color: str) -> dict[str, Any]: ...

    def maintenance(self, service: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def check_token(self) -> None: ...


class ComposeApi(Protocol):
    """Docker Compose as the rollouts use it (``deploy.compose.Compose``)."""

    #: What starts the colors, in progress lines: ``compose`` or ``swarm``.
    noun: str

    def describe(self) -> str: ...

    def hint(self, verb: str, name: str) -> str:
        """The command a user types to ``verb`` (stop, start, logs) ``name``'s color."""
        ...

    def require_services(self, *names: str) -> None: ...

    def check_image(self, service: str, image: str) -> bool: ...

    def env_file(self) -> Path: ...

    def record_image(self, service: str, image: str) -> str: ...

    def up(
        self, service: str, image: str | None, labels: Mapping[str, str] | None = None
    ) -> None: ...

    def stop(self, service: str, containers: Sequence[str] = ()) -> None:
        """Stop ``service``'s containers; ``containers``: the ones the provider listed."""
        ...

    def start(self, service: str) -> None: ...
