"""Render (provider/core/render.py): the Traefik config built from views and active colors,
byte-stable, with preview routers and their priorities."""

from __future__ import annotations

import json

from provider.core.model import Color, Container, Health
from provider.core.render import PREVIEW_PRIORITY_BASE, render, serialize
from provider.core.routing import Options, observe
from tests.factories import make_container

OPTIONS = Options()


def _config(containers: list[Container], active: Color = Color.BLUE) -> dict[str, object]:
    views = observe(containers, OPTIONS).services
    return render(views, {name: active for name in views}, OPTIONS)


def test_render_blue_active_shape() -> None:
    """The documented shape: main router, weighted service, color LBs, preview routers."""
    config = _config(
        [
            make_container("web", "blue", port=8081),
            make_container("web", "blue", port=8082),
            make_container("web", "green", port=8083, health=Health.STARTING),
        ]
    )
    assert config == {
        "http": {
            "routers": {
                "web": {"rule": "Host(`web`)", "service": "web", "entryPoints": ["web"]},
                "web-preview-blue": {
                    "rule": "(Host(`web`)) && Header(`X-Bluegreen-Color`, `blue`)",
                    "service": "web-blue",
                    "entryPoints": ["web"],
                    "priority": 1_000_011,  # base + len("Host(`web`)")
                },
                "web-preview-green": {
                    "rule": "(Host(`web`)) && Header(`X-Bluegreen-Color`, `green`)",
                    "service": "web-green",
                    "entryPoints": ["web"],
                    "priority": 1_000_011,  # base + len("Host(`web`)")
                },
            },
            "services": {
                "web": {"weighted": {"services": [{"name": "web-blue", "weight": 1}]}},
                "web-blue": {
                    "loadBalancer": {
                        "servers": [
                            {"url": "http://127.0.0.1:8081"},
                            {"url": "http://127.0.0.1:8082"},
                        ],
                        "serversTransport": "bluegreen",
                    }
                },
                "web-green": {"loadBalancer": {"servers": [], "serversTransport": "bluegreen"}},
            },
            "serversTransports": {
                "bluegreen": {"forwardingTimeouts": {"idleConnTimeout": "1s"}},
            },
        }
    }


def test_render_without_an_idle_timeout_leaves_traefiks_default_transport() -> None:
    """``idle_conn_timeout=""``: no serversTransport, the color services as before."""
    options = Options(idle_conn_timeout="")
    views = observe([make_container("web", "blue", port=8081)], options).services
    http = render(views, {"web": Color.BLUE}, options)["http"]
    assert "serversTransports" not in http
    assert {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:8081"}]}} == (
        http["services"]["web-blue"]
    )


def test_render_tls_and_middlewares_come_from_active_color() -> None:
    """The main router takes rule, middlewares and TLS from the active color only."""
    blue = make_container("web", "blue", extra={"bluegreen.rule": "Host(`old`)"})
    green = make_container(
        "web",
        "green",
        extra={
            "bluegreen.rule": "Host(`new`)",
            "bluegreen.middlewares": "auth@file",
            "bluegreen.tls": "true",
        },
    )
    routers = _config([blue, green], Color.GREEN)["http"]["routers"]  # type: ignore[index]
    assert routers["web"] == {
        "rule": "Host(`new`)",
        "service": "web",
        "entryPoints": ["web"],
        "middlewares": ["auth@file"],
        "tls": {},
    }
    assert (
        routers["web-preview-blue"]["rule"]
        == "(Host(`old`)) && Header(`X-Bluegreen-Color`, `blue`)"
    )


def test_render_active_color_without_containers_keeps_router() -> None:
    """If the active color has no routable container the router stays (503, not 404)."""
    config = _config([make_container("web", "green")], Color.BLUE)
    http = config["http"]
    assert "web" in http["routers"]  # type: ignore[index,operator]
    expected = {"loadBalancer": {"servers": [], "serversTransport": "bluegreen"}}
    assert expected == http["services"]["web-blue"]  # type: ignore[index]


