"""What both background deciders (the auto-switcher and the canary driver) read of the controller.

Each decides from one consistent snapshot taken under the controller's lock
and sleeps until something changes or its wake time comes
(:meth:`wait_until_due`); their own protocols add what each asks for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from provider.core.model import State
from provider.core.routing import Observation

T = TypeVar("T")


class DueWaiting(Protocol):
    """The snapshot a decider reads, and the level-triggered wait it sleeps in."""

    @property
    def docker_connected(self) -> bool: ...
    @property
    def synced(self) -> bool: ...
    @property
    def observation(self) -> Observation: ...
    @property
    def state(self) -> State: ...

    async def wait_until_due(
        self,
        evaluate: Callable[[], tuple[list[T], float | None]],
        clock: Callable[[], float],
    ) -> list[T]: ...
