"""Hostile HTTP requests: hypothesis strategies and a raw HTTP/1.1 client to send them.

The requests are written byte for byte on a fresh loopback connection, so a
test can send what a well-behaved client library would refuse or "fix":
invalid percent escapes, unknown methods, bodies on GET, lying content types,
bodies past the server's cap. Responses are parsed just enough to check them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import string
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web
from hypothesis import strategies as st

from provider.api import CONTROLLER
from provider.core.model import Container, Health
from provider.server import build_app
from provider.settings import Settings
from tests.factories import make_container
from tests.testbed.ports import free_port

T = TypeVar("T")

TOKEN = "s3cret-token"
PROVIDER_TOKEN = "traefik-poll-token"
#: The cap the hostile apps run with (small, so oversized bodies are cheap to send).
MAX_BODY = 8192
READ_TIMEOUT_S = 10.0
MAX_TARGET = 8000

#: Every endpoint and the method it is declared with; ``{service}``, ``{probe}`` filled in.
ENDPOINTS: dict[str, str] = {
    "/traefik": "GET",
    "/traefik/applied/{probe}": "GET",
    "/auth": "GET",
    "/status": "GET",
    "/status/{service}": "GET",
    "/switch": "POST",
    "/rollback": "POST",
    "/retire": "POST",
    "/canary": "POST",
    "/canary/abort": "POST",
    "/canary/promote": "POST",
    "/releases": "POST",
    "/maintenance": "POST",
    "/bake": "POST",
    "/maintenance-page/{service}": "GET",
    "/history": "GET",
    "/healthz": "GET",
    "/readyz": "GET",
    "/metrics": "GET",
    "/openapi.json": "GET",
    "/": "GET",
    "/ui/services": "GET",
    "/ui/app.js": "GET",
    "/ui/style.css": "GET",
    "/ui/login": "POST",
    "/ui/login.js": "GET",
}
#: Endpoints that stream (never end on their own): checked by tests/api/test_events.py instead.
STREAMING: dict[str, str] = {"/events": "GET"}
SERVICES = ("web", "api")


@dataclass(frozen=True)
class HostileRequest:
    """One request to send: ``target`` is the raw request-target (path and query)."""

    method: str
    route: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


@dataclass
class RawResponse:
    """What came back: status, lower-cased headers, body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        return json.loads(self.body)


def send(port: int, request: HostileRequest) -> RawResponse:
    """Write ``request`` as raw HTTP/1.1 to 127.0.0.1:``port`` and read the whole answer."""
    lines = [f"{request.method} {request.target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in request.headers]
    if request.body is not None:
        lines.append(f"Content-Length: {len(request.body)}")
    lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S) as sock:
        # The server may answer and close before reading everything: read its answer.
        with contextlib.suppress(ConnectionError):
            sock.sendall(head + (request.body or b""))
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass  # keep what arrived before the reset
    return parse_response(b"".join(chunks), head_only=request.method == "HEAD")


def parse_response(data: bytes, *, head_only: bool = False) -> RawResponse:
    """Parse one HTTP/1.1 response (Content-Length or read-to-close bodies)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"no complete HTTP response: {data[:200]!r}")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, status, *_ = status_line.split(" ", 2)
    if not version.startswith("HTTP/1."):
        raise AssertionError(f"bad status line {status_line!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if head_only:
        body = b""
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        raise AssertionError("the API never streams; a chunked answer is unexpected")
    return RawResponse(int(status), headers, body)


def hostile_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings of the in-process apps the hostile tests run (small body cap, both tokens)."""
    values: dict[str, Any] = {
        "state_file": tmp_path / "state.json",
        "token": TOKEN,
        "provider_token": PROVIDER_TOKEN,
        "max_body": MAX_BODY,
    }
    values.update(overrides)
    return Settings(**values)


def observed() -> list[Container]:
    """web: blue and green ready; api: blue only, green still starting."""
    return [
        make_container("web", "blue", port=8081, created=1.0),
        make_container("web", "green", port=8082, created=2.0),
        make_container("api", "blue", port=9001, created=1.0),
        make_container("api", "green", port=9002, created=2.0, health=Health.STARTING),
    ]


# -- strategies -------------------------------------------------------------

