"""Hostile labels: the pure core never crashes and one bad service never touches another.

Hypothesis builds containers with random label sets (any strings, huge and
unicode values, rules with backticks and quotes, ports out of range, the same
service and color with disagreeing labels) next to one known-good service. The
core must group, render and serialize them without raising, render the good
service exactly as it would alone, and never let two services' Traefik names
collide. A sample of the rendered configs is then served to the real Traefik
binary through its HTTP provider: it must load every one, route the good
service's traffic to its backend on 127.0.0.1, and log no configuration error.

Router rules get their own generator (the last section): every generated rule
the label parser accepts is served to the real Traefik, whose routing must be
exactly what the parsed rule says.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.core.labels import LabelDefaults, LabelProblem, parse
from provider.core.model import Container, Health
from provider.core.render import render, serialize
from provider.core.routing import Observation, Options, ServiceView, observe
from provider.core.rule_syntax import (
    MAX_RULE,
    And,
    Expr,
    Matcher,
    Not,
    Or,
    parse_rule,
    rule_problem,
)
from tests.factories import make_container
from tests.testbed.ports import free_port, free_ports
from tests.testbed.traefik import TraefikFactory, http_get

P = "bluegreen"
OPTIONS = Options()
GOOD = "good"

# -- strategies ---------------------------------------------------------------

_text = st.text(max_size=80)
_huge = st.integers(300, 20_000).map(lambda n: "9" * n)
_unicode = st.text(st.characters(min_codepoint=0x80), min_size=1, max_size=20)
_hostile = st.one_of(_text, _huge, _unicode, st.just(""), st.just(" "))
_names = st.sampled_from(["svc", "svc2", "a", "x-y", "good-preview", "Svc", "s_1"])


def _label(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(values, values, _hostile)


_host_rule = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True).map(
    lambda h: f"Host(`{h}.invalid`)"
)
_rule = st.one_of(
    _host_rule,
    st.tuples(_host_rule, _host_rule).map(lambda r: f"{r[0]} || {r[1]}"),
    st.tuples(_host_rule, _text).map(lambda r: f"{r[0]} && PathPrefix(`/{r[1]}`)"),
    st.sampled_from(
        [
            "Host(`a.invalid`",
            "Host(`a.invalid`))",
            'Host("a.invalid")',
            "Host('a.invalid')",
            "Host(`a.invalid`) && (",
            "Host(`a.invalid`) && Header(`X`, `)`)",
            'Host(`a.invalid`) && Header(`X`, `"`)',
            "HostRegexp(`^[a-z]+\\.invalid$`)",
            "Host(`a.invalid`) &&& Bogus(`x`)",
            "Host(`a.invalid`) || Host(`b.invalid`) && !Path(`/x`)",
            "Host(`a.invalid`)\n",
            "``",
            ")(",
            "Host(`\u00e9.invalid`)",
        ]
    ),
    _text.map(lambda t: f"Host(`{t}`)"),
)
_port = st.one_of(
    st.integers(-5, 70_000).map(str),
    st.sampled_from(["0", "65535", "65536", "080", " 80 ", "1e3", "\u0663", "８０", "-1", "+80"]),
)
_list = st.one_of(
    st.sampled_from(["web", "web,websecure", "web,,", ",", "web@file", "a b", "auth@file"]),
    st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,8}", fullmatch=True), max_size=3).map(
        ",".join
    ),
)
_label_values: dict[str, st.SearchStrategy[str]] = {
    "service": _names,
    "color": st.sampled_from(["blue", "green", "Blue", " green ", "red", "BLUE"]),
    "port": _port,
    "rule": _rule,
    "entrypoints": _list,
    "middlewares": _list,
    "tls": st.sampled_from(["true", "false", "yes", "no", "1", "", "maybe"]),
    "tls.certresolver": st.sampled_from(["le", "le@x", "", "a b"]),
    "network": st.sampled_from(["app", "other", ""]),
    "replicas": st.one_of(st.integers(-3, 2000).map(str), st.sampled_from(["", "1.5", "two"])),
    "promote": st.sampled_from(["auto", "manual", "Manual", "never", ""]),
}


@st.composite
def hostile_container(draw: st.DrawFn, index: int) -> Container:
    """A container whose labels are any mix of valid, missing, wrong and extra values."""
    keys = draw(st.lists(st.sampled_from(sorted(_label_values)), unique=True, max_size=11))
    # Half the containers only use plausible values, so other services often render too.
    plausible = draw(st.booleans())
    for required in ("service", "color", "port") if plausible else ("service", "color"):
        if required not in keys and (plausible or draw(st.integers(0, 9)) > 0):
            keys.append(required)
    labels = {
        f"{P}.{key}": draw(_label_values[key] if plausible else _label(_label_values[key]))
        for key in keys
    }
    if plausible:
        labels[f"{P}.port"] = str(draw(st.integers(1024, 65535)))
    if draw(st.booleans()):
        labels[f"{P}.{draw(_text)}"] = draw(_hostile)
    # The good service is never claimed here: what it renders must not depend on the rest.
    if labels.get(f"{P}.service") == GOOD:
        labels[f"{P}.service"] = "not-good"
    host = draw(st.integers(0, 3)) > 0
    networks = {} if host else draw(st.dictionaries(st.sampled_from(["app", "other"]), _ips))
    return Container(
        id=f"{index:064x}",
        name=f"hostile-{index}",
        state=draw(st.sampled_from(["running", "running", "exited", "created", "paused"])),
        health=draw(st.sampled_from(list(Health))),
        labels=labels,
        created=draw(st.floats(0, 2e9, allow_nan=False)),
        networks=networks,
        network_mode="host" if host else draw(st.sampled_from(["bridge", "default"])),
        exposed_ports=tuple(draw(st.lists(st.integers(0, 70_000), max_size=2))),
    )


# Loopback only: these addresses may reach a real Traefik's config.
_ips = st.one_of(st.just(""), st.integers(2, 254).map(lambda n: f"127.0.0.{n}"), st.just("::1"))


def good_containers(port: int, host: str = "good.test") -> list[Container]:
    return [
        make_container(
            GOOD,
            color,
            port=port,
            cid=f"{0xFFFF0000 + n:064x}",
            name=f"good-{color}",
            extra={f"{P}.rule": f"Host(`{host}`)"},
            created=float(n),
            prefix=P,
        )
        for n, color in enumerate(("blue", "green"))
    ]


scenarios = (
    st.integers(0, 12)
    .flatmap(lambda n: st.tuples(*(hostile_container(i) for i in range(n))))
    .map(list)
)


def clean_views(observation: Observation) -> dict[str, ServiceView]:
    """What the controller renders for a fresh start: services without label errors."""
    return {name: view for name, view in observation.services.items() if not view.errors}


def rendered(views: dict[str, ServiceView]) -> dict[str, Any]:
    from provider.core.model import Color

    return render(views, dict.fromkeys(views, Color.BLUE), OPTIONS)


# -- the pure core ------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(hostile=scenarios)
def test_core_survives_hostile_labels(hostile: list[Container]) -> None:
    """Grouping, rendering and serializing any label set never raises, and is byte-stable."""
    good = good_containers(8080)
    observation = observe([*hostile, *good], OPTIONS)
    for view in observation.services.values():
        assert all(isinstance(e, str) and e for e in view.errors)
    body = serialize(rendered(clean_views(observation)))
    json.loads(body)
    assert body.isascii()  # Traefik reads it as YAML: no raw character may trip that
    # Every view renders, even one with errors (the controller may hand it a last good one).
    serialize(rendered(dict(observation.services)))
    shuffled = list(reversed([*hostile, *good]))
    assert body == serialize(rendered(clean_views(observe(shuffled, OPTIONS))))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(hostile=scenarios)
def test_bad_services_never_affect_the_good_one(hostile: list[Container]) -> None:
    """The good service renders exactly as alone; no two services share a Traefik name."""
    alone = rendered(clean_views(observe(good_containers(8080), OPTIONS)))
    views = clean_views(observe([*hostile, *good_containers(8080)], OPTIONS))
    assert GOOD in views and not views[GOOD].errors
    together = rendered(views)
    for kind in ("routers", "services"):
        mine = alone["http"][kind]
        assert mine == {k: together["http"][kind][k] for k in mine}
        per_service = [
            rendered({name: view}).get("http", {}).get(kind, {}) for name, view in views.items()
        ]
        assert sum(len(names) for names in per_service) == len(together["http"][kind])


def test_huge_numbers_in_labels_are_label_errors() -> None:
    """Digits past Python's int limit are a label error for that service, not a crash."""
    huge = "9" * 5000
    containers = [
        replace(c, labels={**c.labels, f"{P}.service": "svc", f"{P}.{key}": huge})
        for key, c in zip(("port", "replicas"), good_containers(8080), strict=True)
    ]
    observation = observe([*containers, *good_containers(8080)], OPTIONS)
    assert 2 == len(observation.services["svc"].errors)
    assert () == observation.services[GOOD].errors


