"""Builders of normalized observations for the pure-core and API tests."""

from __future__ import annotations

import itertools

from provider.core.model import Container, Health

_ids = itertools.count(1)


def make_container(
    service: str = "web",
    color: str = "blue",
    *,
    port: int | str | None = 8080,
    state: str = "running",
    health: Health = Health.HEALTHY,
    created: float = 100.0,
    host_port: int | None = None,
    ip: str | None = None,
    name: str | None = None,
    extra: dict[str, str] | None = None,
    prefix: str = "bluegreen",
) -> Container:
    """A labelled container; host network unless ``ip`` is given."""
    n = next(_ids)
    labels = {f"{prefix}.service": service, f"{prefix}.color": color}
    if port is not None:
        labels[f"{prefix}.port"] = str(host_port if host_port is not None else port)
    labels.update(extra or {})
    return Container(
        id=f"{n:064x}",
        name=name or f"{service}-{color}-{n}",
        state=state,
        health=health,
        labels=labels,
        created=created,
        networks={"app": ip} if ip else {},
        network_mode="bridge" if ip else "host",
    )