#: Header-safe text: printable latin-1 with no CR/LF (a header cannot carry more).
_HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=300,
)
_ANY_TEXT = st.text(max_size=200)  # any unicode, surrogates included
_HUGE_TEXT = st.integers(1000, 60_000).map(lambda n: "x" * n)
_UNICODE_TEXT = st.text(
    st.characters(min_codepoint=0x80, max_codepoint=0x10FFFF), min_size=1, max_size=50
)

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats()
    | _ANY_TEXT
)
_any_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)


def _field_value(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value: usually plausible, often the wrong type or hostile text."""
    return st.one_of(good, good, _json_leaf, _UNICODE_TEXT, _HUGE_TEXT, _any_json)


_service = st.sampled_from([*SERVICES, "nope", "", " web", "WEB", "web\x00"])
_color = st.sampled_from(["blue", "green", "red", "Blue", "", "blue "])
_fields: dict[str, st.SearchStrategy[Any]] = {
    "service": _field_value(_service),
    "color": _field_value(_color),
    "force": _field_value(st.booleans()),
    "reason": _field_value(st.sampled_from(["deploy 42", "oops", "x" * 201])),
}


@st.composite
def _field_object(draw: st.DrawFn) -> dict[str, Any]:
    """An object built from the endpoints' field names (some missing, some extra)."""
    keys = draw(st.lists(st.sampled_from(sorted(_fields)), unique=True, max_size=4))
    doc = {key: draw(_fields[key]) for key in keys}
    if draw(st.booleans()) and draw(st.booleans()):
        doc[draw(_ANY_TEXT)] = draw(_json_leaf)
    return doc


def _dumps(doc: Any) -> bytes:
    """ASCII JSON (NaN and Infinity included: Python's json reads them back)."""
    return json.dumps(doc).encode()


def _dumps_utf8(doc: Any) -> bytes:
    """Raw UTF-8 JSON; a lone surrogate becomes bytes that are not UTF-8 at all."""
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


_plausible = st.fixed_dictionaries(
    {"service": st.sampled_from(SERVICES)},
    optional={"color": st.sampled_from(["blue", "green"]), "force": st.booleans()},
)
_bodies: st.SearchStrategy[bytes | None] = st.one_of(
    st.none(),
    _plausible.map(_dumps),
    _plausible.map(_dumps),
    _field_object().map(_dumps),
    _field_object().map(_dumps),
    _field_object().map(_dumps_utf8),
    _any_json.map(_dumps),
    st.binary(max_size=300),
    _ANY_TEXT.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.integers(MAX_BODY + 1, 4 * MAX_BODY).map(lambda n: b'{"service": "' + b"w" * n + b'"}'),
    # Deep nesting: a recursive parser overflows its stack on this.
    st.integers(900, MAX_BODY // 2).map(lambda n: b"[" * n + b"]" * n),
    st.integers(500, MAX_BODY).map(lambda n: b'{"a":' * n),
    st.sampled_from([b"", b"null", b"{}", b"[]", b'""', b"0", b"{", b"\xff\xfe", b"NaN"]),
)
_content_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=xyz",
            "application/jsonx",
            "",
            ";",
        ]
    ),
    _HEADER_TEXT,
)
_wrong_authorization = st.one_of(
    st.just(f"bearer {TOKEN}"),
    st.just(f"Bearer  {TOKEN} "),
    st.just(f"Bearer {PROVIDER_TOKEN}"),
    st.just(TOKEN),
    st.just("Bearer"),
    st.just(f"Basic {TOKEN}"),
    _HEADER_TEXT.map(lambda s: f"Bearer {s}"),
    _HEADER_TEXT,
)
_query_part = st.one_of(
    _ANY_TEXT.map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")),
    st.sampled_from(["service", "color", "%zz", "%", "%E9", "%ff%fe", "=", "&", ";", "+", "%00"]),
    st.text(alphabet=string.ascii_letters + string.digits + "%=&;+-_.~!$'()*,", max_size=40),
)
_query = st.one_of(
    st.just(""),
    st.just(""),
    st.lists(st.tuples(_query_part, st.none() | _query_part), max_size=5).map(
        lambda pairs: "?" + "&".join(k if v is None else f"{k}={v}" for k, v in pairs)
    ),
    st.integers(1000, 6000).map(lambda n: "?service=" + "s" * n),
)
_methods = st.sampled_from(
    ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PROPFIND"]
)
_extra_headers = st.lists(
    st.tuples(st.sampled_from(["X-Forwarded-For", "Accept", "X-Junk", "Cookie"]), _HEADER_TEXT),
    max_size=2,
)
_path_param = st.one_of(
    _service.map(lambda s: quote(s, safe="")),
    _ANY_TEXT.map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")),
    _UNICODE_TEXT.map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")),
    st.sampled_from(["%zz", "..", "%2e%2e", "a%2Fb", "%00", "web%0d%0a", "web;x", "*"]),
    _HUGE_TEXT.map(lambda s: s[:3000]),
)


