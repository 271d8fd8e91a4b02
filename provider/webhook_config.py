"""Which webhooks to call: parsed from ``--webhook URL`` flags or the YAML ``webhooks:`` list.

Kept apart from the delivery code so ``provider.settings`` can validate hooks
at startup without importing an HTTP client. A webhook URL often carries a
secret in its path (chat incoming-webhook URLs do), so only
:meth:`Webhook.redacted` is ever logged, and neither the URL nor the secret is
part of a ``Webhook``'s repr (a traceback or a debug print shows neither).

Secrets follow Standard Webhooks: ``whsec_<base64>`` is the base64 of the
HMAC key (what the standard's libraries take as is); any other secret is used
as its UTF-8 bytes (as ``X-Bluegreen-Signature`` always did), so a receiver
gives the libraries ``whsec_`` + base64 of it (:func:`signing_key`).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider.errors import SettingsError
from provider.events import EventKind
from provider.logs import redact_url

#: Without an ``events`` filter a hook gets every kind but ``container`` (one per health check
#: flip of every container would drown a chat channel).
DEFAULT_EVENTS = frozenset(str(k) for k in EventKind if k is not EventKind.CONTAINER)
ALL_EVENTS = frozenset(str(k) for k in EventKind)


@dataclass(frozen=True)
class Webhook:
    """One receiver: where to POST, which event kinds, and its own HMAC secret if any."""

    url: str = field(repr=False)
    events: frozenset[str] = DEFAULT_EVENTS
    secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Webhook({self.redacted()!r}, events={sorted(self.events)})"

    def wants(self, kind: str) -> bool:
        return kind in self.events

    def redacted(self) -> str:
        """``scheme://host[:port]/…``: safe to log (paths, queries, userinfo may hold tokens)."""
        return redact_url(self.url)


#: The Standard Webhooks prefix of a secret given as base64 key bytes.
SECRET_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: the decoded base64 after ``whsec_``, else its UTF-8 bytes.

    ``ValueError`` for a ``whsec_`` secret that is not base64 of at least one byte.
    """
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a whsec_ secret must be whsec_ + the base64 of the key") from exc
    if not key:
        raise ValueError("a whsec_ secret must be whsec_ + the base64 of the key") from None
    return key


def check_secret(secret: str) -> str:
    """``secret`` if it can sign (see :func:`signing_key`), else ``ValueError``."""
    signing_key(secret)
    return secret


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
    secret = check_secret(secret.strip()) if secret else None
    return Webhook(parse_url(item["url"]), events, secret)


def parse_hooks(items: Iterable[Any]) -> tuple[Webhook, ...]:
    return tuple(parse_hook(item) for item in items)


def redacted_settings(name: str, value: Any) -> Any:
    """``webhook_secret`` and ``webhooks`` as :meth:`Settings.redacted` logs them."""
    if name == "webhook_secret":
        return "set" if value else "unset"
    return [hook.redacted() for hook in value]


def settings_values(
    namespace: argparse.Namespace,
    env: Mapping[str, str],
    from_file: Mapping[str, Any],
    config_path: str | None,
    values: dict[str, Any],
) -> dict[str, Any]:
    """``webhooks`` (flags, env, or the YAML list), ``--webhook-secret-file``, the secret's form.

    Pops ``webhook_secret_file`` from ``values``; answers the settings to add.
    """
    out: dict[str, Any] = {}
    flags: list[str] | None = getattr(namespace, "webhooks", None)
    try:
        if flags:
            source = "--webhook"
            hooks = parse_hooks(parse_url(url) for url in flags)
        elif "BLUEGREEN_WEBHOOKS" in env:
            source = "BLUEGREEN_WEBHOOKS"
            hooks = parse_hooks(env["BLUEGREEN_WEBHOOKS"].split())
        elif "webhooks" in from_file:
            source = f"webhooks in {config_path}"
            raw = from_file["webhooks"]
            hooks = parse_hooks([] if raw is None else raw if isinstance(raw, list) else [raw])
        else:
            hooks = ()
    except ValueError as exc:
        hint = "(flag --webhook, env BLUEGREEN_WEBHOOKS)"
        raise SettingsError(f"invalid {source}: {exc} {hint}") from exc
    if hooks:
        out["webhooks"] = hooks
    secret_file: Path | None = values.pop("webhook_secret_file", None)
    if secret_file is not None:
        if values.get("webhook_secret"):
            raise SettingsError("give --webhook-secret or --webhook-secret-file, not both")
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read --webhook-secret-file {secret_file}: {exc}") from exc
        if not secret:
            raise SettingsError(f"--webhook-secret-file {secret_file} is empty")
        out["webhook_secret"] = secret
    shared: str | None = out.get("webhook_secret", values.get("webhook_secret"))
    if shared:
        try:
            check_secret(shared)
        except ValueError as exc:
            hint = "(flag --webhook-secret or --webhook-secret-file, env BLUEGREEN_WEBHOOK_SECRET)"
            raise SettingsError(f"invalid webhook secret: {exc} {hint}") from exc
    return out
