"""Hostile labels: the pure core never crashes and one bad service never touches another.

Hypothesis builds containers with random label sets (any strings, huge and
unicode values, rules with backticks and quotes, ports out of range, the same
service and color with disagreeing labels) next to one known-good service. The
core must group, render and serialize them without raising, render the good
service exactly as it would alone, and never let two services' Traefik names
collide. A sample of the rendered configs is then served to the real Traefik
binary through its HTTP provider: it must load every one, route the good
service's traffic to its backend on 127.0.0.1, and log no configuration error.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.model import Container, Health
from provider.render import render, serialize
from provider.routing import Observation, Options, ServiceView, observe
from tests.infra.ports import free_port
from tests.infra.traefik import TraefikFactory

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
    labels = {f"{P}.service": GOOD, f"{P}.port": str(port), f"{P}.rule": f"Host(`{host}`)"}
    return [
        Container(
            id=f"{0xFFFF0000 + n:064x}",
            name=f"good-{color}",
            state="running",
            health=Health.HEALTHY,
            labels={**labels, f"{P}.color": color},
            created=float(n),
            network_mode="host",
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
    from provider.model import Color

    return render(views, dict.fromkeys(views, Color.BLUE), OPTIONS)


# -- the pure core ------------------------------------------------------------


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
    def do_GET(self) -> None:
        body = b"good\n"
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
