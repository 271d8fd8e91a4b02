"""Count a background loop's evaluations per wait, on a fake clock (no timing).

The automatic switcher and the canary driver wait through
``Controller.wait_until_due``. A loop that re-arms a wake time that has passed
evaluates again at once, forever: given a few turns of the event loop it
evaluates on each. A loop that waits evaluates once (twice if a wake it set
was still ahead when it asked), however many turns it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from provider.controller import Controller

#: Event-loop turns given to a waiting loop: a spinning one evaluates about every other turn.
TURNS = 10


async def evaluations_per_wait(
    controller: Controller,
    evaluate: Callable[[], tuple[list[Any], float | None]],
    clock: Callable[[], float],
) -> int:
    """How often ``wait_until_due`` runs ``evaluate`` in ``TURNS`` turns with nothing changing.

    The fake clock does not move, so a wake time ahead of it never comes (its
    real-time timer is seconds away); only a past wake re-armed makes more calls.
    """
    calls = 0

    def counted() -> tuple[list[Any], float | None]:
        nonlocal calls
        calls += 1
        return evaluate()

    task = asyncio.ensure_future(controller.wait_until_due(counted, clock))
    for _ in range(TURNS):
        if task.done():
            break
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return calls
