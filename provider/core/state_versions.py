"""Which Swarm config is which state version, and which commits count (pure).

The Swarm state store (``provider.swarm_state``) commits state version ``n``
by creating the config ``<prefix>-state-<n>``: Swarm refuses a name that
exists, so of the replicas that read ``n - 1`` exactly one commits ``n``.
Pruning removes old versions, which frees their names: a replica more than
``keep`` versions behind could create such a name again and be told "yes".
What makes the compare-and-swap exact is the Raft index Swarm gives every
object (``Version.Index``, increasing across the cluster): a commit is good
only if no *higher* state version was created *before* it
(:func:`superseded`). A superseded commit is removed again and answered as a
conflict, so the replica computes its change on top of the newest state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConfigVersion:
    """One state config as listed: its state version, Raft index and commit id label."""

    version: int
    index: int
    commit: str | None = None


def config_name(prefix: str, version: int) -> str:
    return f"{prefix}-state-{version}"


def parse_version(prefix: str, name: str) -> int | None:
    """The state version a config name carries, or ``None`` if it is not one of ours."""
    match = re.fullmatch(rf"{re.escape(prefix)}-state-([1-9][0-9]{{0,17}})", name)
    return int(match.group(1)) if match is not None else None


def by_version(prefix: str, configs: Iterable[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """The listed configs that are state versions, by version (others are ignored)."""
    found: dict[int, Mapping[str, Any]] = {}
    for config in configs:
        spec = config.get("Spec") or {}
        version = parse_version(prefix, str(spec.get("Name", "")))
        if version is not None:
            found[version] = config
    return found


def describe(
    versions: Mapping[int, Mapping[str, Any]], commit_label: str
) -> dict[int, ConfigVersion]:
    """Version, Raft index (``Version.Index``) and commit id of each listed config."""
    out: dict[int, ConfigVersion] = {}
    for version, config in versions.items():
        index = (config.get("Version") or {}).get("Index")
        commit = ((config.get("Spec") or {}).get("Labels") or {}).get(commit_label)
        out[version] = ConfigVersion(
            version,
            index if isinstance(index, int) and not isinstance(index, bool) else 0,
            commit if isinstance(commit, str) else None,
        )
    return out


def to_prune(versions: Iterable[int], keep: int) -> list[int]:
    """The versions older than the newest ``keep`` (``keep`` is at least 1), oldest first."""
    listed = sorted(set(versions))
    if not listed:
        return []
    floor = listed[-1] - max(1, keep)
    return [v for v in listed if v <= floor]


def superseded(ours: ConfigVersion, listed: Iterable[ConfigVersion]) -> ConfigVersion | None:
    """A higher state version created before ``ours`` (lower Raft index), or ``None``.

    Such a version means ``ours`` re-created a pruned name: the version it
    extends is not the newest, so the commit must not count. Of several, the
    highest is returned (what the replica must compute on).
    """
    earlier = [c for c in listed if c.version > ours.version and c.index < ours.index]
    return max(earlier, key=lambda c: c.version, default=None)
