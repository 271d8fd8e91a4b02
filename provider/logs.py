"""structlog, configured once at startup.

Console rendering on a TTY, JSON lines otherwise, to stdout. A processor
drops any key that looks like a secret, so a token can never reach a log line
even if a caller binds one by mistake, and masks the ``user:password@`` of any
URL in a logged string. URLs a caller logs on purpose go through
:func:`redact_url` (the one place that decides what of a URL may be shown).
"""

from __future__ import annotations

import logging
import re
import sys
import urllib.parse
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = ("token", "authorization", "password", "secret")
#: ``scheme://user:password@``: the credentials part of a URL inside any text.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@\s]*@")


def redact_url(url: str, *, path: bool = False) -> str:
    """``url`` as it may be logged: never its ``user:password@``, nor its query or fragment.

    Without ``path`` the path is cut too (``scheme://host:port/…``): a webhook's
    path often is its secret (chat incoming-webhook URLs). With ``path`` it is
    kept (``http://***@127.0.0.1:8082/metrics``) for URLs whose path is no secret.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(malformed URL)"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    who = "***@" if "@" in parts.netloc else ""
    rest = (parts.path or "/") if path else "/…"
    cut = "?…" if path and (parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{who}{host}{port}{rest}{cut}"


def mask_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@``."""
    return _USERINFO.sub(r"\1***@", text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_userinfo(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _drop_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(s in key.lower() for s in _SECRET_KEYS):
            event[key] = "[redacted]"
        else:
            event[key] = _masked(event[key])
    return event


def configure(log_format: str = "auto", level: str = "info") -> None:
    """Set up structlog for the process; ``log_format`` is auto, json or console."""
    use_console = log_format == "console" or (log_format == "auto" and sys.stdout.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _drop_secrets,  # after format_exc_info: a traceback's text is masked too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
