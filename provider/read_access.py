"""Who may read: the optional read token of ``/status``, ``/history``, ``/events`` and ``/``.

Those answers carry healthcheck output, so a provider reachable by others can
require ``--read-token``. An API client sends it (or the operator token, which
grants reads too) as ``Authorization: Bearer``. A browser cannot put a header
on an ``EventSource``, so the status page signs in once: ``POST /ui/login``
with the token (from the page's form, by ``fetch``) sets a session cookie, as
web UIs behind a login do; unlike ``?token=`` in a URL, the token never lands
in a browser history, a proxy's access log or a ``Referer``. The cookie is
``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site sends
it), ``Secure`` behind HTTPS, and holds no token: an expiry and an
HMAC-SHA256 of it keyed by the read token. So it needs no server-side session
(any Swarm replica checks it), expires on its own, and changing the read token
signs every browser out (no sign-out route: clearing the cookie does that).
``/healthz``, ``/readyz``, ``/traefik`` (its own ``--provider-token``) and
``/metrics`` stay open: probes, Traefik and Prometheus poll them, and they
carry no healthcheck output.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from provider.errors import BadRequest, Unauthorized, UnsupportedMediaType

#: The session cookie's name.
COOKIE = "bluegreen_read"
#: How long a page's sign-in lasts.
SESSION_S = 12 * 3600
_COOKIE_VALUE = re.compile(r"([0-9]{1,12})\.([0-9a-f]{64})")


def bearer_ok(request: web.Request, expected: str) -> bool:
    """Whether the request carries ``Authorization: Bearer <expected>``, compared in
    constant time over the whole value."""
    header = request.headers.get("Authorization", "")
    scheme, _, supplied = header.partition(" ")
    # The scheme check leaks nothing secret. aiohttp decodes non-UTF-8 header bytes
    # as lone surrogates: encode them back ("surrogatepass") instead of failing, so
    # such a header is just a wrong token.
    return scheme.lower() == "bearer" and _same(supplied.strip(), expected)


def _same(supplied: str, expected: str) -> bool:
    return hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"), expected.encode())


@dataclass(frozen=True)
class ReadAccess:
    """The read token (``None``: reads are open) and the operator token, which reads too."""

    read_token: str | None
    operator_token: str | None
    clock: Callable[[], float] = field(default=time.time)

    @property
    def required(self) -> bool:
        return self.read_token is not None

    def token_ok(self, supplied: str) -> bool:
        """Either token; both comparisons always run (no early exit to time)."""
        ok = [_same(supplied, t) for t in (self.read_token, self.operator_token) if t]
        return any(ok)

    def _signature(self, expires: int) -> str:
        assert self.read_token is not None
        message = f"bluegreen-read-session:{expires}".encode()
        return hmac.new(self.read_token.encode(), message, hashlib.sha256).hexdigest()

    def session(self) -> tuple[str, int]:
        """A new session cookie's value and its expiry (epoch seconds)."""
        expires = int(self.clock()) + SESSION_S
        return f"{expires}.{self._signature(expires)}", expires

    def session_ok(self, value: str) -> bool:
        match = _COOKIE_VALUE.fullmatch(value)
        if match is None:
            return False
        expires = int(match.group(1))
        if not self.clock() < expires <= self.clock() + SESSION_S:
            return False
        return hmac.compare_digest(match.group(2), self._signature(expires))

    def allows(self, request: web.Request) -> bool:
        if self.read_token is None:
            return True
        tokens = [t for t in (self.read_token, self.operator_token) if t]
        if any([bearer_ok(request, t) for t in tokens]):
            return True
        return self.session_ok(request.cookies.get(COOKIE, ""))


READ_ACCESS = web.AppKey("read_access", ReadAccess)


def require_read(request: web.Request) -> None:
    """Raise 401 unless the request may read (always, without ``--read-token``)."""
    if not request.app[READ_ACCESS].allows(request):
        raise Unauthorized(
            "reading needs the read token: send 'Authorization: Bearer <read token>' "
            "(the operator token reads too), or sign in on the status page"
        )


def _secure(request: web.Request) -> bool:
    """Mark the cookie ``Secure`` when the browser talks HTTPS (directly or to a proxy):
    over plain HTTP a browser would drop a ``Secure`` cookie."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


async def _token_of(request: web.Request) -> str:
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype != "application/json":  # a cross-site form cannot send this without CORS
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    try:
        doc: Any = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest('body must be a JSON object {"token": "..."}') from exc
    if not isinstance(doc, dict) or set(doc) != {"token"} or not isinstance(doc["token"], str):
        raise BadRequest('body must be a JSON object {"token": "..."}')
    token: str = doc["token"]
    if not token.isprintable():
        raise BadRequest("field 'token' must be printable text")
    return token


async def login(request: web.Request) -> web.Response:
    """``POST /ui/login``: the read (or operator) token in, a session cookie out."""
    access = request.app[READ_ACCESS]
    token = await _token_of(request)
    if not access.required:
        return web.json_response({"signed_in": True, "expires": None})
    if not access.token_ok(token):
        raise Unauthorized("wrong token: give the read token or the operator token")
    value, expires = access.session()
    response = web.json_response({"signed_in": True, "expires": expires})
    response.set_cookie(
        COOKIE,
        value,
        max_age=SESSION_S,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response