@st.composite
def hostile_requests(draw: st.DrawFn, route: str) -> HostileRequest:
    """A request aimed at ``route``: usually its own method, anything else too."""
    declared = ENDPOINTS[route]
    # Weighted by hand (hypothesis's one_of is not uniform): most requests get
    # past the method, auth and content-type guards so the body checks run too.
    method = declared if draw(st.integers(0, 99)) < 70 else draw(_methods)
    path = route.replace("{service}", draw(_path_param)).replace("{probe}", draw(_path_param))
    headers: list[tuple[str, str]] = []
    auth = draw(st.integers(0, 99))
    if auth < 60:
        right = PROVIDER_TOKEN if route == "/traefik" else TOKEN
        headers.append(("Authorization", f"Bearer {right}"))
    elif auth < 90:
        headers.append(("Authorization", draw(_wrong_authorization)))
    body = draw(_bodies)
    ctype = draw(st.integers(0, 99))
    if ctype < 60:
        headers.append(("Content-Type", "application/json"))
    elif ctype < 85:
        headers.append(("Content-Type", draw(_content_types)))
    headers += draw(_extra_headers)
    # Past 8 KiB aiohttp's parser refuses the request line before the app runs
    # (tested on its own in test_protocol_errors_are_4xx_without_traceback).
    target = (path + draw(_query))[:MAX_TARGET]
    return HostileRequest(method, route, target, tuple(headers), body)


@st.composite
def stray_requests(draw: st.DrawFn) -> HostileRequest:
    """Requests to paths the API does not have."""
    path = draw(
        st.one_of(
            st.sampled_from(["/ui", "//", "/switch/", "/status/", "/status/a/b", "/traefik.json"]),
            _ANY_TEXT.map(lambda s: "/" + quote(s.encode("utf-8", "surrogatepass"), safe="/")),
            st.sampled_from(["/%zz", "/../etc/passwd", "/%2e%2e/%2e%2e", "/\u00e9"]),
        )
    )
    if not path.isascii():
        path = quote(path, safe="/%")
    if path in ENDPOINTS or path in STREAMING:  # e.g. "/" + "": the status page
        path += "-stray"
    method = draw(_methods)
    return HostileRequest(method, "(stray)", (path + draw(_query))[:MAX_TARGET], (), draw(_bodies))


# -- an in-process server on its own thread ----------------------------------


class ThreadedApp:
    """Serve an aiohttp application on 127.0.0.1 from a background thread's event loop.

    Synchronous tests (hypothesis drives them) talk to it over real sockets;
    ``call`` runs a coroutine on the server's loop (e.g. to feed observations).
    """

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None)
        self._thread = threading.Thread(target=self.loop.run_forever, name="hostile-app")

    def __enter__(self) -> ThreadedApp:
        self.loop.run_until_complete(self._runner.setup())
        self.port = free_port()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self.loop.run_until_complete(site.start())
        self._thread.start()
        return self

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and wait for it (bounded)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.call(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


@contextlib.contextmanager
def synced_server(state_dir: Path) -> Iterator[ThreadedApp]:
    """A synced provider over :func:`observed`, served from a background thread."""
    app = build_app(hostile_settings(state_dir), watch_docker=False)
    with ThreadedApp(app) as running:
        controller = app[CONTROLLER]
        running.call(controller.replace_containers(observed()))
        running.call(controller.mark_synced())
        yield running