@pytest.mark.parametrize("char", ["\x85", "\ufeff", "\u2028", "\ud800", "\x00", "\x1b"])
def test_unprintable_rule_is_a_label_error(char: str) -> None:
    """A rule Traefik's YAML decoder would choke on is refused for its own service only."""
    bad = [
        replace(c, labels={**c.labels, f"{P}.service": "svc", f"{P}.rule": f"Host(`a{char}`)"})
        for c in good_containers(8080)
    ]
    observation = observe([*bad, *good_containers(8080)], OPTIONS)
    assert "non-printable" in observation.services["svc"].errors[0]
    assert () == observation.services[GOOD].errors


# -- the real Traefik -----------------------------------------------------------

TRAEFIK_SAMPLES = 25


class _Backend(BaseHTTPRequestHandler):
    """Answers every GET with :meth:`body`; logs nothing."""

    def body(self) -> bytes:
        return b"good\n"

    def do_GET(self) -> None:
        body = self.body()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ConfigServer(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        body = type(self).body
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_servers() -> Iterator[tuple[ThreadingHTTPServer, ThreadingHTTPServer]]:
    """A backend answering ``good`` and a config endpoint, both on 127.0.0.1."""
    config_handler = type("ConfigHandler", (_ConfigServer,), {"body": b"{}"})
    servers = (
        ThreadingHTTPServer(("127.0.0.1", free_port()), _Backend),
        ThreadingHTTPServer(("127.0.0.1", free_port()), config_handler),
    )
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(5)


def sample_configs(backend_port: int) -> list[tuple[str, bytes]]:
    """``TRAEFIK_SAMPLES`` rendered configs, each with its own host for the good service."""
    drawn: list[list[Container]] = []

    @settings(
        max_examples=TRAEFIK_SAMPLES * 4,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(hostile=scenarios)
    def collect(hostile: list[Container]) -> None:
        drawn.append(hostile)

    collect()
    # Keep the richest scenarios: those that put the most other services in the config.
    rng = random.Random(6)
    chosen = sorted(drawn, key=len, reverse=True)[: TRAEFIK_SAMPLES * 2]
    rng.shuffle(chosen)
    out: list[tuple[str, bytes]] = []
    for i, hostile in enumerate(chosen[:TRAEFIK_SAMPLES]):
        host = f"good-{i}.test"
        views = clean_views(observe([*hostile, *good_containers(backend_port, host)], OPTIONS))
        out.append((host, serialize(rendered(views))))
    return out


#: What Traefik says when it cannot use a fetched configuration as a whole.
_CONFIG_ERROR = re.compile(r"decode|unmarshal|json|cannot parse|invalid character", re.IGNORECASE)


def test_traefik_accepts_rendered_hostile_configs(
    traefik_factory: TraefikFactory,
    http_servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer],
) -> None:
    """Real Traefik loads each sampled config, routes the good service, logs no config error."""
    backend, config = http_servers
    samples = sample_configs(backend.server_address[1])
    handler: Any = config.RequestHandlerClass
    handler.body = samples[0][1]
    traefik = traefik_factory.start(
        http_endpoint=f"http://127.0.0.1:{config.server_address[1]}/traefik",
        poll_interval="100ms",
        throttle="50ms",
        log_level="INFO",
        access_log=False,
        extra_args=["--log.format=json"],
    )
    with_others = 0
    for host, body in samples:
        handler.body = body
        doc = json.loads(body)
        with_others += len(doc["http"]["routers"]) > 3  # good's main and two previews
        router = traefik.wait_router(f"{GOOD}@http", timeout=15)
        traefik.wait_for(
            f"router good@http with Host(`{host}`)",
            lambda host=host: host in (traefik.router(f"{GOOD}@http") or {}).get("rule", ""),
            15,
        )
        router = traefik.router(f"{GOOD}@http") or {}
        assert "enabled" == router.get("status"), router
        answer = traefik.wait_response(host=host, body="good\n", timeout=10)
        assert 200 == answer.status
        preview = traefik.request(host=host, headers={"X-Bluegreen-Color": "green"})
        assert (200, "good\n") == (preview.status, preview.body)
    logged = [json.loads(line) for line in traefik.log_text().splitlines() if line.startswith("{")]
    config_errors = [
        entry
        for entry in logged
        if entry.get("level") == "error"
        and _CONFIG_ERROR.search(f"{entry.get('message')} {entry.get('error')}")
        and not {"routerName", "serviceName", "middlewareName", "entryPointName"} & set(entry)
    ]
    assert [] == config_errors
    # The bad routers were refused one by one, as Traefik does with a rule it cannot parse.
    assert any("routerName" in entry for entry in logged if entry.get("level") == "error")
    assert with_others >= TRAEFIK_SAMPLES // 3, "the samples should carry other services too"


# -- hostile rules: the parser against the real Traefik -------------------------
#
# Rules are built from matcher calls whose arguments are spelled with every kind
# of Go string literal (raw, escaped quotes, \x, \ooo, \u, \U), combined with
# &&, || and ! under random parentheses and spacing, then mutated with comments,
# stray quotes, backslashes, parentheses, operators and unknown matchers. The
# parser must read each unmutated rule exactly as built; every rule it accepts
# (mutated or not) is served to the real Traefik on its own entrypoint next to a
# victim service ``shop``, and each probe request must reach exactly the router
# that the parsed rule and Traefik's priorities say.


#: Per matcher, argument lists Traefik accepts and ones it refuses (or that we refuse).
_ARGS: dict[str, tuple[list[tuple[str, ...]], list[tuple[str, ...]]]] = {
    "Host": (
        [
            *[("shop",), ("SHOP",), ("evil.test",), ("*",), ("*.test",), ('x"y',), ("a`b",)],
            *[("\\",), ("/*",), (")",), ("a b",), ("shop.",)],
        ],
        [("\u00e9",), ("",), ("a", "b"), ()],
    ),
    "HostRegexp": (
        [("^shop$",), ("^e.il\\.test$",), ("shop|evil",), ("(?i)^SHOP$",), ("x*",)],
        [("^(a)\\1$",), ("[[:alpha:]]",), ("(",), ("a{2000}",), ("(?=a)",), ("\\z",)],
    ),
    "Path": ([("/",), ("/api",), ("/api/index.html",), ('/x"y',), ("/*/",)], [("api",)]),
    "PathPrefix": ([("/",), ("/api",), ("/ap",), ("/index",), ("/)",)], [("api",), ("",)]),
    "PathRegexp": ([("^/api",), ("index\\.html$",), ("^/$",)], [("(?<=a)",), ("a**",)]),
    "Header": (
        [
            *[("X-Test", "a"), ("x-test", "a"), ("X-Bluegreen-Color", "green")],
            *[("Host", "shop"), ("X-Test", 'b"c')],
        ],
        [("X-Test",), ("X-Test", "")],
    ),
    "HeaderRegexp": ([("X-Test", "^a$"), ("x-bluegreen-color", "gr.en"), ("X-Test", "x*")], []),
    "Method": ([("GET",), ("get",), ("POST",)], [("GET", "POST")]),
    "ClientIP": (
        [("127.0.0.1",), ("127.0.0.0/8",), ("10.0.0.0/8",), ("::1",)],
        [("300.1.1.1",), ("127.0.0.1%lo",), ("10.0.0.0/255.0.0.0",)],
    ),
    "Query": ([("a",), ("a", "b")], [("a", "b", "c")]),
    "QueryRegexp": ([("a",), ("a", "^b$")], [("a", "(")]),
}
_UNKNOWN = ["Bogus", "HostRegExp", "Hosts", "PathPrefixx", "Header_", "and", "true"]
_SPACE = st.sampled_from(["", " ", "  "])


@st.composite
def _literal(draw: st.DrawFn, value: str) -> str:
    """``value`` as a Go string literal, spelled in any way Go reads back as ``value``."""
    if "`" not in value and draw(st.booleans()):
        return f"`{value}`"
    out = []
    for ch in value:
        forms = [f"\\u{ord(ch):04x}", f"\\U{ord(ch):08x}"]
        if ord(ch) < 0x80:
            forms += [f"\\x{ord(ch):02x}", f"\\{ord(ch):03o}"]
        forms.append({"\\": "\\\\", '"': '\\"'}.get(ch, ch))
        out.append(draw(st.sampled_from(forms)))
    return '"' + "".join(out) + '"'


#: A built rule: its text, its tree if it is meant to be valid, and its top operator.
Built = tuple[str, Expr | None, str]


@st.composite
def _call(draw: st.DrawFn) -> Built:
    name = draw(st.sampled_from(sorted(_ARGS)))
    valid, invalid = _ARGS[name]
    ok = not invalid or draw(st.integers(0, 5)) > 0
    args = draw(st.sampled_from(valid if ok else invalid))
    spelling = draw(st.sampled_from([name, name, name.lower(), name.upper()]))
    if draw(st.integers(0, 15)) == 0:
        spelling, ok = draw(st.sampled_from(_UNKNOWN)), False
    sep = "," + draw(_SPACE)
    text = f"{spelling}{draw(_SPACE)}({sep.join(draw(_literal(a)) for a in args)})"
    return text, Matcher(name, args) if ok else None, "call"


def _operand(built: Built, looser: tuple[str, ...]) -> str:
    """The operand's text, parenthesized where Go's precedence would regroup it."""
    return f"({built[0]})" if built[2] in looser else built[0]


def _combine(inner: st.SearchStrategy[Built]) -> st.SearchStrategy[Built]:
    def binary(pair: tuple[Built, Built, str, str]) -> Built:
        left, right, op, space = pair
        tree: Expr | None = None
        if left[1] is not None and right[1] is not None:
            tree = And(left[1], right[1]) if op == "&&" else Or(left[1], right[1])
        if op == "&&":
            text = f"{_operand(left, ('or',))}{space}&&{space}{_operand(right, ('or', 'and'))}"
            return text, tree, "and"
        return f"{left[0]}{space}||{space}{_operand(right, ('or',))}", tree, "or"

    def paren(built: Built) -> Built:
        return f"({built[0]})", built[1], "call"

    def negate(built: Built) -> Built:
        tree = None if built[1] is None else Not(built[1])
        return f"!{_operand(built, ('or', 'and'))}", tree, "not"

    return st.one_of(
        st.tuples(inner, inner, st.sampled_from(["&&", "||"]), _SPACE).map(binary),
        inner.map(paren),
        inner.map(negate),
    )


_built_rule = st.recursive(_call(), _combine, max_leaves=5)
_HOSTILE_BITS = [
    "/*", "*/", "//", '"', "`", "'", "\\", '\\"', "(", ")", "||", "&&", "!", ",", " ",
    "Bogus(`x`)", "PathPrefix(`/`)", ") || PathPrefix(`/`) || (", "\\'", "\\x", "\\u12",
]  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few hostile insertions and deletions at random places."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(_HOSTILE_BITS)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 3)) :]
    return text


@pytest.mark.slow
@settings(max_examples=800, deadline=None, derandomize=True, database=None)
@given(built=_built_rule, data=st.data())
def test_parser_reads_generated_rules_exactly(built: Built, data: st.DataObject) -> None:
    """A built rule parses to the tree it was built from (whatever the string spelling), a
    rule built to be invalid is refused, and any mutation is either refused with a position
    or still means the same thing once wrapped for a preview router."""
    text, tree, _ = built
    if tree is None or len(text) > MAX_RULE:
        assert rule_problem(text) is not None
    else:
        assert tree == parse_rule(text)
    mutated = data.draw(_mutated(text))
    problem = rule_problem(mutated)
    if problem is None:
        wrapped = f"({mutated}) && Header(`X-Bluegreen-Color`, `blue`)"
        header = Matcher("Header", ("X-Bluegreen-Color", "blue"))
        assert And(parse_rule(mutated), header) == parse_rule(wrapped)
    else:
        assert "at position" in problem or "empty" in problem


@dataclass(frozen=True)
class Probe:
    """One request sent through an entrypoint: from 127.0.0.1, method GET, no query."""

    host: str
    path: str
    headers: tuple[tuple[str, str], ...]


_PROBES = [
    Probe(host, path, headers)
    for host in ("shop", "evil.test", "other.test")
    for path in ("/", "/api/index.html")
    for headers in (
        (),
        (("X-Bluegreen-Color", "blue"),),
        (("X-Bluegreen-Color", "green"),),
        (("X-Test", "a"),),
    )
]
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _canonical_header(key: str) -> str:
    """Go's ``http.CanonicalHeaderKey``: left alone if any byte is not a token character."""
    if not key or not set(key) <= _TOKEN_CHARS:
        return key
    out, upper = [], True
    for ch in key:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


def _domain_matches(domain: str, expr: str) -> bool:
    """Traefik's ``muxer.DomainMatchHostExpression``."""
    if expr.startswith("*"):
        labels = domain.split(".")
        labels[0] = "*"
        return ".".join(labels).lower() == expr.lower()
    return domain.lower() == expr.lower()


def _matches(expr: Expr, probe: Probe) -> bool:
    """What Traefik v3.7's matchers (``pkg/muxer/http/matcher.go``) say about ``probe``."""
    if isinstance(expr, And):
        return _matches(expr.left, probe) and _matches(expr.right, probe)
    if isinstance(expr, Or):
        return _matches(expr.left, probe) or _matches(expr.right, probe)
    if isinstance(expr, Not):
        return not _matches(expr.operand, probe)
    name, args = expr.name, expr.args
    headers: dict[str, list[str]] = {}
    for key, value in probe.headers:
        headers.setdefault(_canonical_header(key), []).append(value)
    if name == "Host":
        host = args[0].lower()
        return (
            host == "*"
            or _domain_matches(probe.host, host)
            or (host.endswith(".") and _domain_matches(probe.host, host[:-1]))
        )
    if name == "HostRegexp":  # also tried on the (empty) CNAME-flattened host
        return bool(re.search(args[0], probe.host) or re.search(args[0], ""))
    if name == "Path":
        return probe.path == args[0]
    if name == "PathPrefix":
        return probe.path.startswith(args[0])
    if name == "PathRegexp":
        return bool(re.search(args[0], probe.path))
    if name == "Header":  # Go keeps Host out of req.Header
        return args[1] in headers.get(_canonical_header(args[0]), [])
    if name == "HeaderRegexp":
        values = headers.get(_canonical_header(args[0]), [])
        return any(re.search(args[1], value) for value in values)
    if name == "Method":
        return args[0].upper() == "GET"
    if name == "ClientIP":
        client = ipaddress.ip_address("127.0.0.1")
        return client in ipaddress.ip_network(args[0], strict=False)
    assert name in ("Query", "QueryRegexp"), name
    return False  # probes carry no query string


def _expected_backends(config: dict[str, Any], entrypoint: str, probe: Probe) -> set[str]:
    """Every backend the highest-priority matching router on ``entrypoint`` may reach (a tie
    allows each tied one); ``{"404"}`` if none matches. Priority: the router's own, else
    Traefik's default, the length of its rule."""
    routers = config["http"]["routers"]
    services = config["http"]["services"]
    best: dict[str, int] = {}
    for router in routers.values():
        if router["entryPoints"] != [entrypoint] or not _matches(parse_rule(router["rule"]), probe):
            continue
        service = services[router["service"]]
        if "weighted" in service:
            service = services[service["weighted"]["services"][0]["name"]]
        url = service["loadBalancer"]["servers"][0]["url"]
        best[url] = max(best.get(url, 0), router.get("priority") or len(router["rule"]))
    if not best:
        return {"404"}
    top = max(best.values())
    return {url for url, priority in best.items() if priority == top}


def _label_accepts(rule: str) -> bool:
    """Whether the product's label parser takes ``rule`` (what decides what is served)."""
    container = _rule_container("svc", "blue", 8080, {f"{P}.rule": rule})
    return not isinstance(parse(container, LabelDefaults()), LabelProblem)


def _rule_cases() -> tuple[list[str], list[str]]:
    """Accepted rules as built, and accepted rules that survived a hostile mutation."""
    built_rules: list[str] = []
    mutated_rules: list[str] = []

    @settings(
        max_examples=1200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(built=_built_rule, data=st.data())
    def collect(built: Built, data: st.DataObject) -> None:
        if built[1] is not None and _label_accepts(built[0]):
            built_rules.append(built[0])
        mutated = data.draw(_mutated(built[0]))
        if mutated != built[0] and _label_accepts(mutated):
            mutated_rules.append(mutated)

    collect()
    rng = random.Random(9)  # a fixed sample, spread over small and large rules
    built, mutated = list(dict.fromkeys(built_rules)), list(dict.fromkeys(mutated_rules))
    return (
        rng.sample(built, min(len(built), RULES_PER_TRAEFIK)),
        rng.sample(mutated, min(len(mutated), RULES_PER_TRAEFIK)),
    )


class _NamedBackend(_Backend):
    """Answers with its own port, so a test sees which backend Traefik chose."""

    def body(self) -> bytes:
        return f"{self.server.server_port}\n".encode()


RULES_PER_TRAEFIK = 40


def test_real_traefik_routes_accepted_hostile_rules_as_parsed(
    traefik_factory: TraefikFactory,
    http_servers: tuple[ThreadingHTTPServer, ThreadingHTTPServer],
) -> None:
    """Every generated rule the checker accepts is served to the real Traefik on its own
    entrypoint, as service ``evil`` (blue active, green in preview) next to ``shop``: all
    routers are enabled and every probe reaches exactly the router the parsed rules and
    Traefik's priorities choose, so ``Host: shop`` reaches evil only if evil's rule says so."""
    built_rules, mutated_rules = _rule_cases()
    assert len(built_rules) >= RULES_PER_TRAEFIK and len(mutated_rules) >= RULES_PER_TRAEFIK // 2
    _, config_server = http_servers
    handler: Any = config_server.RequestHandlerClass
    backends = [ThreadingHTTPServer(("127.0.0.1", free_port()), _NamedBackend) for _ in range(3)]
    threads = [threading.Thread(target=b.serve_forever, daemon=True) for b in backends]
    for thread in threads:
        thread.start()
    evil_blue, evil_green, shop = (b.server_address[1] for b in backends)
    mismatches: list[tuple[str, Probe, set[str], str]] = []
    probed = 0
    try:
        for batch in (built_rules, mutated_rules):
            ports = free_ports(len(batch))
            containers: list[Container] = []
            for i, rule in enumerate(batch):
                where = {f"{P}.entrypoints": f"e{i}"}
                containers += [
                    _rule_container(f"evil{i}", "blue", evil_blue, {**where, f"{P}.rule": rule}),
                    _rule_container(f"evil{i}", "green", evil_green, {**where, f"{P}.rule": rule}),
                    _rule_container(
                        f"shop{i}", "blue", shop, {**where, f"{P}.rule": "Host(`shop`)"}
                    ),
                ]
            views = observe(containers, OPTIONS).services
            assert {} == {name: view.errors for name, view in views.items() if view.errors}
            config = rendered(dict(views))
            handler.body = serialize(config)
            traefik = traefik_factory.start(
                http_endpoint=f"http://127.0.0.1:{config_server.server_address[1]}/traefik",
                poll_interval="100ms",
                throttle="50ms",
                log_level="INFO",
                access_log=False,
                extra_args=[
                    f"--entryPoints.e{i}.address=127.0.0.1:{p}" for i, p in enumerate(ports)
                ],
            )
            names = {f"{name}@http" for name in config["http"]["routers"]}
            traefik.wait_for(
                f"{len(names)} routers",
                lambda names=names, traefik=traefik: (
                    names <= {r["name"] for r in traefik.api("http/routers?per_page=1000")}
                ),
                20,
            )
            applied = traefik.api("http/routers?per_page=1000")  # the API pages by 100
            statuses = {r["name"]: (r["status"], r.get("error")) for r in applied}
            assert {} == {n: s for n, s in statuses.items() if n in names and s[0] != "enabled"}
            for i, (rule, port) in enumerate(zip(batch, ports, strict=True)):
                for probe in _PROBES:
                    expected = {
                        "404" if url == "404" else url.rsplit(":", 1)[1]
                        for url in _expected_backends(config, f"e{i}", probe)
                    }
                    answer = http_get(
                        port, probe.path, host=probe.host, headers=dict(probe.headers)
                    )
                    got = "404" if answer.status == 404 else answer.body.strip()
                    probed += 1
                    if got not in expected:
                        mismatches.append((rule, probe, expected, got))
            traefik.stop()
    finally:
        for backend in backends:
            backend.shutdown()
            backend.server_close()
        for thread in threads:
            thread.join(5)
    assert [] == mismatches
    assert probed == len(_PROBES) * (len(built_rules) + len(mutated_rules))


def _rule_container(service: str, color: str, port: int, labels: dict[str, str]) -> Container:
    """A host-network container of ``service`` listening on 127.0.0.1:``port``."""
    return make_container(
        service,
        color,
        port=port,
        cid=f"{abs(hash((service, color))):064x}"[-64:],
        name=f"{service}-{color}",
        extra=labels,
        created=1.0 if color == "blue" else 2.0,
        prefix=P,
    )
