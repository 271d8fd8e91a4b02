"""``bluegreen import traefik-file``'s core: file-provider configs as blog-style scripts
write them (``tests/data/traefik_file/``), and what each becomes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.import_output import NeedsTemplate, labels_text, override_yaml, traefik_flags
from deploy.import_traefik import Import, read_config

DATA = Path(__file__).resolve().parents[1] / "data" / "traefik_file"


def imported(name: str) -> Import:
    path = DATA / name
    text = path.read_text()
    return read_config(tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text))


def shape(result: Import) -> list[tuple[Any, ...]]:
    """Each imported service as (name, router, live, rule, entrypoints, middlewares, tls,
    resolver, {color: urls}, derived colors)."""
    return [
        (
            s.name, s.router, s.live.value, s.rule, s.entrypoints, s.middlewares, s.tls,
            s.certresolver, {b.color.value: [x.url for x in b.servers] for b in s.backends},
            [b.color.value for b in s.backends if b.derived],
        )
        for s in result.services
    ]  # fmt: skip


ROUTER_SWITCH = [
    ("web-server", "web-server", "blue", "Host(`localhost`)", ("web",), (), False, None,
     {"blue": ["http://web-server-blue:3000"], "green": ["http://web-server-green:3000"]}, []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("router-switch-blue.yml", ROUTER_SWITCH),
        ("router-switch-blue.toml", ROUTER_SWITCH),
        ("router-switch-green.yml", [(*ROUTER_SWITCH[0][:2], "green", *ROUTER_SWITCH[0][3:])]),
        ("weighted.yml", [
            ("shop", "shop", "green", "Host(`shop.example.com`) && PathPrefix(`/`)",
             ("websecure",), ("auth@file", "compress@file"), True, "le",
             {"blue": ["http://shop_blue:8000"], "green": ["http://shop_green:8000"]}, []),
        ]),
        ("canary-halfway.yml", [
            ("api", "api", "blue", "Host(`api.local`)", ("web",), (), False, None,
             {"blue": ["http://api-blue"], "green": ["http://api-green"]}, []),
        ]),
        ("url-sed.yml", [
            ("app", "app", "green", "Host(`app.example.com`)", ("web",), (), False, None,
             {"blue": ["http://app-blue:8080"], "green": ["http://app-green:8080"]}, ["blue"]),
        ]),
        ("two-servers.yml", [
            ("spring", "spring", "blue", "PathPrefix(`/`)", ("web",), (), False, None,
             {"blue": ["http://server1-blue:8080", "http://server2-blue:8080"],
              "green": ["http://server1-green:8080", "http://server2-green:8080"]}, []),
        ]),
        ("loopback.yml", [
            ("web", "web", "blue", "Host(`web.test`)", ("web",), (), False, None,
             {"blue": ["http://127.0.0.1:8081"], "green": ["http://127.0.0.1:8080"]}, []),
        ]),
        ("unknown-shapes.yml", [
            ("good", "good", "blue", "Host(`good.local`)", (), (), False, None,
             {"blue": ["http://good-blue:9000"], "green": ["http://good-green:9000"]}, []),
        ]),
        ("no-colors.yml", []),
        ("bad-rule.yml", []),
    ],
)  # fmt: skip
def test_what_each_file_imports(name: str, expected: list[tuple[Any, ...]]) -> None:
    """The three shapes (router, weights, URL switched), in YAML and TOML, with their colors."""
    assert expected == shape(imported(name))


@pytest.mark.parametrize(
    ("name", "problems"),
    [
        ("router-switch-blue.yml", []),
        ("bad-rule.yml", [
            "http.routers.web-server: rule 'Host(localhost)' is not a Traefik v3 rule: "
            "expected a string argument, found 'localhost' at position 6",
        ]),
        ("unknown-shapes.yml", [
            "http.routers.elsewhere: points at e-blue@docker, a service of another provider",
            "http.routers.mirrored → http.services.m-blue: is a mirroring service; only "
            "loadBalancer and weighted are imported",
            "http.routers.missing → http.services.x-blue: is referenced but not defined in "
            "this file",
            "http.routers.mixed → http.services.mix: its servers name both blue and green",
            "http.routers.norule: has no rule",
            "http.routers.secure-backend → http.services.s-blue.loadBalancer.servers[0]: "
            "server https://s-blue:8443: the provider reaches containers over http only",
            "http.routers.tie → http.services.t: blue and green weigh the same (1): which is "
            "live?",
        ]),
    ],
)  # fmt: skip
def test_unknown_shapes_are_reported_with_where(name: str, problems: list[str]) -> None:
    """Nothing blue/green-looking is dropped silently or guessed: each says what and where."""
    assert problems == [str(p) for p in imported(name).problems]


def test_what_stays_with_the_file_provider_and_what_is_not_carried_over() -> None:
    """Middlewares, other routers and TCP stay; dropped options are notes, never silent."""
    weighted = imported("weighted.yml")
    assert (
        "http.routers.dashboard: names no color",
        "http.middlewares: referenced as name@file",
    ) == weighted.kept
    (app,) = imported("url-sed.yml").services
    assert (
        "http.services.app.loadBalancer.healthCheck is not carried over (the provider follows "
        "the container's Docker HEALTHCHECK: give the service one)",
        "http.services.app.loadBalancer.passHostHeader is not carried over (the provider's "
        "load balancers take no options)",
        "http.services.app: the file names only green's servers (http://app-green:8080); "
        "blue's are the same URLs with the color swapped, as a sed would",
        "http.routers.app.priority is not carried over (the provider sets it itself)",
    ) == app.notes
    assert "tcp: not HTTP routing" in imported("unknown-shapes.yml").kept


def test_labels_and_override_of_the_blog_layout() -> None:
    """The router-switch file becomes each compose service's labels, by the URL's host."""
    result = imported("router-switch-blue.yml")
    assert (
        "# web-server blue: compose service web-server-blue (now http://web-server-blue:3000)\n"
        "bluegreen.color=blue\nbluegreen.entrypoints=web\nbluegreen.port=3000\n"
        "bluegreen.rule=Host(`localhost`)\nbluegreen.service=web-server\n\n"
        "# web-server green: compose service web-server-green (now "
        "http://web-server-green:3000)\n"
        "bluegreen.color=green\nbluegreen.entrypoints=web\nbluegreen.port=3000\n"
        "bluegreen.rule=Host(`localhost`)\nbluegreen.service=web-server\n"
    ) == labels_text(result, "bluegreen", None)
    override = yaml.safe_load(override_yaml(result, "bg", None))
    assert {
        "bg.service": "web-server", "bg.color": "green", "bg.port": "3000",
        "bg.rule": "Host(`localhost`)", "bg.entrypoints": "web",
    } == override["services"]["web-server-green"]["labels"]  # fmt: skip
    assert ["web-server-blue", "web-server-green"] == sorted(override["services"])


def test_an_address_needs_a_compose_service_template_for_an_override() -> None:
    """127.0.0.1:8081 names no compose service: the override asks for --compose-service."""
    result = imported("loopback.yml")
    with pytest.raises(NeedsTemplate) as raised:
        override_yaml(result, "bluegreen", None)
    assert "web blue: http://127.0.0.1:8081 names an address, not a compose service" in str(
        raised.value
    )
    override = yaml.safe_load(override_yaml(result, "bluegreen", "app-{color}"))
    assert {"app-blue": "8081", "app-green": "8080"} == {
        k: v["labels"]["bluegreen.port"] for k, v in override["services"].items()
    }


def test_traefik_flags_keep_the_file_provider_only_for_what_stays() -> None:
    """No leftovers: remove the file provider; leftovers: keep it for them."""
    alone = traefik_flags(imported("router-switch-blue.yml"), "http://bluegreen:8080/traefik", "f")
    assert "  add     --providers.http.endpoint=http://bluegreen:8080/traefik" in alone
    assert "  remove  --providers.file.filename and --providers.file.watch" in alone
    mixed = traefik_flags(imported("weighted.yml"), "http://x/traefik", "dynamic.yml")
    assert any(line.startswith("  keep    --providers.file.* for what stays in dynamic.yml")
               for line in mixed)  # fmt: skip


@pytest.mark.parametrize(
    "doc",
    [None, [], "text", {"http": None}, {"http": {"routers": {}}}, {"http": {"routers": []}}],
)
def test_files_with_nothing_to_read(doc: Any) -> None:
    """Empty or malformed documents import nothing and say so, never raise."""
    result = read_config(doc)
    assert ((), 1) == (result.services, len(result.problems))
