"""The asset fallback (provider/core/fallback.py, the label in labels.py): a 404 on the
listed prefixes is answered by the previous color while it has servers, and never
otherwise."""

from __future__ import annotations

import pytest

from provider.core.fallback import FALLBACK_QUERY, fallback_rule
from provider.core.labels import LabelDefaults, LabelProblem, Placement, parse
from provider.core.model import Color, Container, Health
from provider.core.render import render, serialize
from provider.core.routing import Options, observe
from tests.factories import make_container

OPTIONS = Options()
ASSETS = {"bluegreen.fallback": "/assets/,/packs/"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/assets/,/packs/", ("/assets/", "/packs/")),
        (" /packs/ , /assets/ ,, ", ("/assets/", "/packs/")),  # sorted, blanks dropped
        ("/assets/,/assets/", ("/assets/",)),
        ("", ()),
        ("/", ("/",)),
        ("/static/v1.2_x~y-z/", ("/static/v1.2_x~y-z/",)),
    ],
)
def test_fallback_label_parses_to_sorted_prefixes(raw: str, expected: tuple[str, ...]) -> None:
    """Comma-separated path prefixes, sorted and deduplicated (byte-stable render)."""
    placed = parse(make_container(extra={"bluegreen.fallback": raw}), LabelDefaults())
    assert isinstance(placed, Placement)
    assert expected == placed.route.fallback


def test_no_fallback_label_means_off() -> None:
    """Off by default."""
    placed = parse(make_container(), LabelDefaults())
    assert isinstance(placed, Placement)
    assert () == placed.route.fallback


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("assets/", "label bluegreen.fallback item 'assets/' is not a path prefix"),
        ("/a`) || Host(`x", "is not a path prefix"),  # no way out of the backticks
        ("/a b", "is not a path prefix"),
        ("/" + "a" * 200, "is not a path prefix"),
        (",".join(f"/p{i}/" for i in range(11)), "has 11 prefixes; at most 10"),
    ],
)
def test_bad_fallback_labels_are_problems(raw: str, message: str) -> None:
    """A bad prefix is a label problem of the container, never a broken rule."""
    labels = {"bluegreen.service": "web", "bluegreen.color": "blue", "bluegreen.port": "1"}
    c = Container(
        "x" * 64, "c1", "running", Health.HEALTHY, {**labels, "bluegreen.fallback": raw}, 1.0
    )
    problem = parse(c, LabelDefaults())
    assert isinstance(problem, LabelProblem)
    assert message in problem.message


def _http(
    containers: list[Container], active: Color, weights: dict[Color, int] | None = None
) -> dict:  # type: ignore[type-arg]
    views = observe(containers, OPTIONS).services
    shares = {"web": weights} if weights else None
    return render(views, {"web": active}, OPTIONS, shares)["http"]  # type: ignore[no-any-return]


def test_the_fallback_points_404s_on_the_prefixes_at_the_previous_color() -> None:
    """Green active with the label, blue still running: a router on the prefixes, with the
    service's own middlewares first, and an errors middleware aimed at web-blue."""
    green_labels = {**ASSETS, "bluegreen.middlewares": "auth@file"}
    http = _http(
        [
            make_container("web", "blue", port=8081),
            make_container("web", "green", port=8082, extra=green_labels),
        ],
        Color.GREEN,
    )
    assert {
        "web-fallback": {
            "errors": {
                "status": ["404"],
                "statusRewrites": {"404": 200},
                "service": "web-blue",
                "query": FALLBACK_QUERY,
            }
        }
    } == http["middlewares"]
    assert {
        "rule": "(Host(`web`)) && (PathPrefix(`/assets/`) || PathPrefix(`/packs/`))",
        "service": "web",
        "entryPoints": ["web"],
        "middlewares": ["auth@file", "web-fallback"],
    } == http["routers"]["web-fallback"]
    assert "/_bluegreen/fallback?url={url}" == FALLBACK_QUERY
    # Longer than the main rule, so it wins over the main router by Traefik's default.
    assert len(http["routers"]["web-fallback"]["rule"]) > len(http["routers"]["web"]["rule"])


@pytest.mark.parametrize(
    ("blue", "why"),
    [
        (None, "no previous color at all"),
        ("exited", "the previous color is stopped"),
        ("unhealthy", "the previous color has no routable container"),
    ],
)
def test_no_fallback_without_a_previous_color_that_can_answer(blue: str | None, why: str) -> None:
    """The fallback never points at a color with no servers: it is not rendered at all."""
    containers = [make_container("web", "green", port=8082, extra=ASSETS)]
    if blue == "exited":
        containers.append(make_container("web", "blue", port=8081, state="exited"))
    elif blue == "unhealthy":
        containers.append(make_container("web", "blue", port=8081, health=Health.UNHEALTHY))
    http = _http(containers, Color.GREEN)
    assert "middlewares" not in http, why
    assert "web-fallback" not in http["routers"], why


def test_the_label_on_the_old_color_only_does_nothing() -> None:
    """The active color's labels decide: the new version asks for the fallback."""
    http = _http(
        [
            make_container("web", "blue", port=8081, extra=ASSETS),
            make_container("web", "green", port=8082),
        ],
        Color.GREEN,
    )
    assert "middlewares" not in http


def test_no_fallback_while_a_canary_splits_traffic() -> None:
    """Both colors serve during a canary: a fallback between them would be a loop of sorts."""
    containers = [
        make_container("web", "blue", port=8081, extra=ASSETS),
        make_container("web", "green", port=8082, extra=ASSETS),
    ]
    assert "middlewares" not in _http(containers, Color.BLUE, {Color.BLUE: 90, Color.GREEN: 10})
    assert "middlewares" in _http(containers, Color.BLUE, {Color.BLUE: 100, Color.GREEN: 0})


def test_the_fallback_is_byte_stable() -> None:
    """Same observations in any order, and prefixes in any order: the same bytes."""
    one = [
        make_container("web", "blue", port=8081),
        make_container("web", "green", port=8082, extra={"bluegreen.fallback": "/packs/,/assets/"}),
    ]
    two = [
        make_container("web", "green", port=8082, extra=ASSETS),
        make_container("web", "blue", port=8081),
    ]
    views_one = observe(one, OPTIONS).services
    views_two = observe(two, OPTIONS).services
    assert serialize(render(views_one, {"web": Color.GREEN}, OPTIONS)) == serialize(
        render(views_two, {"web": Color.GREEN}, OPTIONS)
    )


def test_fallback_rule_joins_prefixes() -> None:
    """One PathPrefix per prefix, or-ed, and-ed with the main rule in parentheses."""
    assert "(Host(`a`)) && (PathPrefix(`/x/`))" == fallback_rule("Host(`a`)", ("/x/",))
