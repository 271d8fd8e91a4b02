"""Prometheus exposition of the provider's counters and gauges, through ``prometheus_client``.

Counters are kept here; gauges (active color, routable containers, Docker
connectivity) are read from the controller at scrape time so they can never
drift from what is served.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric


@dataclass
class Metrics:
    """Counters the provider increments as it works."""

    switches: Counter[tuple[str, str]] = field(default_factory=Counter)
    api_requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    renders: int = 0
    traefik_polls: int = 0
    #: When (the controller's clock) Traefik last asked for ``/traefik``; ``bluegreen doctor``
    #: reads it from ``/status`` to tell whether Traefik polls this provider at all.
    traefik_last_poll: float | None = None
    #: Webhook outcomes: delivered, retried, failed, dropped.
    webhook_deliveries: Counter[str] = field(default_factory=Counter)
    #: State-file writes that failed (nothing changed; adoptions are retried).
    state_write_errors: int = 0
    #: Writes whose rename succeeded but whose directory fsync failed (still answered).
    state_dir_fsync_errors: int = 0

    traefik_releases: Counter[str] = field(default_factory=Counter)


class _Families:
    """A collector that yields one scrape's families (a registry per scrape, nothing global)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


@dataclass
class Exposition:
    """Builds one scrape's families, a family at a time; ``prometheus_client`` writes the text.

    Counter families are declared with their ``_total`` name, as they are exposed.
    """

    families: list[Metric] = field(default_factory=list)

    def family(self, name: str, kind: str, help_text: str) -> None:
        base = name.removesuffix("_total") if kind == "counter" else name
        self.families.append(Metric(base, help_text, kind))

    def sample(self, name: str, value: float, **labels: str) -> None:
        self.families[-1].add_sample(name, dict(sorted(labels.items())), float(value))

    def text(self) -> str:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(self.families))
        return generate_latest(registry).decode()
