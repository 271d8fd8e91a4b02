"""A small synchronous client of the provider's HTTP API (stdlib ``urllib``).

The CLI is a thin client: only the provider mutates state. Every failure
becomes a typed :class:`~deploy.errors.CliError` whose message names the URL
tried and what to change; the token goes with every request (a provider
started with a read token refuses anonymous reads too), never to another origin,
and never appears in a message.

Redirects are refused, not followed: urllib's default handler would resend the
``Authorization`` header to whatever origin a ``Location`` names, and turn a
redirected ``POST /switch`` into a ``GET`` whose 200 would read as the switch's
answer. A redirect is a misconfigured ``--url`` (or a proxy in the way); the
error names where it pointed, so the operator can fix the URL.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from deploy.errors import (
    ApiError,
    ProviderProtocolError,
    ProviderUnreachable,
    SwitchRefusedError,
    TokenError,
    UnknownServiceError,
    UsageError,
)

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_S = 10.0
_MAX_ANSWER = 16 * 1024 * 1024


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Every 3xx with a ``Location`` becomes :class:`RedirectRefused`; nothing is re-sent."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        raise RedirectRefused(req.get_method(), req.full_url, code, newurl)


class RedirectRefused(Exception):
    """The provider's URL answered a redirect; raised inside urllib, mapped by the client."""

    def __init__(self, method: str, url: str, code: int, location: str) -> None:
        super().__init__(f"{method} {url} answered {code} to {location}")
        self.method = method
        self.url = url
        self.code = code
        self.location = location


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def normalize_url(raw: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, or :class:`UsageError`."""
    parsed = urllib.parse.urlsplit(raw.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(
            f"--url / BLUEGREEN_URL must look like http://HOST:PORT (got {raw[:100]!r})"
        )
    try:
        parsed.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise UsageError(f"--url / BLUEGREEN_URL has a bad port: {raw[:100]!r}") from exc
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


class ProviderClient:
    """Calls the provider at ``url``; ``token`` is the operator token (``BLUEGREEN_TOKEN``)."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.url = normalize_url(url)
        self.token = token or None
        self.timeout = timeout

    # -- endpoints ------------------------------------------------------------

    def status(self, service: str | None = None) -> dict[str, Any]:
        """``GET /status`` or ``GET /status/{service}``."""
        if service is None:
            return self._object("GET", "/status")
        return self._object("GET", f"/status/{urllib.parse.quote(service, safe='')}", service)

    def history(self, service: str | None = None) -> list[dict[str, Any]]:
        """``GET /history[?service=]``: the audit trail, oldest first."""
        query = f"?{urllib.parse.urlencode({'service': service})}" if service else ""
        doc = self._object("GET", f"/history{query}", service)
        records = doc.get("history")
        if not isinstance(records, list):
            raise self._protocol("GET /history answered without a 'history' list")
        return [r for r in records if isinstance(r, dict)]

    def switch(
        self,
        service: str,
        color: str | None = None,
        *,
        force: bool = False,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """``POST /switch``; answers ``{"service","active","previous","changed","switch"}``."""
        body: dict[str, Any] = {"service": service, "force": force}
        if color is not None:
            body["color"] = color
        if reason is not None:
            body["reason"] = reason
        return self._object("POST", "/switch", service, body)

    def rollback(
        self, service: str, *, force: bool = False, color: str | None = None
    ) -> dict[str, Any]:
        """``POST /rollback``: switch back to the previous color.

        ``color``: the previous color the caller saw; the provider refuses (409)
        if it is another by now, instead of switching somewhere unexpected.
        """
        body: dict[str, Any] = {"service": service, "force": force}
        if color is not None:
            body["color"] = color
        return self._object("POST", "/rollback", service, body)

    def retire(self, service: str, color: str) -> dict[str, Any]:
        """``POST /retire``: ``color`` is about to be stopped; 409 if it is active."""
        return self._object("POST", "/retire", service, {"service": service, "color": color})

    def release(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /releases``: how a deploy's release step ended (an event, for the record)."""
        return self._object("POST", "/releases", service, {"service": service, **body})

    def maintenance(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /maintenance``: the public gets a 503 page (``on``) or the service again."""
        return self._object("POST", "/maintenance", service, {"service": service, **body})

    def bake(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /bake``: judge the active color after the switch, the old one kept warm."""
        return self._object("POST", "/bake", service, {"service": service, **body})

    def check_token(self) -> None:
        """``GET /auth``: a :class:`TokenError` now, before a command changes anything."""
        self._object("GET", "/auth")

    def canary(self, service: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /canary``: start (or reserve, ``await_ready``) a weighted canary."""
        return self._object("POST", "/canary", service, {"service": service, **body})

    def canary_abort(self, service: str) -> dict[str, Any]:
        """``POST /canary/abort``: weight 0 now; the canary color is marked rejected."""
        return self._object("POST", "/canary/abort", service, {"service": service})

    def canary_promote(self, service: str) -> dict[str, Any]:
        """``POST /canary/promote``: skip the remaining steps and switch."""
        return self._object("POST", "/canary/promote", service, {"service": service})

    # -- plumbing -------------------------------------------------------------

    def _protocol(self, what: str) -> ProviderProtocolError:
        return ProviderProtocolError(
            f"{self.url} does not answer like a bluegreen provider ({what}); "
            "check --url / BLUEGREEN_URL"
        )

    def _object(
        self,
        method: str,
        path: str,
        service: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        status, doc = self._request(method, path, body)
        if status >= 400:
            raise self._error(status, doc, service, method, path)
        if not isinstance(doc, dict):
            raise self._protocol(f"{method} {path} did not answer a JSON object")
        return doc

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:  # reads too: a provider with a read token refuses anonymous ones
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read(_MAX_ANSWER)
        except RedirectRefused as exc:
            raise ProviderProtocolError(
                f"{method} {path} at {self.url} answered a redirect ({exc.code}) to "
                f"{exc.location[:200]}; the CLI follows no redirect (it would carry the "
                "token elsewhere): set --url / BLUEGREEN_URL to the provider's own address"
            ) from None
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read(_MAX_ANSWER)
            exc.close()
        except urllib.error.URLError as exc:
            raise ProviderUnreachable(self.url, _reason(exc.reason)) from exc
        except TimeoutError as exc:
            raise ProviderUnreachable(self.url, f"no answer within {self.timeout:g}s") from exc
        except (ConnectionError, OSError) as exc:
            raise ProviderUnreachable(self.url, _reason(exc)) from exc
        try:
            return status, json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._protocol(f"{method} {path} answered {status} without JSON") from None

    def _error(
        self, status: int, doc: Any, service: str | None, method: str, path: str
    ) -> ApiError:
        if not isinstance(doc, dict) or "error" not in doc:
            raise self._protocol(f"{method} {path} answered {status} without an error object")
        code = str(doc.get("error"))
        detail = str(doc.get("detail", ""))
        if status == 401:
            hint = (
                "no token was sent: set BLUEGREEN_TOKEN (or pass --token) to the token "
                "`bluegreen serve` was started with"
                if not self.token
                else "the provider rejected the token: BLUEGREEN_TOKEN (or --token) must equal "
                "the provider's BLUEGREEN_TOKEN / --token"
            )
            return TokenError(hint, status=status, code=code, detail=detail)
        if status == 403:
            return TokenError(
                f"the provider refuses changes: {detail}", status=status, code=code, detail=detail
            )
        if status == 404 and code == "unknown_service":
            return UnknownServiceError(
                f"unknown service {service!r}: no container carries the label "
                f"bluegreen.service={service}. `bluegreen status` lists the known services.",
                status=status,
                code=code,
                detail=detail,
            )
        if status == 404:
            raise self._protocol(f"{method} {path} is not an endpoint there: {detail}")
        if status == 409:
            return SwitchRefusedError(
                f"switch refused: {detail}", status=status, code=code, detail=detail
            )
        return ApiError(
            f"the provider answered {status} {code}: {detail}",
            status=status,
            code=code,
            detail=detail,
        )


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host name ({reason.strerror})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__
