"""Webhooks: POST each matching event as JSON to the configured receivers.

The event bus calls :meth:`WebhookDispatcher.offer` while it publishes (under
the controller's lock, in the middle of a switch), so offering only appends
to each hook's bounded queue and returns. One delivery task per hook sends
its queue in order, so a hung receiver delays only its own hook, never a
switch and never another hook. Each attempt has a timeout; a failed one
(connection error, timeout, any non-2xx answer) is retried 3 times with
exponential backoff. A full queue drops the event (counted and logged).

Redirects are never followed: a 3xx is a failed attempt. Followed, a 301 or
302 turns the POST into a GET without the body (which "delivers" nothing),
and a redirect loop's error names the hook's full URL, secret path included.
Nothing but :meth:`Webhook.redacted` of a hook's URL is ever logged; an
error's text is scrubbed of the URL's parts (:func:`scrubbed`).

Signed as Standard Webhooks (https://www.standardwebhooks.com) specifies, so a
receiver verifies with that project's libraries in any language:
``webhook-id``, ``webhook-timestamp`` (the attempt's Unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.
The id is derived from the event (:func:`webhook_id`), so it is the same on
every retry and, for a switch, on every Swarm replica: receivers deduplicate
on it; the timestamp bounds replays to the receiver's tolerance (5 minutes in
the libraries). The body-only ``X-Bluegreen-Signature`` stays for one release.

Outcomes are counted in ``bluegreen_webhook_deliveries_total{result}``:
``delivered``, ``retried`` (an attempt failed, another follows), ``failed``
(every attempt failed), ``dropped`` (the hook's queue was full).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import traceback
import urllib.parse
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence

import aiohttp
import structlog
import yarl
from aiohttp import web

from provider.events import Event, EventBus, EventKind
from provider.logs import mask_userinfo
from provider.metrics import Metrics
from provider.webhook_config import Webhook, signing_key

log = structlog.get_logger("bluegreen.webhooks")

RETRIES = 3
BACKOFF_FIRST_S = 1.0
#: Deprecated (one release): the body-only signature, keyed by the secret's text.
SIGNATURE_HEADER = "X-Bluegreen-Signature"
USER_AGENT = "traefik-bluegreen-webhook/1"
#: Events that carry a switch record's ``seq`` (``switch``, and ``promotion``/``rollback`` done).
_OF_A_RECORD = frozenset({EventKind.SWITCH, EventKind.PROMOTION, EventKind.ROLLBACK})


def signature(secret: str, body: bytes) -> str:
    """The deprecated ``X-Bluegreen-Signature``: ``sha256=`` + HMAC-SHA256 of the body, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_id(event: Event) -> str:
    """The ``webhook-id``: the same for one event on every attempt and every replica.

    An event of a switch record is named by the record (``switch-<seq>-<service>``;
    the seq is the state's, shared by Swarm replicas), so two replicas that both
    send one switch send one id. Other events are this process's own (each
    replica sees its own containers): their event id, fixed across retries.
    """
    seq = event.detail.get("seq")
    if event.kind in _OF_A_RECORD and event.service and isinstance(seq, int):
        return f"{event.kind}-{seq}-{event.service}"
    return f"{event.kind}-{event.id}"


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def scrubbed(text: str, url: str) -> str:
    """An error's ``text`` without ``url``'s path, query or credentials (it may repeat them)."""
    parts = urllib.parse.urlsplit(url)
    forms = {url, parts.path, parts.query, parts.fragment}
    with contextlib.suppress(ValueError):  # as the HTTP client writes them (percent-encoded)
        sent = yarl.URL(url)
        forms |= {str(sent), sent.raw_path, sent.path, sent.raw_query_string, sent.query_string}
    for secret in sorted(forms, key=len, reverse=True):
        if len(secret) > 1:
            text = text.replace(secret, "…")
    return mask_userinfo(text)


def body_of(event: Event) -> bytes:
    """The POSTed JSON: the event's shape (README "Webhooks"), sorted keys."""
    return json.dumps(event.to_json(), sort_keys=True, separators=(",", ":")).encode()


class _Hook:
    """One receiver's queue and the event that wakes its delivery task."""

    def __init__(self, spec: Webhook, size: int, secret: str | None) -> None:
        self.spec = spec
        self.size = size
        self.secret = spec.secret or secret
        self.key = signing_key(self.secret) if self.secret else None
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.hooks = [_Hook(spec, queue_size, secret) for spec in hooks]
        self.metrics = metrics
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff
        #: The wall clock of ``webhook-timestamp`` (receivers compare it with theirs).
        self.clock = clock

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
            except Exception as exc:  # a bug must not stop this hook for good
                trace = "".join(traceback.format_exception(exc))
                log.error(
                    "webhook_failed_unexpectedly",
                    url=hook.spec.redacted(),
                    exception=scrubbed(trace, hook.spec.url),
                )
            hook.queue.popleft()

    async def _deliver(self, session: aiohttp.ClientSession, hook: _Hook, event: Event) -> None:
        """POST ``event`` to ``hook``: 1 + ``retries`` attempts, backoff doubling each time."""
        body = body_of(event)
        msg_id = webhook_id(event)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "X-Bluegreen-Event": str(event.kind),
            "X-Bluegreen-Delivery": event.id,
        }
        if hook.secret:
            headers[SIGNATURE_HEADER] = signature(hook.secret, body)
        delay = self.backoff
        for attempt in range(1, self.retries + 2):
            timestamp = int(self.clock())
            headers["webhook-timestamp"] = str(timestamp)
            if hook.key is not None:
                headers["webhook-signature"] = standard_signature(hook.key, msg_id, timestamp, body)
            error = await self._attempt(session, hook.spec.url, body, headers)
            if error is None:
                self.metrics.webhook_deliveries["delivered"] += 1
                log.info(
                    "webhook_delivered",
                    url=hook.spec.redacted(),
                    event_id=event.id,
                    webhook_id=msg_id,
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
                webhook_id=msg_id,
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
        """One POST; ``None`` on a 2xx answer, else what went wrong (safe to log)."""
        try:
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                if 300 <= response.status < 400:
                    return f"answered {response.status}: redirects are not followed"
                return f"answered {response.status}"
        except TimeoutError:
            return f"no answer within {self.timeout.total:g}s"
        except (aiohttp.ClientError, OSError) as exc:
            return scrubbed(str(exc) or type(exc).__name__, url)[:300]


DISPATCHER = web.AppKey("webhooks", WebhookDispatcher)


async def _webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    async with app[DISPATCHER].running():
        yield


def setup(app: web.Application, bus: EventBus, dispatcher: WebhookDispatcher) -> None:
    """Send ``bus``'s events through ``dispatcher`` while ``app`` runs."""
    app[DISPATCHER] = dispatcher
    bus.add_listener(dispatcher.offer)
    app.cleanup_ctx.append(_webhooks_ctx)
