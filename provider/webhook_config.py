"""Which webhooks to call: parsed from ``--webhook URL`` flags or the YAML ``webhooks:`` list.

Kept apart from the delivery code so ``provider.settings`` can validate hooks
at startup without importing an HTTP client. A webhook URL often carries a
secret in its path (chat incoming-webhook URLs do), so only
:meth:`Webhook.redacted` is ever logged.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provider.events import EventKind

#: Without an ``events`` filter a hook gets every kind but ``container`` (one per health check
#: flip of every container would drown a chat channel).
DEFAULT_EVENTS = frozenset(str(k) for k in EventKind if k is not EventKind.CONTAINER)
ALL_EVENTS = frozenset(str(k) for k in EventKind)


@dataclass(frozen=True)
class Webhook:
    """One receiver: where to POST, which event kinds, and its own HMAC secret if any."""

    url: str
    events: frozenset[str] = DEFAULT_EVENTS
    secret: str | None = None

    def wants(self, kind: str) -> bool:
        return kind in self.events

    def redacted(self) -> str:
        """``scheme://host[:port]/...``: safe to log (paths and queries may hold tokens)."""
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}/…"


def parse_url(raw: str) -> str:
    """An ``http(s)://host/...`` URL, or ``ValueError`` saying what is wrong."""
    text = raw.strip()
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a webhook must be an http:// or https:// URL with a host")
    if any(ord(c) < 33 for c in text):
        raise ValueError("a webhook URL must not contain spaces or control characters")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError("a webhook URL has a bad port") from exc
    return text


def parse_events(raw: Any) -> frozenset[str]:
    """A list of event kinds (or ``"*"`` / ``["*"]`` for all of them)."""
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise ValueError("events must be a list of event names, e.g. [switch, rollback]")
    names = {str(x).strip() for x in items}
    if "*" in names:
        return ALL_EVENTS
    unknown = sorted(names - ALL_EVENTS)
    if unknown:
        raise ValueError(
            f"unknown event(s) {', '.join(unknown)}; known: {', '.join(sorted(ALL_EVENTS))}"
        )
    return frozenset(names)


def parse_hook(item: Any) -> Webhook:
    """A URL string or a mapping ``{url, events?, secret?}`` (the YAML form)."""
    if isinstance(item, str):
        return Webhook(parse_url(item))
    if not isinstance(item, Mapping):
        raise ValueError("each webhook is a URL or a mapping with url, events, secret")
    unknown = sorted(str(k) for k in item if k not in ("url", "events", "secret"))
    if unknown:
        raise ValueError(f"unknown webhook key(s) {', '.join(unknown)}; known: url, events, secret")
    if not isinstance(item.get("url"), str):
        raise ValueError("a webhook mapping needs url: http://...")
    events = parse_events(item["events"]) if "events" in item else DEFAULT_EVENTS
    secret = item.get("secret")
    if secret is not None and (not isinstance(secret, str) or not secret.strip()):
        raise ValueError("a webhook's secret must be a non-empty string")
    return Webhook(parse_url(item["url"]), events, secret.strip() if secret else None)


def parse_hooks(items: Iterable[Any]) -> tuple[Webhook, ...]:
    return tuple(parse_hook(item) for item in items)
