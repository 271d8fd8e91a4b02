"""Prometheus text exposition of the provider's counters and gauges.

Counters are kept here; gauges (active color, routable containers, Docker
connectivity) are read from the controller at scrape time so they can never
drift from what is served.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


@dataclass
class Metrics:
    """Counters the provider increments as it works."""

    switches: Counter[tuple[str, str]] = field(default_factory=Counter)
    api_requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    renders: int = 0
    traefik_polls: int = 0
    #: State-file writes that failed (nothing changed; adoptions are retried).
    state_write_errors: int = 0
    #: Writes whose rename succeeded but whose directory fsync failed (still answered).
    state_dir_fsync_errors: int = 0

    traefik_releases: Counter[str] = field(default_factory=Counter)


@dataclass
class Exposition:
    """Builds one scrape's text, a metric family at a time."""

    lines: list[str] = field(default_factory=list)

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: str) -> None:
        number = int(value) if float(value).is_integer() else value
        self.lines.append(f"{name}{_labels(sorted(labels.items()))} {number}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
