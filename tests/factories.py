"""Builders of normalized observations for the pure-core and API tests."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

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
    networks: Mapping[str, str] | None = None,
    name: str | None = None,
    cid: str | None = None,
    extra: Mapping[str, str] | None = None,
    prefix: str = "bluegreen",
    exposed_ports: tuple[int, ...] = (),
    health_output: str = "",
    healthy_since: float | None = None,
) -> Container:
    """A labelled container: host network unless ``ip`` (on network ``app``) or
    ``networks`` is given; ``extra`` labels are added last and may override."""
    n = next(_ids)
    labels = {f"{prefix}.service": service, f"{prefix}.color": color}
    if port is not None:
        labels[f"{prefix}.port"] = str(host_port if host_port is not None else port)
    labels.update(extra or {})
    if networks is None and ip:
        networks = {"app": ip}
    return Container(
        id=cid if cid is not None else f"{n:064x}",
        name=name or f"{service}-{color}-{n}",
        state=state,
        health=health,
        labels=labels,
        created=created,
        networks=networks or {},
        network_mode="host" if networks is None else "bridge",
        exposed_ports=exposed_ports,
        health_output=health_output,
        healthy_since=healthy_since,
    )
