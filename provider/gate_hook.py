"""The gate webhook: the provider asks an approver before it promotes a generation.

After a generation's smoke checks passed (or at once, without checks), the
provider POSTs the candidate (service, color, its container ids and images, how
to reach it through Traefik's preview route) to the service's gate URL
(``bluegreen.gate.url``, else ``--gate-url``). A 2xx within ``--gate-timeout``
approves; anything else rejects, judged by :func:`provider.core.gates.judge_webhook`:
another status (its first bytes quoted), a redirect (not followed: a followed
POST becomes a GET without the candidate), a timeout, a refused connection. One
attempt, no retry: a gate that cannot answer must not let a release through, and
the next deploy (new containers) asks again.

Signed as the event webhooks are (:mod:`provider.webhooks`, Standard Webhooks):
``webhook-id`` (``gate-<service>-<color>-<digest of the container ids>``: the
same for one generation on every Swarm replica, which each ask), ``webhook-timestamp``,
``webhook-signature`` with ``--webhook-secret``, and the deprecated body-only
``X-Bluegreen-Signature``. Only the URL's scheme, host and port are ever logged
or shown: its path may hold a token.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from provider.core.gates import judge_webhook, rule_host
from provider.core.labels import RouteSpec
from provider.core.model import Color
from provider.logs import redact_url
from provider.webhook_config import signing_key
from provider.webhooks import SIGNATURE_HEADER, USER_AGENT, scrubbed, signature, standard_signature

#: Bytes of a rejecting answer read (the reason quotes fewer).
MAX_BODY = 4096


@dataclass(frozen=True)
class GateHookSettings:
    """The signing secret (``--webhook-secret``) and how long the approver may take."""

    secret: str | None = field(default=None, repr=False)
    timeout: float = 10.0


@dataclass(frozen=True)
class Candidate:
    """The generation a gate webhook is asked about."""

    service: str
    color: Color
    ids: frozenset[str]
    images: tuple[str, ...]


def gate_id(candidate: Candidate) -> str:
    """``webhook-id``: one per generation, the same on every replica and every ask."""
    digest = hashlib.sha256(",".join(sorted(candidate.ids)).encode()).hexdigest()[:16]
    return f"gate-{candidate.service}-{candidate.color}-{digest}"


def body_of(
    candidate: Candidate, route: RouteSpec, smoke_url: str | None, preview_header: str
) -> bytes:
    """The POSTed JSON, sorted keys: the candidate and how to reach it through Traefik."""
    doc = {
        "kind": "gate",
        "service": candidate.service,
        "color": str(candidate.color),
        "containers": sorted(candidate.ids),
        "images": sorted(set(candidate.images)),
        "smoke": [check.path for check in route.smoke],
        "preview": {
            "url": smoke_url,
            "host": route.smoke_host or rule_host(route.rule),
            "header": {preview_header: str(candidate.color)},
        },
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


async def ask(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    msg_id: str,
    settings: GateHookSettings,
    *,
    clock: Callable[[], float] = time.time,
) -> str | None:
    """POST ``body`` once: ``None`` when approved, else why the gate rejected (safe to show)."""
    timestamp = int(clock())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Bluegreen-Event": "gate",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
    }
    if settings.secret:
        headers[SIGNATURE_HEADER] = signature(settings.secret, body)
        key = signing_key(settings.secret)
        headers["webhook-signature"] = standard_signature(key, msg_id, timestamp, body)
    status: int | None = None
    answer, error = b"", None
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=settings.timeout),
        ) as response:
            status, answer = response.status, await response.content.read(MAX_BODY)
    except TimeoutError:
        status = None
    except (aiohttp.ClientError, OSError) as exc:
        error = scrubbed(str(exc) or type(exc).__name__, url)[:300]
    reason = judge_webhook(status, answer, error, settings.timeout)
    return None if reason is None else f"{redact_url(url)} {reason}"
