"""Where the state is committed: a file on one host, or Swarm's Raft store (``swarm_state``).

The controller commits a whole :class:`State` under its lock and makes it
current only once the store said yes. A store shared by several provider
replicas can say "someone else committed first": :class:`StateConflict`
carries what they wrote, the controller adopts it and computes its change
again on top of it (compare-and-swap, never last-writer-wins). The file
store has one writer and never conflicts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Protocol

from provider import store
from provider.core.model import State
from provider.errors import StateStoreUnavailable


class StateConflict(Exception):
    """Another replica committed version ``version`` first; ``latest`` is its state.

    Never answered to a client: the controller retries its change on ``latest``.
    """

    def __init__(self, latest: State, version: int) -> None:
        super().__init__(f"state version {version} was committed by another replica")
        self.latest = latest
        self.version = version


class CommitOutcomeUnknown(StateStoreUnavailable):
    """The commit's answer was lost and could not be resolved: it may have landed, or land.

    Answered 503 like any failed commit (the caller must not count on the
    change), but the controller remembers the switch records it carried: if
    they appear in a state it follows later, this replica announces them as
    its own (``followed`` is false), so their webhooks are sent, once.
    """

    code = "state_commit_unknown"


class StateStore(Protocol):
    """What the controller needs of a state store."""

    #: ``file`` or ``swarm``: shown in ``/status`` and ``/readyz``.
    kind: str
    #: The version of the state last loaded or committed through this store.
    version: int

    async def commit(self, state: State) -> str | None:
        """Commit ``state`` as version ``version + 1``.

        Returns a warning that did not undo the commit (logged and counted by
        the caller); raises :class:`StateConflict` when another writer got that
        version first, ``StateFileError`` (or its 503 subclass) when nothing
        was committed, :class:`CommitOutcomeUnknown` when that cannot be told.
        """
        ...

    def summary(self) -> dict[str, Any]:
        """Kind, version and where: the ``store`` part of ``/status``'s ``state_file``."""
        ...


class FileStateStore:
    """The single-host store: the JSON file of :mod:`provider.store`, written atomically."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.version = 0

    async def commit(self, state: State) -> str | None:
        warning = await asyncio.to_thread(store.save, self.path, state)
        self.version += 1
        return warning

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "location": str(self.path)}
