"""Webhooks: POST each matching event as JSON to the configured receivers.

The event bus calls :meth:`WebhookDispatcher.offer` while it publishes (under
the controller's lock, in the middle of a switch), so offering only appends
to each hook's bounded queue and returns. One delivery task per hook sends
its queue in order, so a hung receiver delays only its own hook, never a
switch and never another hook. Each attempt has a timeout; a failed one
(connection error, timeout, any non-2xx answer) is retried 3 times with
exponential backoff. A full queue drops the event (counted and logged).

Outcomes are counted in ``bluegreen_webhook_deliveries_total{result}``:
``delivered``, ``retried`` (an attempt failed, another follows), ``failed``
(every attempt failed), ``dropped`` (the hook's queue was full).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections import deque
from collections.abc import AsyncIterator, Sequence

import aiohttp
import structlog
from aiohttp import web

from provider.events import Event, EventBus
from provider.metrics import Metrics
from provider.webhook_config import Webhook

log = structlog.get_logger("bluegreen.webhooks")

RETRIES = 3
BACKOFF_FIRST_S = 1.0
SIGNATURE_HEADER = "X-Bluegreen-Signature"
USER_AGENT = "traefik-bluegreen-webhook/1"


def signature(secret: str, body: bytes) -> str:
    """The ``X-Bluegreen-Signature`` value: ``sha256=`` + HMAC-SHA256 of the body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def body_of(event: Event) -> bytes:
    """The POSTed JSON: the event's shape (README "Webhooks"), sorted keys."""
    return json.dumps(event.to_json(), sort_keys=True, separators=(",", ":")).encode()


class _Hook:
    """One receiver's queue and the event that wakes its delivery task."""

    def __init__(self, spec: Webhook, size: int) -> None:
        self.spec = spec
        self.size = size
        self.queue: deque[Event] = deque()
        self.wakeup = asyncio.Event()


class WebhookDispatcher:
    """Owns the hooks' queues and delivery tasks (started and stopped by :meth:`running`)."""

    def __init__(
        self,
        hooks: Sequence[Webhook],
        *,
        secret: str | None,
        metrics: Metrics,
        timeout: float = 5.0,
        queue_size: int = 1000,
        retries: int = RETRIES,
        backoff: float = BACKOFF_FIRST_S,
    ) -> None:
        self.hooks = [_Hook(spec, queue_size) for spec in hooks]
        self.secret = secret
        self.metrics = metrics
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff

    def offer(self, event: Event) -> None:
        """Queue ``event`` for every hook that wants it; never waits (a bus listener).

        A switch another Swarm replica committed (``detail.followed``) is that
        replica's to deliver: every replica sending it would repeat each hook.
        """
        if event.detail.get("followed"):
            return
        for hook in self.hooks:
            if not hook.spec.wants(str(event.kind)):
                continue
            if len(hook.queue) >= hook.size:
                self.metrics.webhook_deliveries["dropped"] += 1
                log.warning(
                    "webhook_dropped",
                    url=hook.spec.redacted(),
                    event_id=event.id,
                    kind=str(event.kind),
                    queued=len(hook.queue),
                )
                continue
            hook.queue.append(event)
            hook.wakeup.set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run one delivery task per hook; on exit cancel them and await them."""
        async with aiohttp.ClientSession(
            timeout=self.timeout, headers={"User-Agent": USER_AGENT}
        ) as session:
            tasks = [
                asyncio.create_task(self._deliver_forever(session, hook), name="webhook")
                for hook in self.hooks
            ]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _deliver_forever(self, session: aiohttp.ClientSession, hook: _Hook) -> None:
        while True:
            while not hook.queue:
                hook.wakeup.clear()
                await hook.wakeup.wait()
            event = hook.queue[0]
            try:
                await self._deliver(session, hook, event)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop this hook for good
                log.exception("webhook_failed_unexpectedly", url=hook.spec.redacted())
            hook.queue.popleft()

    async def _deliver(self, session: aiohttp.ClientSession, hook: _Hook, event: Event) -> None:
        """POST ``event`` to ``hook``: 1 + ``retries`` attempts, backoff doubling each time."""
        body = body_of(event)
        headers = {
            "Content-Type": "application/json",
            "X-Bluegreen-Event": str(event.kind),
            "X-Bluegreen-Delivery": event.id,
        }
        secret = hook.spec.secret or self.secret
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, body)
        delay = self.backoff
        for attempt in range(1, self.retries + 2):
            error = await self._attempt(session, hook.spec.url, body, headers)
            if error is None:
                self.metrics.webhook_deliveries["delivered"] += 1
                log.info(
                    "webhook_delivered",
                    url=hook.spec.redacted(),
                    event_id=event.id,
                    kind=str(event.kind),
                    attempt=attempt,
                )
                return
            last = attempt > self.retries
            self.metrics.webhook_deliveries["failed" if last else "retried"] += 1
            (log.error if last else log.warning)(
                "webhook_failed" if last else "webhook_attempt_failed",
                url=hook.spec.redacted(),
                event_id=event.id,
                kind=str(event.kind),
                attempt=attempt,
                error=error,
                retry_in=None if last else delay,
            )
            if last:
                return
            await asyncio.sleep(delay)
            delay *= 2

    async def _attempt(
        self, session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
    ) -> str | None:
        """One POST; ``None`` on a 2xx answer, else what went wrong."""
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"answered {response.status}"
        except TimeoutError:
            return f"no answer within {self.timeout.total:g}s"
        except (aiohttp.ClientError, OSError) as exc:
            return (str(exc) or type(exc).__name__)[:300]


DISPATCHER = web.AppKey("webhooks", WebhookDispatcher)


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    async with app[DISPATCHER].running():
        yield


def setup(app: web.Application, bus: EventBus, dispatcher: WebhookDispatcher) -> None:
    """Send ``bus``'s events through ``dispatcher`` while ``app`` runs."""
    app[DISPATCHER] = dispatcher
    bus.add_listener(dispatcher.offer)
    app.cleanup_ctx.append(_webhooks_ctx)
