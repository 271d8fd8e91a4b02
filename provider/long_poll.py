"""Hold Traefik's ``/traefik`` poll until the config changes: push over a plain poll.

Why: Traefik's HTTP provider has no push, no ETag and no long-poll, so a switch
waits for its next poll.  But it fetches in a loop, one synchronous GET per
tick, through an ``http.Client`` whose timeout is ``pollTimeout``, over a
keep-alive connection; a slow answer just delays the next tick, and Go's ticker
buffers one tick meanwhile.  So when a connection has already been sent the
current body, the provider keeps the next request open and answers the moment
the body changes, or after ``--hold`` seconds with the same body.  With
``pollInterval`` <= hold the next request follows each answer at once, so the
provider always has one request in hand and a switch reaches Traefik in its
apply time, with one request per hold while idle.

What keeps it safe:

- Per connection, not per client: the first request on a connection (a fresh
  or restarted Traefik, a second instance) is answered at once, and so is any
  request whose connection was last sent another body.  Always a 200 with the
  full body: Traefik treats anything else (a 304) as an error.
- A client that closes its connection while held (its ``pollTimeout`` is
  shorter than the hold) is logged once with the fix, and its address is not
  held for :data:`DEGRADE_S`: a misconfigured Traefik falls back to plain
  polling instead of timeouts and backoff.
- At most ``max_held`` requests are held; past that, answers are immediate.
- On shutdown every held request is answered with the current body.

Nothing here holds the controller's lock while waiting: one task waits on the
controller's ``changed`` condition (which releases the lock while it waits)
and wakes the held requests through an event of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import structlog
from aiohttp import web

from provider.controller import Controller
from provider.metrics import Exposition

log = structlog.get_logger("bluegreen.long_poll")

#: How long an address that dropped a held request is answered at once.
DEGRADE_S = 300.0
#: Held requests at most; more are answered at once.
MAX_HELD = 64
#: How often a held request looks at its connection and the body (a backstop).
CHECK_S = 0.25
#: A poll that comes this long after a timed-out hold means pollInterval > hold.
GAP_SLACK_S = 0.5
#: A changed body is sent once it stayed unchanged this long (a change often comes in pairs).
QUIET_S = 0.02
#: ... but never later than this after the first change was seen.
SETTLE_MAX_S = 0.25
#: Why a request that had nothing new was answered (the metric's ``cause``).
CAUSES = ("change", "timeout", "shutdown", "disconnect", "bound", "degraded")


@dataclass
class _Connection:
    """What one keep-alive connection was last answered, and how."""

    sent: bytes
    answered_at: float
    timed_out: bool


class LongPoll:
    """Decides per ``/traefik`` request whether to answer now or hold it."""

    def __init__(
        self,
        controller: Controller,
        hold: float,
        *,
        max_held: int = MAX_HELD,
        degrade_for: float = DEGRADE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.controller = controller
        self.hold = hold
        self.max_held = max_held
        self.degrade_for = degrade_for
        self.clock = clock
        self.held = 0
        self.closing = False
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}
        self._degraded: dict[str, float] = {}
        self._gap_warned: set[str] = set()
        self._bound_warned = False
        self._wake = asyncio.Event()

    @property
    def tracked(self) -> int:
        """Connections whose last answer is remembered (closed ones are forgotten)."""
        self._forget_closed()
        return len(self._connections)

    @property
    def releases(self) -> Counter[str]:
        return self.controller.metrics.traefik_releases

    async def answer(self, request: web.Request) -> bytes:
        """The body to send ``request`` (the current one), after holding it if it is unchanged."""
        body = self.controller.body
        transport = request.transport
        if transport is None or transport.is_closing():
            return body
        self._forget_closed()
        address = request.remote or ""
        now = self.clock()
        known = self._connections.get(transport)
        if known is None or known.sent != body or self.hold <= 0:
            return self._sent(transport, body, now)
        self._check_gap(known, address, now)
        if self.closing:
            return self._sent(transport, body, now, cause="shutdown")
        if self._degraded.get(address, 0.0) > now:
            return self._sent(transport, body, now, cause="degraded")
        if self.held >= self.max_held:
            if not self._bound_warned:
                self._bound_warned = True
                log.warning("traefik_hold_bound_reached", held=self.held, bound=self.max_held)
            return self._sent(transport, body, now, cause="bound")
        self._bound_warned = False
        self.held += 1
        try:
            cause = await self._wait(transport, known.sent, now + self.hold)
        except asyncio.CancelledError:
            # aiohttp cancels the handler on disconnect when handler_cancellation is on.
            if transport.is_closing():
                self._dropped(transport, address, now)
            raise
        finally:
            self.held -= 1
        if cause == "disconnect":
            self._dropped(transport, address, now)
            return self.controller.body
        return self._sent(transport, self.controller.body, self.clock(), cause=cause)

    async def _wait(self, transport: asyncio.BaseTransport, sent: bytes, deadline: float) -> str:
        while True:
            if self.closing:
                return "shutdown"
            if self.controller.body != sent:
                await self._settle()
                return "change"
            if transport.is_closing():
                return "disconnect"
            remaining = deadline - self.clock()
            if remaining <= 0:
                return "timeout"
            wake = self._wake
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), min(remaining, CHECK_S))

    async def _settle(self) -> None:
        """Wait for the body to stay unchanged for :data:`QUIET_S` (bounded by SETTLE_MAX_S).

        Why: an auto-promotion changes the body twice within a few ms (the new
        color's preview servers, then the switch).  Answering the held poll with
        the first change would leave the switch waiting for Traefik's next tick
        (a whole ``pollInterval``), and behind Traefik's ``providersThrottleDuration``.
        A command still holding the controller's lock (deciding, writing the
        state file) counts as not quiet: its change is about to land.
        """
        start = self.clock()
        body = self.controller.body
        quiet_since = start
        while not self.closing:
            now = self.clock()
            if now - start >= SETTLE_MAX_S:
                return
            if self.controller.body is not body:
                body, quiet_since = self.controller.body, now
            elif self.controller.lock.locked():
                quiet_since = now
            elif now - quiet_since >= QUIET_S:
                return
            wait = min(QUIET_S, SETTLE_MAX_S - (now - start)) / 4
            await asyncio.sleep(max(wait, 0.001))

    def _sent(
        self, transport: asyncio.BaseTransport, body: bytes, now: float, cause: str | None = None
    ) -> bytes:
        self._connections[transport] = _Connection(body, now, cause == "timeout")
        if cause is not None:
            self.releases[cause] += 1
        return body

    def _forget_closed(self) -> None:
        """Drop the connections that closed (cheap: one entry per polling connection)."""
        for transport in [t for t in self._connections if t.is_closing()]:
            del self._connections[transport]

    def _dropped(self, transport: asyncio.BaseTransport, address: str, started: float) -> None:
        """The client closed its connection while held: log once, stop holding its address."""
        self._connections.pop(transport, None)
        self.releases["disconnect"] += 1
        now = self.clock()
        held = now - started
        if self._degraded.get(address, 0.0) <= now:
            log.warning(
                "traefik_poll_dropped_while_held",
                address=address,
                held_s=round(held, 2),
                hold_s=self.hold,
                fix=(
                    f"set Traefik's --providers.http.pollTimeout above --hold ({self.hold:g}s), "
                    "e.g. pollTimeout=5s with the default hold of 2.5s; until then "
                    f"this address is answered at once for {self.degrade_for:g}s"
                ),
            )
        for expired in [a for a, until in self._degraded.items() if until <= now]:
            del self._degraded[expired]
        self._degraded[address] = now + self.degrade_for

    def _check_gap(self, known: _Connection, address: str, now: float) -> None:
        """After a full hold, the next poll should follow at once (pollInterval <= hold)."""
        gap = now - known.answered_at
        warned = self._gap_warned
        if known.timed_out and gap > GAP_SLACK_S and address not in warned:
            if len(warned) >= MAX_HELD:  # a few Traefik addresses; never grow unbounded
                return
            warned.add(address)
            log.warning(
                "traefik_poll_interval_above_hold",
                address=address,
                gap_s=round(gap, 2),
                hold_s=self.hold,
                fix="set --providers.http.pollInterval at or below --hold; switches in "
                "the gap between a released hold and the next poll wait for that poll",
            )

    def notify(self) -> None:
        """Wake every held request so it looks at the body again."""
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    async def watch(self) -> None:
        """Wake held requests whenever the controller's body changes (runs until cancelled)."""
        changed = self.controller.changed
        async with changed:
            seen = self.controller.body
            while True:
                await changed.wait()
                if self.controller.body is not seen:
                    seen = self.controller.body
                    self.notify()

    def release_all(self) -> None:
        """Shutdown: answer every held request now, and hold no more."""
        self.closing = True
        self.notify()

    def expose(self, out: Exposition) -> None:
        """The hold's metric families."""
        out.family("bluegreen_traefik_held_requests", "gauge", "Traefik polls held right now.")
        out.sample("bluegreen_traefik_held_requests", self.held)
        out.family(
            "bluegreen_traefik_releases_total",
            "counter",
            "Unchanged Traefik polls answered, by cause (held until change/timeout/shutdown/"
            "disconnect, or not held: bound, degraded).",
        )
        for cause in CAUSES:
            out.sample("bluegreen_traefik_releases_total", self.releases[cause], cause=cause)


LONG_POLL = web.AppKey("long_poll", LongPoll)


async def _watch_ctx(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[LONG_POLL].watch(), name="long-poll-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _release_on_shutdown(app: web.Application) -> None:
    app[LONG_POLL].release_all()


def install(app: web.Application, controller: Controller) -> LongPoll:
    """Attach a :class:`LongPoll` to ``app``: its watch task and its shutdown release."""
    long_poll = LongPoll(controller, controller.settings.hold)
    app[LONG_POLL] = long_poll
    app.cleanup_ctx.append(_watch_ctx)
    app.on_shutdown.append(_release_on_shutdown)
    return long_poll
