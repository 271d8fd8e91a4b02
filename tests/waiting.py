"""Bounded waits: poll a condition until it holds, or fail saying what did not happen.

Tests wait on things they do not drive step by step (a provider process, a
Docker daemon, Traefik's next poll, a task on the test's own event loop) and
never sleep a fixed time instead. Every wait is bounded in time and in count,
and its failure names what was awaited and the last value seen.

:func:`wait_until` blocks (threads, subprocesses, real Docker and Traefik);
:func:`eventually` awaits, for conditions a task on the test's event loop makes
true, which a blocking sleep would stall.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

POLL_INTERVAL_S = 0.05


def _timed_out(what: str, timeout: float, last: object) -> str:
    return f"timed out after {timeout}s waiting for {what}; last: {last!r}"


def wait_until(
    what: str,
    check: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = POLL_INTERVAL_S,
    tolerate: tuple[type[Exception], ...] = (),
    fail: Callable[[str], BaseException] = TimeoutError,
) -> T:
    """Call ``check`` every ``interval`` until it returns something truthy, and return that.

    An exception in ``tolerate`` counts as a falsy answer (a server not listening
    yet); any other propagates at once (a process that died). On timeout raises
    ``fail(message)``, so a caller can attach its own evidence (a log tail).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    for _ in range(int(timeout / interval) + 1):
        try:
            value = check()
        except tolerate as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    raise fail(_timed_out(what, timeout, last))


@overload
async def eventually(
    what: str,
    probe: Callable[[], Awaitable[T | None]],
    timeout: float,
    *,
    interval: float = POLL_INTERVAL_S,
) -> T: ...


@overload
async def eventually(
    what: str, probe: Callable[[], T | None], timeout: float, *, interval: float = POLL_INTERVAL_S
) -> T: ...


async def eventually(
    what: str, probe: Callable[[], Any], timeout: float, *, interval: float = POLL_INTERVAL_S
) -> Any:
    """Await ``probe`` (a coroutine function or a plain predicate) every ``interval``
    until it returns something truthy, and return that; ``TimeoutError`` otherwise."""
    deadline = time.monotonic() + timeout
    last: object = None
    for _ in range(int(timeout / interval) + 1):
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(interval)
    raise TimeoutError(_timed_out(what, timeout, last))