def test_render_is_byte_stable_whatever_the_input_order() -> None:
    """Same observations in any order give the same bytes (Traefik hashes the body)."""
    containers = [
        make_container(s, c, port=p)
        for s, c, p in [("b", "blue", 1), ("a", "green", 2), ("a", "blue", 3), ("b", "blue", 4)]
    ]
    one = serialize(_config(containers))
    two = serialize(_config(list(reversed(containers))))
    assert one == two
    assert json.loads(one) == _config(containers)
    assert one.index(b'"http"') < one.index(b'"routers"') < one.index(b'"services"')


def test_render_nothing_observed_is_empty() -> None:
    """No containers: an empty config (only ever served after the first sync)."""
    assert _config([]) == {}


def test_serialize_sorts_keys_at_every_level() -> None:
    """The body's bytes do not depend on dict insertion order, at any depth: keys are sorted."""
    config = {
        "http": {
            "services": {"b": {"z": 1, "a": [{"y": 2, "x": 3}]}, "a": {}},
            "routers": {"z-router": {"service": "z", "rule": "Host(`z`)"}},
        }
    }
    expected = (
        b'{"http":{"routers":{"z-router":{"rule":"Host(`z`)","service":"z"}},'
        b'"services":{"a":{},"b":{"a":[{"x":3,"y":2}],"z":1}}}}'
    )
    assert expected == serialize(config)


def test_preview_priority_is_base_plus_rule_length() -> None:
    """Preview routers keep Traefik's order among themselves (longer rule first) and all
    stay above every main router, whose default priority is at most the longest rule."""
    api = make_container(
        "api", "blue", extra={"bluegreen.rule": "Host(`shop`) && PathPrefix(`/api`)"}
    )
    shop = make_container("shop", "blue", extra={"bluegreen.rule": "Host(`shop`)"})
    routers = _config([api, shop])["http"]["routers"]  # type: ignore[index]
    api_priority = routers["api-preview-blue"]["priority"]
    shop_priority = routers["shop-preview-blue"]["priority"]
    assert PREVIEW_PRIORITY_BASE + len("Host(`shop`) && PathPrefix(`/api`)") == api_priority
    assert PREVIEW_PRIORITY_BASE + len("Host(`shop`)") == shop_priority
    assert PREVIEW_PRIORITY_BASE > 2048  # labels refuse longer rules (rule_syntax.MAX_RULE)
    assert "priority" not in routers["api"]  # main routers keep Traefik's default


def test_render_certresolver_goes_to_router_tls() -> None:
    """``bluegreen.tls.certresolver`` becomes the routers' ``tls.certResolver``."""
    config = _config([make_container(extra={"bluegreen.tls.certresolver": "le"})])
    routers = config["http"]["routers"]  # type: ignore[index]
    assert {"certResolver": "le"} == routers["web"]["tls"]
    assert {"certResolver": "le"} == routers["web-preview-blue"]["tls"]


def test_render_green_active_with_no_blue_containers() -> None:
    """A service that only has green containers, green active, gets green's services and routers."""
    config = _config([make_container("web", "green", port=8085)], Color.GREEN)
    http = config["http"]
    assert {"web", "web-green"} == set(http["services"])  # type: ignore[index]
    assert {"web", "web-preview-green"} == set(http["routers"])  # type: ignore[index]
    expected = {
        "loadBalancer": {
            "servers": [{"url": "http://127.0.0.1:8085"}],
            "serversTransport": "bluegreen",
        }
    }
    assert expected == http["services"]["web-green"]  # type: ignore[index]


def test_render_a_color_without_an_agreed_route_has_no_preview_router() -> None:
    """Blue's containers disagree: blue gets no preview router; green's is still rendered."""
    config = _config(
        [
            make_container(extra={"bluegreen.rule": "Host(`a`)"}),
            make_container(extra={"bluegreen.rule": "Host(`b`)"}),
            make_container("web", "green"),
        ],
        Color.GREEN,
    )
    assert {"web", "web-preview-green"} == set(config["http"]["routers"])  # type: ignore[index]
    assert {"web", "web-blue", "web-green"} == set(config["http"]["services"])  # type: ignore[index]


def test_serialized_config_has_no_incidental_whitespace() -> None:
    """The body is compact JSON: no space after a key's colon or between items."""
    body = serialize(_config([make_container("web", "blue"), make_container("api", "green")]))
    assert (False, False) == (b'": ' in body, b'", "' in body)
    assert json.loads(body) == _config(
        [make_container("web", "blue"), make_container("api", "green")]
    )
